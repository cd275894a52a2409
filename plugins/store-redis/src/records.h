// The stored forms of times and task instance records (README.md "Key layout").
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <leoflow/domain.h>

namespace leoflow::plugins::store_redis {

/// Microseconds since the epoch as a decimal string: the only form a time is stored in (§8.5 asks
/// for at least milliseconds; Lua never formats these, see lua/common.lua).
std::string toMicros(Timestamp t);
std::string toMicros(const std::optional<Timestamp>& t);  ///< "" = none
/// Parses a stored time; "" is nullopt. Returns false for anything malformed.
bool parseMicros(std::string_view text, std::optional<Timestamp>& out);

bool parseInt64(std::string_view text, std::int64_t& out);

/// A task instance as stored in its run's `tis` hash: 11 '|'-separated fields —
///   seq|state|try|max_tries|scheduled_at|queued_at|started_at|ended_at|last_heartbeat_at|exit_code|note
/// seq is the materialization order (tasks are returned in it); the note comes last and may hold '|'.
struct TiRecord {
  std::int64_t seq = 0;
  TaskInstance ti;
};

std::optional<TiRecord> decodeTiRecord(std::string_view task_id, std::string_view record);
std::string encodeTiRecord(const TiRecord& record);

}  // namespace leoflow::plugins::store_redis
