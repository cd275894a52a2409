// A whole leoflow deployment for end-to-end and chaos tests: a private redis-server (AOF on, its
// own port and folder), config files, DAG files, `leoflow scheduler` processes the test can kill,
// stop and restart, and a ledger every task appends its attempt to — so a test can prove that no
// attempt ran twice.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "support/run_command.h"

namespace leoflow::testing {

/// A folder removed with everything in it when the object goes.
class TempDir {
 public:
  explicit TempDir(const std::string& tag);
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

/// A child process with its output in a log file. Killed (SIGKILL) when the object goes.
class ChildProcess {
 public:
  ChildProcess(std::vector<std::string> argv, std::map<std::string, std::string> env,
               std::filesystem::path log_file);
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const { return pid_; }
  void signal(int sig);
  /// Waits for the exit; the exit code, 128 + signal when killed, nullopt on timeout.
  std::optional<int> wait(std::chrono::milliseconds timeout);
  bool running();
  std::string log() const;

 private:
  pid_t pid_ = -1;
  std::optional<int> status_;
  std::filesystem::path log_file_;
};

/// True when this build has the two plugins of the dev stack, store-redis and dispatcher-local.
bool devStackPluginsBuilt();

/// Skips the test when the dev stack's plugins are not built.
#define REQUIRE_STACK()                 \
  if (!::leoflow::testing::devStackPluginsBuilt()) \
  GTEST_SKIP() << "store-redis or dispatcher-local is not built"

/// A free TCP port on 127.0.0.1.
int freePort();

/// A redis-server of the test's own, with AOF (appendfsync everysec) so a restart loses nothing.
class RedisServer {
 public:
  explicit RedisServer(std::filesystem::path dir);
  ~RedisServer();
  void start();
  /// A graceful SHUTDOWN (ARCHITECTURE §8.9), waiting until the process is gone.
  void shutdown();
  std::string url(int db = 0) const { return "redis://127.0.0.1:" + std::to_string(port_) + "/" + std::to_string(db); }
  int port() const { return port_; }

 private:
  std::filesystem::path dir_;
  int port_;
  std::unique_ptr<ChildProcess> process_;
};

/// Everything a test deployment needs, in one temporary folder.
class E2eStack {
 public:
  struct Options {
    std::chrono::milliseconds tick{200};
    std::chrono::milliseconds lease{1500};
    double orphan_threshold_s = 60;
    double agent_lost_threshold_s = 6;
    double dispatch_lost_threshold_s = 30;
    int max_parallel = 8;
    std::string extra_scheduler_toml;  ///< appended to [scheduler]
    std::string work_dir;              ///< where tasks run; empty = the stack's own folder
  };

  explicit E2eStack(const std::string& tag);
  E2eStack(const std::string& tag, Options options);
  ~E2eStack();

  RedisServer& redis() { return *redis_; }
  const std::filesystem::path& dir() const { return dir_.path(); }
  /// The config every command and scheduler of this stack uses.
  const std::filesystem::path& config() const { return config_; }
  /// The ledger tasks append "run_id/task_id/try" lines to.
  std::filesystem::path ledger() const { return dir() / "ledger.txt"; }

  /// Writes a DAG file into the stack's dags folder; returns its path.
  std::filesystem::path writeDag(const nlohmann::json& dag);
  /// A bash entrypoint that records its attempt in the ledger, sleeps, then runs `then`.
  std::string ledgerTask(double sleep_s = 0, const std::string& then = "true") const;

  /// `leoflow ARGS...` with this stack's config.
  CommandOutput leoflow(const std::string& args, const std::string& stdin_text = "");
  /// Starts `leoflow scheduler` (named for its log file).
  std::unique_ptr<ChildProcess> startScheduler(const std::string& name);

  /// `runs show --json` until the run's state is terminal; the final JSON, or nullopt on timeout.
  std::optional<nlohmann::json> waitForRun(const std::string& dag_id, const std::string& run_id,
                                           std::chrono::milliseconds timeout);
  /// Polls `leoflow status --json` until `pred` holds.
  std::optional<nlohmann::json> waitForStatus(const std::function<bool(const nlohmann::json&)>& pred,
                                              std::chrono::milliseconds timeout);

  std::vector<std::string> ledgerLines() const;
  /// Ledger lines that appear more than once (attempts that ran twice).
  std::vector<std::string> duplicateAttempts() const;

 private:
  void writeConfig();

  TempDir dir_;
  Options options_;
  std::unique_ptr<RedisServer> redis_;
  std::filesystem::path config_;
};

}  // namespace leoflow::testing
