// dags, runs and status as a person drives them (ARCHITECTURE §5, §8.5, §8.6), against the
// in-memory store.
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "host/dags_command.h"
#include "host/exit_codes.h"
#include "host/runs_command.h"
#include "host/status_command.h"
#include "schedule/iso_time.h"
#include "support/memory_store.h"

namespace leoflow::host {
namespace {

using ::testing::HasSubstr;
using ::testing::MatchesRegex;
using leoflow::testing::ManualClock;
using leoflow::testing::MemoryStore;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

RunQuery byDag(const std::string& dag) {
  RunQuery q;
  q.dag_id = dag;
  return q;
}
RunQuery byState(const std::string& state) {
  RunQuery q;
  q.state = state;
  return q;
}

std::optional<Timestamp> parseIsoForTest(const std::string& text) { return schedule::parseIsoTime(text); }

class Commands : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("leoflow-cmd-" + std::to_string(::getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
    clock_.set(Timestamp{std::chrono::seconds{1779969600}});  // 2026-05-28T12:00:00Z
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string write(const std::string& name, const std::string& text) {
    const fs::path p = dir_ / name;
    std::ofstream(p) << text;
    return p.string();
  }
  std::string dagFile(const std::string& id, const std::string& cmd = "true") {
    return write(id + ".json", R"({"dag_id":")" + id + R"(","tasks":[{"task_id":"a","type":"bash","entrypoint":")" + cmd +
                                   R"("},{"task_id":"b","type":"bash","entrypoint":"true","depends_on":["a"]}]})");
  }
  // Runs a command that may throw CommandError; returns its exit code.
  template <typename Fn>
  int run(Fn&& fn) {
    out_.str("");
    err_.str("");
    try {
      return fn();
    } catch (const CommandError& e) {
      err_ << e.what() << '\n';
      return e.exitCode();
    }
  }

  fs::path dir_;
  ManualClock clock_;
  MemoryStore store_;
  std::ostringstream out_, err_;
};

TEST_F(Commands, ValidateAcceptsGoodFilesAndNamesEveryBadOne) {
  const std::string good = dagFile("etl");
  EXPECT_EQ(run([&] { return dagsValidate({good}, out_, err_); }), 0);
  EXPECT_THAT(out_.str(), HasSubstr("ok " + good + ": dag etl (2 tasks, manual)"));
  const std::string bad = write("bad.json", R"({"dag_id":"bad","tasks":[{"task_id":"x","type":"bash","entrypoint":"true","depends_on":["nowhere"]}]})");
  EXPECT_EQ(run([&] { return dagsValidate({good, bad}, out_, err_); }), 2);
  EXPECT_THAT(err_.str(), HasSubstr(bad + ": task \"x\": depends on unknown task \"nowhere\""));
}

TEST_F(Commands, SyncRegistersVersionsAndIsAllOrNothing) {
  const std::string etl = dagFile("etl");
  EXPECT_EQ(run([&] { return dagsSync(store_, {etl}, out_, err_); }), 0);
  EXPECT_THAT(out_.str(), HasSubstr("dag etl: version 1 (registered)"));
  EXPECT_EQ(run([&] { return dagsSync(store_, {etl}, out_, err_); }), 0);
  EXPECT_THAT(out_.str(), HasSubstr("dag etl: version 1 (unchanged)"));
  dagFile("etl", "echo changed");
  EXPECT_EQ(run([&] { return dagsSync(store_, {etl}, out_, err_); }), 0);
  EXPECT_THAT(out_.str(), HasSubstr("dag etl: version 2 (registered)"));

  // one bad file: nothing of the call is registered, not even the good one
  const std::string other = dagFile("other");
  const std::string bad = write("bad.json", R"({"dag_id":"bad","tasks":[{"task_id":"x","type":"perl","entrypoint":"x"}]})");
  EXPECT_EQ(run([&] { return dagsSync(store_, {other, bad}, out_, err_); }), 2);
  EXPECT_THAT(err_.str(), HasSubstr("nothing registered"));
  EXPECT_TRUE(store_.dagVersions("other").empty());
  EXPECT_EQ(store_.dagVersions("etl").size(), 2u);
}

