#include "support/e2e_stack.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <mutex>
#include <random>
#include <set>
#include <sstream>
#include <stdexcept>
#include <thread>

extern char** environ;

namespace leoflow::testing {
namespace fs = std::filesystem;
using namespace std::chrono_literals;

TempDir::TempDir(const std::string& tag) {
  std::random_device rd;
  path_ = fs::temp_directory_path() / ("leoflow-" + tag + "-" + std::to_string(getpid()) + "-" + std::to_string(rd() % 100000));
  fs::create_directories(path_);
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

ChildProcess::ChildProcess(std::vector<std::string> argv, std::map<std::string, std::string> env, fs::path log_file)
    : log_file_(std::move(log_file)) {
  std::map<std::string, std::string> merged;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string kv = *e;
    auto eq = kv.find('=');
    if (eq != std::string::npos) merged[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  for (auto& [k, v] : env) merged[k] = v;
  std::vector<std::string> env_strings;
  for (auto& [k, v] : merged) env_strings.push_back(k + "=" + v);
  std::vector<char*> envp, args;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  for (auto& s : argv) args.push_back(s.data());
  args.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, log_file_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  const int rc = posix_spawnp(&pid_, args[0], &actions, nullptr, args.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) throw std::runtime_error("cannot start " + argv[0] + ": " + std::strerror(rc));
}

ChildProcess::~ChildProcess() {
  if (running()) {
    ::kill(pid_, SIGKILL);
    wait(5s);
  }
}

void ChildProcess::signal(int sig) {
  if (!status_) ::kill(pid_, sig);
}

std::optional<int> ChildProcess::wait(std::chrono::milliseconds timeout) {
  const auto until = std::chrono::steady_clock::now() + timeout;
  while (!status_) {
    int st = 0;
    const pid_t r = waitpid(pid_, &st, WNOHANG);
    if (r == pid_) {
      status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
      break;
    }
    if (std::chrono::steady_clock::now() >= until) return std::nullopt;
    std::this_thread::sleep_for(5ms);
  }
  return status_;
}

bool ChildProcess::running() { return !wait(0ms).has_value(); }

std::string ChildProcess::log() const {
  std::ifstream in(log_file_);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

const std::vector<std::string>& e2eStores() {
  static const std::vector<std::string> stores{"redis", "postgres"};
  return stores;
}

bool inCi() {
  const char* ci = std::getenv("CI");
  return ci != nullptr && std::string(ci) == "true";
}

namespace {

// The PostgreSQL server programs (Debian keeps them off PATH, in /usr/lib/postgresql/VERSION/bin);
// the newest version when several are installed; empty when none is.
const fs::path& postgresBinDir() {
  static const fs::path dir = [] {
    fs::path best;
    int best_version = -1;
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator("/usr/lib/postgresql", ec)) {
      const std::string name = entry.path().filename().string();
      if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
      if (!fs::exists(entry.path() / "bin" / "pg_ctl") || !fs::exists(entry.path() / "bin" / "initdb")) continue;
      if (std::stoi(name) > best_version) {
        best_version = std::stoi(name);
        best = entry.path() / "bin";
      }
    }
    return best;
  }();
  return dir;
}

// TOOLCHAIN: PostgreSQL refuses to run as root, so a root test runs its server commands as the
// `postgres` user, from `/` (the test's own folder may be closed to that user).
bool serverUserIsPostgres() { return geteuid() == 0; }

std::string asServerUser(const std::string& command) {
  return "cd / && " + (serverUserIsPostgres() ? "runuser -u postgres -- " + command : command);
}

void giveToServerUser(const fs::path& p) {
  if (!serverUserIsPostgres()) return;
  const passwd* pw = getpwnam("postgres");
  if (pw == nullptr || chown(p.c_str(), pw->pw_uid, pw->pw_gid) != 0) {
    throw std::runtime_error("cannot give " + p.string() + " to the postgres user");
  }
}

std::string quoted(const fs::path& p) { return "'" + p.string() + "'"; }

// Why the host cannot load plugin `name` (not built, or refused: `plugins describe` says why).
std::optional<std::string> pluginMissing(const std::string& name) {
  auto r = runCommand(leoflowBinary() + " plugins describe " + name);
  if (r.exit_code == 0) return std::nullopt;
  std::string why = r.err.substr(0, r.err.find('\n'));
  return "the " + name + " plugin is not built or not loadable" + (why.empty() ? "" : ": " + why);
}

std::optional<std::string> computeUnavailable(const std::string& store) {
  if (store == "redis") {
    if (auto why = pluginMissing("store-redis")) return why;
    if (runCommand("command -v redis-server && command -v redis-cli").exit_code != 0) {
      return "redis-server or redis-cli is not installed (./dev setup installs them)";
    }
  } else if (store == "postgres") {
    if (auto why = pluginMissing("store-postgres")) return why;
    if (postgresBinDir().empty()) return "PostgreSQL is not installed: no /usr/lib/postgresql/*/bin/pg_ctl";
    if (serverUserIsPostgres() && getpwnam("postgres") == nullptr) {
      return "the tests run as root and there is no postgres user to run PostgreSQL as";
    }
  } else {
    return "unknown store \"" + store + "\"";
  }
  return pluginMissing("dispatcher-local");
}

}  // namespace

std::optional<std::string> stackUnavailable(const std::string& store) {
  static std::mutex mutex;
  static std::map<std::string, std::optional<std::string>> known;
  const std::lock_guard lock(mutex);
  auto it = known.find(store);
  if (it == known.end()) it = known.emplace(store, computeUnavailable(store)).first;
  return it->second;
}

int freePort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  const int port = ntohs(addr.sin_port);
  close(fd);
  return port;
}

RedisServer::RedisServer(fs::path dir) : dir_(std::move(dir)), port_(freePort()) {
  fs::create_directories(dir_);
  start();
}

RedisServer::~RedisServer() {
  if (process_) process_->signal(SIGKILL);
}

void RedisServer::start() {
  process_ = std::make_unique<ChildProcess>(
      std::vector<std::string>{"redis-server", "--bind", "127.0.0.1", "--port", std::to_string(port_), "--dir",
                               dir_.string(), "--appendonly", "yes", "--appendfsync", "everysec", "--save", "",
                               "--daemonize", "no"},
      std::map<std::string, std::string>{}, dir_ / "redis.log");
  for (int i = 0; i < 500; ++i) {
    if (runCommand("redis-cli -p " + std::to_string(port_) + " ping").out.find("PONG") != std::string::npos) return;
    std::this_thread::sleep_for(10ms);
  }
  throw std::runtime_error("redis-server did not start on port " + std::to_string(port_));
}

void RedisServer::stop() {
  runCommand("redis-cli -p " + std::to_string(port_) + " shutdown");
  process_->wait(10s);
  process_.reset();
}

void RedisServer::restart() {
  stop();
  std::this_thread::sleep_for(1s);
  start();
}

void RedisServer::freeze() { process_->signal(SIGSTOP); }

void RedisServer::thaw() { process_->signal(SIGCONT); }

std::string RedisServer::connectionToml() const { return "url = \"" + url() + "\"\n"; }

std::string RedisServer::leaseToml(std::chrono::milliseconds lease) const {
  return "lease_ms = " + std::to_string(lease.count()) + "\n";
}

namespace {

// One initdb per test process (0.7–2 s on 2 cores, busy); each server copies its data folder
// (0.15 s, more while other builds write to the disk) — 1 MB WAL segments keep that folder at 28 MB
// instead of 39. The template is removed when the process exits.
const fs::path& postgresTemplate() {
  static const std::unique_ptr<TempDir> dir = [] {
    auto d = std::make_unique<TempDir>("pg-template");
    giveToServerUser(d->path());
    const fs::path data = d->path() / "data";
    auto r = runCommand(asServerUser(quoted(postgresBinDir() / "initdb") + " -D " + quoted(data) +
                                     " -U postgres -A trust --no-sync --no-instructions --wal-segsize=1"));
    if (r.exit_code != 0) throw std::runtime_error("initdb failed: " + r.out + r.err);
    return d;
  }();
  static const fs::path data = dir->path() / "data";
  return data;
}

}  // namespace

PostgresServer::PostgresServer(fs::path dir) : dir_(std::move(dir)), port_(freePort()) {
  if (postgresBinDir().empty()) throw std::runtime_error("PostgreSQL is not installed");
  const fs::path& data_template = postgresTemplate();
  fs::create_directories(dir_);
  // the server user must be able to reach its folder through the stack's own
  fs::permissions(dir_.parent_path(), fs::perms::others_exec, fs::perm_options::add);
  giveToServerUser(dir_);
  auto r = runCommand(asServerUser("cp -a " + quoted(data_template) + " " + quoted(dir_ / "data")));
  if (r.exit_code != 0) throw std::runtime_error("cannot copy the PostgreSQL cluster: " + r.err);
  start();
}

PostgresServer::~PostgresServer() {
  if (running_) runCommand(asServerUser(quoted(postgresBinDir() / "pg_ctl") + " -D " + quoted(dir_ / "data") +
                                        " -w -t 10 -m immediate stop"));
}

void PostgresServer::pgCtl(const std::string& args) {
  // -l always: without it a restarted server would write to this test's output
  auto r = runCommand(asServerUser(quoted(postgresBinDir() / "pg_ctl") + " -D " + quoted(dir_ / "data") + " -l " +
                                   quoted(dir_ / "server.log") + " -w -t 30 " + args));
  if (r.exit_code != 0) {
    std::ifstream in(dir_ / "server.log");
    std::stringstream log;
    log << in.rdbuf();
    throw std::runtime_error("pg_ctl " + args + " failed on port " + std::to_string(port_) + ": " + r.out + r.err +
                             "\nserver log:\n" + log.str());
  }
}

void PostgresServer::start() {
  pgCtl("-o \"-c listen_addresses=127.0.0.1 -p " + std::to_string(port_) + " -k " + dir_.string() + "\" start");
  running_ = true;
}

void PostgresServer::stop() {
  pgCtl("-m fast stop");
  running_ = false;
}

void PostgresServer::restart() {
  // the server keeps the options it was started with (postmaster.opts): same port, same socket
  pgCtl("-m fast restart");
  running_ = true;
}

namespace {

// The postmaster's pid: the first line of its data folder's postmaster.pid.
std::string postmasterPid(const fs::path& data) {
  std::ifstream in(data / "postmaster.pid");
  std::string pid;
  std::getline(in, pid);
  if (pid.empty()) throw std::runtime_error("no postmaster.pid in " + data.string());
  return pid;
}

}  // namespace

void PostgresServer::freeze() {
  // The postmaster first, so it starts no new backend while its children are being stopped.
  const std::string pid = postmasterPid(dir_ / "data");
  runCommand("kill -STOP " + pid + " && pkill -STOP -P " + pid);
}

void PostgresServer::thaw() {
  const std::string pid = postmasterPid(dir_ / "data");
  runCommand("pkill -CONT -P " + pid + "; kill -CONT " + pid);
}

std::string PostgresServer::connectionToml() const { return "dsn = \"" + dsn() + "\"\n"; }

std::string PostgresServer::leaseToml(std::chrono::milliseconds lease) const {
  // the lock session's idle timeout is the lease; the holder checks (and standbys try) thrice per lease
  return "lease_ms = " + std::to_string(lease.count()) + "\npoll_ms = " + std::to_string(lease.count() / 3) + "\n";
}

std::unique_ptr<StoreServer> startStoreServer(const std::string& store, const fs::path& dir) {
  if (store == "redis") return std::make_unique<RedisServer>(dir / "redis");
  if (store == "postgres") return std::make_unique<PostgresServer>(dir / "postgres");
  throw std::invalid_argument("unknown store \"" + store + "\" (one of redis, postgres)");
}

E2eStack::E2eStack(const std::string& tag) : E2eStack(tag, Options{}) {}

E2eStack::E2eStack(const std::string& tag, Options options)
    : dir_(tag + "-" + options.store), options_(std::move(options)) {
  fs::create_directories(dir() / "dags");
  server_ = startStoreServer(options_.store, dir());
  config_ = dir() / "leoflow.toml";
  writeConfig(config_, dir());
}

E2eStack::~E2eStack() = default;

void E2eStack::writeConfig(const fs::path& path, const fs::path& host_dir) const {
  std::ofstream f(path);
  f << "[scheduler]\n"
    << "tick_interval_ms = " << options_.tick.count() << "\n"
    << "orphan_threshold_s = " << options_.orphan_threshold_s << "\n"
    << "agent_lost_threshold_s = " << options_.agent_lost_threshold_s << "\n"
    << "dispatch_lost_threshold_s = " << options_.dispatch_lost_threshold_s << "\n"
    << "shutdown_grace_ms = 3000\n"
    << options_.extra_scheduler_toml << "\n"
    << "[store]\nplugin = \"" << server_->plugin() << "\"\n[store.config]\n" << server_->connectionToml()
    << "[leader]\nplugin = \"" << server_->plugin() << "\"\n[leader.config]\n" << server_->connectionToml()
    << server_->leaseToml(options_.lease)
    << "[dispatcher]\nplugin = \"dispatcher-local\"\n[dispatcher.config]\n"
    << "max_parallel = " << options_.max_parallel << "\n"
    << "work_dir = \"" << (options_.work_dir.empty() ? (host_dir / "work").string() : options_.work_dir) << "\"\n"
    << "log_dir = \"" << (host_dir / "logs").string() << "\"\n"
    << "state_dir = \"" << (host_dir / "state").string() << "\"\n"
    << options_.extra_dispatcher_toml << "\n"
    << options_.extra_toml << "\n";
}

fs::path E2eStack::writeDag(const nlohmann::json& dag) {
  const fs::path p = dir() / "dags" / (dag.at("dag_id").get<std::string>() + ".json");
  std::ofstream(p) << dag.dump(2);
  return p;
}

std::string E2eStack::ledgerTask(double sleep_s, const std::string& then) const {
  std::ostringstream s;
  s << "echo \"$LEOFLOW_RUN_ID/$LEOFLOW_TASK_ID/$LEOFLOW_TRY_NUMBER\" >> " << ledger().string();
  if (sleep_s > 0) s << " && sleep " << sleep_s;
  s << " && " << then;
  return s.str();
}

CommandOutput E2eStack::leoflow(const std::string& args, const std::string& stdin_text) {
  return runCommand("LEOFLOW_CONFIG=" + config_.string() + " " + leoflowBinary() + " " + args, stdin_text);
}

std::unique_ptr<ChildProcess> E2eStack::startScheduler(const std::string& name) {
  return std::make_unique<ChildProcess>(std::vector<std::string>{leoflowBinary(), "scheduler"},
                                        std::map<std::string, std::string>{{"LEOFLOW_CONFIG", config_.string()}},
                                        dir() / (name + ".log"));
}

std::unique_ptr<ChildProcess> E2eStack::startSchedulerOnHost(const std::string& name, const std::string& host) {
  const fs::path host_dir = dir() / "hosts" / host;
  fs::create_directories(host_dir);
  const fs::path config = host_dir / "leoflow.toml";
  writeConfig(config, host_dir);
  return std::make_unique<ChildProcess>(std::vector<std::string>{leoflowBinary(), "scheduler"},
                                        std::map<std::string, std::string>{{"LEOFLOW_CONFIG", config.string()}},
                                        dir() / (name + ".log"));
}

std::optional<nlohmann::json> E2eStack::waitForRun(const std::string& dag_id, const std::string& run_id,
                                                   std::chrono::milliseconds timeout) {
  const auto until = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < until) {
    auto r = leoflow("runs show " + run_id + " --dag " + dag_id + " --json");
    if (r.exit_code == 0) {
      auto j = nlohmann::json::parse(r.out, nullptr, false);
      if (!j.is_discarded() && (j["state"] == "success" || j["state"] == "failed")) return j;
    }
    std::this_thread::sleep_for(100ms);
  }
  return std::nullopt;
}

std::optional<nlohmann::json> E2eStack::waitForStatus(const std::function<bool(const nlohmann::json&)>& pred,
                                                      std::chrono::milliseconds timeout) {
  const auto until = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < until) {
    auto r = leoflow("status --json");
    if (r.exit_code == 0) {
      auto j = nlohmann::json::parse(r.out, nullptr, false);
      if (!j.is_discarded() && pred(j)) return j;
    }
    std::this_thread::sleep_for(50ms);
  }
  return std::nullopt;
}

std::vector<std::string> E2eStack::ledgerLines() const {
  std::vector<std::string> lines;
  std::ifstream in(ledger());
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) lines.push_back(line);
  }
  return lines;
}

std::vector<std::string> E2eStack::duplicateAttempts() const {
  std::set<std::string> seen;
  std::vector<std::string> twice;
  for (const std::string& l : ledgerLines()) {
    if (!seen.insert(l).second) twice.push_back(l);
  }
  return twice;
}

}  // namespace leoflow::testing
