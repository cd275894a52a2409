// End to end with real parts: `leoflow` processes, a real store server, local processes (issue: "First
// end to end"). Every scenario runs on every store (Redis, PostgreSQL); each test owns its server and
// folder; tasks record their attempts in a ledger.
#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "support/e2e_stack.h"
#include "support/store_test.h"

namespace leoflow::testing {
namespace {

using ::testing::HasSubstr;
using nlohmann::json;
using namespace std::chrono_literals;

class EndToEnd : public StoreTest {};
INSTANTIATE_FOR_EVERY_STORE(EndToEnd);

json task(const std::string& id, const std::string& cmd, std::vector<std::string> deps = {}) {
  return {{"task_id", id}, {"type", "bash"}, {"entrypoint", cmd}, {"depends_on", deps}};
}

std::map<std::string, std::string> taskStates(const json& run) {
  std::map<std::string, std::string> states;
  for (const json& t : run["tasks"]) states[t["task_id"]] = t["state"];
  return states;
}

TEST_P(EndToEnd, ADiamondWithTriggerRulesRunsToItsExpectedStates) {
  E2eStack stack("diamond", options());
  json cleanup = task("cleanup", stack.ledgerTask(), {"load"});
  cleanup["trigger_rule"] = "all_done";
  json notify = task("notify_failure", stack.ledgerTask(), {"transform_a", "transform_b"});
  notify["trigger_rule"] = "one_failed";
  stack.writeDag({{"dag_id", "diamond"},
                  {"tasks", json::array({task("extract", stack.ledgerTask()),
                                         task("transform_a", stack.ledgerTask(), {"extract"}),
                                         task("transform_b", stack.ledgerTask(0, "exit 3"), {"extract"}),
                                         task("load", stack.ledgerTask(), {"transform_a", "transform_b"}),
                                         notify, cleanup})}});
  ASSERT_EQ(stack.leoflow("dags sync " + (stack.dir() / "dags").string()).exit_code, 0);
  auto scheduler = stack.startScheduler("s1");
  auto trigger = stack.leoflow("runs trigger diamond --run-id d1 --wait --timeout 60");
  EXPECT_EQ(trigger.exit_code, 1) << trigger.err << scheduler->log();
  EXPECT_EQ(trigger.out, "d1\n");
  auto run = stack.waitForRun("diamond", "d1", 5s);
  ASSERT_TRUE(run);
  EXPECT_EQ((*run)["state"], "failed");
  auto states = taskStates(*run);
  EXPECT_EQ(states["extract"], "success");
  EXPECT_EQ(states["transform_a"], "success");
  EXPECT_EQ(states["transform_b"], "failed");
  EXPECT_EQ(states["load"], "upstream_failed");
  EXPECT_EQ(states["notify_failure"], "success");
  EXPECT_EQ(states["cleanup"], "success");
  EXPECT_THAT(stack.duplicateAttempts(), ::testing::IsEmpty());
}

TEST_P(EndToEnd, AFailingTaskIsRetriedAfterItsDelayAndSucceeds) {
  E2eStack stack("retry", options());
  // fails on try 1, succeeds on try 2; each attempt stamps the time it started
  const std::string stamps = (stack.dir() / "starts.txt").string();
  json flaky = task("flaky", "date +%s.%N >> " + stamps + " && " +
                                 stack.ledgerTask(0, "test \"$LEOFLOW_TRY_NUMBER\" -ge 2"));
  flaky["retries"] = 2;
  flaky["retry_delay_seconds"] = 2;
  stack.writeDag({{"dag_id", "retry"}, {"tasks", json::array({flaky})}});
  ASSERT_EQ(stack.leoflow("dags sync " + (stack.dir() / "dags").string()).exit_code, 0);
  auto scheduler = stack.startScheduler("s1");
  auto trigger = stack.leoflow("runs trigger retry --run-id r1 --wait --timeout 60");
  ASSERT_EQ(trigger.exit_code, 0) << trigger.err << scheduler->log();
  auto run = stack.waitForRun("retry", "r1", 5s);
  ASSERT_TRUE(run);
  EXPECT_EQ((*run)["tasks"][0]["try_number"], 2);
  EXPECT_EQ(stack.ledgerLines(), (std::vector<std::string>{"r1/flaky/1", "r1/flaky/2"}));
  std::ifstream in(stamps);
  double first = 0, second = 0;
  in >> first >> second;
  EXPECT_GE(second - first, 2.0);  // the retry waited out its delay
}

TEST_P(EndToEnd, MaxActiveRunsHolds) {
  E2eStack stack("cap", options());
  const std::string spans = (stack.dir() / "spans.txt").string();
  json t = task("work", "echo start $(date +%s.%N) >> " + spans + " && sleep 0.5 && echo end $(date +%s.%N) >> " + spans);
  // The cap holds back scheduled runs (BEHAVIOUR §3.6): a schedule with catch-up over three slots.
  json sched = {{"dag_id", "capped"},
                {"schedule", "@hourly"},
                {"catchup", true},
                {"max_active_runs", 1},
                {"start_date", "2026-01-01T00:00:00Z"},
                {"end_date", "2026-01-01T02:00:00Z"},
                {"tasks", json::array({t})}};
  stack.writeDag(sched);
  ASSERT_EQ(stack.leoflow("dags sync " + (stack.dir() / "dags").string()).exit_code, 0);
  auto scheduler = stack.startScheduler("s1");
  for (const char* slot : {"2026-01-01T00:00:00Z", "2026-01-01T01:00:00Z", "2026-01-01T02:00:00Z"}) {
    auto run = stack.waitForRun("capped", std::string("scheduled__") + slot, 60s);
    ASSERT_TRUE(run) << slot << scheduler->log();
    EXPECT_EQ((*run)["state"], "success");
  }
  // the runs never overlapped: starts and ends alternate
  std::ifstream in(spans);
  std::string word, time;
  int open = 0, max_open = 0;
  while (in >> word >> time) {
    open += word == "start" ? 1 : -1;
    max_open = std::max(max_open, open);
  }
  EXPECT_EQ(max_open, 1);
}

TEST_P(EndToEnd, TheExampleDagsReachTheirExpectedStates) {
  const char* root = std::getenv("LEOFLOW_SOURCE_ROOT");
  ASSERT_NE(root, nullptr) << "LEOFLOW_SOURCE_ROOT is not set";
  E2eStack::Options opts = options();
  opts.work_dir = root;  // as in the dev stack, tasks run in the project folder
  E2eStack stack("examples", opts);
  auto sync = stack.leoflow(std::string("dags sync ") + root + "/examples/dags");
  ASSERT_EQ(sync.exit_code, 0) << sync.err;
  auto scheduler = stack.startScheduler("s1");
  auto diamond = stack.leoflow("runs trigger example_diamond --run-id d --wait --timeout 60");
  EXPECT_EQ(diamond.exit_code, 0) << diamond.err << scheduler->log();
  auto flaky = stack.leoflow("runs trigger example_flaky_retry --run-id f --wait --timeout 60");
  EXPECT_EQ(flaky.exit_code, 0) << flaky.err;
  auto run = stack.waitForRun("example_flaky_retry", "f", 5s);
  ASSERT_TRUE(run);
  EXPECT_EQ((*run)["tasks"][0]["task_id"], "call_flaky_service");
  EXPECT_EQ((*run)["tasks"][0]["try_number"], 2);  // failed once, succeeded after its delay
  run = stack.waitForRun("example_diamond", "d", 5s);
  ASSERT_TRUE(run);
  auto states = taskStates(*run);
  EXPECT_EQ(states["report_any_failure"], "skipped");  // one_failed with no failure
  EXPECT_EQ(states["cleanup"], "success");
  // the cron DAG catches up its six hourly slots, two at a time at most
  for (int h = 0; h <= 5; ++h) {
    auto slot = stack.waitForRun("example_hourly_catchup", "scheduled__2026-01-01T0" + std::to_string(h) + ":00:00Z", 60s);
    ASSERT_TRUE(slot) << h;
    EXPECT_EQ((*slot)["state"], "success");
  }
}

TEST_P(EndToEnd, InvalidDagFilesAreRefusedWithClearMessagesAndChangeNothing) {
  E2eStack stack("bad", options());
  stack.writeDag({{"dag_id", "good"}, {"tasks", json::array({task("a", "true")})}});
  ASSERT_EQ(stack.leoflow("dags sync " + (stack.dir() / "dags").string()).exit_code, 0);
  stack.writeDag({{"dag_id", "good"}, {"tasks", json::array({task("a", "echo v2")})}});
  stack.writeDag({{"dag_id", "cyclic"}, {"tasks", json::array({task("a", "true", {"b"}), task("b", "true", {"a"})})}});
  auto sync = stack.leoflow("dags sync " + (stack.dir() / "dags").string());
  EXPECT_EQ(sync.exit_code, 2);
  EXPECT_THAT(sync.err, HasSubstr("cyclic.json: cycle a -> b -> a"));
  auto list = stack.leoflow("dags list --json");
  ASSERT_EQ(list.exit_code, 0);
  EXPECT_EQ(json::parse(list.out), json::parse(R"([{"dag_id":"good","schedule":null,"paused":false,"version":1,"tenant":"default","next_slot":null,"last_run_state":null}])"));
}

// `top -H`, `ps -L` and `perf report --sort comm` name each of a scheduler's threads by its job.
TEST_P(EndToEnd, TheSchedulersThreadsAreNamedByTheirJob) {
  E2eStack stack("threads", options());
  stack.writeDag({{"dag_id", "one"}, {"tasks", json::array({task("a", stack.ledgerTask())})}});
  ASSERT_EQ(stack.leoflow("dags sync " + (stack.dir() / "dags").string()).exit_code, 0);
  auto scheduler = stack.startScheduler("s1");
  auto trigger = stack.leoflow("runs trigger one --run-id r1 --wait --timeout 60");
  ASSERT_EQ(trigger.exit_code, 0) << trigger.err << scheduler->log();
  auto names = [&] {
    std::set<std::string> found;
    const auto tasks = std::filesystem::path("/proc") / std::to_string(scheduler->pid()) / "task";
    std::error_code ec;
    for (const auto& t : std::filesystem::directory_iterator(tasks, ec)) {
      std::string name;
      std::getline(std::ifstream(t.path() / "comm"), name);
      found.insert(name);
    }
    return found;
  };
  const std::string feed = GetParam() == "redis" ? "lf-redis-feed" : "lf-pg-feed";
  const std::set<std::string> expected = {"leoflow",        "lf-signals",      "lf-watchdog", "lf-dispatch",
                                          "lf-local-watch", "lf-local-report", feed};
  std::set<std::string> found = names();
  for (int i = 0; i < 100 && !std::includes(found.begin(), found.end(), expected.begin(), expected.end()); ++i) {
    std::this_thread::sleep_for(50ms);
    found = names();
  }
  EXPECT_THAT(found, ::testing::IsSupersetOf(expected));
}

// No store involved: the host refuses the config before it loads anything.
TEST(EndToEndConfig, AConfigNamingAMissingPluginIsRefusedClearly) {
  TempDir dir("missing-plugin");
  std::ofstream(dir.path() / "broken.toml") << "[store]\nplugin = \"store-nowhere\"\n[dispatcher]\nplugin = \"dispatcher-local\"\n";
  auto r = runCommand(leoflowBinary() + " --config " + (dir.path() / "broken.toml").string() + " scheduler");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("store-nowhere"));
  EXPECT_THAT(r.err, HasSubstr("not found"));
}

}  // namespace
}  // namespace leoflow::testing
