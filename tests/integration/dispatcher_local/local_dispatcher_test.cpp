// dispatcher-local with real processes: what a task sees, what the store is told, and how attempts
// survive restarts, timeouts, refusals and double dispatch (plugins/dispatcher-local/README.md).
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <barrier>
#include <fstream>
#include <iterator>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>

#include "dispatcher_test_harness.h"
#include "factory.h"
#include "names.h"
#include "process.h"
#include "state_file.h"

namespace leoflow::testing::dispatcher_local {
namespace {

namespace dl = leoflow::plugins::dispatcher_local;
namespace fs = std::filesystem;
using std::chrono::milliseconds;
using std::chrono::seconds;
using std::chrono::steady_clock;
using namespace std::chrono_literals;

// Process start-up is slow on shared CI machines (tens of milliseconds); waits are generous and
// only the behaviour is asserted, never a speed.
constexpr milliseconds kWait = 20s;

class LocalDispatcherTest : public ::testing::Test {
 protected:
  void TearDown() override {
    // The store refuses what breaks its contract (a beat before the claim, a report for another
    // execution, an attempt it was never handed): unless the test arranged a refusal, none is fine.
    for (const Report& r : events_.reports()) {
      if (!r.answer.isOk() && !refusals_expected_) {
        ADD_FAILURE() << "the store refused a report of " << r.attempt.task_id << " (type " << static_cast<int>(r.type)
                      << "): " << r.answer.toString();
      }
    }
    killLeftovers();
    // Supervisors of dispatchers destroyed without stopping their tasks are our children.
    waitUntil([] { return ::waitpid(-1, nullptr, WNOHANG) <= 0; }, 2s);
  }

  fs::path work() const { return dir_.path() / "work"; }
  fs::path logs() const { return dir_.path() / "logs"; }
  fs::path state() const { return dir_.path() / "state"; }

  ConfigView config(std::map<std::string, ConfigValue> overrides = {}) const {
    std::map<std::string, ConfigValue> values = {
        {"max_parallel", std::int64_t{8}},
        {"work_dir", work().string()},
        {"log_dir", logs().string()},
        {"state_dir", state().string()},
        {"python", std::string("python3")},
        {"kill_grace_ms", std::int64_t{1000}},
        {"stop_tasks_on_shutdown", false},
    };
    for (auto& [k, v] : overrides) values[k] = v;
    return ConfigView("dispatcher.config", values);
  }

  std::unique_ptr<Dispatcher> make(RecordingEvents& events, std::map<std::string, ConfigValue> overrides = {},
                                   milliseconds heartbeat = 200ms) {
    contexts_.push_back(std::make_unique<PluginContext>("dispatcher-local", testLogger(), clock_, events, recorder_,
                                                        heartbeat, "test-replica"));
    return std::make_unique<SeedingDispatcher>(
        dl::LocalDispatcherFactory().create(config(std::move(overrides)), *contexts_.back()),
        [&events](const AttemptRef& a) { events.seedQueued(a); });
  }

  std::unique_ptr<Dispatcher> make(std::map<std::string, ConfigValue> overrides = {}, milliseconds heartbeat = 200ms) {
    return make(events_, std::move(overrides), heartbeat);
  }

  // Runs one task to its end and returns the accepted finished report.
  Report runToEnd(Dispatcher& d, const DispatchRequest& request) {
    auto outcome = d.dispatch(request);
    EXPECT_TRUE(outcome.isOk()) << outcome.status().toString();
    if (outcome) {
      EXPECT_EQ(*outcome, DispatchOutcome::kStarted);
    }
    auto finished = events_.waitFinished(request.attempt, kWait);
    EXPECT_TRUE(finished.has_value()) << "no finished report for " << request.attempt.task_id;
    return finished.value_or(Report{});
  }

  fs::path logOf(const AttemptRef& a, std::int64_t run_uid = 0) const { return dl::attemptLogPath(logs(), a, run_uid); }

  // A task that runs until the test says so: bash that waits for `file` to appear. Tests that need a
  // task still running at some point hold it with this instead of betting on a sleep's length.
  static std::string untilReleased(const fs::path& file) {
    return "until [ -e '" + file.string() + "' ]; do sleep 0.02; done";
  }
  static void release(const fs::path& file) { std::ofstream(file) << "go\n"; }

  // Attempt files in the state dir; a warm shell's launch file (.warm-<pid>.sh) lives as long as
  // its attempt and is counted apart. The pool of spare files (.spare/) is not an attempt's.
  std::size_t stateFiles() const { return countStateDir(false); }
  std::size_t launchFiles() const { return countStateDir(true); }
  std::size_t countStateDir(bool launch) const {
    std::size_t n = 0;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(state(), ec)) {
      const std::string name = e.path().filename().string();
      if (name == ".spare") continue;
      n += (name.rfind(".warm-", 0) == 0) == launch;
    }
    return n;
  }

  void killLeftovers() {
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(state(), ec)) {
      if (e.path().extension() != ".json") continue;
      if (auto r = dl::decodeStateRecord(readFile(e.path())); r && r->pid > 1) {
        ::kill(-static_cast<pid_t>(r->pid), SIGKILL);
      }
    }
    for (pid_t pid : extra_pids_) ::kill(pid, SIGKILL);
  }

  TempDir dir_;
  RecordingEvents events_;
  WallClock clock_;
  NullRecorder recorder_;
  std::vector<std::unique_ptr<PluginContext>> contexts_;
  std::vector<pid_t> extra_pids_;
  bool refusals_expected_ = false;  ///< set by tests that arrange a refused report
};

// ---------------------------------------------------------------------------------------------------
// Task types, exit codes, logs, environment

