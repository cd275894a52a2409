// Chaos: schedulers killed, stopped past their lease, the store's server restarted — every run still
// finishes and no task attempt runs twice (each task appends "run/task/try" to the ledger). Every
// scenario runs on every store (store-redis, store-postgres), each on a server of its own.
#include <signal.h>
#include <unistd.h>

#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>
#include <set>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "support/e2e_stack.h"
#include "support/store_test.h"

namespace leoflow::testing {
namespace {

using ::testing::IsEmpty;
using nlohmann::json;
using namespace std::chrono_literals;

// A chain of `n` tasks, each sleeping `sleep_s` after recording its attempt.
void writeChain(E2eStack& stack, const std::string& dag_id, int n, double sleep_s) {
  json tasks = json::array();
  for (int i = 0; i < n; ++i) {
    json t = {{"task_id", "t" + std::to_string(i)}, {"type", "bash"}, {"entrypoint", stack.ledgerTask(sleep_s)}};
    if (i > 0) t["depends_on"] = {"t" + std::to_string(i - 1)};
    tasks.push_back(t);
  }
  stack.writeDag({{"dag_id", dag_id}, {"tasks", tasks}});
  ASSERT_EQ(stack.leoflow("dags sync " + (stack.dir() / "dags").string()).exit_code, 0);
}

void trigger(E2eStack& stack, const std::string& dag_id, const std::string& run_id) {
  auto r = stack.leoflow("runs trigger " + dag_id + " --run-id " + run_id);
  ASSERT_EQ(r.exit_code, 0) << r.err;
}

void expectEveryAttemptOnce(E2eStack& stack, const std::string& run_id, int n) {
  std::set<std::string> tasks;
  for (const std::string& line : stack.ledgerLines()) {
    if (line.rfind(run_id + "/", 0) == 0) tasks.insert(line.substr(run_id.size() + 1, line.rfind('/') - run_id.size() - 1));
  }
  EXPECT_EQ(tasks.size(), static_cast<std::size_t>(n)) << "every task ran";
  EXPECT_THAT(stack.duplicateAttempts(), IsEmpty()) << "no attempt ran twice";
}

// Waits until the ledger holds at least `lines` lines (the run is mid-way).
bool waitForLedger(E2eStack& stack, std::size_t lines, std::chrono::milliseconds timeout) {
  const auto until = std::chrono::steady_clock::now() + timeout;
  while (stack.ledgerLines().size() < lines) {
    if (std::chrono::steady_clock::now() > until) return false;
    std::this_thread::sleep_for(20ms);
  }
  return true;
}

class Chaos : public StoreTest {};
INSTANTIATE_FOR_EVERY_STORE(Chaos);

std::string leaderOf(E2eStack& stack) {
  auto s = stack.leoflow("status --json");
  auto j = json::parse(s.out, nullptr, false);
  if (j.is_discarded() || j["leader"]["holder"].is_null()) return "";
  return j["leader"]["holder"];
}

TEST_P(Chaos, ASchedulerKilledMidRunAndRestartedFinishesEveryRunOnce) {
  E2eStack stack("kill9", options());
  writeChain(stack, "chain", 8, 0.3);
  auto s1 = stack.startScheduler("s1");
  trigger(stack, "chain", "c1");
  ASSERT_TRUE(waitForLedger(stack, 3, 30s)) << s1->log();
  s1->signal(SIGKILL);
  s1->wait(5s);
  auto s2 = stack.startScheduler("s2");
  auto run = stack.waitForRun("chain", "c1", 90s);
  ASSERT_TRUE(run) << s2->log();
  EXPECT_EQ((*run)["state"], "success");
  expectEveryAttemptOnce(stack, "c1", 8);
}

TEST_P(Chaos, TwoSchedulersOnlyTheLeaseHolderPlans) {
  E2eStack stack("two", options());
  writeChain(stack, "chain", 5, 0.1);
  auto s1 = stack.startScheduler("s1");
  auto s2 = stack.startScheduler("s2");
  ASSERT_TRUE(stack.waitForStatus([](const json& j) { return !j["leader"]["holder"].is_null(); }, 20s));
  for (int i = 0; i < 3; ++i) trigger(stack, "chain", "r" + std::to_string(i));
  for (int i = 0; i < 3; ++i) {
    auto run = stack.waitForRun("chain", "r" + std::to_string(i), 60s);
    ASSERT_TRUE(run) << s1->log() << s2->log();
    EXPECT_EQ((*run)["state"], "success");
    expectEveryAttemptOnce(stack, "r" + std::to_string(i), 5);
  }
  // exactly one of them ever led
  const bool s1_led = s1->log().find("became scheduler leader") != std::string::npos;
  const bool s2_led = s2->log().find("became scheduler leader") != std::string::npos;
  EXPECT_NE(s1_led, s2_led);
}

TEST_P(Chaos, TheLeaderKilledMidRunIsReplacedAndEveryRunFinishesOnce) {
  E2eStack stack("failover", options());
  writeChain(stack, "chain", 8, 0.3);
  auto s1 = stack.startScheduler("s1");
  ASSERT_TRUE(stack.waitForStatus([](const json& j) { return !j["leader"]["holder"].is_null(); }, 20s));
  auto s2 = stack.startScheduler("s2");
  trigger(stack, "chain", "c1");
  ASSERT_TRUE(waitForLedger(stack, 3, 30s));
  const std::string first = leaderOf(stack);
  ChildProcess& leader = s1->log().find("became scheduler leader") != std::string::npos ? *s1 : *s2;
  leader.signal(SIGKILL);
  leader.wait(5s);
  auto run = stack.waitForRun("chain", "c1", 90s);
  ASSERT_TRUE(run) << s1->log() << s2->log();
  EXPECT_EQ((*run)["state"], "success");
  EXPECT_NE(leaderOf(stack), first);
  expectEveryAttemptOnce(stack, "c1", 8);
}

TEST_P(Chaos, ALeaderStoppedPastItsLeaseIsFencedWhenItResumes) {
  E2eStack stack("sigstop", options());
  writeChain(stack, "chain", 8, 0.3);
  auto s1 = stack.startScheduler("s1");
  ASSERT_TRUE(stack.waitForStatus([](const json& j) { return !j["leader"]["holder"].is_null(); }, 20s));
  auto s2 = stack.startScheduler("s2");
  trigger(stack, "chain", "c1");
  ASSERT_TRUE(waitForLedger(stack, 2, 30s));
  ChildProcess& leader = s1->log().find("became scheduler leader") != std::string::npos ? *s1 : *s2;
  ChildProcess& follower = &leader == s1.get() ? *s2 : *s1;
  const std::string first = leaderOf(stack);
  leader.signal(SIGSTOP);
  // the follower takes over once the lease (1.5 s) runs out
  ASSERT_TRUE(stack.waitForStatus(
      [&](const json& j) { return !j["leader"]["holder"].is_null() && j["leader"]["holder"] != first; }, 30s))
      << follower.log();
  leader.signal(SIGCONT);  // the old leader wakes up believing it still leads
  auto run = stack.waitForRun("chain", "c1", 90s);
  ASSERT_TRUE(run) << s1->log() << s2->log();
  EXPECT_EQ((*run)["state"], "success");
  expectEveryAttemptOnce(stack, "c1", 8);
  // it found out — by its lease or by the fence — and stepped down instead of deciding anything
  for (int i = 0; i < 100 && leader.log().find("stepped down as scheduler leader") == std::string::npos; ++i) {
    std::this_thread::sleep_for(50ms);
  }
  EXPECT_THAT(leader.log(), ::testing::HasSubstr("stepped down as scheduler leader")) << leader.log();
  EXPECT_NE(leaderOf(stack), first);  // the follower still leads
}

// ARCHITECTURE §8.13: two schedulers as two machines (state, logs and work folders of their own, so
// no lock on disk can save the day) on one store. The leader is frozen while its single dispatch
// worker still has a queue of hand-overs, the other takes over and hands every queued attempt over
// again, then the old one wakes up. Only the store's claim decides which execution runs the code.
TEST_P(Chaos, TwoHostsNeverStartOneAttemptTwiceAcrossAFrozenHandOver) {
  E2eStack::Options o = options();
  o.lease = 2000ms;
  o.max_parallel = 64;
  o.extra_scheduler_toml = "dispatch_pool_size = 1";
  E2eStack stack("two-hosts", o);
  constexpr int kWidth = 240;
  json tasks = json::array();
  tasks.push_back({{"task_id", "start"}, {"type", "bash"}, {"entrypoint", stack.ledgerTask()}});
  for (int i = 0; i < kWidth; ++i) {
    tasks.push_back({{"task_id", "f" + std::to_string(i)},
                     {"type", "bash"},
                     {"entrypoint", stack.ledgerTask(0.3)},
                     {"depends_on", {"start"}}});
  }
  stack.writeDag({{"dag_id", "fan"}, {"tasks", tasks}});
  ASSERT_EQ(stack.leoflow("dags sync " + (stack.dir() / "dags").string()).exit_code, 0);

  auto a = stack.startSchedulerOnHost("host-a", "a");
  ASSERT_TRUE(stack.waitForStatus([](const json& j) { return !j["leader"]["holder"].is_null(); }, 20s)) << a->log();
  const std::string first = leaderOf(stack);
  auto b = stack.startSchedulerOnHost("host-b", "b");
  trigger(stack, "fan", "w1");
  // Mid-way through the hand-overs: the fan-out has begun, most of it still queued behind the one worker.
  ASSERT_TRUE(waitForLedger(stack, 3, 60s)) << a->log();
  a->signal(SIGSTOP);
  const json frozen = json::parse(stack.leoflow("runs show w1 --dag fan --json").out, nullptr, false);
  ASSERT_FALSE(frozen.is_discarded());
  int queued = 0;
  for (const json& t : frozen["tasks"]) queued += t["state"] == "queued" ? 1 : 0;
  EXPECT_GT(queued, 0) << "frozen in the middle of handing over: " << frozen.dump();
  std::cerr << "frozen with " << queued << " attempts queued\n";
  ASSERT_TRUE(stack.waitForStatus(
      [&](const json& j) { return !j["leader"]["holder"].is_null() && j["leader"]["holder"] != first; }, 30s))
      << b->log();
  // Let the new leader re-dispatch what is queued before the old one wakes with its own queue.
  std::this_thread::sleep_for(500ms);
  a->signal(SIGCONT);

  auto run = stack.waitForRun("fan", "w1", 180s);
  ASSERT_TRUE(run) << a->log() << b->log();
  EXPECT_EQ((*run)["state"], "success") << (*run).dump(1);
  expectEveryAttemptOnce(stack, "w1", kWidth + 1);
  EXPECT_THAT(a->log(), ::testing::HasSubstr("stepped down as scheduler leader")) << a->log();
}

// CPU time (user + system) a process has used so far, from /proc/<pid>/stat.
double cpuSeconds(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // fields after the command name, which is in parentheses and may hold spaces
  std::istringstream rest(text.substr(text.rfind(')') + 2));
  std::vector<std::string> f{std::istream_iterator<std::string>(rest), std::istream_iterator<std::string>()};
  // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name
  return (std::stod(f.at(11)) + std::stod(f.at(12))) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

// An outage of the store — frozen (SIGSTOP: connections hang) or gone (refused connections) — costs
// the scheduler almost no CPU: every loop backs off instead of spinning; the run finishes afterwards.
TEST_P(Chaos, AStoreOutageCostsTheSchedulerLittleCpu) {
  E2eStack stack("outage-cpu", options());
  writeChain(stack, "chain", 6, 0.3);
  auto s1 = stack.startScheduler("s1");
  ASSERT_TRUE(stack.waitForStatus([](const json& j) { return !j["leader"]["holder"].is_null(); }, 20s));
  trigger(stack, "chain", "c1");
  ASSERT_TRUE(waitForLedger(stack, 2, 30s)) << s1->log();

  const double before_freeze = cpuSeconds(s1->pid());
  stack.server().freeze();
  std::this_thread::sleep_for(10s);
  const double frozen_cpu = cpuSeconds(s1->pid()) - before_freeze;
  stack.server().thaw();

  const double before_stop = cpuSeconds(s1->pid());
  stack.server().stop();
  std::this_thread::sleep_for(10s);
  const double refused_cpu = cpuSeconds(s1->pid()) - before_stop;
  stack.server().start();

  std::cerr << "scheduler CPU through 10 s of outage: frozen " << frozen_cpu << " s, refused " << refused_cpu
            << " s\n";
  EXPECT_LT(frozen_cpu, 0.5) << "5 % of a core at most, frozen store";
  EXPECT_LT(refused_cpu, 0.5) << "5 % of a core at most, refused connections";
  auto run = stack.waitForRun("chain", "c1", 120s);
  ASSERT_TRUE(run) << s1->log();
  EXPECT_EQ((*run)["state"], "success") << run->dump(1);
  expectEveryAttemptOnce(stack, "c1", 6);
}

// ARCHITECTURE §8.11: SIGTERM ends the scheduler within 10 s, even when every store call hangs.
TEST_P(Chaos, SigtermEndsTheSchedulerWithinTenSecondsWhileTheStoreIsFrozen) {
  E2eStack stack("sigterm-frozen", options());
  writeChain(stack, "chain", 6, 0.3);
  auto s1 = stack.startScheduler("s1");
  ASSERT_TRUE(stack.waitForStatus([](const json& j) { return !j["leader"]["holder"].is_null(); }, 20s));
  trigger(stack, "chain", "c1");
  ASSERT_TRUE(waitForLedger(stack, 2, 30s)) << s1->log();
  stack.server().freeze();
  std::this_thread::sleep_for(500ms);  // calls in flight now hang
  const auto t0 = std::chrono::steady_clock::now();
  s1->signal(SIGTERM);
  auto code = s1->wait(12s);
  const auto took = std::chrono::steady_clock::now() - t0;
  stack.server().thaw();
  ASSERT_TRUE(code) << "still running 12 s after SIGTERM:\n" << s1->log();
  EXPECT_LT(took, 10s) << s1->log();
}

// Redis: SHUTDOWN, one second down, started again; PostgreSQL: `pg_ctl restart -m fast`.
TEST_P(Chaos, AStoreServerRestartMidRunLosesNothing) {
  E2eStack stack("server-restart", options());
  writeChain(stack, "chain", 8, 0.3);
  auto s1 = stack.startScheduler("s1");
  trigger(stack, "chain", "c1");
  ASSERT_TRUE(waitForLedger(stack, 3, 30s)) << s1->log();
  stack.server().restart();
  auto run = stack.waitForRun("chain", "c1", 90s);
  ASSERT_TRUE(run) << s1->log();
  EXPECT_EQ((*run)["state"], "success");
  expectEveryAttemptOnce(stack, "c1", 8);
  EXPECT_TRUE(s1->running());  // the scheduler rode it out by itself
}

TEST_P(Chaos, ShutdownIsGracefulAndQuick) {
  E2eStack stack("sigterm", options());
  writeChain(stack, "chain", 3, 0.1);
  auto s1 = stack.startScheduler("s1");
  ASSERT_TRUE(stack.waitForStatus([](const json& j) { return !j["leader"]["holder"].is_null(); }, 20s));
  const auto t0 = std::chrono::steady_clock::now();
  s1->signal(SIGTERM);
  auto code = s1->wait(10s);
  ASSERT_TRUE(code) << "did not exit within 10 s";
  EXPECT_EQ(*code, 0) << s1->log();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 10s);
  // the lease was released: a new scheduler leads at once
  auto s2 = stack.startScheduler("s2");
  EXPECT_TRUE(stack.waitForStatus(
      [](const json& j) { return j["leader"]["holder"].is_string() && j["last_tick_age_seconds"].is_number() &&
                                 j["last_tick_age_seconds"].get<double>() < 1.0; },
      5s));
}

}  // namespace
}  // namespace leoflow::testing