// With an inline runner whose max_timeout_s is known, a task whose timeout exceeds it would fail at
// its first attempt: the sync says so (and still registers it).
TEST_F(Commands, SyncWarnsAboutInlineTasksWhoseTimeoutExceedsTheRunnersLimit) {
  const std::string slow = write("slow.json", R"({"dag_id":"slow","tasks":[
      {"task_id":"long_call","type":"http_api","execution_timeout_seconds":600,"http_request":{"url":"https://x/1"}},
      {"task_id":"capped","type":"http_api","execution_timeout_seconds":600,
       "http_request":{"url":"https://x/2","timeout_seconds":30}},
      {"task_id":"as_pod","type":"http_api","execution_mode":"pod","execution_timeout_seconds":900,
       "http_request":{"url":"https://x/3"}}]})");
  EXPECT_EQ(run([&] { return dagsSync(store_, {slow}, out_, err_, std::nullopt, 300); }), 0);
  EXPECT_THAT(err_.str(), HasSubstr("task \"long_call\": its timeout (600 s) exceeds the inline runner's "
                                    "max_timeout_s (300 s)"));
  EXPECT_THAT(err_.str(), ::testing::Not(HasSubstr("\"capped\"")));  // the request's 30 s is the smaller
  EXPECT_THAT(err_.str(), ::testing::Not(HasSubstr("\"as_pod\"")));
  EXPECT_THAT(out_.str(), HasSubstr("dag slow: version 1 (registered)"));
}

TEST_F(Commands, SyncWarnsAboutInlineHttpTasksWhenNoInlineRunnerIsConfigured) {
  const std::string hooks = write("hooks.json", R"({"dag_id":"hooks","tasks":[
      {"task_id":"build","type":"bash","entrypoint":"true"},
      {"task_id":"notify","type":"http_api","depends_on":["build"],"http_request":{"url":"https://hooks.example/x"}},
      {"task_id":"as_pod","type":"http_api","execution_mode":"pod","http_request":{"url":"https://hooks.example/y"}}]})");
  // Without [inline_runner]: a warning naming the file, the task and the config; the sync succeeds.
  EXPECT_EQ(run([&] { return dagsSync(store_, {hooks}, out_, err_, std::string("/etc/leoflow.toml")); }), 0);
  EXPECT_THAT(out_.str(), HasSubstr("dag hooks: version 1 (registered)"));
  EXPECT_THAT(err_.str(), HasSubstr("warning: " + hooks + ": task \"notify\": an inline http_api task, but "
                                    "/etc/leoflow.toml configures no [inline_runner]"));
  EXPECT_THAT(err_.str(), ::testing::Not(HasSubstr("as_pod"))) << "a pod-mode task goes to a dispatcher anyway";
  EXPECT_THAT(err_.str(), ::testing::Not(HasSubstr("\"build\"")));
  // With one configured: no warning.
  EXPECT_EQ(run([&] { return dagsSync(store_, {hooks}, out_, err_, std::nullopt); }), 0);
  EXPECT_EQ(err_.str(), "");
}

TEST_F(Commands, TriggerTimeoutMustBePositiveShortAndComeWithWait) {
  EXPECT_EQ(parseTimeout("2.5", true), 2500ms);
  EXPECT_EQ(parseTimeout("30", true), 30s);
  for (const std::string& bad : std::vector<std::string>{"-1", "0", "abc", "nan", "inf", "1e400", "1e10", "",
                                                         std::string(400, '9')}) {
    try {
      parseTimeout(bad, true);
      ADD_FAILURE() << "accepted --timeout " << bad;
    } catch (const CommandError& e) {
      EXPECT_EQ(e.exitCode(), 2);
      const std::string m = e.what();
      EXPECT_THAT(m, HasSubstr("--timeout: expected a positive number of seconds")) << bad;
      EXPECT_LT(m.size(), 160u) << m;
      EXPECT_EQ(m.find('\n'), std::string::npos) << m;
    }
  }
  try {
    parseTimeout("5", false);
    ADD_FAILURE() << "--timeout without --wait accepted";
  } catch (const CommandError& e) {
    EXPECT_EQ(e.exitCode(), 2);
    EXPECT_THAT(e.what(), HasSubstr("--timeout 5 needs --wait"));
  }
}

