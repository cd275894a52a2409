#include "log_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>

#include <fmt/format.h>

#include "names.h"

namespace leoflow::plugins::dispatcher_local {
namespace {

constexpr std::string_view kPrefix = "leoflow: ";
constexpr std::string_view kFooterMark = "leoflow: ==== end of execution ";
constexpr std::string_view kEndedMark = "leoflow: ended ";
constexpr std::string_view kExecutionMark = "leoflow: execution ";
constexpr std::size_t kHeaderScan = 16 * 1024;
constexpr std::size_t kFooterScan = 64 * 1024;

// Control characters (and DEL) as \xNN, so an id cannot break the header's lines.
std::string printable(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) {
      out += fmt::format("\\x{:02x}", u);
    } else {
      out.push_back(c);
    }
  }
  return out;
}

bool plainWord(std::string_view word) {
  if (word.empty()) return false;
  for (const char c : word) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    std::string_view("-_./:=@,+%").find(c) != std::string_view::npos;
    if (!ok) return false;
  }
  return true;
}

std::string quoteWord(std::string_view word) {
  if (plainWord(word)) return std::string(word);
  bool control = false;
  for (const char c : word) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) control = true;
  }
  std::string out;
  if (!control) {
    out.push_back('\'');
    for (const char c : word) {
      if (c == '\'') {
        out += "'\\''";
      } else {
        out.push_back(c);
      }
    }
    out.push_back('\'');
    return out;
  }
  out = "$'";
  for (const char c : word) {
    const auto u = static_cast<unsigned char>(c);
    switch (c) {
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      case '\r': out += "\\r"; break;
      case '\\': out += "\\\\"; break;
      case '\'': out += "\\'"; break;
      default:
        if (u < 0x20 || u == 0x7f) {
          out += fmt::format("\\x{:02x}", u);
        } else {
          out.push_back(c);
        }
    }
  }
  out.push_back('\'');
  return out;
}

std::string preadUpTo(int fd, std::uint64_t offset, std::size_t length) {
  std::string out(length, '\0');
  std::size_t done = 0;
  while (done < length) {
    const ssize_t n = ::pread(fd, out.data() + done, length - done, static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    done += static_cast<std::size_t>(n);
  }
  out.resize(done);
  return out;
}

// A footer of `execution_id` starting at a line start in `text`, complete up to its last line.
bool footerIn(std::string_view text, const std::string& execution_id) {
  const std::string mark = std::string(kFooterMark) + execution_id + "\n";
  for (std::size_t at = text.find(mark); at != std::string_view::npos; at = text.find(mark, at + 1)) {
    if (at != 0 && text[at - 1] != '\n') continue;
    const std::size_t ended = text.find(kEndedMark, at + mark.size());
    if (ended != std::string_view::npos && text.find('\n', ended) != std::string_view::npos) return true;
  }
  return false;
}

}  // namespace

std::string hostName() {
  char host[256] = {};
  if (::gethostname(host, sizeof(host) - 1) != 0 || host[0] == '\0') return "?";
  return host;
}

std::string isoUtcMicros(std::int64_t us) {
  std::int64_t seconds = us / 1000000;
  std::int64_t micros = us % 1000000;
  if (micros < 0) {
    micros += 1000000;
    seconds -= 1;
  }
  const std::time_t tt = static_cast<std::time_t>(seconds);
  std::tm tm{};
  ::gmtime_r(&tt, &tm);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                     tm.tm_hour, tm.tm_min, tm.tm_sec, micros);
}

std::string describeCommand(const std::vector<std::string>& argv) {
  std::string out;
  for (const std::string& word : argv) {
    if (!out.empty()) out.push_back(' ');
    out += quoteWord(word);
  }
  return out;
}

std::string describeAttempt(const AttemptRef& attempt) {
  return fmt::format("{}/{}/{} try {}", printable(attempt.run.dag_id), printable(attempt.run.run_id),
                     printable(attempt.task_id), attempt.try_number);
}

std::string formatLogHeader(const StateRecord& record, const std::vector<std::string>& argv) {
  return fmt::format(
      "{p}==== attempt {attempt}\n"
      "{p}run uid {uid}, tenant {tenant}\n"
      "{p}host {host}\n"
      "{p}execution {execution}\n"
      "{p}command {command}\n"
      "{p}started {started}\n"
      "{p}====\n",
      fmt::arg("p", kPrefix), fmt::arg("attempt", describeAttempt(record.attempt)), fmt::arg("uid", record.run_uid),
      fmt::arg("tenant", printable(record.tenant)), fmt::arg("host", printable(hostName())),
      fmt::arg("execution", printable(record.execution_id)), fmt::arg("command", describeCommand(argv)),
      fmt::arg("started", isoUtcMicros(record.started_at_us)));
}

