#include "process.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <mutex>
#include <unordered_map>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include <fmt/format.h>

namespace leoflow::plugins::dispatcher_local {
namespace {

// $1 is the exit file, the rest the task's argv. `trap :` (a handler, not an ignore) keeps the
// shell waiting on SIGTERM while the task, after exec, gets default dispositions back.
constexpr const char* kShSupervisorScript =
    "f=$1; shift; trap : TERM INT HUP; \"$@\"; rc=$?; echo \"$rc\" > \"$f\"; exit \"$rc\"";

// $1 is the exit file, $2 the entrypoint, run in this shell: no second exec. The EXIT trap sees
// the script's status however it ends (its end, `exit N`, set -e); a fatal signal would run it
// with $? = 0, hence the explicit TERM/INT/HUP traps. The entrypoint sees no positional
// parameters and none of the helper variables, as under `bash -c`. Without fork: printf -v.
// `>|`: the exit file is usually there already, empty (a spare, README "State files"), and a task
// that ran `set -C` (noclobber) must not keep its code from being recorded.
constexpr const char* kBashSupervisorScript =
    "printf -v __leoflow_exit 'echo $? >| %q' \"$1\"; trap \"$__leoflow_exit\" EXIT; "
    "trap 'exit 143' TERM; trap 'exit 130' INT; trap 'exit 129' HUP; "
    "__leoflow_entry=$2; shift 2; unset __leoflow_exit; "
    "eval \"unset __leoflow_entry; $__leoflow_entry\"";

// A warm shell (README "Warm shells"): $2 is the state dir. It waits for one byte on stdin,
// then sources "$2/.warm-$$.sh" — written by the dispatcher just before that byte, it sets the exit file,
// the environment, the entrypoint and the log redirection — and becomes that attempt's bash
// supervisor, exactly as kBashSupervisorScript. A file is read in one go, where bash reads a
// socket a byte per system call. EOF instead of the byte (retired, or the dispatcher died): exit 0.
constexpr const char* kWarmShellScript =
    "IFS= read -r -n 1 __leoflow_go || exit 0; . \"$2/.warm-$$.sh\" || exit 0; "
    "printf -v __leoflow_exit 'echo $? >| %q' \"$__leoflow_exit\"; trap \"$__leoflow_exit\" EXIT; "
    "trap 'exit 143' TERM; trap 'exit 130' INT; trap 'exit 129' HUP; "
    "unset __leoflow_exit __leoflow_go; set --; "
    "eval \"unset __leoflow_entry; $__leoflow_entry\"";


// `name` in the folders of `path`, as a shell would find it. Empty when not found.
std::string searchPath(const std::string& name, std::string_view path) {
  while (true) {
    const std::size_t colon = path.find(':');
    std::string dir(path.substr(0, colon));
    if (dir.empty()) dir = ".";
    const std::string candidate = dir + "/" + name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    if (colon == std::string_view::npos) return {};
    path.remove_prefix(colon + 1);
  }
}

// findOnPath() answers from a cache for a second: every task would otherwise walk its PATH (an
// access() per folder) twice per start. A program installed or removed is seen within a second.
constexpr std::chrono::seconds kPathCacheFor{1};
constexpr std::size_t kPathCacheEntries = 64;

}  // namespace

std::string findOnPath(const std::string& name, const std::vector<std::string>& env) {
  if (name.find('/') != std::string::npos) return name;  // a path, as a shell takes it; execve says if it is none
  std::string_view path = "/usr/local/bin:/usr/bin:/bin";
  for (const std::string& e : env) {
    if (e.rfind("PATH=", 0) == 0) path = std::string_view(e).substr(5);
  }
  struct Found {
    std::string program;
    std::chrono::steady_clock::time_point at;
  };
  static std::mutex mutex;
  static std::unordered_map<std::string, Found> cache;
  std::string key = name;
  key.push_back('\0');
  key.append(path);
  const auto now = std::chrono::steady_clock::now();
  {
    std::lock_guard lock(mutex);
    if (auto it = cache.find(key); it != cache.end() && now - it->second.at < kPathCacheFor) return it->second.program;
  }
  std::string program = searchPath(name, path);
  std::lock_guard lock(mutex);
  if (cache.size() >= kPathCacheEntries) cache.clear();
  cache.insert_or_assign(std::move(key), Found{program, now});
  return program;
}

namespace {

std::string errnoText(int err) { return std::strerror(err); }

// Reads up to `limit` bytes of a small file (/proc entries); every descriptor we open is
// close-on-exec, so none leaks into a process another thread spawns meanwhile.
std::optional<std::string> readSmallFile(const char* path, std::size_t limit) {
  UniqueFd fd(::open(path, O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return std::nullopt;
  std::string out;
  char buf[4096];
  while (out.size() < limit) {
    const ssize_t n = ::read(fd.get(), buf, std::min(sizeof buf, limit - out.size()));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  return out;
}

// What the child does between vfork() and execve(), prepared by the parent: the child may only
// make system calls. It runs on the spawning thread's stack, in the scheduler's memory, while the
// scheduler's other threads go on — it must not allocate, take a lock or touch what they share.
struct ChildPlan {
  const char* program = nullptr;
  char* const* argv = nullptr;
  char* const* envp = nullptr;
  const char* cwd = nullptr;
  int stdin_fd = -1;  ///< -1: /dev/null
  int out_fd = -1;    ///< stdout and stderr; -1: /dev/null
  volatile int failed_errno = 0;  ///< set by the child when a step fails; read after vfork() returns
};

// `fd` as descriptor `target` of the child, inherited by the program it executes.
bool placeDescriptor(int fd, int target) {
  if (fd == target) return ::fcntl(fd, F_SETFD, 0) == 0;  // as posix_spawn's dup2: clears close-on-exec
  return ::dup2(fd, target) == target;
}

bool openDevNull(int target, int flags) {
  const int fd = ::open("/dev/null", flags);
  if (fd < 0) return false;
  if (fd == target) return true;
  const bool placed = ::dup2(fd, target) == target;
  ::close(fd);
  return placed;
}

// The child's way out when a step before execve fails: the parent reads why.
[[noreturn]] void failChild(ChildPlan& plan) {
  plan.failed_errno = errno != 0 ? errno : EINVAL;
  ::_exit(127);
}

[[noreturn]] void runChild(ChildPlan& plan) {
  if (::setsid() < 0) failChild(plan);
  // Every signal back to its default (the host may catch or ignore some: an ignored SIGPIPE or
  // SIGCHLD would be inherited). The handlers are the child's own copy: the scheduler keeps its.
  struct sigaction default_action {};
  default_action.sa_handler = SIG_DFL;
  sigemptyset(&default_action.sa_mask);
  for (int sig = 1; sig < NSIG; ++sig) {
    struct sigaction current {};
    if (sig == SIGKILL || sig == SIGSTOP || ::sigaction(sig, nullptr, &current) != 0) continue;
    if (current.sa_handler != SIG_DFL) ::sigaction(sig, &default_action, nullptr);
  }
  const bool stdin_placed =
      plan.stdin_fd >= 0 ? placeDescriptor(plan.stdin_fd, STDIN_FILENO) : openDevNull(STDIN_FILENO, O_RDONLY);
  if (!stdin_placed) failChild(plan);
  if (plan.out_fd >= 0) {
    if (!placeDescriptor(plan.out_fd, STDOUT_FILENO) || !placeDescriptor(plan.out_fd, STDERR_FILENO)) failChild(plan);
  } else if (!openDevNull(STDOUT_FILENO, O_WRONLY) || !placeDescriptor(STDOUT_FILENO, STDERR_FILENO)) {
    failChild(plan);
  }
  if (::chdir(plan.cwd) != 0) failChild(plan);
  ::closefrom(STDERR_FILENO + 1);
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  ::execve(plan.program, plan.argv, plan.envp);
  failChild(plan);
}

// Spawns `args` (args[0] the program's path) in a new session: its own process group (signalled as
// a whole), no controlling terminal, and not killed with the scheduler. Signal mask cleared and
// every signal back to its default. stdin is `stdin_fd` (-1: /dev/null); stdout and stderr are
// `out_fd` (-1: /dev/null). Nothing else of the scheduler's leaks in: not our state-file locks (a
// task holding one would look like a live dispatcher), not other plugins' sockets.
//
// vfork(), not posix_spawn(): both share the scheduler's memory until execve, but posix_spawn maps
// and unmaps a stack for its child on every call, and the unmap makes every CPU the scheduler's
// threads ran on flush its TLB — on a virtual machine, an interrupt to each (README "Processes and
// the supervisor"). The child here uses this thread's stack, which is suspended until execve.
Result<pid_t> spawnInSession(std::vector<std::string> args, const std::vector<std::string>& env,
                             const std::filesystem::path& cwd, int stdin_fd, int out_fd) {
  std::vector<char*> argv;
  argv.reserve(args.size() + 1);
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<char*> envp;
  envp.reserve(env.size() + 1);
  for (const std::string& e : env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  ChildPlan plan;
  plan.program = args[0].c_str();
  plan.argv = argv.data();
  plan.envp = envp.data();
  plan.cwd = cwd.c_str();
  plan.stdin_fd = stdin_fd;
  plan.out_fd = out_fd;

  // No handler of the scheduler's may run in the child while it borrows this thread's stack.
  sigset_t all;
  sigset_t previous;
  sigfillset(&all);
  ::pthread_sigmask(SIG_SETMASK, &all, &previous);
  const pid_t pid = ::vfork();
  if (pid == 0) runChild(plan);
  const int vfork_errno = errno;
  ::pthread_sigmask(SIG_SETMASK, &previous, nullptr);
  if (pid < 0) return unavailable(errnoText(vfork_errno) + " (starting " + args[0] + ")");
  if (const int failed = plan.failed_errno; failed != 0) {
    // The child exited before execve: reap it, as posix_spawn does, and say why.
    while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
    }
    return unavailable(errnoText(failed) + " (starting " + args[0] + ")");
  }
  return pid;
}

// The supervisor's program: the configured bash for a bash task, looked up on the task's PATH as a
// shell running `bash -c` would (empty when not found); /bin/sh otherwise.
std::string supervisorProgram(const std::vector<std::string>& argv, const std::vector<std::string>& env,
                              const std::string& bash) {
  return isBashEntrypoint(argv) ? findOnPath(bash, env) : "/bin/sh";
}

// The supervisor's argv. The same layout either way (argv[3] the name, argv[4] the exit file:
// findSupervisor()); a bash task's entrypoint is argv[5].
std::vector<std::string> supervisorArgs(const std::string& program, const std::vector<std::string>& argv,
                                        const std::filesystem::path& exit_path) {
  const bool bash = isBashEntrypoint(argv);
  std::vector<std::string> args;
  args.reserve(argv.size() + 5);
  args.push_back(program);
  args.emplace_back("-c");
  args.emplace_back(bash ? kBashSupervisorScript : kShSupervisorScript);
  args.emplace_back(kSupervisorName);
  args.push_back(exit_path.string());
  if (bash) {
    args.push_back(argv[2]);
  } else {
    args.insert(args.end(), argv.begin(), argv.end());
  }
  return args;
}

}  // namespace

Result<pid_t> spawnSupervised(const SpawnRequest& request) {
  const std::string program = supervisorProgram(request.argv, request.env, request.bash);
  if (program.empty()) return unavailable(request.bash + " not found on the task's PATH");
  return spawnInSession(supervisorArgs(program, request.argv, request.exit_path), request.env, request.cwd, -1,
                        request.log_fd);
}

Status checkCommandFits(const std::vector<std::string>& argv, const std::vector<std::string>& env,
                        const std::filesystem::path& exit_path, const std::string& bash) {
  std::string program = supervisorProgram(argv, env, bash);
  if (program.empty()) program = bash;  // not found: that is reported when it is started
  const std::vector<std::string> args = supervisorArgs(program, argv, exit_path);
  auto tooLarge = [](const std::string& what) {
    return invalidArgument("cannot start the command: " + errnoText(E2BIG) + " (" + what + ")");
  };
  // As fs/exec.c counts: every string with its NUL, at most MAX_ARG_STRLEN (32 pages) each; all of
  // them (the file name too) and a pointer each within a quarter of the stack limit, capped at
  // 3/4 of _STK_LIM (6 MiB) and never below ARG_MAX (32 pages).
  const long page_size = ::sysconf(_SC_PAGESIZE);
  const std::size_t page = page_size > 0 ? static_cast<std::size_t>(page_size) : 4096;
  const std::size_t max_string = 32 * page;
  const bool bash_task = isBashEntrypoint(argv);
  std::size_t total = program.size() + 1;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::size_t size = args[i].size() + 1;
    if (size > max_string) {
      const bool entrypoint = bash_task ? i == 5 : i + 1 == args.size();
      return tooLarge(fmt::format("{} is {} bytes; execve takes at most {} bytes per argument",
                                  entrypoint ? "the entrypoint" : "an argument", size - 1, max_string - 1));
    }
    total += size;
  }
  for (const std::string& e : env) {
    const std::size_t size = e.size() + 1;
    if (size > max_string) {
      return tooLarge(fmt::format("the environment variable {} is {} bytes; execve takes at most {} bytes per "
                                  "variable",
                                  e.substr(0, std::min(e.find('='), std::size_t{64})), size - 1, max_string - 1));
    }
    total += size;
  }
  std::size_t limit = std::size_t{6} << 20;
  rlimit stack{};
  if (::getrlimit(RLIMIT_STACK, &stack) == 0 && stack.rlim_cur != RLIM_INFINITY) {
    limit = std::min(limit, static_cast<std::size_t>(stack.rlim_cur / 4));
  }
  limit = std::max(limit, max_string);
  total += (args.size() + env.size()) * sizeof(char*);
  if (total > limit) {
    return tooLarge(fmt::format("the command line and environment take {} bytes; execve takes at most {} bytes", total,
                                limit));
  }
  return {};
}

Result<pid_t> spawnWarmShell(const std::string& bash, const std::vector<std::string>& env,
                             const std::filesystem::path& cwd, const std::filesystem::path& launch_dir, int feed_fd) {
  const std::string program = findOnPath(bash, env);
  if (program.empty()) return unavailable(bash + " not found on PATH");
  // --norc: bash reads ~/.bashrc when its stdin is a socket and SHLVL is below 2 (it takes itself for
  // a shell rshd started), as under a scheduler started by systemd; a cold start, stdin /dev/null,
  // never does, and neither may a warm one.
  return spawnInSession(
      {program, "--norc", "-c", kWarmShellScript, kSupervisorName, kWarmShellMark, launch_dir.string()}, env, cwd,
      feed_fd, -1);
}

std::optional<ProcessStat> readProcessStat(pid_t pid) {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/stat", static_cast<int>(pid));
  const auto content = readSmallFile(path, 4096);
  if (!content || content->empty()) return std::nullopt;
  std::string_view text(*content);
  // The command name (field 2) may contain spaces and parentheses: fields resume after the last ')'.
  const std::size_t close = text.rfind(')');
  if (close == std::string_view::npos || close + 2 >= text.size()) return std::nullopt;
  // Fields 3 on are separated by single spaces (fs/proc/array.c): no stream needed.
  text.remove_prefix(close + 2);
  ProcessStat stat;
  stat.state = text.front();  // field 3
  for (int field = 3; field < 22; ++field) {
    const std::size_t space = text.find(' ');
    if (space == std::string_view::npos) return std::nullopt;
    text.remove_prefix(space + 1);
  }
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), stat.start_ticks);  // field 22
  if (ec != std::errc() || end == text.data()) return std::nullopt;
  return stat;
}

std::string readBootId() {
  std::string id = readSmallFile("/proc/sys/kernel/random/boot_id", 128).value_or("");
  while (!id.empty() && (id.back() == '\n' || id.back() == ' ')) id.pop_back();
  return id;
}

// Through syscall(): glibc 2.36's <sys/pidfd.h> declares pidfd_open without C linkage for C++.
UniqueFd openPidfd(pid_t pid) { return UniqueFd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0U))); }