TEST_F(LocalDispatcherTest, RunsBashAndPythonOnly) {
  auto d = make();
  EXPECT_EQ(d->taskTypes(), (std::vector<std::string>{"bash", "python"}));
  auto http = d->dispatch(requestOf(attemptOf("d", "r", "call"), "https://example.com", "http_api"));
  ASSERT_FALSE(http.isOk());
  EXPECT_EQ(http.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(http.status().message().find("http_api"), std::string::npos) << http.status().message();
  auto empty = d->dispatch(requestOf(attemptOf("d", "r", "nothing"), ""));
  ASSERT_FALSE(empty.isOk());
  EXPECT_EQ(empty.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(d->freeCapacity(), 8u);
}

TEST_F(LocalDispatcherTest, BashSuccessReportsRunningThenFinishedAndLogsBothStreams) {
  auto d = make();
  const AttemptRef a = attemptOf("etl", "manual__1", "hello");
  const Report finished = runToEnd(*d, requestOf(a, "echo hello from stdout; echo hello from stderr >&2"));
  EXPECT_TRUE(finished.outcome.success);
  EXPECT_EQ(finished.outcome.exit_code, 0);
  EXPECT_EQ(finished.outcome.message, "");

  const auto reports = events_.reportsFor(a);
  ASSERT_GE(reports.size(), 2u);
  EXPECT_EQ(reports.front().type, ReportType::kRunning);
  EXPECT_EQ(reports.back().type, ReportType::kFinished);
  EXPECT_EQ(events_.count(ReportType::kRunning, a), 1);
  EXPECT_EQ(events_.count(ReportType::kFinished, a), 1);

  const fs::path log = logs() / "etl" / "manual__1" / "0" / "hello" / "1.log";
  ASSERT_TRUE(fs::exists(log));
  const std::string text = readFile(log);
  EXPECT_NE(text.find("hello from stdout"), std::string::npos) << text;
  EXPECT_NE(text.find("hello from stderr"), std::string::npos) << text;
  // Reported and cleaned up: nothing left in the state dir.
  EXPECT_TRUE(waitUntil([&] { return stateFiles() == 0; }, 5s)) << stateFiles() << " state files left";
  EXPECT_EQ(d->freeCapacity(), 8u);
}

TEST_F(LocalDispatcherTest, BashFailureReportsItsExitCode) {
  auto d = make();
  const AttemptRef a = attemptOf("etl", "r1", "fails");
  const Report finished = runToEnd(*d, requestOf(a, "echo about to fail; exit 3"));
  EXPECT_FALSE(finished.outcome.success);
  EXPECT_EQ(finished.outcome.exit_code, 3);
  EXPECT_EQ(finished.outcome.message, "exit code 3");
}

TEST_F(LocalDispatcherTest, BashKilledBySignalIsNamed) {
  auto d = make();
  const AttemptRef a = attemptOf("etl", "r1", "killed");
  const Report finished = runToEnd(*d, requestOf(a, "kill -9 $$"));
  EXPECT_FALSE(finished.outcome.success);
  EXPECT_EQ(finished.outcome.exit_code, 137);
  EXPECT_NE(finished.outcome.message.find("killed by signal 9"), std::string::npos) << finished.outcome.message;
}

// A bash entrypoint runs in the supervisor shell itself: a SIGTERM must still end it as a failure
// with 143, never as the 0 a plain EXIT trap would record.
TEST_F(LocalDispatcherTest, BashTerminatedBySigtermFailsWith143) {
  auto d = make();
  const AttemptRef a = attemptOf("etl", "r1", "terminated");
  const Report finished = runToEnd(*d, requestOf(a, "kill -TERM $$; sleep 5; exit 0"));
  EXPECT_FALSE(finished.outcome.success);
  EXPECT_EQ(finished.outcome.exit_code, 143);
}

TEST_F(LocalDispatcherTest, BashThatExecsAnotherProgramReportsThatProgramsExitCode) {
  auto d = make();
  const AttemptRef a = attemptOf("etl", "r1", "execs");
  const Report finished = runToEnd(*d, requestOf(a, "exec sh -c 'exit 4'"));
  EXPECT_FALSE(finished.outcome.success);
  EXPECT_EQ(finished.outcome.exit_code, 4);
}

// As under `bash -c`: no positional parameters, none of the supervisor's helper variables, and
// the script's own EXIT trap and `set -e` behave as written.
TEST_F(LocalDispatcherTest, BashEntrypointSeesAPlainShell) {
  auto d = make();
  const AttemptRef plain = attemptOf("etl", "r1", "plain");
  const Report ok = runToEnd(
      *d, requestOf(plain, "test $# -eq 0 || exit 10; test -z \"${__leoflow_entry+x}${__leoflow_exit+x}\" || exit 11; "
                           "set -e; false; exit 12"));
  EXPECT_EQ(ok.outcome.exit_code, 1) << ok.outcome.message;
  const AttemptRef trapped = attemptOf("etl", "r1", "own_trap");
  const Report own = runToEnd(*d, requestOf(trapped, "trap 'echo own exit trap ran' EXIT; exit 6"));
  EXPECT_EQ(own.outcome.exit_code, 6);
  EXPECT_NE(readFile(logs() / "etl" / "r1" / "0" / "own_trap" / "1.log").find("own exit trap ran"), std::string::npos);
}

TEST_F(LocalDispatcherTest, PythonModuleFunctionIsImportedFromWorkDirAndCalled) {
  auto d = make();
  {
    std::ofstream module(work() / "leoflow_sample_tasks.py");
    module << "def answer():\n"
              "    print('computing the answer')\n"
              "    return 42\n"
              "\n"
              "def boom():\n"
              "    raise ValueError('bad input')\n";
  }
  const AttemptRef ok = attemptOf("py", "r1", "answer");
  const Report good = runToEnd(*d, requestOf(ok, "leoflow_sample_tasks:answer", "python"));
  EXPECT_TRUE(good.outcome.success) << good.outcome.message << "\n" << readFile(logOf(ok));
  const std::string log = readFile(logOf(ok));
  EXPECT_NE(log.find("computing the answer"), std::string::npos) << log;
  EXPECT_NE(log.find("42"), std::string::npos) << log;

  const AttemptRef bad = attemptOf("py", "r1", "boom");
  const Report failed = runToEnd(*d, requestOf(bad, "leoflow_sample_tasks:boom", "python"));
  EXPECT_FALSE(failed.outcome.success);
  EXPECT_EQ(failed.outcome.exit_code, 1);
  const std::string trace = readFile(logOf(bad));
  EXPECT_NE(trace.find("ValueError: bad input"), std::string::npos) << trace;
}

TEST_F(LocalDispatcherTest, PythonScriptPathRunsRelativeToWorkDir) {
  auto d = make();
  fs::create_directories(work() / "scripts");
  {
    std::ofstream script(work() / "scripts" / "exit4.py");
    script << "import os, sys\nprint('script ran in', os.getcwd())\nsys.exit(4)\n";
  }
  const AttemptRef a = attemptOf("py", "r1", "script");
  const Report finished = runToEnd(*d, requestOf(a, "scripts/exit4.py", "python"));
  EXPECT_FALSE(finished.outcome.success);
  EXPECT_EQ(finished.outcome.exit_code, 4);
  EXPECT_EQ(finished.outcome.message, "exit code 4");
  EXPECT_NE(readFile(logOf(a)).find("script ran in " + work().string()), std::string::npos) << readFile(logOf(a));
}

TEST_F(LocalDispatcherTest, TaskSeesLeoflowVariablesItsEnvAndTheParentEnvironment) {
  auto d = make();
  const AttemptRef a = attemptOf("env_dag", "manual__2026-01-02T03:04:05.000001Z", "show", 2);
  DispatchRequest r = requestOf(a, "env | sort; echo \"cwd=$(pwd)\"");
  r.task.env = {{"FOO", "bar baz"}, {"LEOFLOW_DAG_ID", "not-allowed"}};
  r.conf_json = R"({"k":1})";
  const Report finished = runToEnd(*d, r);
  ASSERT_TRUE(finished.outcome.success);
  const std::vector<std::string> lines = readLines(logOf(a));
  auto has = [&](const std::string& line) { return std::find(lines.begin(), lines.end(), line) != lines.end(); };
  EXPECT_TRUE(has("LEOFLOW_DAG_ID=env_dag"));
  EXPECT_TRUE(has("LEOFLOW_RUN_ID=manual__2026-01-02T03:04:05.000001Z"));
  EXPECT_TRUE(has("LEOFLOW_TASK_ID=show"));
  EXPECT_TRUE(has("LEOFLOW_TRY_NUMBER=2"));
  EXPECT_TRUE(has("LEOFLOW_LOGICAL_DATE=2026-01-02T03:04:05Z"));
  EXPECT_TRUE(has(R"(LEOFLOW_CONF={"k":1})"));
  EXPECT_TRUE(has("FOO=bar baz"));
  EXPECT_TRUE(has("cwd=" + work().string()));
  EXPECT_TRUE(std::any_of(lines.begin(), lines.end(), [](const std::string& l) { return l.rfind("PATH=/", 0) == 0; }))
      << "the parent's PATH is passed on";
}

// A bash task handed to a warm shell (started before the dispatch) runs exactly as a cold start
// would: same environment, working directory, log and exit code.
TEST_F(LocalDispatcherTest, AWarmShellRunsTheTaskAsAColdStartWould) {
  // bash reads ~/.bashrc at start-up when its stdin is a socket (a warm shell's is) and SHLVL is
  // below 2, as if rshd ran it: the case of a scheduler started by systemd. Neither start may. The
  // dispatchers take the environment as it is when they are made.
  const fs::path home = dir_.path() / "home";
  fs::create_directories(home);
  std::ofstream(home / ".bashrc") << "export LEOFLOW_TEST_BASHRC_RAN=1\n";
  const std::string saved_home = std::getenv("HOME") != nullptr ? std::getenv("HOME") : "";
  const char* shlvl = std::getenv("SHLVL");
  const std::optional<std::string> saved_shlvl = shlvl != nullptr ? std::optional<std::string>(shlvl) : std::nullopt;
  ::setenv("HOME", home.c_str(), 1);
  ::unsetenv("SHLVL");
  auto cold = make({{"warm_shells", std::int64_t{0}}});
  auto warm = make({{"warm_shells", std::int64_t{1}}});
  ::setenv("HOME", saved_home.c_str(), 1);
  if (saved_shlvl) ::setenv("SHLVL", saved_shlvl->c_str(), 1);
  const std::optional<pid_t> ready = readyWarmShell(kWait);
  ASSERT_TRUE(ready) << "no warm shell started";
  const pid_t shell = *ready;

  auto request = [](const AttemptRef& a) {
    // Everything a task could tell apart, except bash's own bookkeeping ($_, $SHLVL is the same).
    DispatchRequest r = requestOf(a, "echo \"pid=$$\"; echo \"cwd=$(pwd)\"; echo \"args=$#:$0\"; "
                                     "env | grep -v -e '^_=' -e '^LEOFLOW_TASK_ID=' | sort; echo 'it'\\''s'; exit 5");
    r.task.env = {{"FOO", "bar baz"}, {"MULTI", "line one\nline two"}, {"QUOTES", "it's \"quoted\" $HOME `x` \\'"}};
    r.conf_json = R"({"k":1})";
    return r;
  };
  const AttemptRef a_cold = attemptOf("env_dag", "r1", "cold");
  const AttemptRef a_warm = attemptOf("env_dag", "r1", "warm");
  const Report c = runToEnd(*cold, request(a_cold));
  const Report w = runToEnd(*warm, request(a_warm));
  EXPECT_EQ(c.outcome.exit_code, 5);
  EXPECT_EQ(w.outcome.exit_code, 5);

  std::vector<std::string> cold_lines = outputLines(logOf(a_cold));
  std::vector<std::string> warm_lines = outputLines(logOf(a_warm));
  ASSERT_FALSE(warm_lines.empty());
  EXPECT_EQ(warm_lines.front(), "pid=" + std::to_string(shell)) << "the task did not run in the warm shell";
  EXPECT_NE(cold_lines.front(), "pid=" + std::to_string(shell));
  cold_lines.erase(cold_lines.begin());
  warm_lines.erase(warm_lines.begin());
  EXPECT_EQ(warm_lines, cold_lines);
  EXPECT_NE(std::find(warm_lines.begin(), warm_lines.end(), "FOO=bar baz"), warm_lines.end());
  EXPECT_NE(std::find(warm_lines.begin(), warm_lines.end(), "QUOTES=it's \"quoted\" $HOME `x` \\'"), warm_lines.end());
  EXPECT_EQ(warm_lines.back(), "it's");
  EXPECT_EQ(std::find(warm_lines.begin(), warm_lines.end(), "LEOFLOW_TEST_BASHRC_RAN=1"), warm_lines.end())
      << "the warm shell read ~/.bashrc";
  EXPECT_NE(std::find(warm_lines.begin(), warm_lines.end(), "args=0:leoflow-supervisor"), warm_lines.end());
  EXPECT_TRUE(waitUntil([&] { return stateFiles() == 0 && launchFiles() == 0; }, kWait))
      << "the launch file goes with its attempt";
  // The pool starts a replacement for the shell it gave away.
  EXPECT_TRUE(waitUntil([&] {
    const auto shells = ourWarmShells();
    return shells.size() == 1 && shells.front() != shell;
  }, kWait));
}

// The `bash` setting names the program that runs bash tasks, cold and warm alike: a path as it is,
// a name looked up on PATH (here the scheduler's, which the task inherits). bash sets $BASH to the
// program it was started as, so the task can tell.
TEST_F(LocalDispatcherTest, TheConfiguredBashRunsBashTasksColdAndWarm) {
  const std::string real = dl::findOnPath("bash", {});
  ASSERT_FALSE(real.empty()) << "no bash on the default PATH";
  const fs::path bin = dir_.path() / "bin";
  fs::create_directories(bin);
  fs::create_symlink(real, bin / "my-bash");
  const char* saved = std::getenv("PATH");
  const std::string saved_path = saved != nullptr ? saved : "";
  for (const std::string& setting : {(bin / "my-bash").string(), std::string("my-bash")}) {
    for (const std::int64_t warm : {std::int64_t{0}, std::int64_t{1}}) {
      SCOPED_TRACE("bash=" + setting + " warm_shells=" + std::to_string(warm));
      ::setenv("PATH", (bin.string() + ":" + saved_path).c_str(), 1);  // taken when the dispatcher is made
      auto d = make({{"bash", setting}, {"warm_shells", warm}});
      ::setenv("PATH", saved_path.c_str(), 1);
      std::optional<pid_t> shell;
      if (warm > 0) {
        shell = readyWarmShell(kWait);
        ASSERT_TRUE(shell) << "no warm shell started";
      }
      const AttemptRef a = attemptOf("which_bash", "r1", "t" + std::to_string(warm) + std::to_string(setting.size()));
      const Report r = runToEnd(*d, requestOf(a, "echo \"bash=$BASH pid=$$\""));
      EXPECT_TRUE(r.outcome.success) << r.outcome.message;
      const std::vector<std::string> lines = outputLines(logOf(a));
      ASSERT_EQ(lines.size(), 1u);
      EXPECT_EQ(lines.front().substr(0, lines.front().find(' ')), "bash=" + (bin / "my-bash").string());
      if (shell) {
        EXPECT_EQ(lines.front().substr(lines.front().find(' ') + 1), "pid=" + std::to_string(*shell))
            << "the task did not run in the warm shell";
      }
      d->shutdown();
    }
  }
}

// bash-static (README "Choosing the bash") is the same bash linked statically: a task cannot tell it
// from bash, cold or warm — environment, arguments, quoting, locale, traps, exit codes, and the
// code of a task that exec()s its program (which only waitid sees).
TEST_F(LocalDispatcherTest, BashStaticRunsATaskAsBashDoes) {
  ASSERT_FALSE(dl::findOnPath("bash-static", {}).empty())
      << "bash-static is not installed (./dev test installs it; apt-get install bash-static)";
  const std::string script =
      "echo \"pid=$$\"; echo \"cwd=$(pwd) args=$#:$0\"; env | grep -v -e '^_=' -e '^LEOFLOW_TASK_ID=' | sort; "
      "x='ä €'; echo \"chars=${#x}\"; printf '%q\\n' \"$QUOTES\"; trap 'echo trapped' USR1; kill -USR1 $$; "
      "shopt | md5sum; set -o | md5sum; exit 5";
  std::map<std::string, std::vector<std::string>> seen;
  for (const std::string bash : {"bash", "bash-static"}) {
    for (const std::int64_t warm : {std::int64_t{0}, std::int64_t{1}}) {
      const std::string label = bash + " warm_shells=" + std::to_string(warm);
      SCOPED_TRACE(label);
      auto d = make({{"bash", bash}, {"warm_shells", warm}});
      if (warm > 0) {
        ASSERT_TRUE(waitUntil([] { return ourWarmShells().size() == 1; }, kWait));
      }
      const AttemptRef a = attemptOf("static_bash", "r1", (bash == "bash" ? "b" : "s") + std::to_string(warm));
      DispatchRequest r = requestOf(a, script);
      r.task.env = {{"QUOTES", "it's \"quoted\" $HOME `x` \\'"}, {"LANG", "C.UTF-8"}};
      EXPECT_EQ(runToEnd(*d, r).outcome.exit_code, 5);
      std::vector<std::string> lines = outputLines(logOf(a));
      ASSERT_FALSE(lines.empty());
      lines.erase(lines.begin());  // the pid
      seen[label] = lines;
      const AttemptRef e = attemptOf("static_bash", "r1", "exec" + a.task_id);
      EXPECT_EQ(runToEnd(*d, requestOf(e, "exec sh -c 'exit 7'")).outcome.exit_code, 7);
      d->shutdown();
    }
  }
  const std::vector<std::string>& reference = seen.at("bash warm_shells=0");
  EXPECT_NE(std::find(reference.begin(), reference.end(), "chars=3"), reference.end());
  EXPECT_NE(std::find(reference.begin(), reference.end(), "trapped"), reference.end());
  for (const auto& [label, lines] : seen) EXPECT_EQ(lines, reference) << label;
}

// A `bash` that is not there fails each bash task once, with a reason that names it, as a missing
// bash always did; a warm pool that cannot start one leaves tasks to start cold, never stuck.
TEST_F(LocalDispatcherTest, AConfiguredBashThatIsNotThereFailsEachTaskWithItsName) {
  for (const std::int64_t warm : {std::int64_t{0}, std::int64_t{2}}) {
    SCOPED_TRACE("warm_shells=" + std::to_string(warm));
    auto d = make({{"bash", std::string("no-such-bash")}, {"warm_shells", warm}});
    const AttemptRef a = attemptOf("nobash", "r1", "configured" + std::to_string(warm));
    ASSERT_EQ(*d->dispatch(requestOf(a, "true")), DispatchOutcome::kStarted);
    auto finished = events_.waitFinished(a, kWait);
    ASSERT_TRUE(finished.has_value());
    EXPECT_FALSE(finished->outcome.success);
    EXPECT_NE(finished->outcome.message.find("no-such-bash not found on the task's PATH"), std::string::npos)
        << finished->outcome.message;
    EXPECT_TRUE(ourWarmShells().empty());
    d->shutdown();
  }
}

TEST_F(LocalDispatcherTest, ShutdownRetiresWarmShellsAndLeavesNoneBehind) {
  auto d = make({{"warm_shells", std::int64_t{3}}});
  ASSERT_TRUE(waitUntil([] { return ourWarmShells().size() == 3; }, kWait));
  d->shutdown();
  EXPECT_TRUE(ourWarmShells().empty());
  EXPECT_EQ(::waitpid(-1, nullptr, WNOHANG), -1) << "a warm shell was left unreaped";
}

TEST_F(LocalDispatcherTest, LogPathComponentsAreSanitized) {
  auto d = make();
  const AttemptRef a = attemptOf("dag", "../escape", "a/b");
  const Report finished = runToEnd(*d, requestOf(a, "echo contained"));
  ASSERT_TRUE(finished.outcome.success);
  const fs::path expected = logs() / "dag" / "%2E.%2Fescape" / "0" / "a%2Fb" / "1.log";
  ASSERT_TRUE(fs::exists(expected)) << "log not at " << expected;
  EXPECT_NE(readFile(expected).find("contained"), std::string::npos);
  EXPECT_FALSE(fs::exists(dir_.path() / "escape"));
}

// ---------------------------------------------------------------------------------------------------
// Commands that cannot be started

// A command execve cannot take (E2BIG: here an entrypoint far over the 128 KiB one argument may
// hold, or a variable as large) would fail identically however often it were tried. dispatch()
// refuses it before the claim with kInvalidArgument, which the host turns into one failure for good
// with the reason as the note: nothing is claimed, run or reported, and a ready warm shell (which
// could have read it from a file) makes no difference.
TEST_F(LocalDispatcherTest, ACommandTooLargeToStartIsRefusedBeforeTheClaimWithTheReason) {
  for (const std::int64_t warm : {std::int64_t{0}, std::int64_t{2}}) {
    SCOPED_TRACE("warm_shells=" + std::to_string(warm));
    auto d = make({{"warm_shells", warm}});
    if (warm > 0) {
      ASSERT_TRUE(waitUntil([&] { return ourWarmShells().size() == static_cast<std::size_t>(warm); }, kWait));
    }
    const fs::path marker = dir_.path() / ("ran" + std::to_string(warm));
    const AttemptRef big = attemptOf("huge", "r1", "entrypoint" + std::to_string(warm));
    // A few MB of bash: a command, then a comment line.
    const std::string script = "touch " + marker.string() + "\n# " + std::string(3 << 20, 'x') + "\n";
    for (int dispatch = 0; dispatch < 2; ++dispatch) {  // a retried hand-over is refused the same way
      auto r = d->dispatch(requestOf(big, script));
      ASSERT_FALSE(r.isOk()) << "answered " << static_cast<int>(*r);
      EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << r.status().toString();
      EXPECT_NE(r.status().message().find("cannot start the command: Argument list too long"), std::string::npos)
          << r.status().message();
      EXPECT_NE(r.status().message().find("entrypoint"), std::string::npos) << r.status().message();
    }
    const AttemptRef env = attemptOf("huge", "r1", "environment" + std::to_string(warm));
    DispatchRequest with_env = requestOf(env, "touch " + marker.string());
    with_env.task.env = {{"BIG", std::string(200 << 10, 'y')}};
    auto e = d->dispatch(with_env);
    ASSERT_FALSE(e.isOk()) << "answered " << static_cast<int>(*e);
    EXPECT_EQ(e.status().code(), StatusCode::kInvalidArgument) << e.status().toString();
    EXPECT_NE(e.status().message().find("cannot start the command: Argument list too long"), std::string::npos)
        << e.status().message();
    EXPECT_NE(e.status().message().find("BIG"), std::string::npos) << e.status().message();
    // Each variable fits, all of them do not (the argument space is at most 6 MiB).
    const AttemptRef many = attemptOf("huge", "r1", "many" + std::to_string(warm));
    DispatchRequest with_many = requestOf(many, "touch " + marker.string());
    for (int i = 0; i < 64; ++i) with_many.task.env["V" + std::to_string(i)] = std::string(120 << 10, 'z');
    auto m = d->dispatch(with_many);
    ASSERT_FALSE(m.isOk()) << "answered " << static_cast<int>(*m);
    EXPECT_EQ(m.status().code(), StatusCode::kInvalidArgument) << m.status().toString();
    EXPECT_NE(m.status().message().find("cannot start the command: Argument list too long"), std::string::npos)
        << m.status().message();

    EXPECT_TRUE(events_.reportsFor(big).empty()) << "no claim, so nothing to report";
    EXPECT_EQ(events_.store().task(big.run, big.task_id)->state, TaskState::kQueued)
        << "still queued: the host fails it on kInvalidArgument, with the reason as the note";
    EXPECT_TRUE(events_.reportsFor(env).empty());
    EXPECT_TRUE(events_.reportsFor(many).empty());
    EXPECT_EQ(d->freeCapacity(), 8u);
    EXPECT_EQ(stateFiles(), 0u);
    EXPECT_FALSE(fs::exists(logOf(big)));
    // The next task runs as usual (in the warm shell, when there is one), and nothing of the refused
    // ones ran before it.
    const AttemptRef next = attemptOf("huge", "r1", "next" + std::to_string(warm));
    EXPECT_TRUE(runToEnd(*d, requestOf(next, "true")).outcome.success);
    EXPECT_FALSE(fs::exists(marker)) << "a refused command ran";
  }
}

// A start that fails after the claim (here: no bash on the task's PATH) is reported as what it is,
// once: finished failed with the reason as the note, never left to a reaper or handed back to the
// host as a dispatch error to retry.
TEST_F(LocalDispatcherTest, AStartThatFailsAfterTheClaimIsReportedFailedOnceWithTheReason) {
  auto d = make();
  const AttemptRef a = attemptOf("nobash", "r1", "path");
  DispatchRequest r = requestOf(a, "true");
  r.task.env = {{"PATH", (dir_.path() / "no-such-dir").string()}};
  auto outcome = d->dispatch(r);
  ASSERT_TRUE(outcome.isOk()) << outcome.status().toString();
  EXPECT_EQ(*outcome, DispatchOutcome::kStarted);
  auto finished = events_.waitFinished(a, kWait);
  ASSERT_TRUE(finished.has_value());
  EXPECT_FALSE(finished->outcome.success);
  EXPECT_FALSE(finished->outcome.exit_code.has_value());
  EXPECT_EQ(finished->outcome.message.rfind("cannot start the command: ", 0), 0u) << finished->outcome.message;
  EXPECT_NE(finished->outcome.message.find("bash"), std::string::npos) << finished->outcome.message;
  EXPECT_TRUE(waitUntil([&] { return stateFiles() == 0 && d->freeCapacity() == 8; }, kWait));
  EXPECT_EQ(events_.count(ReportType::kRunning, a), 1);
  EXPECT_EQ(events_.count(ReportType::kHeartbeat, a), 0);
  EXPECT_EQ(events_.count(ReportType::kFinished, a), 1);
  const auto stored = events_.store().task(a.run, a.task_id);
  ASSERT_TRUE(stored.has_value());
  EXPECT_EQ(stored->state, TaskState::kFailed);
  EXPECT_EQ(stored->note, finished->outcome.message);
  EXPECT_EQ(*d->dispatch(r), DispatchOutcome::kAlreadyRunning) << "reported, so not started again";
}

// ---------------------------------------------------------------------------------------------------
// Heartbeats and timeouts

TEST_F(LocalDispatcherTest, HeartbeatsWhileTheProcessRuns) {
  auto d = make({}, 100ms);
  const AttemptRef a = attemptOf("hb", "r1", "sleepy");
  const Report finished = runToEnd(*d, requestOf(a, "sleep 2"));
  EXPECT_TRUE(finished.outcome.success);
  const auto reports = events_.reportsFor(a);
  ASSERT_FALSE(reports.empty());
  ASSERT_EQ(reports.front().type, ReportType::kRunning);
  int beats = 0;
  for (std::size_t i = 1; i + 1 < reports.size(); ++i) {
    EXPECT_EQ(reports[i].type, ReportType::kHeartbeat) << "only heartbeats between running and finished";
    EXPECT_TRUE(reports[i].answer.isOk()) << "a beat before the claim was accepted would be refused";
    ++beats;
  }
  // Counted over the whole run, not gap by gap (a loaded or sanitized build stretches single gaps):
  // each beat is timed an interval after the previous one, so there can never be more than one per
  // interval; a quarter of that is plenty of margin for a slow machine.
  const auto ran = std::chrono::duration_cast<milliseconds>(reports.back().at - reports.front().at);
  EXPECT_LE(beats, ran / 100ms + 1) << "beats are paced, not a busy loop; ran " << ran.count() << " ms";
  EXPECT_GE(beats, std::max<std::int64_t>(4, ran / 100ms / 4)) << "ran " << ran.count() << " ms";
}

TEST_F(LocalDispatcherTest, TimeoutSendsSigtermThenSigkillAndFailsWithANote) {
  auto d = make({{"kill_grace_ms", std::int64_t{300}}});
  const AttemptRef a = attemptOf("slow", "r1", "ignores_term");
  const fs::path pid_file = dir_.path() / "task.pid";
  const auto started = steady_clock::now();
  // bash ignores SIGTERM, and so does the sleep it starts: only SIGKILL ends it.
  auto outcome = d->dispatch(requestOf(a, "trap '' TERM; echo $$ > " + pid_file.string() + "; sleep 60", "bash", 1));
  ASSERT_TRUE(outcome.isOk());
  const auto pid = waitForPidFile(pid_file, kWait);
  ASSERT_TRUE(pid.has_value());
  extra_pids_.push_back(*pid);
  auto finished = events_.waitFinished(a, kWait);
  ASSERT_TRUE(finished.has_value());
  const auto elapsed = steady_clock::now() - started;
  EXPECT_GE(elapsed, 1300ms) << "not before the timeout plus the grace";
  EXPECT_FALSE(finished->outcome.success);
  EXPECT_EQ(finished->outcome.message, "timed out after 1 s");
  // SIGKILL went to the whole group; the supervisor's end may be seen a moment before the task's.
  EXPECT_TRUE(waitUntil([&] { return !processAlive(*pid); }, 2s));
  const std::string log = readFile(logOf(a));
  EXPECT_NE(log.find("timed out after 1 s; sending SIGTERM"), std::string::npos) << log;
  EXPECT_NE(log.find("SIGKILL"), std::string::npos) << log;
}

TEST_F(LocalDispatcherTest, TimeoutEndsACooperativeTaskWithinTheGrace) {
  auto d = make({{"kill_grace_ms", std::int64_t{10000}}});
  const AttemptRef a = attemptOf("slow", "r1", "obeys_term");
  const auto started = steady_clock::now();
  auto outcome = d->dispatch(requestOf(a, "sleep 60", "bash", 1));
  ASSERT_TRUE(outcome.isOk());
  auto finished = events_.waitFinished(a, kWait);
  ASSERT_TRUE(finished.has_value());
  EXPECT_LT(steady_clock::now() - started, 9s) << "SIGTERM ended it; no SIGKILL needed";
  EXPECT_FALSE(finished->outcome.success);
  EXPECT_EQ(finished->outcome.message, "timed out after 1 s");
  EXPECT_EQ(finished->outcome.exit_code, 128 + SIGTERM);
}

// ---------------------------------------------------------------------------------------------------
// Capacity and idempotence

TEST_F(LocalDispatcherTest, MaxParallelGivesBackpressureWithoutBlocking) {
  auto d = make({{"max_parallel", std::int64_t{2}}});
  EXPECT_EQ(d->freeCapacity(), 2u);
  const AttemptRef a1 = attemptOf("cap", "r1", "t1");
  const AttemptRef a2 = attemptOf("cap", "r1", "t2");
  const AttemptRef a3 = attemptOf("cap", "r1", "t3");
  const fs::path go = dir_.path() / "go";
  ASSERT_EQ(*d->dispatch(requestOf(a1, untilReleased(go))), DispatchOutcome::kStarted);
  EXPECT_EQ(d->freeCapacity(), 1u);
  ASSERT_EQ(*d->dispatch(requestOf(a2, untilReleased(go))), DispatchOutcome::kStarted);
  EXPECT_EQ(d->freeCapacity(), 0u);
  const auto before = steady_clock::now();
  auto third = d->dispatch(requestOf(a3, "true"));
  EXPECT_LT(steady_clock::now() - before, 500ms) << "dispatch never waits for room";
  ASSERT_TRUE(third.isOk());
  EXPECT_EQ(*third, DispatchOutcome::kAtCapacity);
  EXPECT_FALSE(fs::exists(logOf(a3))) << "an attempt refused for capacity did not start";
  EXPECT_TRUE(events_.reportsFor(a3).empty()) << "not even claimed";

  release(go);
  ASSERT_TRUE(events_.waitFinished(a1, kWait));
  ASSERT_TRUE(events_.waitFinished(a2, kWait));
  EXPECT_TRUE(waitUntil([&] { return d->freeCapacity() == 2; }, 5s));
  EXPECT_EQ(*d->dispatch(requestOf(a3, "true")), DispatchOutcome::kStarted);
  EXPECT_TRUE(events_.waitFinished(a3, kWait));
}

TEST_F(LocalDispatcherTest, RedispatchOfAnAttemptNeverStartsItAgain) {
  auto d = make();
  const fs::path ledger = dir_.path() / "ledger";
  const AttemptRef a = attemptOf("idem", "r1", "once");
  const DispatchRequest r = requestOf(a, "echo ran >> " + ledger.string() + "; sleep 0.5");
  ASSERT_EQ(*d->dispatch(r), DispatchOutcome::kStarted);
  EXPECT_EQ(*d->dispatch(r), DispatchOutcome::kAlreadyRunning);
  ASSERT_TRUE(events_.waitFinished(a, kWait));
  EXPECT_EQ(*d->dispatch(r), DispatchOutcome::kAlreadyRunning) << "finished attempts are not started again";
  // Nothing starts without a claim first, and the claim is made before dispatch() returns: one claim
  // is one start.
  EXPECT_EQ(events_.count(ReportType::kRunning, a), 1);
  // The next try is another attempt (the store's task moves on to it, as after a retry).
  const AttemptRef retry = attemptOf("idem", "r1", "once", 2);
  EXPECT_EQ(*d->dispatch(requestOf(retry, "echo ran >> " + ledger.string())), DispatchOutcome::kStarted);
  ASSERT_TRUE(events_.waitFinished(retry, kWait));
  EXPECT_EQ(readLines(ledger).size(), 2u);
  EXPECT_EQ(events_.count(ReportType::kRunning, a), 1);
}

TEST_F(LocalDispatcherTest, TwoDispatchersRacingOnOneAttemptStartOneProcess) {
  RecordingEvents other_events(RecordingEvents::SameStoreAs{events_});  // two schedulers, one store
  auto first = make();
  auto second = make(other_events);
  const fs::path ledger = dir_.path() / "ledger";
  const AttemptRef a = attemptOf("race", "r1", "once");
  const fs::path go = dir_.path() / "go";
  // Held until every racer has had its answer: they race with a running process, not a finished one.
  const DispatchRequest r = requestOf(a, "echo ran >> " + ledger.string() + "; " + untilReleased(go));

  constexpr int kThreads = 8;
  std::barrier start(kThreads);
  std::atomic<int> started{0};
  std::atomic<int> already{0};
  std::atomic<int> other{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      Dispatcher& d = i % 2 == 0 ? *first : *second;
      start.arrive_and_wait();
      auto outcome = d.dispatch(r);
      if (outcome && *outcome == DispatchOutcome::kStarted) {
        ++started;
      } else if (outcome && *outcome == DispatchOutcome::kAlreadyRunning) {
        ++already;
      } else {
        ++other;
      }
    });
  }
  for (auto& t : threads) t.join();
  release(go);
  EXPECT_EQ(started.load(), 1);
  EXPECT_EQ(already.load(), kThreads - 1);
  EXPECT_EQ(other.load(), 0);

  const bool done = waitUntil(
      [&] {
        return events_.count(ReportType::kFinished, a, true) + other_events.count(ReportType::kFinished, a, true) == 1;
      },
      kWait);
  EXPECT_TRUE(done);
  // Every start is claimed first, before dispatch() returns, and every dispatch has returned: one
  // claim, one process (which wrote its line before it finished).
  EXPECT_EQ(events_.count(ReportType::kRunning, a) + other_events.count(ReportType::kRunning, a), 1);
  EXPECT_EQ(readLines(ledger).size(), 1u) << "exactly one process ran";
  EXPECT_EQ(events_.count(ReportType::kFinished, a) + other_events.count(ReportType::kFinished, a), 1);
}

