// File names derived from an attempt's identity: the state file's base name and the log path.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

#include <leoflow/domain.h>

#include "attempt_log.h"

namespace leoflow::plugins::dispatcher_local {

// The log path's encoding is the one every plugin that keeps attempt logs shares (attempt_log.h).
using attempt_log::attemptLogPath;
using attempt_log::encodeComponent;
using attempt_log::kMaxComponent;

/// "<dag>~<run>~<run_uid>~<task>~<try>", each id encoded: the base name of the attempt's state files
/// (<base>.json, <base>.exit). The run's uid (DispatchRequest::run_uid, never reused) keeps a
/// re-created run id from meeting an older run's leftovers. At most about 180 bytes, whatever the ids.
std::string stateBaseName(const AttemptRef& attempt, std::int64_t run_uid);

/// "2026-01-01T00:00:00Z": whole seconds, UTC (ARCHITECTURE §8.5).
std::string isoUtc(Timestamp t);

}  // namespace leoflow::plugins::dispatcher_local
