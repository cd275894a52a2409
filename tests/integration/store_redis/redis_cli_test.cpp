// The real `leoflow` binary with a store-redis config (ARCHITECTURE §8.6): a Redis that cannot be
// reached — nothing listening, or a server frozen with SIGSTOP — is exit 3 for a one-shot command,
// saying the store is unreachable; a server that answers and refuses is a config error (exit 2);
// `leoflow scheduler` started before its store retries with back-off, one warning per attempt, runs
// once Redis is up, and a SIGTERM ends it promptly while it waits.
//
// Each test has a redis-server of its own (it freezes it) or a closed port, never the shared test
// server. Without redis-server installed the tests that need one skip (fail under CI=true).
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "support/run_command.h"

extern char** environ;

namespace leoflow::testing {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using ::testing::HasSubstr;
using ::testing::Not;

bool inCi() {
  const char* ci = std::getenv("CI");
  return ci != nullptr && std::string(ci) == "true";
}

// A loopback port nothing listens on: bound, then released.
int closedPort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

std::string pluginPath() {
  std::string path;
  for (const char* var : {"LEOFLOW_STORE_REDIS_DIR", "LEOFLOW_DISPATCHER_LOCAL_DIR"}) {
    if (const char* d = std::getenv(var); d != nullptr && *d != '\0') path += (path.empty() ? "" : ":") + std::string(d);
  }
  return path;
}

// A child process, its stdout and stderr in a file; killed when the object goes.
class Process {
 public:
  Process(const std::vector<std::string>& argv, fs::path log) : log_(std::move(log)) {
    std::vector<std::string> args = argv;
    std::vector<char*> ptrs;
    for (std::string& a : args) ptrs.push_back(a.data());
    ptrs.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&actions, 1, log_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    posix_spawn_file_actions_adddup2(&actions, 1, 2);
    const int rc = posix_spawnp(&pid_, ptrs[0], &actions, nullptr, ptrs.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) throw std::runtime_error("cannot start " + argv[0]);
  }
  ~Process() {
    if (!wait(0ms)) {
      ::kill(pid_, SIGKILL);
      wait(5s);
    }
  }
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  void signal(int sig) {
    if (!status_) ::kill(pid_, sig);
  }
  /// The exit code (128 + signal when killed), or nullopt while it still runs after `timeout`.
  std::optional<int> wait(std::chrono::milliseconds timeout) {
    const auto until = std::chrono::steady_clock::now() + timeout;
    while (!status_) {
      int st = 0;
      if (::waitpid(pid_, &st, WNOHANG) == pid_) {
        status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        break;
      }
      if (std::chrono::steady_clock::now() >= until) return std::nullopt;
      std::this_thread::sleep_for(10ms);
    }
    return status_;
  }
  std::string log() const {
    std::ifstream in(log_);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }
  /// Waits until the log contains `text`; false after `timeout`.
  bool waitForLog(const std::string& text, std::chrono::milliseconds timeout) {
    const auto until = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < until) {
      if (log().find(text) != std::string::npos) return true;
      std::this_thread::sleep_for(20ms);
    }
    return log().find(text) != std::string::npos;
  }

 private:
  pid_t pid_ = -1;
  std::optional<int> status_;
  fs::path log_;
};

bool redisServerInstalled() {
  return runCommand("command -v redis-server >/dev/null && command -v redis-cli >/dev/null").exit_code == 0;
}

// Skips a test that needs a redis-server of its own when none is installed; fails it under CI.
#define REQUIRE_REDIS_SERVER()                                                                   \
  do {                                                                                           \
    if (!redisServerInstalled()) {                                                               \
      if (inCi()) FAIL() << "redis-server is not installed (CI=true: nothing may be skipped)";   \
      GTEST_SKIP() << "redis-server is not installed (./dev setup installs it)";                 \
    }                                                                                            \
  } while (false)

