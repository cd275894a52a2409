// dispatcher-local, SDK 3.0: heldAttempts(), stop(), run uids in file names, LEOFLOW_TENANT, the
// log's header and footer, and the LogReader (plugins/dispatcher-local/README.md "Stopping
// attempts", "Logs"). Real processes, reports answered by the in-memory reference store.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <fstream>
#include <iterator>
#include <sstream>

#include <gtest/gtest.h>

#include "dispatcher_test_harness.h"
#include "factory.h"
#include "log_file.h"
#include "names.h"
#include "state_file.h"

namespace leoflow::testing::dispatcher_local {
namespace {

namespace dl = leoflow::plugins::dispatcher_local;
namespace fs = std::filesystem;
using std::chrono::milliseconds;
using std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr milliseconds kWait = 20s;

class StopAndLogsTest : public ::testing::Test {
 protected:
  void TearDown() override {
    for (const Report& r : events_.reports()) {
      if (!r.answer.isOk() && !refusals_expected_) {
        ADD_FAILURE() << "the store refused a report of " << r.attempt.task_id << " (type " << static_cast<int>(r.type)
                      << "): " << r.answer.toString();
      }
    }
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(state(), ec)) {
      if (e.path().extension() != ".json") continue;
      if (auto r = dl::decodeStateRecord(readFile(e.path())); r && r->pid > 1) ::kill(-static_cast<pid_t>(r->pid), SIGKILL);
    }
    for (pid_t pid : extra_pids_) ::kill(-pid, SIGKILL);
    waitUntil([] { return ::waitpid(-1, nullptr, WNOHANG) <= 0; }, 2s);
  }

  fs::path work() const { return dir_.path() / "work"; }
  fs::path logs() const { return dir_.path() / "logs"; }
  fs::path state() const { return dir_.path() / "state"; }

  ConfigView config(std::map<std::string, ConfigValue> overrides = {}) const {
    std::map<std::string, ConfigValue> values = {
        {"max_parallel", std::int64_t{8}},         {"work_dir", work().string()},
        {"log_dir", logs().string()},              {"state_dir", state().string()},
        {"kill_grace_ms", std::int64_t{5000}},     {"warm_shells", std::int64_t{0}},
    };
    for (auto& [k, v] : overrides) values[k] = v;
    return ConfigView("dispatcher.config", values);
  }

  PluginContext& context(RecordingEvents& events) {
    contexts_.push_back(std::make_unique<PluginContext>("dispatcher-local", testLogger(), clock_, events, recorder_,
                                                        200ms, "test-replica"));
    return *contexts_.back();
  }

  std::unique_ptr<Dispatcher> make(RecordingEvents& events, std::map<std::string, ConfigValue> overrides = {}) {
    PluginContext& ctx = context(events);
    return std::make_unique<HandOverDispatcher>(dl::LocalDispatcherFactory().create(config(std::move(overrides)), ctx),
                                                [&events](const AttemptRef& a) { events.seedQueued(a); });
  }
  std::unique_ptr<Dispatcher> make(std::map<std::string, ConfigValue> overrides = {}) {
    return make(events_, std::move(overrides));
  }

  std::unique_ptr<LogReader> reader() {
    return dl::LocalDispatcherFactory().createLogReader(config(), context(events_));
  }

  fs::path logOf(const AttemptRef& a, std::int64_t uid) const { return dl::attemptLogPath(logs(), a, uid); }

  static std::string untilReleased(const fs::path& file) {
    return "until [ -e '" + file.string() + "' ]; do sleep 0.02; done";
  }
  static void release(const fs::path& file) { std::ofstream(file) << "go\n"; }

  static DispatchRequest request(const AttemptRef& a, const std::string& entrypoint, std::int64_t uid = 11) {
    DispatchRequest r = requestOf(a, entrypoint);
    r.run_uid = uid;
    return r;
  }

