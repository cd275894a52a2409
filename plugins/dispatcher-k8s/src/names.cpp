#include "names.h"

#include <ctime>

#include <fmt/format.h>

namespace leoflow::plugins::dispatcher_k8s {
namespace {

bool alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); }

}  // namespace

std::uint64_t fnv1a64(std::string_view data) noexcept {
  std::uint64_t h = 1469598103934665603ULL;
  for (const char c : data) {
    h ^= static_cast<unsigned char>(c);
    h *= 1099511628211ULL;
  }
  return h;
}

std::string shortHash(std::string_view data, std::size_t digits) {
  std::uint64_t h = fnv1a64(data);  // mixed (murmur3's finaliser) so every digit depends on every byte
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ULL;
  h ^= h >> 33;
  return fmt::format("{:016x}", h).substr(0, digits);
}

std::string podName(const AttemptRef& attempt, std::int64_t run_uid) {
  const std::string_view task_id = attempt.task_id;
  const std::int32_t try_number = attempt.try_number;
  // The hash covers the dag and run ids too, so attempts stay apart where the uid does not tell
  // them apart (a host that hands out no uids: 0).
  const std::string key = fmt::format("{}\x1f{}\x1f{}\x1f{}\x1f{}", run_uid, attempt.run.dag_id, attempt.run.run_id,
                                      task_id, try_number);
  const std::string suffix = fmt::format("-{}-{}-{}", run_uid, try_number, shortHash(key, 8));
  std::string task;
  for (const char c : task_id) {
    char l = (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
    if (!alnum(l)) l = '-';
    if (l == '-' && (task.empty() || task.back() == '-')) continue;
    task.push_back(l);
  }
  const std::size_t room = 63 - 3 - suffix.size() - 1;
  if (task.size() > room) task.resize(room);
  while (!task.empty() && task.back() == '-') task.pop_back();
  std::string name = "lf";
  if (!task.empty()) name += "-" + task;
  name += suffix;
  return name;
}

bool isValidLabelValue(std::string_view value) {
  if (value.empty()) return true;
  if (value.size() > 63 || !alnum(value.front()) || !alnum(value.back())) return false;
  for (const char c : value) {
    if (!alnum(c) && c != '-' && c != '_' && c != '.') return false;
  }
  return true;
}

std::string labelValue(std::string_view value) {
  if (isValidLabelValue(value)) return std::string(value);
  std::string kept;
  for (const char c : value) {
    if (alnum(c) || c == '-' || c == '_' || c == '.') kept.push_back(c);
  }
  while (!kept.empty() && !alnum(kept.front())) kept.erase(kept.begin());
  if (kept.size() > 52) kept.resize(52);
  while (!kept.empty() && !alnum(kept.back())) kept.pop_back();
  const std::string hash = shortHash(value, 10);
  return kept.empty() ? hash : kept + "-" + hash;
}

bool isDns1123Label(std::string_view value) {
  if (value.empty() || value.size() > 63) return false;
  for (const char c : value) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return false;
  }
  return value.front() != '-' && value.back() != '-';
}

std::string isoUtc(Timestamp t) {
  const auto seconds = std::chrono::floor<std::chrono::seconds>(t);
  const std::time_t tt = static_cast<std::time_t>(seconds.time_since_epoch().count());
  std::tm tm{};
  ::gmtime_r(&tt, &tm);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                     tm.tm_hour, tm.tm_min, tm.tm_sec);
}

}  // namespace leoflow::plugins::dispatcher_k8s