// A large run's read takes long: `runs trigger --wait` reads it less often (at most 1/20 of the time,
// at least every 2 s), so the CLI does not take the scheduler's CPU it waits on. With a change feed,
// which tells the run's end at once, the reads are for the progress line: at most 1/100 of the time.
TEST_F(Commands, WaitingReadsALargeRunLessOften) {
  EXPECT_EQ(waitPollInterval(100ms, 800us), 100ms) << "a small run: the poll interval";
  EXPECT_EQ(waitPollInterval(100ms, 30ms), 600ms) << "a 30 ms read: 20 times that";
  EXPECT_EQ(waitPollInterval(100ms, 400ms), 2000ms) << "never more than 2 s";
  EXPECT_EQ(waitPollInterval(3000ms, 400ms), 3000ms) << "a longer poll interval stands";
  EXPECT_EQ(waitPollInterval(1000ms, 30ms, /*end_is_heard=*/true), 3000ms)
      << "when the change feed tells the run's end, the reads are for progress only: 100 times the read";
  EXPECT_EQ(waitPollInterval(1000ms, 400ms, true), 10000ms) << "up to 10 s";
  EXPECT_EQ(waitPollInterval(1000ms, 800us, true), 1000ms) << "a small run: the progress interval";
}

TEST_F(Commands, WaitSeesTheRunsEndAtOnceThroughTheChangeFeed) {
  ASSERT_EQ(run([&] { return dagsSync(store_, {dagFile("etl")}, out_, err_); }), 0);
  TriggerOptions o;
  o.dag_id = "etl";
  o.run_id = "r1";
  o.wait = true;
  o.poll_interval = 60s;  // the next read would come a minute later
  o.progress_interval = 60s;
  std::thread finisher([&] {
    const RunKey key{"etl", "r1"};
    for (int i = 0; i < 400 && !store_.run(key); ++i) std::this_thread::sleep_for(2ms);
    std::this_thread::sleep_for(50ms);  // the command has read the run and sleeps
    MarkRunRequest mark;
    mark.run = key;
    mark.to = DagRunState::kSuccess;
    mark.at = clock_.now();
    ASSERT_TRUE(store_.markRun(mark).isOk());  // publishes the run's change
  });
  const auto started = std::chrono::steady_clock::now();
  EXPECT_EQ(run([&] { return runsTrigger(store_, clock_, o, out_, err_); }), 0);
  finisher.join();
  EXPECT_LT(std::chrono::steady_clock::now() - started, 30s) << "woken by the change, not by the next read";
  EXPECT_THAT(err_.str(), HasSubstr("etl r1: success"));
}

TEST_F(Commands, ListPauseAndUnpause) {
  ASSERT_EQ(run([&] { return dagsSync(store_, {dagFile("etl")}, out_, err_); }), 0);
  EXPECT_EQ(run([&] { return dagsSetPaused(store_, "etl", true, out_); }), 0);
  EXPECT_EQ(run([&] { return dagsList(store_, true, out_, clock_.now()); }), 0);
  auto list = nlohmann::json::parse(out_.str());
  EXPECT_EQ(list, nlohmann::json::parse(R"([{"dag_id":"etl","schedule":null,"paused":true,"version":1,"tenant":"default","next_slot":null,
                                              "last_run_state":null}])"));
  EXPECT_EQ(run([&] { return dagsSetPaused(store_, "etl", false, out_); }), 0);
  EXPECT_EQ(run([&] { return dagsSetPaused(store_, "nope", true, out_); }), 2);
  EXPECT_THAT(err_.str(), HasSubstr("unknown dag \"nope\""));
  EXPECT_EQ(run([&] { return dagsList(store_, false, out_, clock_.now()); }), 0);
  EXPECT_THAT(out_.str(), HasSubstr("etl"));
}

