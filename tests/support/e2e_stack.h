// A whole leoflow deployment for end-to-end and chaos tests: a private store server (redis-server
// with AOF on, or a PostgreSQL cluster of its own; its own port and folder), config files, DAG files,
// `leoflow scheduler` processes the test can kill, stop and restart, and a ledger every task appends
// its attempt to — so a test can prove that no attempt ran twice.
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

/// The stores a stack can run on, each its plugin on a server of the stack's own: "redis"
/// (store-redis), "postgres" (store-postgres).
const std::vector<std::string>& e2eStores();

/// Why a stack on `store` cannot run on this machine — its plugin or dispatcher-local is not built,
/// or its server is not installed — or nullopt when it can.
std::optional<std::string> stackUnavailable(const std::string& store);

/// True when the environment says CI=true: there a test that cannot run fails instead of skipping
/// (ARCHITECTURE §8.10: in CI nothing may be skipped).
bool inCi();

/// A free TCP port on 127.0.0.1.
int freePort();

/// The server a stack's Store and Leader live on, which a test can restart under a running
/// scheduler. It knows the plugin that talks to it and the config keys that point that plugin here.
class StoreServer {
 public:
  virtual ~StoreServer() = default;
  StoreServer() = default;
  StoreServer(const StoreServer&) = delete;
  StoreServer& operator=(const StoreServer&) = delete;

  /// Starts the server on its port and data; returns once it answers. Throws when it does not.
  virtual void start() = 0;
  /// A graceful stop, returning once the server is gone; nothing written is lost.
  virtual void stop() = 0;
  /// Restarts it the way an operator would, on the same port and data; returns once it answers
  /// again. Sessions of clients are cut.
  virtual void restart() = 0;
  /// Stops every process of the server with SIGSTOP: connections stay open, nothing answers — a
  /// server that hangs. thaw() sends SIGCONT.
  virtual void freeze() = 0;
  virtual void thaw() = 0;
  virtual int port() const = 0;
  /// The store plugin's name ("store-redis").
  virtual std::string plugin() const = 0;
  /// The TOML keys of [store.config] and [leader.config] that reach this server, one per line.
  virtual std::string connectionToml() const = 0;
  /// The keys [leader.config] adds for a lease of `lease`.
  virtual std::string leaseToml(std::chrono::milliseconds lease) const = 0;
};

/// A redis-server of the test's own, with AOF (appendfsync everysec) so a restart loses nothing.
class RedisServer final : public StoreServer {
 public:
  explicit RedisServer(std::filesystem::path dir);
  ~RedisServer() override;
  void start() override;
  /// A graceful SHUTDOWN (ARCHITECTURE §8.9), waiting until the process is gone.
  void stop() override;
  /// SHUTDOWN, one second down (clients see refused connections), then started again.
  void restart() override;
  void freeze() override;
  void thaw() override;
  int port() const override { return port_; }
  std::string plugin() const override { return "store-redis"; }
  std::string connectionToml() const override;
  std::string leaseToml(std::chrono::milliseconds lease) const override;
  std::string url(int db = 0) const { return "redis://127.0.0.1:" + std::to_string(port_) + "/" + std::to_string(db); }

 private:
  std::filesystem::path dir_;
  int port_;
  std::unique_ptr<ChildProcess> process_;
};

/// A PostgreSQL cluster of the test's own (TOOLCHAIN: run as the `postgres` user when the test is
/// root; trust authentication; TCP on 127.0.0.1 and its socket in its own folder). The cluster is
/// copied from one initdb per test process: a stack's server is ready in 0.3–1 s on 2 busy cores
/// (an initdb of its own would take 1–2.5 s). The postmaster is daemonized by pg_ctl: a test process
/// killed outright leaves it running until someone stops it.
class PostgresServer final : public StoreServer {
 public:
  /// Creates the cluster in `dir` (which must not exist) and starts it.
  explicit PostgresServer(std::filesystem::path dir);
  /// Stops it at once (`pg_ctl stop -m immediate`): the data is thrown away with the folder.
  ~PostgresServer() override;
  void start() override;
  /// `pg_ctl stop -m fast`: sessions are cut, everything committed is kept.
  void stop() override;
  /// `pg_ctl restart -m fast`.
  void restart() override;
  /// The postmaster and every backend of it.
  void freeze() override;
  void thaw() override;
  int port() const override { return port_; }
  std::string plugin() const override { return "store-postgres"; }
  std::string connectionToml() const override;
  std::string leaseToml(std::chrono::milliseconds lease) const override;
  std::string dsn() const { return "postgresql://postgres@127.0.0.1:" + std::to_string(port_) + "/postgres"; }

 private:
  /// Runs `pg_ctl ARGS` on this cluster; throws with the server's log when it fails.
  void pgCtl(const std::string& args);

  std::filesystem::path dir_;  ///< owned by the server's user: data/, server.log, the socket
  int port_;
  bool running_ = false;
};

/// The server for `store` ("redis" or "postgres"), started, its files under `dir`.
std::unique_ptr<StoreServer> startStoreServer(const std::string& store, const std::filesystem::path& dir);

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
    std::string store = "redis";       ///< one of e2eStores()
    std::string extra_toml;            ///< appended to the config (an [http] section, ...)
    std::string extra_dispatcher_toml; ///< appended to [dispatcher.config]
  };

  explicit E2eStack(const std::string& tag);
  E2eStack(const std::string& tag, Options options);
  ~E2eStack();

  /// The store's server (a test restarts it).
  StoreServer& server() { return *server_; }
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
  /// Starts `leoflow scheduler` as if on another machine `host`: the same store, but a config of its
  /// own whose dispatcher-local state_dir, log_dir and work_dir lie under hosts/<host>/, so nothing
  /// on disk (state-file locks, adoption) is shared with the stack's other schedulers.
  std::unique_ptr<ChildProcess> startSchedulerOnHost(const std::string& name, const std::string& host);

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
  /// Writes a config to `path` whose dispatcher keeps its folders under `host_dir`.
  void writeConfig(const std::filesystem::path& path, const std::filesystem::path& host_dir) const;

  TempDir dir_;
  Options options_;
  std::unique_ptr<StoreServer> server_;
  std::filesystem::path config_;
};

}  // namespace leoflow::testing
