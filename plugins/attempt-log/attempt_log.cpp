#include "attempt_log.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <vector>

#include <fmt/format.h>

namespace leoflow::plugins::attempt_log {
namespace {

constexpr std::string_view kPrefix = "leoflow: ";
constexpr std::string_view kFooterMark = "leoflow: ==== end of execution ";
constexpr std::string_view kEndedMark = "leoflow: ended ";
constexpr std::string_view kExecutionMark = "leoflow: execution ";
constexpr std::size_t kHeaderScan = 16 * 1024;
constexpr std::size_t kFooterScan = 64 * 1024;
constexpr std::size_t kCutAt = 160;

bool keep(unsigned char c, bool first) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  switch (c) {
    case '-': case '_': case ':': case '+': case '=': case '@': case ',': return true;
    case '.': return !first;
    default: return false;
  }
}

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }

 private:
  int fd_;
};

// A footer of `execution_id` starting at a line start in the last 64 KiB before `size`, complete up
// to its last line. (printable() leaves an id that is already escaped, as a header gives it, as it is.)
bool footerBefore(int fd, std::uint64_t size, const std::string& execution_id) {
  const std::uint64_t from = size > kFooterScan ? size - kFooterScan : 0;
  const std::string text = preadUpTo(fd, from, static_cast<std::size_t>(size - from));
  const std::string mark = std::string(kFooterMark) + printable(execution_id) + "\n";
  for (std::size_t at = text.find(mark); at != std::string::npos; at = text.find(mark, at + 1)) {
    if (at != 0 && text[at - 1] != '\n') continue;
    const std::size_t ended = text.find(kEndedMark, at + mark.size());
    if (ended != std::string::npos && text.find('\n', ended) != std::string::npos) return true;
  }
  return false;
}

}  // namespace

std::uint64_t fnv1a64(std::string_view data) noexcept {
  std::uint64_t h = 14695981039346656037ULL;
  for (unsigned char c : data) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return h;
}

std::string shortenEncoded(std::string encoded, std::string_view whole) {
  std::size_t cut = std::min(kCutAt, encoded.size());
  if (cut >= 1 && encoded[cut - 1] == '%') {
    cut -= 1;
  } else if (cut >= 2 && encoded[cut - 2] == '%') {
    cut -= 2;
  }
  encoded.resize(cut);
  encoded += fmt::format("%%{:016x}", fnv1a64(whole));
  return encoded;
}

std::string encodeComponent(std::string_view raw) {
  if (raw.empty()) return "%";
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(raw.size());
  for (std::size_t i = 0; i < raw.size(); ++i) {
    const auto c = static_cast<unsigned char>(raw[i]);
    if (keep(c, i == 0)) {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xF]);
    }
  }
  if (out.size() > kMaxComponent) out = shortenEncoded(std::move(out), raw);
  return out;
}

std::filesystem::path attemptLogPath(const std::filesystem::path& log_dir, const AttemptRef& attempt,
                                     std::int64_t run_uid) {
  return log_dir / encodeComponent(attempt.run.dag_id) / encodeComponent(attempt.run.run_id) /
         std::to_string(run_uid) / encodeComponent(attempt.task_id) / (std::to_string(attempt.try_number) + ".log");
}

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
  const auto tt = static_cast<std::time_t>(seconds);
  std::tm tm{};
  ::gmtime_r(&tt, &tm);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                     tm.tm_hour, tm.tm_min, tm.tm_sec, micros);
}

std::int64_t microsOf(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count();
}

std::string describeAttempt(const AttemptRef& attempt) {
  return fmt::format("{}/{}/{} try {}", printable(attempt.run.dag_id), printable(attempt.run.run_id),
                     printable(attempt.task_id), attempt.try_number);
}

std::string formatLogHeader(const LogHeader& h) {
  std::string out = fmt::format(
      "{p}==== attempt {attempt}\n"
      "{p}run uid {uid}, tenant {tenant}\n"
      "{p}host {host}\n"
      "{p}execution {execution}\n"
      "{p}command {command}\n",
      fmt::arg("p", kPrefix), fmt::arg("attempt", describeAttempt(h.attempt)), fmt::arg("uid", h.run_uid),
      fmt::arg("tenant", printable(h.tenant)), fmt::arg("host", printable(h.host)),
      fmt::arg("execution", printable(h.execution_id)), fmt::arg("command", printable(h.command)));
  if (h.started_us) out += fmt::format("{}started {}\n", kPrefix, isoUtcMicros(*h.started_us));
  out += fmt::format("{}====\n", kPrefix);
  return out;
}

std::string formatLogFooter(const std::string& execution_id, const TaskOutcome& outcome,
                            std::chrono::system_clock::time_point ended, bool after_partial_line) {
  return fmt::format("{nl}{mark}{execution}\n"
                     "{p}outcome {outcome}\n"
                     "{p}exit code {code}\n"
                     "{endmark}{at}\n",
                     fmt::arg("nl", after_partial_line ? "\n" : ""), fmt::arg("mark", kFooterMark),
                     fmt::arg("execution", printable(execution_id)), fmt::arg("p", kPrefix),
                     fmt::arg("outcome", outcome.success ? std::string("success")
                                                         : "failed: " + printable(outcome.message)),
                     fmt::arg("code", outcome.exit_code ? std::to_string(*outcome.exit_code) : std::string("none")),
                     fmt::arg("endmark", kEndedMark), fmt::arg("at", isoUtcMicros(microsOf(ended))));
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
  return id && *id == printable(execution_id) && footerBefore(fd, size, execution_id);
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

Result<LogChunk> readLog(const std::filesystem::path& log_dir, const std::string& this_host, const LogQuery& query) {
  const std::filesystem::path path = attemptLogPath(log_dir, query.attempt, query.run_uid);
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) {
    const int err = errno;
    if (err != ENOENT && err != ENOTDIR) {
      return Status(unavailable("reading the log of " + describeAttempt(query.attempt) + " (" + path.string() +
                                ") failed: " + std::strerror(err)));
    }
    if (const auto host = hostOfExecution(query.execution_id); host && *host != this_host) {
      return Status(notFound("the log of " + describeAttempt(query.attempt) + " is on host " + *host));
    }
    return Status(notFound("no log for " + describeAttempt(query.attempt) + " (run uid " +
                           std::to_string(query.run_uid) + ") in " + log_dir.string()));
  }
  struct stat st{};
  if (::fstat(fd.get(), &st) != 0) {
    return Status(unavailable("reading the log " + path.string() + " failed: " + std::strerror(errno)));
  }
  const auto size = static_cast<std::uint64_t>(st.st_size);
  LogChunk chunk;
  if (query.offset < size) {
    const std::uint64_t left = size - query.offset;
    chunk.text = preadUpTo(fd.get(), query.offset,
                           static_cast<std::size_t>(std::min<std::uint64_t>(left, query.max_bytes)));
  }
  chunk.next_offset = query.offset + chunk.text.size();
  if (chunk.next_offset >= size) {
    const auto id = headerExecutionId(fd.get());
    chunk.complete = id && footerBefore(fd.get(), size, *id);
  }
  return chunk;
}

}  // namespace leoflow::plugins::attempt_log