std::string formatLogFooter(const std::string& execution_id, const TaskOutcome& outcome,
                            std::chrono::system_clock::time_point ended, bool after_partial_line) {
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(ended.time_since_epoch()).count();
  return fmt::format("{nl}{mark}{execution}\n"
                     "{p}outcome {outcome}\n"
                     "{p}exit code {code}\n"
                     "{ended}{at}\n",
                     fmt::arg("nl", after_partial_line ? "\n" : ""), fmt::arg("mark", kFooterMark),
                     fmt::arg("execution", printable(execution_id)), fmt::arg("p", kPrefix),
                     fmt::arg("outcome", outcome.success ? std::string("success")
                                                         : "failed: " + printable(outcome.message)),
                     fmt::arg("code", outcome.exit_code ? std::to_string(*outcome.exit_code) : std::string("none")),
                     fmt::arg("ended", kEndedMark), fmt::arg("at", isoUtcMicros(us)));
}

void appendLogFooter(const std::string& path, const std::string& execution_id, const TaskOutcome& outcome) {
  if (path.empty()) return;
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_APPEND | O_CLOEXEC));
  if (!fd.valid()) return;
  struct stat st{};
  if (::fstat(fd.get(), &st) != 0) return;
  const auto size = static_cast<std::uint64_t>(st.st_size);
  if (hasFooter(fd.get(), size, execution_id)) return;
  const bool partial = size > 0 && preadUpTo(fd.get(), size - 1, 1) != "\n";
  const std::string footer = formatLogFooter(execution_id, outcome, std::chrono::system_clock::now(), partial);
  [[maybe_unused]] const ssize_t n = ::write(fd.get(), footer.data(), footer.size());
}

std::optional<std::string> headerExecutionId(int fd) {
  const std::string head = preadUpTo(fd, 0, kHeaderScan);
  if (head.rfind("leoflow: ==== attempt ", 0) != 0) return std::nullopt;
  for (std::size_t line = 0; line < head.size();) {
    const std::size_t end = head.find('\n', line);
    if (end == std::string::npos) break;
    const std::string_view text(head.data() + line, end - line);
    if (text.rfind(kExecutionMark, 0) == 0) return std::string(text.substr(kExecutionMark.size()));
    if (text == "leoflow: ====") break;
    line = end + 1;
  }
  return std::nullopt;
}

bool hasFooter(int fd, std::uint64_t size, const std::string& execution_id) {
  const auto id = headerExecutionId(fd);
  if (!id || *id != execution_id) return false;
  const std::uint64_t from = size > kFooterScan ? size - kFooterScan : 0;
  return footerIn(preadUpTo(fd, from, static_cast<std::size_t>(size - from)), execution_id);
}

std::optional<std::string> hostOfExecution(std::string_view execution_id) {
  std::vector<std::string_view> parts;
  while (true) {
    const std::size_t slash = execution_id.find('/');
    parts.push_back(execution_id.substr(0, slash));
    if (slash == std::string_view::npos) break;
    execution_id.remove_prefix(slash + 1);
  }
  std::string_view host;
  if (parts.size() == 4) {
    host = parts[1];
  } else if (parts.size() == 3) {
    host = parts[0];
  } else {
    return std::nullopt;
  }
  if (host.empty()) return std::nullopt;
  return std::string(host);
}

Result<LogChunk> LocalLogReader::read(const LogQuery& query) {
  const std::filesystem::path path = attemptLogPath(settings_.log_dir, query.attempt, query.run_uid);
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) {
    const int err = errno;
    if (err != ENOENT && err != ENOTDIR) {
      return Status(unavailable("reading the log of " + describeAttempt(query.attempt) + " (" + path.string() +
                                ") failed: " + std::strerror(err)));
    }
    if (const auto host = hostOfExecution(query.execution_id); host && *host != host_) {
      return Status(notFound("the log of " + describeAttempt(query.attempt) + " is on host " + *host));
    }
    return Status(notFound("no log for " + describeAttempt(query.attempt) + " (run uid " +
                           std::to_string(query.run_uid) + ") in " + settings_.log_dir.string()));
  }
  struct stat st{};
  if (::fstat(fd.get(), &st) != 0) {
    return Status(unavailable("reading the log " + path.string() + " failed: " + std::strerror(errno)));
  }
  const auto size = static_cast<std::uint64_t>(st.st_size);
  LogChunk chunk;
  if (query.offset < size) {
    const std::uint64_t left = size - query.offset;
    chunk.text = preadUpTo(fd.get(), query.offset, static_cast<std::size_t>(std::min<std::uint64_t>(left, query.max_bytes)));
  }
  chunk.next_offset = query.offset + chunk.text.size();
  if (chunk.next_offset >= size) {
    const auto id = headerExecutionId(fd.get());
    chunk.complete = id && hasFooter(fd.get(), size, *id);
  }
  return chunk;
}

}  // namespace leoflow::plugins::dispatcher_local