// ---------------------------------------------------------------------------------------------------
// Refused reports: the attempt is no longer current

TEST_F(LocalDispatcherTest, ConflictOnHeartbeatKillsTheProcess) {
  refusals_expected_ = true;
  auto d = make({{"kill_grace_ms", std::int64_t{500}}}, 100ms);
  const AttemptRef a = attemptOf("stale", "r1", "reaped");
  const fs::path pid_file = dir_.path() / "task.pid";
  events_.setAnswer([&](ReportType type, const AttemptRef& ref) -> std::optional<Status> {
    if (type != ReportType::kHeartbeat || ref != a) return std::nullopt;
    waitForPidFile(pid_file, kWait);  // a slow store: the task is well under way when it answers
    return conflict("attempt was reaped");
  });
  ASSERT_EQ(*d->dispatch(requestOf(a, "echo $$ > " + pid_file.string() + "; sleep 60")), DispatchOutcome::kStarted);
  const auto pid = waitForPidFile(pid_file, kWait);
  ASSERT_TRUE(pid.has_value());
  extra_pids_.push_back(*pid);
  EXPECT_TRUE(waitUntil([&] { return !processAlive(*pid); }, kWait)) << "a stale attempt keeps no process running";
  EXPECT_TRUE(waitUntil([&] { return d->freeCapacity() == 8 && stateFiles() == 0; }, kWait));
  EXPECT_EQ(events_.count(ReportType::kFinished, a), 0) << "nothing more is reported about a stale attempt";
  EXPECT_EQ(events_.count(ReportType::kHeartbeat, a), 1) << "no beat after the refusal";
}

