#include "dispatcher_test_harness.h"

#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <fstream>
#include <iterator>
#include <sstream>
#include <thread>

#include <spdlog/logger.h>
#include <spdlog/sinks/null_sink.h>
#include <spdlog/sinks/ringbuffer_sink.h>
#include <spdlog/sinks/stdout_sinks.h>

namespace leoflow::testing::dispatcher_local {

using std::chrono::milliseconds;
using std::chrono::steady_clock;

namespace {

Timestamp wallNow() {
  return std::chrono::time_point_cast<std::chrono::microseconds>(std::chrono::system_clock::now());
}

/// The fields of /proc/<pid>/stat the process helpers look at.
struct ProcStat {
  pid_t pid = 0;
  char state = '?';
  pid_t ppid = 0;
  pid_t pgrp = 0;
};

/// Calls `visit` for every process in /proc; one that ends while it is read is passed over (ESRCH).
void forEachProcess(const std::function<void(const ProcStat&, const std::filesystem::path& dir)>& visit) {
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("/proc", ec)) {
    const std::string name = e.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::string text;
    try {
      std::ifstream stat(e.path() / "stat");
      text.assign(std::istreambuf_iterator<char>(stat), std::istreambuf_iterator<char>());
    } catch (const std::exception&) {
      continue;
    }
    const std::size_t close = text.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream fields(text.substr(close + 2));
    ProcStat p;
    p.pid = static_cast<pid_t>(std::stoi(name));
    fields >> p.state >> p.ppid >> p.pgrp;
    visit(p, e.path());
  }
}

}  // namespace

struct RecordingEvents::Shared {
  std::shared_ptr<MemoryBackend> backend;
};

RecordingEvents::RecordingEvents() : store_(std::make_unique<MemoryStore>()) {
  shared_ = std::make_shared<Shared>();
  shared_->backend = store_->backend();
}

RecordingEvents::RecordingEvents(SameStoreAs same)
    : shared_(same.other.shared_), store_(std::make_unique<MemoryStore>(same.other.shared_->backend)) {}

RecordingEvents::~RecordingEvents() = default;

Status RecordingEvents::running(const ExecutionRef& e) { return record(ReportType::kRunning, e, {}); }

Status RecordingEvents::heartbeat(const ExecutionRef& e) { return record(ReportType::kHeartbeat, e, {}); }

Status RecordingEvents::finished(const ExecutionRef& e, const TaskOutcome& outcome) {
  return record(ReportType::kFinished, e, outcome);
}

Status RecordingEvents::record(ReportType type, const ExecutionRef& execution, const TaskOutcome& outcome) {
  const AttemptRef& attempt = execution.attempt;
  Answer answer;
  {
    std::lock_guard lock(mutex_);
    answer = answer_;
  }
  std::optional<Status> custom = answer ? answer(type, attempt) : std::nullopt;
  Status status;
  if (custom) {
    status = *custom;
  } else {
    switch (type) {
      case ReportType::kRunning:
        status = store_->reportRunning(execution, wallNow());
        break;
      case ReportType::kHeartbeat:
        status = store_->reportHeartbeat(execution, wallNow());
        break;
      case ReportType::kFinished:
        status = store_->reportFinished(execution, outcome, wallNow());
        break;
    }
    std::lock_guard lock(mutex_);
    if (int& lost = lost_replies_[type]; lost > 0) {
      --lost;
      status = unavailable("the store's reply was lost (it answered " + status.toString() + ")");
    }
  }
  {
    std::lock_guard lock(mutex_);
    reports_.push_back(Report{type, attempt, execution.execution_id, outcome, status, steady_clock::now(),
                              std::chrono::system_clock::now()});
  }
  cv_.notify_all();
  return status;
}

void RecordingEvents::setAnswer(Answer answer) {
  std::lock_guard lock(mutex_);
  answer_ = std::move(answer);
}

void RecordingEvents::loseReply(ReportType type, int times) {
  std::lock_guard lock(mutex_);
  lost_replies_[type] += times;
}

void RecordingEvents::seedQueued(const AttemptRef& attempt) { store_->seedQueuedAttempt(attempt, wallNow()); }

Status RecordingEvents::seedRunning(const AttemptRef& attempt, const std::string& execution_id) {
  seedQueued(attempt);
  return store_->reportRunning(ExecutionRef{attempt, execution_id}, wallNow());
}

std::vector<Report> RecordingEvents::reports() const {
  std::lock_guard lock(mutex_);
  return reports_;
}

std::vector<Report> RecordingEvents::reportsFor(const AttemptRef& attempt) const {
  std::lock_guard lock(mutex_);
  std::vector<Report> out;
  for (const Report& r : reports_) {
    if (r.attempt == attempt) out.push_back(r);
  }
  return out;
}

int RecordingEvents::count(ReportType type, const AttemptRef& attempt, bool accepted_only) const {
  std::lock_guard lock(mutex_);
  int n = 0;
  for (const Report& r : reports_) {
    if (r.type == type && r.attempt == attempt && (!accepted_only || r.answer.isOk())) ++n;
  }
  return n;
}

std::optional<Report> RecordingEvents::waitFinished(const AttemptRef& attempt, milliseconds timeout) const {
  std::unique_lock lock(mutex_);
  std::optional<Report> found;
  cv_.wait_for(lock, timeout, [&] {
    for (const Report& r : reports_) {
      if (r.type == ReportType::kFinished && r.attempt == attempt && r.answer.isOk()) {
        found = r;
        return true;
      }
    }
    return false;
  });
  return found;
}