bool isBashEntrypoint(const std::vector<std::string>& argv) {
  return argv.size() == 3 && argv[0] == "bash" && argv[1] == "-c";
}

bool pidfdExited(int pidfd) {
  if (pidfd < 0) return false;
  pollfd p{pidfd, POLLIN, 0};
  return ::poll(&p, 1, 0) > 0 && (p.revents & (POLLIN | POLLHUP | POLLERR)) != 0;
}

std::optional<WaitStatus> reapChild(int pidfd) {
  siginfo_t info{};
  int rc;
  do {
    rc = ::waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(pidfd), &info, WEXITED | WNOHANG);
  } while (rc != 0 && errno == EINTR);
  if (rc != 0 || info.si_pid == 0) return std::nullopt;
  if (info.si_code == CLD_EXITED) return WaitStatus{false, info.si_status};
  return WaitStatus{true, info.si_status};
}

std::optional<WaitStatus> reapZombieChild(pid_t pid) {
  int status = 0;
  pid_t rc;
  do {
    rc = ::waitpid(pid, &status, WNOHANG);
  } while (rc < 0 && errno == EINTR);
  if (rc != pid) return std::nullopt;
  if (WIFEXITED(status)) return WaitStatus{false, WEXITSTATUS(status)};
  if (WIFSIGNALED(status)) return WaitStatus{true, WTERMSIG(status)};
  return std::nullopt;
}