// A store that writes the reports arriving together in one commit (store-postgres) is only as fast
// as the reports in flight at once. Finished reports go out on one reporter thread per four tasks
// of max_parallel, so a fan-out's ends do not queue behind a few slow store calls.
TEST_F(LocalDispatcherTest, FinishedReportsOfManyAttemptsReachTheStoreTogether) {
  auto d = make({{"max_parallel", std::int64_t{64}}});
  constexpr int kTasks = 32;
  constexpr int kExpectedTogether = 64 / 4;
  std::mutex mutex;
  std::condition_variable cv;
  int inside = 0;
  int most = 0;
  bool released = false;
  // A slow store: each finished report waits until kExpectedTogether are being written (or 2 s).
  events_.setAnswer([&](ReportType type, const AttemptRef&) -> std::optional<Status> {
    if (type != ReportType::kFinished) return std::nullopt;
    std::unique_lock lock(mutex);
    most = std::max(most, ++inside);
    if (inside >= kExpectedTogether) released = true;
    cv.notify_all();
    cv.wait_for(lock, 2s, [&] { return released; });
    --inside;
    return std::nullopt;
  });
  std::vector<AttemptRef> attempts;
  for (int i = 0; i < kTasks; ++i) {
    attempts.push_back(attemptOf("fanout", "r1", "t" + std::to_string(i)));
    ASSERT_EQ(*d->dispatch(requestOf(attempts.back(), "true")), DispatchOutcome::kStarted);
  }
  EXPECT_TRUE(waitUntil(
      [&] {
        return std::all_of(attempts.begin(), attempts.end(),
                           [&](const AttemptRef& a) { return events_.count(ReportType::kFinished, a, true) == 1; });
      },
      60s));
  std::lock_guard lock(mutex);
  EXPECT_GE(most, kExpectedTogether) << "finished reports written at once";
}