TEST_F(Commands, TriggerPrintsTheRunIdAloneAndRefusesATakenId) {
  ASSERT_EQ(run([&] { return dagsSync(store_, {dagFile("etl")}, out_, err_); }), 0);
  TriggerOptions o;
  o.dag_id = "etl";
  EXPECT_EQ(run([&] { return runsTrigger(store_, clock_, o, out_, err_); }), 0);
  EXPECT_EQ(out_.str(), "manual__2026-05-28T12:00:00.000000Z\n");
  o.run_id = "nightly-1";
  o.conf_json = R"({"day":"monday"})";
  EXPECT_EQ(run([&] { return runsTrigger(store_, clock_, o, out_, err_); }), 0);
  EXPECT_EQ(store_.run({"etl", "nightly-1"})->conf_json, R"({"day":"monday"})");
  EXPECT_EQ(run([&] { return runsTrigger(store_, clock_, o, out_, err_); }), 2);
  EXPECT_THAT(err_.str(), HasSubstr("run id \"nightly-1\" already exists"));
  o.dag_id = "nope";
  EXPECT_EQ(run([&] { return runsTrigger(store_, clock_, o, out_, err_); }), 2);
  o.dag_id = "etl";
  o.run_id = "x";
  o.conf_json = "[1]";
  EXPECT_EQ(run([&] { return runsTrigger(store_, clock_, o, out_, err_); }), 2);
  EXPECT_THAT(err_.str(), HasSubstr("--conf must be a JSON object"));
  o.conf_json = "";
  o.run_id = "has space";
  EXPECT_EQ(run([&] { return runsTrigger(store_, clock_, o, out_, err_); }), 2);
}

TEST_F(Commands, WaitFollowsTheRunAndExitsByItsOutcome) {
  ASSERT_EQ(run([&] { return dagsSync(store_, {dagFile("etl")}, out_, err_); }), 0);
  TriggerOptions o;
  o.dag_id = "etl";
  o.run_id = "r1";
  o.wait = true;
  o.poll_interval = 5ms;
  o.progress_interval = 5ms;  // putRun publishes nothing: the reads see the end
  // a stand-in scheduler finishing the run while the command waits
  std::thread finisher([&] {
    RunKey key{"etl", "r1"};
    for (int i = 0; i < 400 && !store_.run(key); ++i) std::this_thread::sleep_for(2ms);
    std::this_thread::sleep_for(30ms);
    RunRecord r = *store_.run(key);
    r.state = DagRunState::kFailed;
    TaskInstance a;
    a.task_id = "a";
    a.state = TaskState::kFailed;
    a.note = "exit code 3";
    r.tasks = {a};
    store_.putRun(r);
  });
  EXPECT_EQ(run([&] { return runsTrigger(store_, clock_, o, out_, err_); }), 1);
  finisher.join();
  EXPECT_EQ(out_.str(), "r1\n");
  EXPECT_THAT(err_.str(), HasSubstr("etl r1: queued"));
  EXPECT_THAT(err_.str(), HasSubstr("a failed: exit code 3"));
}

// A paused DAG's run is created and waits: the command says so, beside the run id.
TEST_F(Commands, TriggerOfAPausedDagCreatesTheRunAndSaysItWaits) {
  ASSERT_EQ(run([&] { return dagsSync(store_, {dagFile("etl")}, out_, err_); }), 0);
  ASSERT_EQ(run([&] { return dagsSetPaused(store_, "etl", true, out_); }), 0);
  out_.str("");
  TriggerOptions o;
  o.dag_id = "etl";
  o.run_id = "while-paused";
  EXPECT_EQ(run([&] { return runsTrigger(store_, clock_, o, out_, err_); }), 0);
  EXPECT_EQ(out_.str(), "while-paused\n");
  EXPECT_THAT(err_.str(), HasSubstr("note: dag etl is paused; the run waits until it is unpaused"));
  ASSERT_TRUE(store_.run({"etl", "while-paused"}));
  EXPECT_EQ(store_.run({"etl", "while-paused"})->state, DagRunState::kQueued);
}

TEST_F(Commands, WaitTimesOutWith124AndLeavesTheRunGoing) {
  ASSERT_EQ(run([&] { return dagsSync(store_, {dagFile("etl")}, out_, err_); }), 0);
  TriggerOptions o;
  o.dag_id = "etl";
  o.run_id = "slow";
  o.wait = true;
  o.timeout = 50ms;
  o.poll_interval = 5ms;
  EXPECT_EQ(run([&] { return runsTrigger(store_, clock_, o, out_, err_); }), 124);
  EXPECT_THAT(err_.str(), HasSubstr("the run goes on"));
  EXPECT_EQ(store_.run({"etl", "slow"})->state, DagRunState::kQueued);
}