class RedisCli : public ::testing::Test {
 protected:
  void SetUp() override {
    if (std::getenv("LEOFLOW_STORE_REDIS_DIR") == nullptr || std::getenv("LEOFLOW_BIN") == nullptr) {
      GTEST_SKIP() << "run through meson test (LEOFLOW_BIN and LEOFLOW_STORE_REDIS_DIR unset)";
    }
    dir_ = fs::temp_directory_path() / ("leoflow-redis-cli-" + std::to_string(::getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override {
    redis_.reset();
    std::error_code ec;
    if (!dir_.empty()) fs::remove_all(dir_, ec);
  }

  /// Starts a redis-server of the test's own on `port` (REQUIRE_REDIS_SERVER first); false, with a
  /// failure, when it does not answer.
  bool startRedis(int port) {
    fs::create_directories(dir_ / "redis");
    redis_ = std::make_unique<Process>(
        std::vector<std::string>{"redis-server", "--bind", "127.0.0.1", "--port", std::to_string(port), "--dir",
                                 (dir_ / "redis").string(), "--save", "", "--appendonly", "no", "--daemonize", "no"},
        dir_ / "redis.log");
    for (int i = 0; i < 250; ++i) {
      if (runCommand("redis-cli -p " + std::to_string(port) + " ping").out == "PONG\n") return true;
      std::this_thread::sleep_for(20ms);
    }
    ADD_FAILURE() << "redis-server did not start on port " << port << ": " << redis_->log();
    return false;
  }

  /// A config whose store (and, without [leader], leader) is Redis at `url`.
  fs::path writeConfig(const std::string& url, int timeout_ms = 500) {
    const fs::path path = dir_ / "leoflow.toml";
    std::ofstream f(path);
    f << "[store]\nplugin = \"store-redis\"\n[store.config]\n"
      << "url = \"" << url << "\"\n"
      << "connect_timeout_ms = " << timeout_ms << "\n"
      << "command_timeout_ms = " << timeout_ms << "\n"
      << "[dispatcher]\nplugin = \"dispatcher-local\"\n[dispatcher.config]\n"
      << "work_dir = \"" << (dir_ / "work").string() << "\"\n"
      << "log_dir = \"" << (dir_ / "logs").string() << "\"\n"
      << "state_dir = \"" << (dir_ / "state").string() << "\"\n";
    return path;
  }

  std::string envPrefix() const { return "env -u LEOFLOW_CONFIG LEOFLOW_PLUGIN_PATH='" + pluginPath() + "' "; }

  CommandOutput leoflow(const fs::path& config, const std::string& args) {
    return runCommand("cd '" + dir_.string() + "' && " + envPrefix() + leoflowBinary() + " --config '" +
                      config.string() + "' " + args);
  }

  std::unique_ptr<Process> startScheduler(const fs::path& config) {
    return std::make_unique<Process>(
        std::vector<std::string>{"env", "-u", "LEOFLOW_CONFIG", "LEOFLOW_PLUGIN_PATH=" + pluginPath(),
                                 leoflowBinary(), "--config", config.string(), "scheduler"},
        dir_ / "scheduler.log");
  }

  static std::string url(int port) { return "redis://127.0.0.1:" + std::to_string(port) + "/0"; }

  fs::path dir_;
  std::unique_ptr<Process> redis_;
};

TEST_F(RedisCli, OneShotCommandsExitThreeWhenNothingListens) {
  const int port = closedPort();
  const fs::path config = writeConfig(url(port));
  for (const std::string args : {"status", "dags list", "runs list", "runs show r1"}) {
    const auto start = std::chrono::steady_clock::now();
    const CommandOutput r = leoflow(config, args);
    EXPECT_EQ(r.exit_code, 3) << args << ": " << r.err;
    EXPECT_THAT(r.err, HasSubstr("store unreachable")) << args;
    EXPECT_THAT(r.err, HasSubstr(url(port))) << "the message names the URL";
    EXPECT_THAT(r.err, HasSubstr("[store]")) << "and the section";
    EXPECT_LT(std::chrono::steady_clock::now() - start, 5s) << "a refused connection is not a wait";
  }
}

TEST_F(RedisCli, StatusAgainstAFrozenRedisExitsThreeSayingTheStoreIsUnreachable) {
  REQUIRE_REDIS_SERVER();
  const int port = closedPort();
  if (!startRedis(port)) return;
  const fs::path config = writeConfig(url(port), 500);
  const CommandOutput before = leoflow(config, "status");
  ASSERT_EQ(before.exit_code, 0) << before.err;

  redis_->signal(SIGSTOP);  // the kernel still accepts connections; nothing answers
  const CommandOutput frozen = leoflow(config, "status");
  redis_->signal(SIGCONT);
  EXPECT_EQ(frozen.exit_code, 3) << frozen.err;
  EXPECT_THAT(frozen.err, HasSubstr("store unreachable"));
  EXPECT_THAT(frozen.err, HasSubstr("did not answer within 500 ms (command_timeout_ms)"));
  EXPECT_THAT(frozen.err, Not(HasSubstr("refused"))) << "a server that does not answer has refused nothing";

  const CommandOutput after = leoflow(config, "status");
  EXPECT_EQ(after.exit_code, 0) << after.err;
}

TEST_F(RedisCli, ADatabaseTheServerRefusesIsAConfigErrorNotAnOutage) {
  REQUIRE_REDIS_SERVER();
  const int port = closedPort();
  if (!startRedis(port)) return;
  // The server has 16 databases: SELECT 99 is answered with an error, which no retry will change.
  const CommandOutput r = leoflow(writeConfig("redis://127.0.0.1:" + std::to_string(port) + "/99"), "status");
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_THAT(r.err, HasSubstr("refused the session: SELECT failed"));
  EXPECT_THAT(r.err, Not(HasSubstr("unreachable")));
}

// Lines of the scheduler's log that report an unreachable backend at start-up, and their attempts.
std::vector<int> retryAttempts(const std::string& log) {
  std::vector<int> attempts;
  static const std::regex kLine("backend unreachable at start-up; retrying attempt=([0-9]+)");
  for (auto it = std::sregex_iterator(log.begin(), log.end(), kLine); it != std::sregex_iterator(); ++it) {
    attempts.push_back(std::stoi((*it)[1].str()));
  }
  return attempts;
}

TEST_F(RedisCli, ASchedulerStartedBeforeItsStoreRetriesWithBackOffThenRuns) {
  REQUIRE_REDIS_SERVER();
  const int port = closedPort();
  const fs::path config = writeConfig(url(port));
  auto scheduler = startScheduler(config);

  // Attempts at about 0 s, 0.5 s, 1.5 s (the wait doubles): it does not exit, and logs each once.
  ASSERT_TRUE(scheduler->waitForLog("retrying attempt=3", 10s)) << scheduler->log();
  EXPECT_FALSE(scheduler->wait(0ms).has_value()) << "the scheduler exited: " << scheduler->log();
  const std::string log = scheduler->log();
  EXPECT_THAT(log, HasSubstr("store unreachable"));
  EXPECT_THAT(log, HasSubstr(url(port)));
  EXPECT_THAT(log, HasSubstr("attempt=1 in_ms=500"));
  EXPECT_THAT(log, HasSubstr("attempt=2 in_ms=1000"));
  EXPECT_THAT(log, HasSubstr("attempt=3 in_ms=2000"));
  const std::vector<int> attempts = retryAttempts(log);
  EXPECT_EQ(attempts, (std::vector<int>{1, 2, 3})) << "one warning per back-off step:\n" << log;

  // The store comes up: the next attempt connects and the scheduler starts and leads.
  if (!startRedis(port)) return;
  ASSERT_TRUE(scheduler->waitForLog("scheduler starting", 15s)) << scheduler->log();
  bool leads = false;
  for (int i = 0; i < 100 && !leads; ++i) {
    const CommandOutput s = leoflow(config, "status --json");
    leads = s.exit_code == 0 && s.out.find("\"holder\": null") == std::string::npos;
    if (!leads) std::this_thread::sleep_for(100ms);
  }
  EXPECT_TRUE(leads) << "no leader after the store came up:\n" << scheduler->log();

  scheduler->signal(SIGTERM);
  const auto code = scheduler->wait(10s);
  ASSERT_TRUE(code.has_value()) << "SIGTERM did not end the scheduler:\n" << scheduler->log();
  EXPECT_EQ(*code, 0) << scheduler->log();
}

TEST_F(RedisCli, SigtermEndsASchedulerWaitingForItsStorePromptly) {
  const fs::path config = writeConfig(url(closedPort()));
  auto scheduler = startScheduler(config);
  ASSERT_TRUE(scheduler->waitForLog("retrying attempt=1", 10s)) << scheduler->log();
  const auto start = std::chrono::steady_clock::now();
  scheduler->signal(SIGTERM);
  const auto code = scheduler->wait(5s);
  ASSERT_TRUE(code.has_value()) << "still waiting for the store after SIGTERM:\n" << scheduler->log();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
  EXPECT_EQ(*code, 0) << "asked to stop, it stopped: " << scheduler->log();
  EXPECT_THAT(scheduler->log(), HasSubstr("stopped before the backends could be reached"));
}

TEST_F(RedisCli, SyncingAnInlineHttpTaskWithoutAnInlineRunnerWarnsAndSucceeds) {
  REQUIRE_REDIS_SERVER();
  const int port = closedPort();
  if (!startRedis(port)) return;
  const fs::path config = writeConfig(url(port));
  const fs::path dag = dir_ / "hooks.json";
  std::ofstream(dag) << R"({"dag_id":"hooks","tasks":[{"task_id":"notify","type":"http_api",
                           "http_request":{"method":"POST","url":"https://hooks.example/x"}}]})";
  const CommandOutput r = leoflow(config, "dags sync '" + dag.string() + "'");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("dag hooks: version 1 (registered)"));
  EXPECT_THAT(r.err, HasSubstr("warning: " + dag.string() + ": task \"notify\": an inline http_api task, but " +
                               config.string() + " configures no [inline_runner]"));
}