// ARCHITECTURE §8.13: the claim comes before the code. A refused claim (another execution holds the
// attempt, or it is no longer current) starts nothing and reports nothing more.
TEST_F(LocalDispatcherTest, ARefusedClaimRunsNothing) {
  refusals_expected_ = true;
  auto d = make();
  const AttemptRef a = attemptOf("stale", "r1", "claimed-elsewhere");
  const fs::path marker = dir_.path() / "ran";
  // Another host's execution holds the attempt already: the store refuses this claim by itself.
  ASSERT_TRUE(events_.seedRunning(a, "local/host-b/202/00000000000000e2").isOk());
  EXPECT_EQ(*d->dispatch(requestOf(a, "touch " + marker.string())), DispatchOutcome::kAlreadyRunning);
  EXPECT_EQ(stateFiles(), 0) << "no claim left behind";
  EXPECT_EQ(d->freeCapacity(), 8u);
  ASSERT_EQ(events_.reportsFor(a).size(), 1u);
  EXPECT_EQ(events_.reportsFor(a).front().answer.code(), StatusCode::kConflict);
  // Whatever the dispatcher would still do about the attempt, it would do before or beside the next
  // task's reports: run one to its end, then look.
  const AttemptRef next = attemptOf("stale", "r1", "next");
  EXPECT_TRUE(runToEnd(*d, requestOf(next, "true")).outcome.success);
  EXPECT_FALSE(fs::exists(marker)) << "the code of a refused claim must never start";
  EXPECT_FALSE(fs::exists(logOf(a)));
  EXPECT_EQ(events_.reportsFor(a).size(), 1u) << "the claim, and nothing after it";
  EXPECT_EQ(events_.store().task(a.run, a.task_id)->state, TaskState::kRunning) << "the other execution's";
}

