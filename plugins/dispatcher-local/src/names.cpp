#include "names.h"

#include <ctime>

#include <fmt/format.h>

namespace leoflow::plugins::dispatcher_local {
namespace {

constexpr std::size_t kCutAt = 160;

bool keep(unsigned char c, bool first) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  switch (c) {
    case '-': case '_': case ':': case '+': case '=': case '@': case ',': return true;
    case '.': return !first;
    default: return false;
  }
}

// Cuts `s` to at most `at` bytes without splitting a %XX escape, then appends "%%" and the hash of
// `whole`: "%%" never occurs in an encoded string, so a shortened name cannot equal a full one.
std::string shorten(std::string s, std::size_t at, std::string_view whole) {
  std::size_t cut = at;
  if (cut >= 1 && s[cut - 1] == '%') cut -= 1;
  else if (cut >= 2 && s[cut - 2] == '%') cut -= 2;
  s.resize(cut);
  s += fmt::format("%%{:016x}", fnv1a64(whole));
  return s;
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
  if (out.size() > kMaxComponent) out = shorten(std::move(out), kCutAt, raw);
  return out;
}

std::string stateBaseName(const AttemptRef& attempt, std::int64_t run_uid) {
  // '~' is never kept by encodeComponent, so it separates the parts unambiguously.
  std::string base = encodeComponent(attempt.run.dag_id) + "~" + encodeComponent(attempt.run.run_id) + "~" +
                     std::to_string(run_uid) + "~" + encodeComponent(attempt.task_id) + "~" +
                     std::to_string(attempt.try_number);
  if (base.size() > kMaxComponent) base = shorten(base, kCutAt, base);
  return base;
}

std::filesystem::path attemptLogPath(const std::filesystem::path& log_dir, const AttemptRef& attempt,
                                     std::int64_t run_uid) {
  return log_dir / encodeComponent(attempt.run.dag_id) / encodeComponent(attempt.run.run_id) /
         std::to_string(run_uid) / encodeComponent(attempt.task_id) / (std::to_string(attempt.try_number) + ".log");
}

std::string isoUtc(Timestamp t) {
  const auto seconds = std::chrono::floor<std::chrono::seconds>(t);
  const std::time_t tt = static_cast<std::time_t>(seconds.time_since_epoch().count());
  std::tm tm{};
  ::gmtime_r(&tt, &tm);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                     tm.tm_hour, tm.tm_min, tm.tm_sec);
}

}  // namespace leoflow::plugins::dispatcher_local
