#include "names.h"

#include <ctime>

#include <fmt/format.h>

namespace leoflow::plugins::dispatcher_local {

std::string stateBaseName(const AttemptRef& attempt, std::int64_t run_uid) {
  // '~' is never kept by encodeComponent, so it separates the parts unambiguously.
  std::string base = encodeComponent(attempt.run.dag_id) + "~" + encodeComponent(attempt.run.run_id) + "~" +
                     std::to_string(run_uid) + "~" + encodeComponent(attempt.task_id) + "~" +
                     std::to_string(attempt.try_number);
  if (base.size() > kMaxComponent) base = attempt_log::shortenEncoded(base, base);
  return base;
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