// The claim is made before anything starts; a store that cannot be reached then starts nothing, and
// the host retries the hand-over.
TEST_F(LocalDispatcherTest, AnUnreachableStoreStartsNothing) {
  refusals_expected_ = true;
  auto d = make();
  const AttemptRef a = attemptOf("down", "r1", "store-down");
  const fs::path marker = dir_.path() / "ran";
  events_.setAnswer([&](ReportType type, const AttemptRef&) -> std::optional<Status> {
    if (type != ReportType::kRunning) return std::nullopt;
    return unavailable("store down");
  });
  const std::string script = "echo ran >> " + marker.string();
  auto r = d->dispatch(requestOf(a, script));
  ASSERT_FALSE(r.isOk());
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(stateFiles(), 0) << "nothing is left that would make a retried hand-over look started";
  EXPECT_FALSE(fs::exists(logOf(a))) << "nothing started";
  events_.setAnswer({});
  ASSERT_EQ(*d->dispatch(requestOf(a, script)), DispatchOutcome::kStarted) << "the retried hand-over";
  ASSERT_TRUE(events_.waitFinished(a, kWait).has_value());
  EXPECT_EQ(readLines(marker).size(), 1u) << "the code ran once: after the claim that got through";
}

// The store took the claim but its reply was lost: dispatch() fails, nothing runs, and the host
// hands the attempt over again. The retried claim carries the same execution id, which the store
// accepts again (ARCHITECTURE §8.13) — the task runs once, rather than never (refused as another
// execution's, left for the agent-lost reaper).
TEST_F(LocalDispatcherTest, AClaimRetriedAfterALostReplyIsAccepted) {
  refusals_expected_ = true;  // the lost reply is recorded as the kUnavailable the dispatcher got
  auto d = make();
  const AttemptRef a = attemptOf("lost", "r1", "reply");
  const fs::path ledger = dir_.path() / "ledger";
  const DispatchRequest request = requestOf(a, "echo ran >> " + ledger.string());
  events_.loseReply(ReportType::kRunning);
  auto first = d->dispatch(request);
  ASSERT_FALSE(first.isOk());
  EXPECT_EQ(first.status().code(), StatusCode::kUnavailable) << first.status().toString();
  EXPECT_EQ(events_.store().task(a.run, a.task_id)->state, TaskState::kRunning) << "the claim landed";
  EXPECT_EQ(stateFiles(), 0u);
  EXPECT_FALSE(fs::exists(logOf(a))) << "nothing started";

  ASSERT_EQ(*d->dispatch(request), DispatchOutcome::kStarted) << "the host's retried hand-over";
  auto finished = events_.waitFinished(a, kWait);
  ASSERT_TRUE(finished.has_value());
  EXPECT_TRUE(finished->outcome.success);
  EXPECT_EQ(readLines(ledger).size(), 1u);
  const auto reports = events_.reportsFor(a);
  ASSERT_GE(reports.size(), 3u);
  EXPECT_EQ(reports[1].type, ReportType::kRunning);
  EXPECT_TRUE(reports[1].answer.isOk()) << reports[1].answer.toString();
  for (const Report& r : reports) EXPECT_EQ(r.execution_id, reports[0].execution_id) << "one execution";
  EXPECT_EQ(events_.store().task(a.run, a.task_id)->state, TaskState::kSuccess);
}

TEST_F(LocalDispatcherTest, FinishedReportIsRetriedWhileTheStoreIsUnavailable) {
  refusals_expected_ = true;
  auto d = make();
  const AttemptRef a = attemptOf("retry", "r1", "report");
  std::atomic<int> refusals{0};
  events_.setAnswer([&](ReportType type, const AttemptRef&) -> std::optional<Status> {
    if (type == ReportType::kFinished && refusals.fetch_add(1) < 3) return unavailable("store down");
    return std::nullopt;
  });
  ASSERT_EQ(*d->dispatch(requestOf(a, "exit 2")), DispatchOutcome::kStarted);
  auto finished = events_.waitFinished(a, kWait);
  ASSERT_TRUE(finished.has_value());
  EXPECT_EQ(finished->outcome.exit_code, 2);
  EXPECT_EQ(events_.count(ReportType::kFinished, a), 4);
  EXPECT_TRUE(waitUntil([&] { return stateFiles() == 0; }, 5s));
}

// ---------------------------------------------------------------------------------------------------
// Restarts: adoption and reporting of what ended meanwhile

TEST_F(LocalDispatcherTest, RestartAdoptsARunningTaskAndReportsItsRealExitCode) {
  RecordingEvents before;
  RecordingEvents after(RecordingEvents::SameStoreAs{before});  // the restarted scheduler, same store
  const AttemptRef a = attemptOf("adopt", "r1", "long");
  const fs::path pid_file = dir_.path() / "task.pid";
  const fs::path go = dir_.path() / "go";
  auto first = make(before, {}, 100ms);
  ASSERT_EQ(*first->dispatch(requestOf(a, "echo $$ > " + pid_file.string() + "; " + untilReleased(go) + "; exit 7")),
            DispatchOutcome::kStarted);
  ASSERT_TRUE(before.waitCount(ReportType::kRunning, a, 1, kWait));
  const auto pid = waitForPidFile(pid_file, kWait);
  ASSERT_TRUE(pid.has_value());
  extra_pids_.push_back(*pid);

  const auto stopping = steady_clock::now();
  first.reset();  // shutdown() and destruction, stop_tasks_on_shutdown = false
  EXPECT_LT(steady_clock::now() - stopping, 3s);
  EXPECT_TRUE(processAlive(*pid)) << "the task outlives its scheduler";

  auto second = make(after, {}, 100ms);
  EXPECT_EQ(second->freeCapacity(), 7u) << "the adopted process counts against max_parallel";
  EXPECT_TRUE(after.waitCount(ReportType::kHeartbeat, a, 2, kWait)) << "the adopter keeps the attempt alive";
  release(go);
  auto finished = after.waitFinished(a, kWait);
  ASSERT_TRUE(finished.has_value());
  EXPECT_FALSE(finished->outcome.success);
  EXPECT_EQ(finished->outcome.exit_code, 7);
  EXPECT_EQ(finished->outcome.message, "exit code 7");
  EXPECT_EQ(before.count(ReportType::kFinished, a), 0);
  const auto stored = after.store().task(a.run, a.task_id);
  ASSERT_TRUE(stored.has_value());
  EXPECT_EQ(stored->state, TaskState::kFailed);
  EXPECT_EQ(stored->note, "exit code 7");
  EXPECT_TRUE(waitUntil([&] { return stateFiles() == 0 && second->freeCapacity() == 8; }, 5s));
  EXPECT_EQ(*second->dispatch(requestOf(a, "true")), DispatchOutcome::kAlreadyRunning);
}

// An adopter speaks for the execution it adopts: it re-sends the claim with the recorded id, which the
// store accepts again (ARCHITECTURE §8.13), and heartbeats follow — the task is not killed.
TEST_F(LocalDispatcherTest, AnAdopterReclaimsWithTheRecordedExecution) {
  RecordingEvents before;
  RecordingEvents after(RecordingEvents::SameStoreAs{before});
  const AttemptRef a = attemptOf("adopt", "r1", "reclaimed");
  const fs::path go = dir_.path() / "go";
  auto first = make(before, {}, 100ms);
  ASSERT_EQ(*first->dispatch(requestOf(a, untilReleased(go))), DispatchOutcome::kStarted);
  ASSERT_TRUE(before.waitCount(ReportType::kRunning, a, 1, kWait));
  first.reset();

  // The adopter's first claim reaches the store but its reply is lost: it is retried, with the same
  // id, and accepted.
  after.loseReply(ReportType::kRunning);
  auto second = make(after, {}, 100ms);
  ASSERT_TRUE(after.waitCount(ReportType::kHeartbeat, a, 1, kWait)) << "the adopter's beats are accepted";
  release(go);
  auto finished = after.waitFinished(a, kWait);
  ASSERT_TRUE(finished.has_value());
  EXPECT_TRUE(finished->outcome.success) << "the task was not killed: " << finished->outcome.message;
  const auto started = before.reportsFor(a);
  const auto adopted = after.reportsFor(a);
  ASSERT_FALSE(started.empty());
  ASSERT_GE(adopted.size(), 3u);
  EXPECT_EQ(started[0].type, ReportType::kRunning);
  EXPECT_EQ(adopted[0].type, ReportType::kRunning) << "the adopter claims again";
  EXPECT_EQ(adopted[0].answer.code(), StatusCode::kUnavailable) << "(the lost reply)";
  EXPECT_EQ(adopted[1].type, ReportType::kRunning) << "and again, after the lost reply";
  for (const std::vector<Report>* of : {&started, &adopted}) {
    for (std::size_t i = 0; i < of->size(); ++i) {
      const Report& r = (*of)[i];
      EXPECT_EQ(r.execution_id, started[0].execution_id) << "one execution from start to end";
      if (of == &started || i > 0) {
        EXPECT_TRUE(r.answer.isOk()) << r.answer.toString();
      }
    }
  }
  EXPECT_EQ(after.store().task(a.run, a.task_id)->state, TaskState::kSuccess);
}

