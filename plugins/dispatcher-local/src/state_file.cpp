#include "state_file.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>

#include <atomic>
#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <system_error>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace leoflow::plugins::dispatcher_local {
namespace {

constexpr int kFormat = 1;

std::string errnoText(int err) { return std::strerror(err); }

Status writeAll(int fd, std::string_view text) {
  std::size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::pwrite(fd, text.data() + done, text.size() - done, static_cast<off_t>(done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return internalError("writing a state file failed: " + errnoText(errno));
    }
    done += static_cast<std::size_t>(n);
  }
  if (::ftruncate(fd, static_cast<off_t>(text.size())) != 0) {
    return internalError("truncating a state file failed: " + errnoText(errno));
  }
  return {};
}

}  // namespace

std::string_view toString(KillReason reason) noexcept {
  switch (reason) {
    case KillReason::kNone: return "";
    case KillReason::kTimeout: return "timeout";
    case KillReason::kStale: return "stale";
    case KillReason::kShutdown: return "shutdown";
    case KillReason::kStopped: return "stopped";
  }
  return "";
}

KillReason parseKillReason(std::string_view name) noexcept {
  for (KillReason r : {KillReason::kTimeout, KillReason::kStale, KillReason::kShutdown, KillReason::kStopped}) {
    if (toString(r) == name) return r;
  }
  return KillReason::kNone;
}

