#include "records.h"

#include <array>
#include <charconv>
#include <limits>

namespace leoflow::plugins::store_redis {

std::string toMicros(Timestamp t) { return std::to_string(t.time_since_epoch().count()); }

std::string toMicros(const std::optional<Timestamp>& t) { return t ? toMicros(*t) : std::string(); }

bool parseInt64(std::string_view text, std::int64_t& out) {
  if (text.empty()) return false;
  const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && ptr == text.data() + text.size();
}

bool parseMicros(std::string_view text, std::optional<Timestamp>& out) {
  if (text.empty()) {
    out.reset();
    return true;
  }
  std::int64_t us = 0;
  if (!parseInt64(text, us)) return false;
  out = Timestamp(std::chrono::microseconds(us));
  return true;
}

std::optional<TiRecord> decodeTiRecord(std::string_view task_id, std::string_view record) {
  std::array<std::string_view, 11> f;
  std::size_t pos = 0;
  for (std::size_t i = 0; i < 10; ++i) {
    const auto bar = record.find('|', pos);
    if (bar == std::string_view::npos) return std::nullopt;
    f[i] = record.substr(pos, bar - pos);
    pos = bar + 1;
  }
  f[10] = record.substr(pos);

  TiRecord r;
  r.ti.task_id = std::string(task_id);
  std::int64_t try_number = 0;
  std::int64_t max_tries = 0;
  const auto state = parseTaskState(f[1]);
  if (!parseInt64(f[0], r.seq) || !state || !parseInt64(f[2], try_number) || !parseInt64(f[3], max_tries) ||
      try_number > std::numeric_limits<std::int32_t>::max() || max_tries > std::numeric_limits<std::int32_t>::max()) {
    return std::nullopt;
  }
  r.ti.state = *state;
  r.ti.try_number = static_cast<std::int32_t>(try_number);
  r.ti.max_tries = static_cast<std::int32_t>(max_tries);
  if (!parseMicros(f[4], r.ti.scheduled_at) || !parseMicros(f[5], r.ti.queued_at) ||
      !parseMicros(f[6], r.ti.started_at) || !parseMicros(f[7], r.ti.ended_at) ||
      !parseMicros(f[8], r.ti.last_heartbeat_at)) {
    return std::nullopt;
  }
  if (!f[9].empty()) {
    std::int64_t code = 0;
    if (!parseInt64(f[9], code)) return std::nullopt;
    r.ti.exit_code = static_cast<int>(code);
  }
  r.ti.note = std::string(f[10]);
  return r;
}

std::string encodeTiRecord(const TiRecord& r) {
  const TaskInstance& t = r.ti;
  std::string out = std::to_string(r.seq);
  out += '|';
  out += toString(t.state);
  out += '|' + std::to_string(t.try_number) + '|' + std::to_string(t.max_tries) + '|';
  out += toMicros(t.scheduled_at) + '|' + toMicros(t.queued_at) + '|' + toMicros(t.started_at) + '|';
  out += toMicros(t.ended_at) + '|' + toMicros(t.last_heartbeat_at) + '|';
  out += (t.exit_code ? std::to_string(*t.exit_code) : std::string()) + '|';
  out += t.note;
  return out;
}

}  // namespace leoflow::plugins::store_redis