TEST_F(LocalDispatcherTest, TaskThatEndedWhileNoDispatcherWasAliveIsReportedWithItsExitCode) {
  RecordingEvents before;
  RecordingEvents after(RecordingEvents::SameStoreAs{before});
  const AttemptRef a = attemptOf("gap", "r1", "quick");
  const fs::path pid_file = dir_.path() / "task.pid";
  const fs::path go = dir_.path() / "go";
  auto first = make(before);
  // $$ is the supervisor: bash entrypoints run in it.
  ASSERT_EQ(*first->dispatch(requestOf(a, "echo $$ > " + pid_file.string() + "; " + untilReleased(go) + "; exit 5")),
            DispatchOutcome::kStarted);
  ASSERT_TRUE(before.waitCount(ReportType::kRunning, a, 1, kWait));
  const auto supervisor = waitForPidFile(pid_file, kWait);
  ASSERT_TRUE(supervisor.has_value());
  first.reset();
  release(go);
  // It records the code and exits (a zombie: its parent, this process, no longer watches it).
  ASSERT_TRUE(waitUntil([&] { return !processAlive(*supervisor); }, kWait));

  auto second = make(after);
  auto finished = after.waitFinished(a, kWait);
  ASSERT_TRUE(finished.has_value());
  EXPECT_FALSE(finished->outcome.success);
  EXPECT_EQ(finished->outcome.exit_code, 5);
  EXPECT_EQ(finished->outcome.message, "exit code 5");
  EXPECT_EQ(after.count(ReportType::kHeartbeat, a), 0);
  EXPECT_TRUE(waitUntil([&] { return stateFiles() == 0; }, 5s));
}

TEST_F(LocalDispatcherTest, LeftoversWithoutAnExitCodeAreReportedLostAndOthersKeepTheirReason) {
  fs::create_directories(state());
  // A process that is certainly gone: spawned, ended and reaped.
  const pid_t gone = ::fork();
  if (gone == 0) ::_exit(0);
  ::waitpid(gone, nullptr, 0);
  const std::string boot = readLines("/proc/sys/kernel/random/boot_id").at(0);

  dl::StateRecord lost;
  lost.attempt = attemptOf("left", "r1", "lost");
  lost.task_type = "bash";
  lost.pid = gone;
  lost.pid_start_ticks = 1;
  lost.boot_id = boot;
  lost.started_at_us = 1;
  lost.execution_id = "local/host-a/101/0000000000000001";
  {
    std::ofstream f(state() / (dl::stateBaseName(lost.attempt, lost.run_uid) + ".json"));
    f << dl::encodeStateRecord(lost);
  }
  dl::StateRecord timed_out = lost;
  timed_out.attempt = attemptOf("left", "r1", "timed_out");
  timed_out.execution_id = "local/host-a/101/0000000000000002";
  timed_out.execution_timeout_seconds = 60;
  timed_out.kill_reason = dl::KillReason::kTimeout;
  {
    std::ofstream f(state() / (dl::stateBaseName(timed_out.attempt, timed_out.run_uid) + ".json"));
    f << dl::encodeStateRecord(timed_out);
    std::ofstream code(state() / (dl::stateBaseName(timed_out.attempt, timed_out.run_uid) + ".exit"));
    code << "143\n";
  }
  dl::StateRecord rebooted = lost;
  rebooted.attempt = attemptOf("left", "r1", "before_reboot");
  rebooted.execution_id = "local/host-a/101/0000000000000003";
  rebooted.boot_id = "another-boot";
  rebooted.pid = ::getpid();  // alive, but that was another boot's pid
  {
    std::ofstream f(state() / (dl::stateBaseName(rebooted.attempt, rebooted.run_uid) + ".json"));
    f << dl::encodeStateRecord(rebooted);
  }
  {
    std::ofstream f(state() / "garbage~x~y~1.json");
    f << "{not json";
  }
  // The scheduler that left them had claimed each in the store, under the recorded execution.
  for (const dl::StateRecord* left : {&lost, &timed_out, &rebooted}) {
    ASSERT_TRUE(events_.seedRunning(left->attempt, left->execution_id).isOk());
  }

  auto d = make();
  auto r1 = events_.waitFinished(lost.attempt, kWait);
  ASSERT_TRUE(r1.has_value());
  EXPECT_FALSE(r1->outcome.success);
  EXPECT_FALSE(r1->outcome.exit_code.has_value());
  EXPECT_EQ(r1->outcome.message, "process lost while the scheduler was down");
  auto r2 = events_.waitFinished(timed_out.attempt, kWait);
  ASSERT_TRUE(r2.has_value());
  EXPECT_EQ(r2->outcome.message, "timed out after 60 s");
  EXPECT_EQ(r2->outcome.exit_code, 143);
  auto r3 = events_.waitFinished(rebooted.attempt, kWait);
  ASSERT_TRUE(r3.has_value());
  EXPECT_EQ(r3->outcome.message, "process lost while the scheduler was down");
  EXPECT_TRUE(fs::exists(state() / "garbage~x~y~1.json.corrupt")) << "an unreadable file is moved aside, not lost";
  EXPECT_TRUE(waitUntil([&] { return stateFiles() == 1; }, 5s)) << "only the moved-aside file is left";
  for (const dl::StateRecord* left : {&lost, &timed_out, &rebooted}) {
    for (const Report& r : events_.reportsFor(left->attempt)) {
      EXPECT_EQ(r.execution_id, left->execution_id) << "reported for the execution that ran it";
    }
    EXPECT_EQ(events_.store().task(left->attempt.run, left->attempt.task_id)->state, TaskState::kFailed);
  }
}

