#include "warm_shells.h"

#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <set>
#include <string_view>

#include "process.h"

namespace leoflow::plugins::dispatcher_local {
namespace {

using namespace std::chrono_literals;

// Larger launches (a long inline script) start cold: bash reads a socket a byte at a time.
constexpr std::size_t kMaxWarmMessage = 16 * 1024;
constexpr auto kRefillBackoff = 1s;

// Variables bash reads once at start-up, or that decide which bash runs: a warm shell would not
// honour a change to them the way a fresh `bash -c` does.
const std::set<std::string, std::less<>>& startupVariables() {
  static const std::set<std::string, std::less<>> names = {
      "BASH_ENV", "ENV",   "SHELLOPTS", "BASHOPTS", "POSIXLY_CORRECT", "PATH",
      "IFS",      "PS4",   "SHLVL",     "BASH_XTRACEFD", "BASH_COMPAT", "TMOUT"};
  return names;
}

bool isIdentifier(std::string_view name) {
  if (name.empty() || (name[0] >= '0' && name[0] <= '9')) return false;
  for (const char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
    if (!ok) return false;
  }
  return true;
}

bool changeable(std::string_view name) {
  return isIdentifier(name) && startupVariables().count(name) == 0 && name.substr(0, 10) != "__leoflow_";
}

bool exited(const WarmShell& shell) {
  if (!shell.pidfd.valid()) return true;
  pollfd p{shell.pidfd.get(), POLLIN, 0};
  return ::poll(&p, 1, 0) > 0;
}

bool waitExit(const WarmShell& shell, std::chrono::milliseconds wait) {
  if (!shell.pidfd.valid()) return true;
  pollfd p{shell.pidfd.get(), POLLIN, 0};
  int rc;
  do {
    rc = ::poll(&p, 1, static_cast<int>(wait.count()));
  } while (rc < 0 && errno == EINTR);
  return rc > 0;
}

void appendField(std::string& out, std::string_view field) {
  out.append(field);
  out.push_back('\0');
}

}  // namespace

std::optional<std::pair<std::vector<std::string>, std::vector<std::string>>> environmentDelta(
    const std::map<std::string, std::string>& parent, const std::vector<std::string>& target) {
  std::vector<std::string> exports;
  std::set<std::string_view> named;
  for (const std::string& entry : target) {
    const std::size_t eq = entry.find('=');
    if (eq == std::string::npos) return std::nullopt;
    const std::string_view name(entry.data(), eq);
    named.insert(name);
    const auto it = parent.find(std::string(name));
    if (it != parent.end() && it->second == std::string_view(entry).substr(eq + 1)) continue;
    if (!changeable(name)) return std::nullopt;
    exports.push_back(entry);
  }
  std::vector<std::string> unsets;
  for (const auto& [name, value] : parent) {
    if (named.count(name) != 0) continue;
    if (!changeable(name)) return std::nullopt;
    unsets.push_back(name);
  }
  return std::make_pair(std::move(exports), std::move(unsets));
}

bool feedWarmShell(WarmShell& shell, const WarmLaunch& launch) {
  std::string message;
  appendField(message, launch.exit_path.string());
  appendField(message, launch.log_path.string());
  appendField(message, std::to_string(launch.exports.size()));
  for (const std::string& e : launch.exports) appendField(message, e);
  appendField(message, std::to_string(launch.unsets.size()));
  for (const std::string& u : launch.unsets) appendField(message, u);
  appendField(message, launch.entrypoint);
  // A NUL inside a field would split it: such a task starts cold.
  const std::size_t fields = 5 + launch.exports.size() + launch.unsets.size();
  if (message.size() > kMaxWarmMessage || static_cast<std::size_t>(std::count(message.begin(), message.end(), '\0')) != fields) {
    return false;
  }
  if (!shell.feed.valid() || exited(shell)) return false;
  std::size_t sent = 0;
  while (sent < message.size()) {
    // MSG_NOSIGNAL: a shell that died meanwhile must not raise SIGPIPE in the scheduler.
    const ssize_t n = ::send(shell.feed.get(), message.data() + sent, message.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    sent += static_cast<std::size_t>(n);
  }
  shell.feed.reset();
  return true;
}

void retireWarmShell(WarmShell& shell, std::chrono::milliseconds wait) {
  shell.feed.reset();  // EOF: the shell exits 0
  if (!waitExit(shell, wait)) {
    signalGroup(shell.pid, SIGKILL);
    waitExit(shell, 1000ms);
  }
  if (shell.pidfd.valid()) reapChild(shell.pidfd.get());
  shell.pidfd.reset();
}

WarmShellPool::WarmShellPool(std::size_t size, const std::map<std::string, std::string>& env,
                             std::filesystem::path cwd, std::shared_ptr<spdlog::logger> logger)
    : size_(size),
      env_([&] {
        std::vector<std::string> out;
        out.reserve(env.size());
        for (const auto& [name, value] : env) out.push_back(name + "=" + value);
        return out;
      }()),
      cwd_(std::move(cwd)),
      logger_(std::move(logger)) {
  if (size_ > 0) filler_ = std::thread([this] { fillLoop(); });
}

WarmShellPool::~WarmShellPool() { stop(); }

std::optional<WarmShell> WarmShellPool::take() {
  std::vector<WarmShell> dead;
  std::optional<WarmShell> out;
  {
    std::lock_guard lock(mutex_);
    while (!ready_.empty()) {
      WarmShell shell = std::move(ready_.front());
      ready_.pop_front();
      if (exited(shell)) {
        dead.push_back(std::move(shell));  // killed while waiting: reaped below, replaced
        continue;
      }
      out = std::move(shell);
      break;
    }
  }
  cv_.notify_all();
  for (WarmShell& shell : dead) retireWarmShell(shell, 0ms);
  return out;
}

void WarmShellPool::giveBack(WarmShell shell) {
  {
    std::lock_guard lock(mutex_);
    if (!stopping_ && ready_.size() < size_) {
      ready_.push_back(std::move(shell));
      return;
    }
  }
  retireWarmShell(shell, 1000ms);
}

void WarmShellPool::stop() {
  {
    std::lock_guard lock(mutex_);
    if (stopping_ && !filler_.joinable()) return;
    stopping_ = true;
  }
  cv_.notify_all();
  if (filler_.joinable()) filler_.join();
  std::deque<WarmShell> left;
  {
    std::lock_guard lock(mutex_);
    left.swap(ready_);
  }
  for (WarmShell& shell : left) shell.feed.reset();  // all at once: they exit in parallel
  for (WarmShell& shell : left) retireWarmShell(shell, 1000ms);
}

void WarmShellPool::fillLoop() {
  bool warned = false;
  for (;;) {
    {
      std::unique_lock lock(mutex_);
      cv_.wait(lock, [&] { return stopping_ || ready_.size() < size_; });
      if (stopping_) return;
    }
    std::array<int, 2> fds{-1, -1};
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds.data()) != 0) {
      logger_->warn("warm shell: socketpair failed error={}", std::strerror(errno));
      std::unique_lock lock(mutex_);
      cv_.wait_for(lock, kRefillBackoff, [&] { return stopping_; });
      continue;
    }
    UniqueFd ours(fds[0]);
    UniqueFd theirs(fds[1]);
    auto pid = spawnWarmShell(env_, cwd_, theirs.get());
    theirs.reset();
    if (!pid) {
      if (!warned) logger_->warn("warm shell: starting one failed; tasks start cold error={}", pid.status().toString());
      warned = true;
      std::unique_lock lock(mutex_);
      cv_.wait_for(lock, kRefillBackoff, [&] { return stopping_; });
      continue;
    }
    warned = false;
    WarmShell shell;
    shell.pid = *pid;
    shell.pidfd = openPidfd(*pid);
    const auto stat = readProcessStat(*pid);
    shell.start_ticks = stat ? stat->start_ticks : 0;
    shell.feed = std::move(ours);
    if (!shell.pidfd.valid() || shell.start_ticks == 0) {
      // Without a pidfd it could not be watched like a supervisor must be: not worth keeping.
      if (shell.pidfd.valid()) {
        retireWarmShell(shell, 1000ms);
      } else {
        shell.feed.reset();
        signalGroup(*pid, SIGKILL);
        ::waitpid(*pid, nullptr, 0);
      }
      std::unique_lock lock(mutex_);
      cv_.wait_for(lock, kRefillBackoff, [&] { return stopping_; });
      continue;
    }
    std::lock_guard lock(mutex_);
    ready_.push_back(std::move(shell));
  }
}

}  // namespace leoflow::plugins::dispatcher_local