bool RecordingEvents::waitCount(ReportType type, const AttemptRef& attempt, int n, milliseconds timeout) const {
  std::unique_lock lock(mutex_);
  return cv_.wait_for(lock, timeout, [&] {
    int seen = 0;
    for (const Report& r : reports_) {
      if (r.type == type && r.attempt == attempt && r.answer.isOk()) ++seen;
    }
    return seen >= n;
  });
}

namespace {

// The last 4,096 lines of every test logger, for readyWarmShell().
std::shared_ptr<spdlog::sinks::ringbuffer_sink_mt> recentLines() {
  static const auto sink = [] {
    auto s = std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(4096);
    s->set_pattern("%v");
    return s;
  }();
  return sink;
}

bool loggedLineWith(const std::string& text) {
  const std::vector<std::string> lines = recentLines()->last_formatted();
  return std::any_of(lines.begin(), lines.end(),
                     [&](const std::string& line) { return line.find(text) != std::string::npos; });
}

}  // namespace

std::shared_ptr<spdlog::logger> testLogger() {
  spdlog::sink_ptr sink;
  if (std::getenv("LEOFLOW_TEST_VERBOSE") != nullptr) {
    sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  } else {
    sink = std::make_shared<spdlog::sinks::null_sink_mt>();
  }
  auto logger =
      std::make_shared<spdlog::logger>("plugin.dispatcher-local", spdlog::sinks_init_list{sink, recentLines()});
  logger->set_level(spdlog::level::debug);
  return logger;
}

TempDir::TempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string pattern = std::string(base != nullptr && *base != '\0' ? base : "/tmp") + "/leoflow-dl-XXXXXX";
  if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed for " + pattern);
  path_ = pattern;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

AttemptRef attemptOf(const std::string& dag, const std::string& run, const std::string& task, int try_number) {
  return AttemptRef{RunKey{dag, run}, task, try_number};
}

DispatchRequest requestOf(const AttemptRef& attempt, const std::string& entrypoint, const std::string& type,
                          int timeout_seconds) {
  DispatchRequest r;
  r.attempt = attempt;
  r.task.task_id = attempt.task_id;
  r.task.type = type;
  r.task.entrypoint = entrypoint;
  r.task.execution_timeout_seconds = timeout_seconds;
  r.logical_date = Timestamp{std::chrono::seconds(1767323045)};  // 2026-01-02T03:04:05Z
  return r;
}

std::string readFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

std::vector<std::string> readLines(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

std::vector<std::string> outputLines(const std::filesystem::path& path) {
  std::vector<std::string> out;
  bool in_header = false;
  for (const std::string& line : readLines(path)) {
    if (line.rfind("leoflow: ==== end of execution ", 0) == 0) break;
    if (line.rfind("leoflow: ==== attempt ", 0) == 0) {
      in_header = true;
      continue;
    }
    if (in_header) {
      in_header = line != "leoflow: ====";
      continue;
    }
    out.push_back(line);
  }
  return out;
}

std::optional<pid_t> waitForPidFile(const std::filesystem::path& path, milliseconds timeout) {
  std::optional<pid_t> pid;
  waitUntil(
      [&] {
        const std::string text = readFile(path);
        if (text.empty() || text.back() != '\n') return false;
        pid = static_cast<pid_t>(std::stol(text));
        return true;
      },
      timeout);
  return pid;
}

bool processAlive(pid_t pid) {
  if (pid <= 0 || ::kill(pid, 0) != 0) return false;
  std::string stat;
  try {
    std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
    stat.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  } catch (const std::exception&) {
    return false;  // it ended between kill() and the read (ESRCH)
  }
  const std::size_t close = stat.rfind(')');
  return close != std::string::npos && close + 2 < stat.size() && stat[close + 2] != 'Z';
}

bool waitUntil(const std::function<bool()>& condition, milliseconds timeout) {
  const auto deadline = steady_clock::now() + timeout;
  for (;;) {
    if (condition()) return true;
    if (steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(milliseconds(5));
  }
}

bool groupAlive(pid_t pgid) { return ::kill(-pgid, 0) == 0 || errno != ESRCH; }

std::size_t groupSize(pid_t pgid) {
  std::size_t n = 0;
  forEachProcess([&](const ProcStat& p, const std::filesystem::path&) {
    if (p.pgrp == pgid && p.state != 'Z') ++n;
  });
  return n;
}

std::set<pid_t> ourChildren() {
  std::set<pid_t> out;
  forEachProcess([&](const ProcStat& p, const std::filesystem::path&) {
    if (p.ppid == ::getpid()) out.insert(p.pid);
  });
  return out;
}

std::vector<pid_t> ourWarmShells() {
  std::vector<pid_t> out;
  forEachProcess([&](const ProcStat& p, const std::filesystem::path& dir) {
    if (p.ppid != ::getpid() || p.state == 'Z') return;
    std::string cmdline;
    try {
      std::ifstream cmd(dir / "cmdline");
      cmdline.assign(std::istreambuf_iterator<char>(cmd), std::istreambuf_iterator<char>());
    } catch (const std::exception&) {
      return;
    }
    if (cmdline.find(std::string("leoflow-supervisor\0warm\0", 24)) != std::string::npos) out.push_back(p.pid);
  });
  return out;
}

std::optional<pid_t> readyWarmShell(std::chrono::milliseconds timeout, std::optional<pid_t> previous) {
  std::optional<pid_t> shell;
  const bool ready = waitUntil([&] {
    const std::vector<pid_t> shells = ourWarmShells();
    if (shells.size() != 1 || shells.front() == previous) return false;
    shell = shells.front();
    return loggedLineWith("warm shell ready pid=" + std::to_string(*shell));
  }, timeout);
  return ready ? shell : std::nullopt;
}

}  // namespace leoflow::testing::dispatcher_local