TEST_F(Commands, ShowFindsARunAcrossDagsAndAsksForDagWhenAmbiguous) {
  ASSERT_EQ(run([&] { return dagsSync(store_, {dagFile("etl"), dagFile("other")}, out_, err_); }), 0);
  TriggerOptions o;
  o.dag_id = "etl";
  o.run_id = "same";
  ASSERT_EQ(run([&] { return runsTrigger(store_, clock_, o, out_, err_); }), 0);
  EXPECT_EQ(run([&] { return runsShow(store_, "same", std::nullopt, true, out_); }), 0);
  auto j = nlohmann::json::parse(out_.str());
  EXPECT_EQ(j["run_id"], "same");
  EXPECT_EQ(j["dag_id"], "etl");
  EXPECT_EQ(j["state"], "queued");
  EXPECT_EQ(j["logical_date"], "2026-05-28T12:00:00Z");
  EXPECT_TRUE(j["started_at"].is_null());
  EXPECT_TRUE(j["tasks"].is_array());
  o.dag_id = "other";
  ASSERT_EQ(run([&] { return runsTrigger(store_, clock_, o, out_, err_); }), 0);
  EXPECT_EQ(run([&] { return runsShow(store_, "same", std::nullopt, true, out_); }), 2);
  EXPECT_THAT(err_.str(), HasSubstr("several dags (etl, other); say which with --dag"));
  EXPECT_EQ(run([&] { return runsShow(store_, "same", std::string("other"), false, out_); }), 0);
  EXPECT_THAT(out_.str(), HasSubstr("run same of dag other: queued"));
  EXPECT_EQ(run([&] { return runsShow(store_, "ghost", std::nullopt, false, out_); }), 2);
  EXPECT_THAT(err_.str(), HasSubstr("unknown run \"ghost\""));
}

TEST_F(Commands, ShowListsTasksInDagOrderWithTheirAttempts) {
  ASSERT_EQ(run([&] { return dagsSync(store_, {dagFile("etl")}, out_, err_); }), 0);
  ASSERT_TRUE(store_.claimTerm("me").isOk());
  TriggerOptions o;
  o.dag_id = "etl";
  o.run_id = "r";
  ASSERT_EQ(run([&] { return runsTrigger(store_, clock_, o, out_, err_); }), 0);
  std::vector<NewTaskInstance> tasks = {{"b", 1}, {"a", 3}};
  ASSERT_TRUE(store_.materializeRun(1, {"etl", "r"}, tasks, clock_.now()).isOk());
  EXPECT_EQ(run([&] { return runsShow(store_, "r", std::nullopt, true, out_); }), 0);
  auto j = nlohmann::json::parse(out_.str());
  ASSERT_EQ(j["tasks"].size(), 2u);
  EXPECT_EQ(j["tasks"][0]["task_id"], "a");
  EXPECT_EQ(j["tasks"][0]["try_number"], 1);
  EXPECT_EQ(j["tasks"][0]["max_tries"], 3);
  EXPECT_EQ(j["tasks"][0]["state"], "none");
  EXPECT_EQ(j["state"], "running");
  EXPECT_EQ(j["started_at"], "2026-05-28T12:00:00Z");
}

TEST_F(Commands, ListFiltersByDagAndState) {
  ASSERT_EQ(run([&] { return dagsSync(store_, {dagFile("etl"), dagFile("other")}, out_, err_); }), 0);
  for (const char* d : {"etl", "other"}) {
    TriggerOptions o;
    o.dag_id = d;
    o.run_id = std::string("r-") + d;
    ASSERT_EQ(run([&] { return runsTrigger(store_, clock_, o, out_, err_); }), 0);
  }
  EXPECT_EQ(run([&] { return runsList(store_, byDag("etl"), true, out_); }), 0);
  auto j = nlohmann::json::parse(out_.str());
  ASSERT_EQ(j.size(), 1u);
  EXPECT_EQ(j[0]["run_id"], "r-etl");
  EXPECT_FALSE(j[0].contains("tasks"));
  EXPECT_EQ(run([&] { return runsList(store_, byState("success"), true, out_); }), 0);
  EXPECT_EQ(nlohmann::json::parse(out_.str()).size(), 0u);
  EXPECT_EQ(run([&] { return runsList(store_, byState("paused"), true, out_); }), 2);
  EXPECT_EQ(run([&] { return runsList(store_, byDag("nope"), true, out_); }), 2);
}