bool signalGroup(pid_t pgid, int sig) { return pgid > 1 && ::kill(-pgid, sig) == 0; }

std::optional<pid_t> findSupervisor(const std::filesystem::path& exit_path) {
  DIR* proc = ::opendir("/proc");
  if (proc == nullptr) return std::nullopt;
  const std::string wanted = exit_path.string();
  std::optional<pid_t> found;
  while (dirent* entry = ::readdir(proc)) {
    char* end = nullptr;
    const long pid = std::strtol(entry->d_name, &end, 10);
    if (end == entry->d_name || *end != '\0' || pid <= 1) continue;
    const std::string path = "/proc/" + std::string(entry->d_name) + "/cmdline";
    const std::string cmdline = readSmallFile(path.c_str(), 64 * 1024).value_or("");
    // argv: /bin/sh (or bash) -c <script> leoflow-supervisor <exit file> ...
    std::vector<std::string_view> args;
    std::string_view rest(cmdline);
    while (!rest.empty() && args.size() < 5) {
      const std::size_t nul = rest.find('\0');
      args.push_back(rest.substr(0, nul));
      rest = nul == std::string_view::npos ? std::string_view() : rest.substr(nul + 1);
    }
    if (args.size() == 5 && args[3] == kSupervisorName && args[4] == wanted) {
      found = static_cast<pid_t>(pid);
      break;
    }
  }
  ::closedir(proc);
  return found;
}

bool isSameLiveProcess(pid_t pid, std::uint64_t start_ticks, const std::string& boot_id,
                       const std::string& current_boot_id) {
  if (pid <= 1 || boot_id.empty() || boot_id != current_boot_id) return false;
  const auto stat = readProcessStat(pid);
  return stat && stat->start_ticks == start_ticks && stat->state != 'Z' && stat->state != 'X' &&
         stat->state != 'x';
}

}  // namespace leoflow::plugins::dispatcher_local