std::string encodeStateRecord(const StateRecord& r) {
  nlohmann::json j = {
      {"format", kFormat},
      {"dag_id", r.attempt.run.dag_id},
      {"run_id", r.attempt.run.run_id},
      {"task_id", r.attempt.task_id},
      {"try_number", r.attempt.try_number},
      {"run_uid", r.run_uid},
      {"tenant", r.tenant},
      {"task_type", r.task_type},
      {"pid", r.pid},
      {"pid_start_ticks", r.pid_start_ticks},
      {"boot_id", r.boot_id},
      {"started_at_us", r.started_at_us},
      {"execution_timeout_seconds", r.execution_timeout_seconds},
      {"log_path", r.log_path},
      {"owner", r.owner},
      {"execution_id", r.execution_id},
      {"kill_reason", std::string(toString(r.kill_reason))},
  };
  if (r.outcome) {
    j["outcome"] = {{"success", r.outcome->success},
                    {"exit_code", r.outcome->exit_code ? nlohmann::json(*r.outcome->exit_code) : nlohmann::json()},
                    {"message", r.outcome->message}};
  }
  // Ids are UTF-8 in practice; an invalid byte must not make the claim fail, so it is replaced
  // (the file name, not this text, is what makes the attempt unique).
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

std::optional<StateRecord> decodeStateRecord(std::string_view text) {
  try {
    const nlohmann::json j = nlohmann::json::parse(text);
    if (!j.is_object() || j.value("format", 0) != kFormat) return std::nullopt;
    StateRecord r;
    r.attempt.run.dag_id = j.at("dag_id").get<std::string>();
    r.attempt.run.run_id = j.at("run_id").get<std::string>();
    r.attempt.task_id = j.at("task_id").get<std::string>();
    r.attempt.try_number = j.at("try_number").get<std::int32_t>();
    r.run_uid = j.value("run_uid", std::int64_t{0});
    r.tenant = j.value("tenant", std::string());
    r.task_type = j.value("task_type", std::string());
    r.pid = j.value("pid", std::int64_t{0});
    r.pid_start_ticks = j.value("pid_start_ticks", std::uint64_t{0});
    r.boot_id = j.value("boot_id", std::string());
    r.started_at_us = j.value("started_at_us", std::int64_t{0});
    r.execution_timeout_seconds = j.value("execution_timeout_seconds", 0);
    r.log_path = j.value("log_path", std::string());
    r.owner = j.value("owner", std::string());
    r.execution_id = j.value("execution_id", std::string());
    r.kill_reason = parseKillReason(j.value("kill_reason", std::string()));
    if (auto it = j.find("outcome"); it != j.end() && it->is_object()) {
      TaskOutcome o;
      o.success = it->value("success", false);
      if (auto code = it->find("exit_code"); code != it->end() && code->is_number_integer()) {
        o.exit_code = code->get<int>();
      }
      o.message = it->value("message", std::string());
      r.outcome = std::move(o);
    }
    return r;
  } catch (const nlohmann::json::exception&) {
    return std::nullopt;
  }
}

Result<std::optional<UniqueFd>> claimStateFile(const std::filesystem::path& dir, const std::string& base,
                                               std::string_view text, SpareFiles* spares) {
  static std::atomic<std::uint64_t> counter{0};
  const std::filesystem::path final_path = dir / (base + ".json");

  // A spare of the pool when there is one: the same steps as a new temporary file below, without
  // allocating an inode (SpareFiles). Nobody else opens a spare, so its lock is free at once.
  std::filesystem::path tmp_path;
  UniqueFd fd;
  bool spare = false;
  if (spares != nullptr) {
    if (auto taken = spares->take()) {
      fd.reset(::open(taken->c_str(), O_RDWR | O_CLOEXEC));
      if (fd.valid()) {
        tmp_path = std::move(*taken);
        spare = true;
      }
    }
  }
  if (!spare) {
    tmp_path = dir / fmt::format(".{}.{}.{}.tmp", base, ::getpid(), counter.fetch_add(1, std::memory_order_relaxed));
    fd.reset(::open(tmp_path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
    if (!fd.valid()) {
      return Status(unavailable("creating state file " + tmp_path.string() + " failed: " + errnoText(errno)));
    }
  }
  // Locked before it has its real name, so nobody ever sees the attempt's file unlocked while its
  // claimant lives.
  while (::flock(fd.get(), LOCK_EX) != 0) {
    if (errno != EINTR) {
      const int err = errno;
      ::unlink(tmp_path.c_str());
      return Status(internalError("locking state file " + tmp_path.string() + " failed: " + errnoText(err)));
    }
  }
  if (Status s = writeAll(fd.get(), text); !s.isOk()) {
    ::unlink(tmp_path.c_str());
    return s;
  }
  // link() is the exclusive create: it fails with EEXIST when the attempt was claimed before, by
  // this process or any other sharing the state dir.
  if (::link(tmp_path.c_str(), final_path.c_str()) != 0) {
    const int err = errno;
    if (spare && err == EEXIST) {
      fd.reset();
      spares->putBack(std::move(tmp_path));
    } else {
      ::unlink(tmp_path.c_str());
    }
    if (err == EEXIST) return std::optional<UniqueFd>();
    return Status(unavailable("creating state file " + final_path.string() + " failed: " + errnoText(err)));
  }
  ::unlink(tmp_path.c_str());
  return std::optional<UniqueFd>(std::move(fd));
}

// ---------------------------------------------------------------------------------------------------
// SpareFiles

namespace {

std::atomic<std::uint64_t> spare_counter{0};

}  // namespace

SpareFiles::SpareFiles(std::filesystem::path dir, std::size_t capacity) : dir_(std::move(dir)), capacity_(capacity) {
  // Without the folder every recycle() removes and take() finds nothing: files come and go as
  // they would without a pool.
  ::mkdir(dir_.c_str(), 0755);
  free_.reserve(capacity_);
}

SpareFiles::~SpareFiles() { clear(); }

std::filesystem::path SpareFiles::freshName() const {
  return dir_ / fmt::format("{}.{}", ::getpid(), spare_counter.fetch_add(1, std::memory_order_relaxed));
}

std::optional<std::filesystem::path> SpareFiles::take() {
  std::lock_guard lock(mutex_);
  if (free_.empty()) return std::nullopt;
  std::filesystem::path out = std::move(free_.back());
  free_.pop_back();
  return out;
}

void SpareFiles::putBack(std::filesystem::path spare) {
  {
    std::lock_guard lock(mutex_);
    if (free_.size() < capacity_) {
      free_.push_back(std::move(spare));
      return;
    }
  }
  ::unlink(spare.c_str());
}

void SpareFiles::recycle(const std::filesystem::path& path, bool empty) {
  bool room = false;
  {
    std::lock_guard lock(mutex_);
    room = free_.size() < capacity_;
  }
  if (room) {
    std::filesystem::path name = freshName();
    if (::rename(path.c_str(), name.c_str()) == 0) {
      if (empty) ::truncate(name.c_str(), 0);
      putBack(std::move(name));
      return;
    }
    if (errno == ENOENT) return;  // nothing there (or the folder is gone: removed below)
  }
  ::unlink(path.c_str());
}

bool SpareFiles::place(const std::filesystem::path& path, bool empty) {
  auto spare = take();
  if (!spare) return false;
  // Emptied before it gets the name: a reader must never take a previous attempt's exit code for
  // this one's.
  if (empty && ::truncate(spare->c_str(), 0) != 0) {
    ::unlink(spare->c_str());
    return false;
  }
  if (::rename(spare->c_str(), path.c_str()) != 0) {
    ::unlink(spare->c_str());
    return false;
  }
  return true;
}

void SpareFiles::clear() {
  std::vector<std::filesystem::path> all;
  {
    std::lock_guard lock(mutex_);
    all.swap(free_);
  }
  for (const std::filesystem::path& p : all) ::unlink(p.c_str());
}

void SpareFiles::sweep(const std::filesystem::path& dir) {
  std::error_code ec;
  for (std::filesystem::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    char* stop = nullptr;
    const long pid = std::strtol(name.c_str(), &stop, 10);
    if (stop == name.c_str() || *stop != '.') continue;
    if (pid <= 1 || (::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH)) ::unlink(it->path().c_str());
  }
}

Status rewriteStateFile(int fd, std::string_view text) { return writeAll(fd, text); }

Result<std::string> readAll(int fd) {
  std::string out;
  char buf[4096];
  off_t offset = 0;
  for (;;) {
    const ssize_t n = ::pread(fd, buf, sizeof buf, offset);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status(internalError("reading a state file failed: " + errnoText(errno)));
    }
    if (n == 0) break;
    out.append(buf, static_cast<std::size_t>(n));
    offset += n;
  }
  return out;
}

std::optional<UniqueFd> lockExisting(const std::filesystem::path& path) {
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CLOEXEC));
  if (!fd.valid()) return std::nullopt;
  if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) return std::nullopt;
  // The holder may have finished and removed the file between our open and our lock: only the
  // file still linked under its name counts.
  struct stat held{};
  struct stat named{};
  if (::fstat(fd.get(), &held) != 0 || ::stat(path.c_str(), &named) != 0) return std::nullopt;
  if (held.st_ino != named.st_ino || held.st_dev != named.st_dev || held.st_nlink == 0) return std::nullopt;
  return fd;
}

std::optional<int> readExitCode(const std::filesystem::path& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return std::nullopt;
  char buf[32];
  ssize_t n;
  do {
    n = ::read(fd.get(), buf, sizeof buf);
  } while (n < 0 && errno == EINTR);
  if (n <= 0) return std::nullopt;
  std::string_view text(buf, static_cast<std::size_t>(n));
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.remove_suffix(1);
  int code = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), code);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return code;
}

}  // namespace leoflow::plugins::dispatcher_local