// dags show (docs/architecture.md §8.14): text by default, the dags list object plus tasks, DOT.
TEST_F(Commands, DagsShowPrintsTheDagAndItsTasksAsTextJsonAndDot) {
  const std::string etl = write("etl.json", R"({"dag_id":"etl","schedule":"@daily","tasks":[
      {"task_id":"extract","type":"bash","entrypoint":"true"},
      {"task_id":"load","type":"python","entrypoint":"true","depends_on":["extract"]},
      {"task_id":"report","type":"bash","entrypoint":"true","depends_on":["extract","load"],"trigger_rule":"all_done"}]})");
  ASSERT_EQ(run([&] { return dagsSync(store_, {etl}, out_, err_); }), 0) << err_.str();
  ASSERT_EQ(run([&] { return dagsSetPaused(store_, "etl", true, out_); }), 0);

  EXPECT_EQ(run([&] { return dagsShow(store_, "etl", DagShowFormat::kJson, out_, clock_.now()); }), 0) << err_.str();
  EXPECT_EQ(nlohmann::json::parse(out_.str()), nlohmann::json::parse(R"({
      "dag_id":"etl","schedule":"@daily","paused":true,"version":1,"tenant":"default",
      "next_slot":"2026-05-28T00:00:00Z","last_run_state":null,"tasks":[
        {"task_id":"extract","type":"bash","depends_on":[],"trigger_rule":"all_success"},
        {"task_id":"load","type":"python","depends_on":["extract"],"trigger_rule":"all_success"},
        {"task_id":"report","type":"bash","depends_on":["extract","load"],"trigger_rule":"all_done"}]})"));
  // The same object as `dags list --json` has for the DAG, plus tasks.
  auto shown = nlohmann::json::parse(out_.str());
  shown.erase("tasks");
  ASSERT_EQ(run([&] { return dagsList(store_, true, out_, clock_.now()); }), 0);
  EXPECT_EQ(shown, nlohmann::json::parse(out_.str())[0]);

  EXPECT_EQ(run([&] { return dagsShow(store_, "etl", DagShowFormat::kDot, out_, clock_.now()); }), 0);
  EXPECT_EQ(out_.str(),
            "digraph \"etl\" {\n"
            "  \"extract\";\n  \"load\";\n  \"report\";\n"
            "  \"extract\" -> \"load\";\n  \"extract\" -> \"report\";\n  \"load\" -> \"report\";\n"
            "}\n");

  EXPECT_EQ(run([&] { return dagsShow(store_, "etl", DagShowFormat::kText, out_, clock_.now()); }), 0);
  EXPECT_THAT(out_.str(), HasSubstr("dag etl: version 1, schedule @daily, paused, tenant default\n"));
  EXPECT_THAT(out_.str(), MatchesRegex("(.|\n)*report +bash +all_done +extract, load\n(.|\n)*"));
  EXPECT_THAT(out_.str(), MatchesRegex("(.|\n)*extract +bash +all_success +-\n(.|\n)*"));
}

TEST_F(Commands, DagsShowOfAnUnknownDagExitsTwo) {
  for (const auto format : {DagShowFormat::kText, DagShowFormat::kJson, DagShowFormat::kDot}) {
    EXPECT_EQ(run([&] { return dagsShow(store_, "ghost", format, out_, clock_.now()); }), 2);
    EXPECT_THAT(err_.str(), HasSubstr("unknown dag \"ghost\""));
    EXPECT_EQ(out_.str(), "");
  }
}