  TempDir dir_;
  RecordingEvents events_;
  WallClock clock_;
  NullRecorder recorder_;
  std::vector<std::unique_ptr<PluginContext>> contexts_;
  std::vector<pid_t> extra_pids_;
  bool refusals_expected_ = false;
};

// ---------------------------------------------------------------------------------------------------
// stop() and heldAttempts()

class StopTest : public StopAndLogsTest, public ::testing::WithParamInterface<bool> {};

TEST_P(StopTest, StopEndsARunningTasksProcessGroupWithinTwoSeconds) {
  const bool warm = GetParam();
  auto d = make({{"warm_shells", std::int64_t{warm ? 1 : 0}}});
  pid_t shell = 0;
  if (warm) {
    const std::optional<pid_t> ready = readyWarmShell(kWait);
    ASSERT_TRUE(ready) << "no warm shell started";
    shell = *ready;
  }
  const AttemptRef a = attemptOf("stop", "r1", warm ? "warm" : "cold");
  const fs::path pid_file = dir_.path() / "task.pid";
  // The supervisor's pid is the group's id; sleep 60 is its child in the group.
  ASSERT_TRUE(d->dispatch(request(a, "echo $$ > " + pid_file.string() + "; sleep 60")).isOk());
  const auto pgid = waitForPidFile(pid_file, kWait);
  ASSERT_TRUE(pgid.has_value());
  extra_pids_.push_back(*pgid);
  if (warm) {
    EXPECT_EQ(*pgid, shell) << "the task did not run in the warm shell";
  }
  // Running: the sleep started. (A SIGTERM that comes while bash is forking it reaches bash but not
  // the sleep; the second SIGTERM 300 ms later is what ends such a task.)
  ASSERT_TRUE(waitUntil([&] { return groupSize(*pgid) == 2; }, kWait));
  EXPECT_EQ(d->heldAttempts(), std::vector<AttemptRef>{a});

  const auto asked = steady_clock::now();
  const Status stopped = d->stop(a);
  EXPECT_TRUE(stopped.isOk()) << stopped.toString();
  EXPECT_LT(steady_clock::now() - asked, 1s) << "stop() must not wait for the process";
  EXPECT_TRUE(waitUntil([&] { return !groupAlive(*pgid); }, 2s)) << "the task's process group outlived stop()";

  // Nothing crashes on the outcome it reports; here the store still had it running and takes it.
  auto finished = events_.waitFinished(a, kWait);
  ASSERT_TRUE(finished.has_value());
  EXPECT_FALSE(finished->outcome.success);
  EXPECT_EQ(finished->outcome.message, "stopped: the attempt is no longer current");
  EXPECT_TRUE(waitUntil([&] { return d->heldAttempts().empty(); }, kWait));
  EXPECT_EQ(events_.count(ReportType::kFinished, a), 1);
  const std::string log = readFile(logOf(a, 11));
  EXPECT_NE(log.find("stopped: the attempt is no longer current; sending SIGTERM"), std::string::npos) << log;
  EXPECT_NE(log.find("leoflow: outcome failed: stopped: the attempt is no longer current"), std::string::npos) << log;

  if (warm) {
    // The pool is not broken: a fresh shell takes the next task.
    const std::optional<pid_t> next_shell = readyWarmShell(kWait, shell);
    ASSERT_TRUE(next_shell) << "no fresh warm shell";
    const AttemptRef b = attemptOf("stop", "r1", "after");
    ASSERT_TRUE(d->dispatch(request(b, "echo \"pid=$$\"")).isOk());
    auto after = events_.waitFinished(b, kWait);
    ASSERT_TRUE(after.has_value());
    EXPECT_TRUE(after->outcome.success);
    EXPECT_EQ(outputLines(logOf(b, 11)), std::vector<std::string>{"pid=" + std::to_string(*next_shell)});
  }
}

INSTANTIATE_TEST_SUITE_P(ColdAndWarm, StopTest, ::testing::Values(false, true),
                         [](const ::testing::TestParamInfo<bool>& info) { return info.param ? "Warm" : "Cold"; });

TEST_F(StopAndLogsTest, StopSendsSigkillAfterTheKillGraceToATaskThatIgnoresSigterm) {
  auto d = make({{"kill_grace_ms", std::int64_t{600}}});
  const AttemptRef a = attemptOf("stop", "r1", "stubborn");
  const fs::path pid_file = dir_.path() / "task.pid";
  ASSERT_TRUE(d->dispatch(request(a, "trap '' TERM; echo $$ > " + pid_file.string() + "; sleep 60")).isOk());
  const auto pgid = waitForPidFile(pid_file, kWait);
  ASSERT_TRUE(pgid.has_value());
  extra_pids_.push_back(*pgid);
  const auto asked = steady_clock::now();
  ASSERT_TRUE(d->stop(a).isOk());
  std::this_thread::sleep_for(300ms);
  EXPECT_TRUE(groupAlive(*pgid)) << "SIGTERM is ignored: only the SIGKILL after the grace ends it";
  ASSERT_TRUE(waitUntil([&] { return !groupAlive(*pgid); }, 5s));
  EXPECT_GE(steady_clock::now() - asked, 600ms);
  auto finished = events_.waitFinished(a, kWait);
  ASSERT_TRUE(finished.has_value());
  EXPECT_EQ(finished->outcome.message, "stopped: the attempt is no longer current");
  EXPECT_EQ(finished->outcome.exit_code, 137);
  const std::string log = readFile(logOf(a, 11));
  EXPECT_NE(log.find("still running after the kill grace; sending SIGKILL"), std::string::npos) << log;
}

TEST_F(StopAndLogsTest, StopKillsWhatIsLeftOfTheGroupAfterTheSupervisorEnded) {
  auto d = make({{"kill_grace_ms", std::int64_t{500}}});
  const AttemptRef a = attemptOf("stop", "r1", "orphan");
  const fs::path child_file = dir_.path() / "child.pid";
  const fs::path pid_file = dir_.path() / "task.pid";
  // The supervisor ends on SIGTERM; a background child that ignores it stays in the group.
  ASSERT_TRUE(d->dispatch(request(a, "(trap '' TERM; echo $BASHPID > " + child_file.string() + "; exec sleep 60) & " +
                                         "echo $$ > " + pid_file.string() + "; wait"))
                  .isOk());
  const auto pgid = waitForPidFile(pid_file, kWait);
  const auto child = waitForPidFile(child_file, kWait);
  ASSERT_TRUE(pgid.has_value() && child.has_value());
  extra_pids_.push_back(*pgid);
  ASSERT_TRUE(d->stop(a).isOk());
  ASSERT_TRUE(events_.waitFinished(a, kWait).has_value()) << "the supervisor ends on SIGTERM";
  EXPECT_TRUE(processAlive(*child) || !groupAlive(*pgid));
  EXPECT_TRUE(waitUntil([&] { return !groupAlive(*pgid); }, 5s)) << "the group's leftover got no SIGKILL";
}

TEST_F(StopAndLogsTest, StopOfAnAttemptItDoesNotHoldIsOk) {
  auto d = make();
  EXPECT_TRUE(d->stop(attemptOf("nope", "r1", "t")).isOk());
  const AttemptRef a = attemptOf("stop", "r1", "done");
  ASSERT_TRUE(d->dispatch(request(a, "true")).isOk());
  ASSERT_TRUE(events_.waitFinished(a, kWait).has_value());
  EXPECT_TRUE(d->stop(a).isOk()) << "an attempt that ended";
  EXPECT_TRUE(d->heldAttempts().empty());
  EXPECT_EQ(events_.count(ReportType::kFinished, a), 1);
}

TEST_F(StopAndLogsTest, HeldAttemptsAreTheRunningAndAdoptedOnes) {
  auto d = make();
  EXPECT_TRUE(d->heldAttempts().empty());
  const AttemptRef a = attemptOf("held", "r1", "a");
  const AttemptRef b = attemptOf("held", "r1", "b");
  const fs::path go_a = dir_.path() / "go_a";
  const fs::path go_b = dir_.path() / "go_b";
  ASSERT_TRUE(d->dispatch(request(a, untilReleased(go_a))).isOk());
  ASSERT_TRUE(d->dispatch(request(b, untilReleased(go_b))).isOk());
  EXPECT_EQ(d->heldAttempts(), (std::vector<AttemptRef>{a, b}));
  release(go_a);
  ASSERT_TRUE(events_.waitFinished(a, kWait).has_value());
  EXPECT_TRUE(waitUntil([&] { return d->heldAttempts() == std::vector<AttemptRef>{b}; }, kWait));

  // A restarted scheduler holds what it adopted.
  d->shutdown();
  d.reset();
  RecordingEvents restarted(RecordingEvents::SameStoreAs{events_});
  auto d2 = make(restarted);
  EXPECT_EQ(d2->heldAttempts(), std::vector<AttemptRef>{b});
  release(go_b);
  ASSERT_TRUE(restarted.waitFinished(b, kWait).has_value());
  EXPECT_TRUE(waitUntil([&] { return d2->heldAttempts().empty(); }, kWait));
}

// ---------------------------------------------------------------------------------------------------
// Run uids, tenants

TEST_F(StopAndLogsTest, RunsWithOneRunIdButDifferentUidsDoNotCollide) {
  const AttemptRef a = attemptOf("recreated", "manual__1", "t");
  const fs::path go = dir_.path() / "go";
  auto old_run = make();
  ASSERT_TRUE(old_run->dispatch(request(a, "echo old run; " + untilReleased(go), 1)).isOk());
  ASSERT_EQ(old_run->heldAttempts(), std::vector<AttemptRef>{a});

  // The DAG was deleted and made again: a new run with the same id, another uid, its own store
  // record — on a scheduler sharing the folders, while the old run's process still runs.
  RecordingEvents fresh;
  auto new_run = make(fresh);
  auto started = new_run->dispatch(request(a, "echo new run", 2));
  ASSERT_TRUE(started.isOk()) << started.status().toString();
  EXPECT_EQ(*started, DispatchOutcome::kStarted) << "the old run's state file was taken for this one's";
  auto fresh_end = fresh.waitFinished(a, kWait);
  ASSERT_TRUE(fresh_end.has_value());
  EXPECT_TRUE(fresh_end->outcome.success);
  release(go);
  auto old_end = events_.waitFinished(a, kWait);
  ASSERT_TRUE(old_end.has_value());
  EXPECT_TRUE(old_end->outcome.success);

  EXPECT_EQ(outputLines(logOf(a, 1)), std::vector<std::string>{"old run"});
  EXPECT_EQ(outputLines(logOf(a, 2)), std::vector<std::string>{"new run"});
  EXPECT_NE(readFile(logOf(a, 2)).find("leoflow: run uid 2, tenant default"), std::string::npos);
  auto r = reader();
  LogQuery q;
  q.attempt = a;
  q.run_uid = 1;
  auto old_log = r->read(q);
  ASSERT_TRUE(old_log.isOk());
  EXPECT_NE(old_log->text.find("old run"), std::string::npos);
  EXPECT_EQ(old_log->text.find("new run"), std::string::npos);
}

TEST_F(StopAndLogsTest, TaskSeesItsTenant) {
  for (const std::int64_t warm : {0, 1}) {
    auto d = make({{"warm_shells", warm}});
    if (warm != 0) {
      ASSERT_TRUE(waitUntil([] { return ourWarmShells().size() == 1; }, kWait));
    }
    const AttemptRef a = attemptOf("tenant", "r" + std::to_string(warm), "t");
    const AttemptRef b = attemptOf("tenant", "r" + std::to_string(warm), "default");
    DispatchRequest ra = request(a, "echo \"tenant=$LEOFLOW_TENANT\"");
    ra.tenant = "team-a";
    ASSERT_TRUE(d->dispatch(ra).isOk());
    ASSERT_TRUE(events_.waitFinished(a, kWait).has_value());
    ASSERT_TRUE(d->dispatch(request(b, "echo \"tenant=$LEOFLOW_TENANT\"")).isOk());
    ASSERT_TRUE(events_.waitFinished(b, kWait).has_value());
    EXPECT_EQ(outputLines(logOf(a, 11)), std::vector<std::string>{"tenant=team-a"}) << "warm_shells=" << warm;
    EXPECT_EQ(outputLines(logOf(b, 11)), std::vector<std::string>{"tenant=default"}) << "warm_shells=" << warm;
    d->shutdown();
  }
}

// ---------------------------------------------------------------------------------------------------
// The log's header and footer, and the LogReader

TEST_F(StopAndLogsTest, TheLogHasAHeaderAndAFooterAroundTheOutput) {
  auto d = make();
  const AttemptRef a = attemptOf("logs", "manual__1", "hello", 2);
  DispatchRequest r = request(a, "echo hello; echo to stderr >&2; printf 'no newline'; exit 3", 42);
  r.tenant = "team-a";
  ASSERT_TRUE(d->dispatch(r).isOk());
  auto finished = events_.waitFinished(a, kWait);
  ASSERT_TRUE(finished.has_value());
  const std::vector<std::string> lines = readLines(logOf(a, 42));
  ASSERT_GE(lines.size(), 13u) << readFile(logOf(a, 42));
  EXPECT_EQ(lines[0], "leoflow: ==== attempt logs/manual__1/hello try 2");
  EXPECT_EQ(lines[1], "leoflow: run uid 42, tenant team-a");
  EXPECT_EQ(lines[2], "leoflow: host " + dl::hostName());
  EXPECT_EQ(lines[3], "leoflow: execution " + finished->execution_id);
  EXPECT_EQ(lines[4], "leoflow: command bash -c 'echo hello; echo to stderr >&2; printf '\\''no newline'\\''; exit 3'");
  EXPECT_EQ(lines[5].rfind("leoflow: started 20", 0), 0u) << lines[5];
  EXPECT_EQ(lines[6], "leoflow: ====");
  EXPECT_EQ(lines[7], "hello");
  EXPECT_EQ(lines[8], "to stderr");
  EXPECT_EQ(lines[9], "no newline") << "the footer starts on a line of its own";
  EXPECT_EQ(lines[10], "leoflow: ==== end of execution " + finished->execution_id);
  EXPECT_EQ(lines[11], "leoflow: outcome failed: exit code 3");
  EXPECT_EQ(lines[12], "leoflow: exit code 3");
  ASSERT_EQ(lines.size(), 14u);
  EXPECT_EQ(lines[13].rfind("leoflow: ended 20", 0), 0u) << lines[13];
  EXPECT_EQ(outputLines(logOf(a, 42)), (std::vector<std::string>{"hello", "to stderr", "no newline"}));

  const AttemptRef ok = attemptOf("logs", "manual__1", "ok");
  ASSERT_TRUE(d->dispatch(request(ok, "echo line one\necho 'line two'", 42)).isOk());
  ASSERT_TRUE(events_.waitFinished(ok, kWait).has_value());
  const std::string log = readFile(logOf(ok, 42));
  EXPECT_NE(log.find("leoflow: command bash -c $'echo line one\\necho \\'line two\\''\n"), std::string::npos)
      << log;
  EXPECT_NE(log.find("line two\nleoflow: ==== end of execution "), std::string::npos) << log;
  EXPECT_NE(log.find("leoflow: outcome success\nleoflow: exit code 0\nleoflow: ended "), std::string::npos) << log;
}

TEST_F(StopAndLogsTest, TheReaderReadsByOffsetWhileTheTaskRunsAndAfter) {
  auto d = make();
  auto r = reader();
  ASSERT_NE(r, nullptr);
  const AttemptRef a = attemptOf("logs", "r1", "follow");
  const fs::path go = dir_.path() / "go";
  ASSERT_TRUE(d->dispatch(request(a, "echo first part; " + untilReleased(go) + "; echo second part", 5)).isOk());
  ASSERT_TRUE(waitUntil([&] { return readFile(logOf(a, 5)).find("first part\n") != std::string::npos; }, kWait));

  LogQuery q;
  q.attempt = a;
  q.run_uid = 5;
  q.max_bytes = 10;
  auto head = r->read(q);
  ASSERT_TRUE(head.isOk()) << head.status().toString();
  EXPECT_EQ(head->text, "leoflow: =");
  EXPECT_EQ(head->next_offset, 10u);
  EXPECT_FALSE(head->complete);

  std::string all = head->text;
  q.offset = head->next_offset;
  q.max_bytes = 1 << 20;
  auto running = r->read(q);
  ASSERT_TRUE(running.isOk());
  all += running->text;
  EXPECT_NE(all.find("first part\n"), std::string::npos) << all;
  EXPECT_EQ(all.find("second part\n"), std::string::npos);
  EXPECT_FALSE(running->complete) << "the task still runs";
  EXPECT_EQ(running->next_offset, all.size());

  q.offset = running->next_offset;
  auto nothing_new = r->read(q);
  ASSERT_TRUE(nothing_new.isOk());
  EXPECT_EQ(nothing_new->text, "");
  EXPECT_EQ(nothing_new->next_offset, q.offset);
  EXPECT_FALSE(nothing_new->complete);

  release(go);
  ASSERT_TRUE(events_.waitFinished(a, kWait).has_value());
  auto rest = r->read(q);
  ASSERT_TRUE(rest.isOk());
  EXPECT_TRUE(rest->complete) << "the footer is written before the finished report";
  all += rest->text;
  EXPECT_EQ(all, readFile(logOf(a, 5)));
  EXPECT_NE(rest->text.find("second part\nleoflow: ==== end of execution "), std::string::npos) << rest->text;

  // From the start in small pieces: complete only with the last one.
  q.offset = 0;
  q.max_bytes = 64;
  std::string again;
  for (;;) {
    auto piece = r->read(q);
    ASSERT_TRUE(piece.isOk());
    again += piece->text;
    q.offset = piece->next_offset;
    if (piece->complete) break;
    ASSERT_FALSE(piece->text.empty()) << "a finished log's pieces ran out before it was complete";
  }
  EXPECT_EQ(again, all);

  // A log that is not there.
  LogQuery missing;
  missing.attempt = attemptOf("logs", "r1", "never");
  missing.run_uid = 5;
  auto none = r->read(missing);
  ASSERT_FALSE(none.isOk());
  EXPECT_EQ(none.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(none.status().message().rfind("no log for logs/r1/never try 1", 0), 0u) << none.status().message();
  // Another uid of the same run id is another log.
  q.run_uid = 6;
  q.offset = 0;
  EXPECT_EQ(r->read(q).status().code(), StatusCode::kNotFound);
}

TEST_F(StopAndLogsTest, TheReaderSaysWhichHostHasTheLogOfAnotherHostsExecution) {
  auto r = reader();
  ASSERT_NE(r, nullptr);
  EXPECT_TRUE(ourWarmShells().empty()) << "a log reader starts no warm shells";
  LogQuery q;
  q.attempt = attemptOf("logs", "r1", "elsewhere");
  q.run_uid = 3;
  q.execution_id = "local/worker-2/4242/0123456789abcdef";
  auto there = r->read(q);
  ASSERT_FALSE(there.isOk());
  EXPECT_EQ(there.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(there.status().message(), "the log of logs/r1/elsewhere try 1 is on host worker-2");

  q.execution_id = "worker-3/4242/0123456789abcdef";
  EXPECT_EQ(r->read(q).status().message(), "the log of logs/r1/elsewhere try 1 is on host worker-3");

  // This host's execution, or none: simply not there.
  q.execution_id = "local/" + dl::hostName() + "/4242/0123456789abcdef";
  auto here = r->read(q);
  EXPECT_EQ(here.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(here.status().message().rfind("no log for logs/r1/elsewhere try 1", 0), 0u) << here.status().message();
  q.execution_id.clear();
  EXPECT_EQ(r->read(q).status().message().rfind("no log for ", 0), 0u);
  EXPECT_TRUE(fs::is_empty(dir_.path())) << "a log reader makes no folders";
}

}  // namespace
}  // namespace leoflow::testing::dispatcher_local
