// File names derived from an attempt's identity: the state file's base name and the log path.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

#include <leoflow/domain.h>

namespace leoflow::plugins::dispatcher_local {

/// Encodes one path component so it is safe and distinct: letters, digits and "-_.:+=@," stay
/// (a leading '.' does not, so no component is hidden, "." or ".."), every other byte becomes %XX,
/// the empty string becomes "%". Distinct inputs give distinct outputs; a result longer than
/// kMaxComponent is cut and suffixed with "%%" and a 64-bit hash of the input.
std::string encodeComponent(std::string_view raw);
inline constexpr std::size_t kMaxComponent = 180;

/// "<dag>~<run>~<run_uid>~<task>~<try>", each id encoded: the base name of the attempt's state files
/// (<base>.json, <base>.exit). The run's uid (DispatchRequest::run_uid, never reused) keeps a
/// re-created run id from meeting an older run's leftovers. At most about 180 bytes, whatever the ids.
std::string stateBaseName(const AttemptRef& attempt, std::int64_t run_uid);

/// <log_dir>/<dag_id>/<run_id>/<run_uid>/<task_id>/<try>.log, each id encoded.
std::filesystem::path attemptLogPath(const std::filesystem::path& log_dir, const AttemptRef& attempt,
                                     std::int64_t run_uid);

/// "2026-01-01T00:00:00Z": whole seconds, UTC (ARCHITECTURE §8.5).
std::string isoUtc(Timestamp t);

/// FNV-1a, 64 bits: short, stable names for over-long ids (not a security boundary).
std::uint64_t fnv1a64(std::string_view data) noexcept;

}  // namespace leoflow::plugins::dispatcher_local