TEST_F(LocalDispatcherTest, AClaimWithoutAPidFindsItsSupervisorByItsCommandLine) {
  // A scheduler died between spawning and recording the pid: only the claim is on disk.
  fs::create_directories(state());
  dl::StateRecord claim;
  claim.attempt = attemptOf("claim", "r1", "no_pid");
  claim.task_type = "bash";
  claim.boot_id = readLines("/proc/sys/kernel/random/boot_id").at(0);
  claim.started_at_us = 1;
  claim.execution_id = "local/host-a/101/00000000000000aa";
  const std::string base = dl::stateBaseName(claim.attempt, claim.run_uid);
  {
    std::ofstream f(state() / (base + ".json"));
    f << dl::encodeStateRecord(claim);
  }
  // Claimed in the store before it was spawned (claim before run).
  ASSERT_TRUE(events_.seedRunning(claim.attempt, claim.execution_id).isOk());
  // Its supervisor, with the command line a real one has: sh -c <script> leoflow-supervisor <exit file>.
  const std::string exit_file = (state() / (base + ".exit")).string();
  const fs::path go = dir_.path() / "go";
  std::vector<std::string> args = {"/bin/sh", "-c", untilReleased(go) + "; echo 9 > \"$1\"", "leoflow-supervisor",
                                   exit_file};
  std::vector<char*> argv;
  for (auto& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  ASSERT_EQ(::posix_spawn(&pid, "/bin/sh", nullptr, nullptr, argv.data(), environ), 0);
  extra_pids_.push_back(pid);
  const fs::path cmdline = "/proc/" + std::to_string(pid) + "/cmdline";
  ASSERT_TRUE(waitUntil([&] { return readFile(cmdline).find(exit_file) != std::string::npos; }, kWait));

  auto d = make();
  EXPECT_EQ(d->freeCapacity(), 7u) << "found and adopted while it runs";
  const auto recorded = dl::decodeStateRecord(readFile(state() / (base + ".json")));
  ASSERT_TRUE(recorded.has_value());
  EXPECT_EQ(recorded->pid, pid) << "the pid is recorded now: " << readFile(state() / (base + ".json"));
  release(go);
  auto finished = events_.waitFinished(claim.attempt, kWait);
  ASSERT_TRUE(finished.has_value());
  EXPECT_EQ(finished->outcome.exit_code, 9);
  EXPECT_EQ(finished->outcome.message, "exit code 9");
  for (const Report& r : events_.reportsFor(claim.attempt)) {
    EXPECT_EQ(r.execution_id, claim.execution_id);
    EXPECT_TRUE(r.answer.isOk()) << r.answer.toString();
  }
}

// ---------------------------------------------------------------------------------------------------
// Shutdown

TEST_F(LocalDispatcherTest, ShutdownReturnsPromptlyAndLeavesTasksRunning) {
  auto d = make();
  std::vector<pid_t> pids;
  for (int i = 0; i < 3; ++i) {
    const fs::path pid_file = dir_.path() / ("task" + std::to_string(i) + ".pid");
    const AttemptRef a = attemptOf("shut", "r1", "t" + std::to_string(i));
    ASSERT_EQ(*d->dispatch(requestOf(a, "echo $$ > " + pid_file.string() + "; sleep 30")), DispatchOutcome::kStarted);
    const auto pid = waitForPidFile(pid_file, kWait);
    ASSERT_TRUE(pid.has_value());
    pids.push_back(*pid);
    extra_pids_.push_back(*pid);
  }
  const auto before = steady_clock::now();
  d->shutdown();
  EXPECT_LT(steady_clock::now() - before, 3s);
  for (pid_t pid : pids) EXPECT_TRUE(processAlive(pid)) << "left for the next scheduler to adopt";
  EXPECT_EQ(d->freeCapacity(), 0u);
  auto after = d->dispatch(requestOf(attemptOf("shut", "r1", "late"), "true"));
  ASSERT_TRUE(after.isOk());
  EXPECT_EQ(*after, DispatchOutcome::kAtCapacity) << "no work after shutdown";
  d->shutdown();  // idempotent
  // Each with its exit file, still empty (a spare placed before the start: README "State files").
  std::size_t json = 0;
  std::size_t exits = 0;
  for (const auto& e : fs::directory_iterator(state())) {
    json += e.path().extension() == ".json";
    if (e.path().extension() == ".exit") {
      ++exits;
      EXPECT_FALSE(dl::readExitCode(e.path()).has_value()) << e.path();
    }
  }
  EXPECT_EQ(json, 3u) << "their state files stay for adoption";
  EXPECT_LE(exits, 3u);
  EXPECT_EQ(stateFiles(), json + exits) << "nothing else";
}

TEST_F(LocalDispatcherTest, ShutdownStopsTasksWhenConfiguredAndReportsThem) {
  auto d = make({{"stop_tasks_on_shutdown", true}, {"kill_grace_ms", std::int64_t{500}}});
  std::vector<pid_t> pids;
  std::vector<AttemptRef> attempts;
  for (int i = 0; i < 2; ++i) {
    const fs::path pid_file = dir_.path() / ("task" + std::to_string(i) + ".pid");
    attempts.push_back(attemptOf("shut", "r1", "t" + std::to_string(i)));
    // The first obeys SIGTERM, the second needs SIGKILL.
    const std::string body = i == 0 ? "sleep 30" : "trap '' TERM; sleep 30";
    ASSERT_EQ(*d->dispatch(requestOf(attempts.back(), "echo $$ > " + pid_file.string() + "; " + body)),
              DispatchOutcome::kStarted);
    const auto pid = waitForPidFile(pid_file, kWait);
    ASSERT_TRUE(pid.has_value());
    pids.push_back(*pid);
    extra_pids_.push_back(*pid);
  }
  ASSERT_TRUE(events_.waitCount(ReportType::kRunning, attempts[1], 1, kWait));
  const auto before = steady_clock::now();
  d->shutdown();
  EXPECT_LT(steady_clock::now() - before, 5s);
  for (pid_t pid : pids) EXPECT_TRUE(waitUntil([&] { return !processAlive(pid); }, 2s));
  for (const AttemptRef& a : attempts) {
    auto finished = events_.waitFinished(a, 1s);
    ASSERT_TRUE(finished.has_value()) << a.task_id;
    EXPECT_FALSE(finished->outcome.success);
    EXPECT_EQ(finished->outcome.message, "stopped: the scheduler shut down (stop_tasks_on_shutdown)");
  }
}

// ---------------------------------------------------------------------------------------------------
// Configuration

TEST_F(LocalDispatcherTest, FactoryDeclaresItsKeys) {
  const auto keys = dl::LocalDispatcherFactory().configKeys();
  std::vector<std::string> names;
  for (const ConfigKey& k : keys) {
    names.push_back(k.name);
    EXPECT_FALSE(k.required) << k.name;
    EXPECT_TRUE(k.default_value.has_value()) << k.name;
    EXPECT_FALSE(k.help.empty()) << k.name;
  }
  EXPECT_EQ(names, (std::vector<std::string>{"max_parallel", "work_dir", "log_dir", "state_dir", "python", "bash",
                                             "kill_grace_ms", "stop_tasks_on_shutdown", "warm_shells"}));
}

TEST_F(LocalDispatcherTest, CreateRejectsBadValuesAndUncreatableFolders) {
  RecordingEvents events;
  EXPECT_THROW(make(events, {{"max_parallel", std::int64_t{0}}}), std::invalid_argument);
  EXPECT_THROW(make(events, {{"kill_grace_ms", std::int64_t{-1}}}), std::invalid_argument);
  EXPECT_THROW(make(events, {{"warm_shells", std::int64_t{-1}}}), std::invalid_argument);
  EXPECT_THROW(make(events, {{"warm_shells", std::int64_t{65}}}), std::invalid_argument);
  EXPECT_THROW(make(events, {{"bash", std::string()}}), std::invalid_argument);
  {
    std::ofstream file(dir_.path() / "a-file");
    file << "x";
  }
  const std::string blocked = (dir_.path() / "a-file" / "state").string();
  try {
    make(events, {{"state_dir", blocked}});
    ADD_FAILURE() << "create() accepted a state_dir under a file";
  } catch (const std::runtime_error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("state_dir"), std::string::npos) << what;
    EXPECT_NE(what.find(blocked), std::string::npos) << what;
  }
  auto d = make(events);
  EXPECT_TRUE(fs::is_directory(work()));
  EXPECT_TRUE(fs::is_directory(logs()));
  EXPECT_TRUE(fs::is_directory(state()));
}

// ---------------------------------------------------------------------------------------------------
// Figures (printed, loosely bounded): a fan-out of `true`, and exit-to-report latency

TEST_F(LocalDispatcherTest, FanOutOfTrueAndExitToFinishedLatency) {
  auto d = make({{"max_parallel", std::int64_t{16}}});
  constexpr int kTasks = 100;
  std::vector<AttemptRef> attempts;
  const auto start = steady_clock::now();
  int next = 0;
  while (next < kTasks) {
    const AttemptRef a = attemptOf("fan", "r1", "t" + std::to_string(next));
    auto outcome = d->dispatch(requestOf(a, "true"));
    ASSERT_TRUE(outcome.isOk());
    if (*outcome == DispatchOutcome::kAtCapacity) {
      std::this_thread::sleep_for(1ms);
      continue;
    }
    attempts.push_back(a);
    ++next;
  }
  for (const AttemptRef& a : attempts) ASSERT_TRUE(events_.waitFinished(a, kWait)) << a.task_id;
  const double secs = std::chrono::duration<double>(steady_clock::now() - start).count();
  std::printf("[ figure ] %d `true` tasks, max_parallel 16: %.2f s, %.0f tasks/s\n", kTasks, secs, kTasks / secs);

  // The task stamps the wall clock as its last act (bash's $EPOCHREALTIME: no extra process); the
  // report follows the task's exit, the supervisor's wake-up and its exit file. For scale, the
  // same stamp to the moment a directly spawned bash is seen gone (its exit alone) on this machine.
  auto stampOf = [](const fs::path& file) {
    const std::string text = readFile(file);
    return std::chrono::duration<double>(std::stod(text));
  };
  std::vector<double> latencies_ms;
  for (int i = 0; i < 20; ++i) {
    const AttemptRef a = attemptOf("lat", "r1", "t" + std::to_string(i));
    const fs::path stamp = dir_.path() / ("stamp" + std::to_string(i));
    auto outcome = d->dispatch(requestOf(a, "echo $EPOCHREALTIME > " + stamp.string()));
    ASSERT_TRUE(outcome.isOk());
    auto finished = events_.waitFinished(a, kWait);
    ASSERT_TRUE(finished.has_value());
    const std::chrono::duration<double> reported = finished->wall.time_since_epoch();
    latencies_ms.push_back((reported - stampOf(stamp)).count() * 1000.0);
  }
  std::vector<double> exit_alone_ms;
  for (int i = 0; i < 20; ++i) {
    const fs::path stamp = dir_.path() / ("direct" + std::to_string(i));
    const std::string script = "echo $EPOCHREALTIME > " + stamp.string();
    std::vector<std::string> args = {"bash", "-c", script};
    std::vector<char*> argv;
    for (auto& arg : args) argv.push_back(arg.data());
    argv.push_back(nullptr);
    pid_t pid = 0;
    ASSERT_EQ(::posix_spawn(&pid, "/bin/bash", nullptr, nullptr, argv.data(), environ), 0);
    const int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0U));
    ASSERT_GE(pidfd, 0);
    pollfd p{pidfd, POLLIN, 0};
    ASSERT_EQ(::poll(&p, 1, 20000), 1);
    const std::chrono::duration<double> gone = std::chrono::system_clock::now().time_since_epoch();
    exit_alone_ms.push_back((gone - stampOf(stamp)).count() * 1000.0);
    ::waitpid(pid, nullptr, 0);
    ::close(pidfd);
  }
  std::sort(latencies_ms.begin(), latencies_ms.end());
  std::sort(exit_alone_ms.begin(), exit_alone_ms.end());
  std::printf("[ figure ] task's last act to finished report: median %.2f ms, max %.2f ms\n",
              latencies_ms[latencies_ms.size() / 2], latencies_ms.back());
  std::printf("[ figure ] for scale, a bash's last act to its exit being seen: median %.2f ms, max %.2f ms\n",
              exit_alone_ms[exit_alone_ms.size() / 2], exit_alone_ms.back());
  EXPECT_LT(latencies_ms[latencies_ms.size() / 2], 1000.0);
}

}  // namespace
}  // namespace leoflow::testing::dispatcher_local
