// Names derived from an attempt's identity: the pod's name, label values, log paths (README "Pod naming").
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

#include <leoflow/domain.h>

#include "attempt_log.h"

namespace leoflow::plugins::dispatcher_k8s {

/// FNV-1a's scheme, 64 bits: short, stable suffixes for over-long ids (not a security boundary). Its
/// offset basis is not FNV's own (a digit short); pods are named with it, so it stays as it is.
std::uint64_t fnv1a64(std::string_view data) noexcept;
/// The first `digits` hex digits of fnv1a64(data).
std::string shortHash(std::string_view data, std::size_t digits = 10);

/// The attempt's pod name, a DNS-1123 label of at most 63 characters, the same for every dispatch of
/// one attempt: "lf-<task, sanitised and cut>-<run uid>-<try>-<8 hex digits>", the digits a hash of
/// (run uid, dag id, run id, task id, try).
std::string podName(const AttemptRef& attempt, std::int64_t run_uid);

/// True for a valid label value: at most 63 of [A-Za-z0-9._-], starting and ending alphanumeric (or empty).
bool isValidLabelValue(std::string_view value);
/// `value` itself when it is a valid label value; else its valid characters cut to 52, then "-" and
/// a 10-digit hash of the whole value (distinct values stay distinct).
std::string labelValue(std::string_view value);

/// True for a DNS-1123 label: at most 63 of [a-z0-9-], starting and ending alphanumeric.
bool isDns1123Label(std::string_view value);

// The attempt log's path and wording are shared with the other plugins that keep one (attempt_log.h).
using attempt_log::attemptLogPath;
using attempt_log::describeAttempt;

/// "2026-01-01T00:00:00Z": whole seconds, UTC.
std::string isoUtc(Timestamp t);

}  // namespace leoflow::plugins::dispatcher_k8s
