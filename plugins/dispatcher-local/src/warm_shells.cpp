#include "warm_shells.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <set>
#include <string_view>

#include "process.h"

namespace leoflow::plugins::dispatcher_local {
namespace {

using namespace std::chrono_literals;

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

bool exited(const WarmShell& shell) { return !shell.pidfd.valid() || pidfdExited(shell.pidfd.get()); }

bool waitExit(const WarmShell& shell, std::chrono::milliseconds wait) {
  if (!shell.pidfd.valid()) return true;
  pollfd p{shell.pidfd.get(), POLLIN, 0};
  int rc;
  do {
    rc = ::poll(&p, 1, static_cast<int>(wait.count()));
  } while (rc < 0 && errno == EINTR);
  return rc > 0;
}

// One shell word: single quotes, each ' written as '\''.
void appendQuoted(std::string& out, std::string_view word) {
  out.push_back('\'');
  for (const char c : word) {
    if (c == '\'') {
      out.append("'\\''");
    } else {
      out.push_back(c);
    }
  }
  out.push_back('\'');
}

bool hasNul(std::string_view s) { return s.find('\0') != std::string_view::npos; }

}  // namespace

std::optional<std::pair<std::vector<std::string>, std::vector<std::string>>> environmentDelta(
    const std::map<std::string, std::string>& parent, const std::vector<std::string>& target) {
  // Both walked in name order at once, nothing copied but what goes into the delta: this runs for
  // every attempt, against the scheduler's whole environment.
  std::vector<std::pair<std::string_view, std::string_view>> wanted;  // name, value
  wanted.reserve(target.size());
  for (const std::string& entry : target) {
    const std::size_t eq = entry.find('=');
    if (eq == std::string::npos) return std::nullopt;
    wanted.emplace_back(std::string_view(entry).substr(0, eq), std::string_view(entry).substr(eq + 1));
  }
  if (!std::is_sorted(wanted.begin(), wanted.end())) std::sort(wanted.begin(), wanted.end());
  std::vector<std::string> exports;
  std::vector<std::string> unsets;
  auto have = parent.begin();
  for (auto it = wanted.begin(); it != wanted.end(); ++it) {
    const auto [name, value] = *it;
    if (it != wanted.begin() && std::prev(it)->first == name) return std::nullopt;  // named twice
    for (; have != parent.end() && std::string_view(have->first) < name; ++have) {
      if (!changeable(have->first)) return std::nullopt;
      unsets.push_back(have->first);
    }
    if (have != parent.end() && have->first == name) {
      const bool same = have->second == value;
      ++have;
      if (same) continue;
    }
    if (!changeable(name)) return std::nullopt;
    exports.emplace_back(name).append("=").append(value);
  }
  for (; have != parent.end(); ++have) {
    if (!changeable(have->first)) return std::nullopt;
    unsets.push_back(have->first);
  }
  return std::make_pair(std::move(exports), std::move(unsets));
}

std::filesystem::path warmLaunchPath(const std::filesystem::path& launch_dir, pid_t pid) {
  return launch_dir / (".warm-" + std::to_string(pid) + ".sh");
}

bool feedWarmShell(WarmShell& shell, const WarmLaunch& launch, const std::filesystem::path& launch_dir) {
  if (hasNul(launch.entrypoint) || hasNul(launch.exit_path.native()) || hasNul(launch.log_path.native())) return false;
  std::string script = "__leoflow_exit=";
  appendQuoted(script, launch.exit_path.native());
  for (const std::string& e : launch.exports) {
    if (hasNul(e)) return false;
    script += "\nexport ";
    appendQuoted(script, e);
  }
  for (const std::string& u : launch.unsets) {
    script += "\nunset -v ";
    appendQuoted(script, u);
  }
  script += "\n__leoflow_entry=";
  appendQuoted(script, launch.entrypoint);
  script += "\nexec </dev/null >>";
  appendQuoted(script, launch.log_path.native());
  script += " 2>&1\n";

  if (!shell.feed.valid() || exited(shell)) return false;
  const std::filesystem::path path = warmLaunchPath(launch_dir, shell.pid);
  {
    // Usually a spare file is there already (README "State files"): reused, and made private, as a
    // new file would be (the values may be secrets).
    UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    if (!fd.valid()) return false;
    ::fchmod(fd.get(), 0600);
    std::size_t written = 0;
    while (written < script.size()) {
      const ssize_t n = ::write(fd.get(), script.data() + written, script.size() - written);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      written += static_cast<std::size_t>(n);
    }
  }
  // The file is complete before the byte that makes the shell read it. MSG_NOSIGNAL: a shell that
  // died meanwhile must not raise SIGPIPE in the scheduler.
  ssize_t n;
  do {
    n = ::send(shell.feed.get(), "x", 1, MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  if (n != 1) {
    ::unlink(path.c_str());
    return false;
  }
  shell.feed.reset();
  return true;
}

void sweepWarmLaunches(const std::filesystem::path& launch_dir) {
  std::error_code ec;
  for (std::filesystem::directory_iterator it(launch_dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.rfind(".warm-", 0) != 0) continue;
    char* stop = nullptr;
    const long pid = std::strtol(name.c_str() + 6, &stop, 10);
    if (pid <= 1 || std::string_view(stop) != ".sh") continue;
    if (::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH) ::unlink(it->path().c_str());
  }
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

WarmShellPool::WarmShellPool(std::size_t size, std::string bash, const std::map<std::string, std::string>& env,
                             std::filesystem::path cwd, std::filesystem::path launch_dir,
                             std::shared_ptr<spdlog::logger> logger)
    : size_(size),
      bash_(std::move(bash)),
      env_([&] {
        std::vector<std::string> out;
        out.reserve(env.size());
        for (const auto& [name, value] : env) out.push_back(name + "=" + value);
        return out;
      }()),
      cwd_(std::move(cwd)),
      launch_dir_(std::move(launch_dir)),
      logger_(std::move(logger)) {
  if (size_ > 0) {
    filler_ = std::thread([this] {
      ::pthread_setname_np(::pthread_self(), "lf-warm-shells");
      fillLoop();
    });
  }
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

Result<WarmShell> WarmShellPool::startShell() {
  std::array<int, 2> fds{-1, -1};
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds.data()) != 0) {
    return unavailable(std::string("socketpair failed: ") + std::strerror(errno));
  }
  UniqueFd ours(fds[0]);
  UniqueFd theirs(fds[1]);
  auto pid = spawnWarmShell(bash_, env_, cwd_, launch_dir_, theirs.get());
  theirs.reset();
  if (!pid) return pid.status();
  WarmShell shell;
  shell.pid = *pid;
  shell.pidfd = openPidfd(*pid);
  const auto stat = readProcessStat(*pid);
  shell.start_ticks = stat ? stat->start_ticks : 0;
  shell.feed = std::move(ours);
  if (shell.pidfd.valid() && shell.start_ticks != 0) return shell;
  // Without a pidfd it could not be watched like a supervisor must be: not worth keeping.
  if (shell.pidfd.valid()) {
    retireWarmShell(shell, 1000ms);
  } else {
    shell.feed.reset();
    signalGroup(*pid, SIGKILL);
    ::waitpid(*pid, nullptr, 0);
  }
  return unavailable("the new shell could not be watched (no pidfd or no start time)");
}

void WarmShellPool::fillLoop() {
  bool warned = false;
  for (;;) {
    {
      std::unique_lock lock(mutex_);
      cv_.wait(lock, [&] { return stopping_ || ready_.size() < size_; });
      if (stopping_) return;
    }
    auto shell = startShell();
    std::unique_lock lock(mutex_);
    if (shell) {
      warned = false;
      const pid_t pid = shell->pid;
      ready_.push_back(std::move(*shell));
      lock.unlock();
      // Only now does take() hand it out: the shell's process was visible some time before.
      logger_->debug("warm shell ready pid={}", pid);
      continue;
    }
    if (!warned) logger_->warn("warm shell: starting one failed; tasks start cold error={}", shell.status().toString());
    warned = true;
    cv_.wait_for(lock, kRefillBackoff, [&] { return stopping_; });
  }
}

}  // namespace leoflow::plugins::dispatcher_local