TEST_F(Commands, DotQuotesIdsSafely) {
  EXPECT_EQ(dotQuote("a"), "\"a\"");
  EXPECT_EQ(dotQuote("a\"b"), "\"a\\\"b\"");
  EXPECT_EQ(dotQuote("a\\"), "\"a\\\\\"");  // a trailing backslash does not escape the closing quote
  EXPECT_EQ(dotQuote("a\nb"), "\"a\\nb\"");
  EXPECT_EQ(dotQuote("->"), "\"->\"");
}

TEST_F(Commands, TriggerSetsTheLogicalDateAndShowCarriesNoteAndDagVersion) {
  ASSERT_EQ(run([&] { return dagsSync(store_, {dagFile("etl")}, out_, err_); }), 0);
  const std::string v2 = dagFile("etl", "echo v2");
  ASSERT_EQ(run([&] { return dagsSync(store_, {v2}, out_, err_); }), 0);
  TriggerOptions o;
  o.dag_id = "etl";
  o.logical_date = parseLogicalDate("2026-01-02T03:04:05+01:00");
  EXPECT_EQ(run([&] { return runsTrigger(store_, clock_, o, out_, err_); }), 0);
  // The run id still says when it was triggered; the logical date is the one asked for.
  EXPECT_EQ(out_.str(), "manual__2026-05-28T12:00:00.000000Z\n");
  const RunRecord r = *store_.run({"etl", "manual__2026-05-28T12:00:00.000000Z"});
  EXPECT_EQ(r.logical_date, *parseIsoForTest("2026-01-02T02:04:05Z"));
  EXPECT_EQ(r.trigger, RunTrigger::kManual);

  EXPECT_EQ(run([&] { return runsShow(store_, "manual__2026-05-28T12:00:00.000000Z", std::nullopt, true, out_); }), 0);
  auto j = nlohmann::json::parse(out_.str());
  EXPECT_EQ(j["logical_date"], "2026-01-02T02:04:05Z");
  EXPECT_EQ(j["dag_version"], 2);
  EXPECT_EQ(j["note"], "");

  RunRecord noted = *store_.run({"etl", "manual__2026-05-28T12:00:00.000000Z"});
  noted.note = "cancelled";
  store_.putRun(noted);
  EXPECT_EQ(run([&] { return runsList(store_, byDag("etl"), true, out_); }), 0);
  j = nlohmann::json::parse(out_.str());
  ASSERT_EQ(j.size(), 1u);
  EXPECT_EQ(j[0]["note"], "cancelled");
  EXPECT_EQ(j[0]["dag_version"], 2);
  EXPECT_EQ(j[0]["logical_date"], "2026-01-02T02:04:05Z");
}

TEST_F(Commands, ABadLogicalDateIsExitTwoNamingTheFlag) {
  for (const std::string bad : {"yesterday", "2026-01-01", "2026-01-01T00:00:00", "2026-13-01T00:00:00Z", ""}) {
    try {
      parseLogicalDate(bad);
      ADD_FAILURE() << "accepted --logical-date " << bad;
    } catch (const CommandError& e) {
      EXPECT_EQ(e.exitCode(), 2);
      EXPECT_THAT(e.what(), HasSubstr("--logical-date: expected an ISO-8601 time with a zone")) << bad;
      EXPECT_THAT(e.what(), HasSubstr("\"" + bad + "\""));
    }
  }
}

TEST_F(Commands, ManualRunIdsMayNotTakeTheSchedulersOrBackfillsPrefix) {
  ASSERT_EQ(run([&] { return dagsSync(store_, {dagFile("etl")}, out_, err_); }), 0);
  TriggerOptions o;
  o.dag_id = "etl";
  for (const std::string id : {"scheduled__2026-01-01T00:00:00+00:00", "backfill__2026-01-01T00:00:00+00:00"}) {
    o.run_id = id;
    EXPECT_EQ(run([&] { return runsTrigger(store_, clock_, o, out_, err_); }), 2) << id;
    EXPECT_THAT(err_.str(), HasSubstr("bad run id \"" + id + "\": the prefix " + id.substr(0, id.find("__") + 2) +
                                      " is reserved"));
    EXPECT_FALSE(store_.run({"etl", id}).has_value());
  }
  // Only as a prefix.
  o.run_id = "my-scheduled__run";
  EXPECT_EQ(run([&] { return runsTrigger(store_, clock_, o, out_, err_); }), 0) << err_.str();
  EXPECT_NO_THROW(checkManualRunId("manual__x"));
  EXPECT_THROW(checkManualRunId("backfill__"), CommandError);
}