// dags show and runs trigger --logical-date / --conf @file through the real binary and a real store
// (docs/architecture.md §8.14): the run's JSON carries the logical date, its DAG version and note.
TEST_F(RedisCli, DagsShowAndTriggerWithALogicalDateAndAConfFile) {
  REQUIRE_REDIS_SERVER();
  const int port = closedPort();
  if (!startRedis(port)) return;
  const fs::path config = writeConfig(url(port));
  const fs::path dag = dir_ / "etl.json";
  std::ofstream(dag) << R"({"dag_id":"etl","tasks":[{"task_id":"extract","type":"bash","entrypoint":"true"},
      {"task_id":"load","type":"bash","entrypoint":"true","depends_on":["extract"],"trigger_rule":"all_done"}]})";
  ASSERT_EQ(leoflow(config, "dags sync '" + dag.string() + "'").exit_code, 0);

  CommandOutput r = leoflow(config, "dags show etl --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr(R"("dag_id": "etl")"));
  EXPECT_THAT(r.out, HasSubstr(R"("version": 1)"));
  EXPECT_THAT(r.out, HasSubstr(R"("trigger_rule": "all_done")"));
  r = leoflow(config, "dags show etl --dot");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("digraph \"etl\" {"));
  EXPECT_THAT(r.out, HasSubstr("\"extract\" -> \"load\";"));
  r = leoflow(config, "dags show etl");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("dag etl: version 1, manual, not paused"));
  r = leoflow(config, "dags show ghost");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("unknown dag \"ghost\""));

  std::ofstream(dir_ / "conf.json") << R"({"day": "monday"})";
  r = leoflow(config, "runs trigger etl --run-id r1 --logical-date 2026-01-02T00:00:00Z --conf @conf.json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "r1\n");
  r = leoflow(config, "runs show r1 --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr(R"("logical_date": "2026-01-02T00:00:00Z")"));
  EXPECT_THAT(r.out, HasSubstr(R"("dag_version": 1)"));
  EXPECT_THAT(r.out, HasSubstr(R"("note": "")"));
  r = leoflow(config, "runs list --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr(R"("dag_version": 1)"));
  EXPECT_THAT(r.out, HasSubstr(R"("note": "")"));

  std::ofstream(dir_ / "broken.json") << "{\"day\": ";
  r = leoflow(config, "runs trigger etl --run-id r2 --conf @broken.json");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("--conf @broken.json: malformed JSON"));
  r = leoflow(config, "runs trigger etl --run-id r2 --conf @nowhere.json");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("cannot read nowhere.json"));
  r = leoflow(config, "runs trigger etl --run-id backfill__2026-01-02T00:00:00Z");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("is reserved"));
  r = leoflow(config, "runs show r2");
  EXPECT_EQ(r.exit_code, 2) << "nothing was created by the refused triggers";
}

}  // namespace
}  // namespace leoflow::testing