TEST_F(Commands, ConfFromAFile) {
  ASSERT_EQ(run([&] { return dagsSync(store_, {dagFile("etl")}, out_, err_); }), 0);
  TriggerOptions o;
  o.dag_id = "etl";
  o.run_id = "from-file";
  o.conf_json = "@" + write("conf.json", "{\n  \"day\": \"monday\",\n  \"n\": 3\n}\n");
  EXPECT_EQ(run([&] { return runsTrigger(store_, clock_, o, out_, err_); }), 0) << err_.str();
  EXPECT_EQ(nlohmann::json::parse(store_.run({"etl", "from-file"})->conf_json),
            nlohmann::json::parse(R"({"day":"monday","n":3})"));

  o.run_id = "bad";
  const std::string missing = (dir_ / "missing.json").string();
  o.conf_json = "@" + missing;
  EXPECT_EQ(run([&] { return runsTrigger(store_, clock_, o, out_, err_); }), 2);
  EXPECT_THAT(err_.str(), HasSubstr("--conf @" + missing + ": cannot read " + missing + ": No such file"));

  const std::string malformed = write("malformed.json", "{\"day\": ");
  o.conf_json = "@" + malformed;
  EXPECT_EQ(run([&] { return runsTrigger(store_, clock_, o, out_, err_); }), 2);
  EXPECT_THAT(err_.str(), HasSubstr("--conf @" + malformed + ": malformed JSON"));

  const std::string array = write("array.json", "[1, 2]");
  o.conf_json = "@" + array;
  EXPECT_EQ(run([&] { return runsTrigger(store_, clock_, o, out_, err_); }), 2);
  EXPECT_THAT(err_.str(), HasSubstr("--conf @" + array + " must be a JSON object, got [1,2]"));

  o.conf_json = "@";
  EXPECT_EQ(run([&] { return runsTrigger(store_, clock_, o, out_, err_); }), 2);
  EXPECT_THAT(err_.str(), HasSubstr("no file named after the @"));

  o.conf_json = "{nope";
  EXPECT_EQ(run([&] { return runsTrigger(store_, clock_, o, out_, err_); }), 2);
  EXPECT_THAT(err_.str(), HasSubstr("--conf: malformed JSON"));
  EXPECT_FALSE(store_.run({"etl", "bad"}).has_value());
}

TEST_F(Commands, StatusShowsTheLeadersRecord) {
  EXPECT_EQ(run([&] { return status(store_, clock_, true, out_); }), 0);
  auto j = nlohmann::json::parse(out_.str());
  EXPECT_TRUE(j["leader"]["holder"].is_null());
  EXPECT_TRUE(j["leader"]["term"].is_null());
  EXPECT_TRUE(j["last_tick"].is_null());
  auto term = store_.claimTerm("host-1-abcd");
  ASSERT_TRUE(term.isOk());
  LivenessRecord r;
  r.holder = "host-1-abcd";
  r.term = *term;
  r.last_tick = clock_.now();
  r.queue_depth = 3;
  ASSERT_TRUE(store_.recordLiveness(*term, r).isOk());
  clock_.advance(2s);
  EXPECT_EQ(run([&] { return status(store_, clock_, true, out_); }), 0);
  j = nlohmann::json::parse(out_.str());
  EXPECT_EQ(j["leader"]["holder"], "host-1-abcd");
  EXPECT_EQ(j["leader"]["term"], *term);
  EXPECT_EQ(j["last_tick"], "2026-05-28T12:00:00Z");
  EXPECT_EQ(j["queue_depth"], 3);
  EXPECT_DOUBLE_EQ(j["last_tick_age_seconds"].get<double>(), 2.0);
  EXPECT_EQ(run([&] { return status(store_, clock_, false, out_); }), 0);
  EXPECT_THAT(out_.str(), HasSubstr("leader:      host-1-abcd (term 1)"));
}

}  // namespace
}  // namespace leoflow::host
