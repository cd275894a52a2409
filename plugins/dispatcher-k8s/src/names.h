// Names derived from an attempt's identity: the pod's name, label values, log paths (README "Pod naming").
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

#include <leoflow/domain.h>

namespace leoflow::plugins::dispatcher_k8s {

/// FNV-1a, 64 bits: short, stable suffixes for over-long ids (not a security boundary).
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

/// <log_dir>/<dag_id>/<run_id>/<run_uid>/<task_id>/<try>.log, each id encoded as dispatcher-local does.
std::filesystem::path attemptLogPath(const std::filesystem::path& log_dir, const AttemptRef& attempt,
                                     std::int64_t run_uid);

/// "2026-01-01T00:00:00Z": whole seconds, UTC.
std::string isoUtc(Timestamp t);
/// "2026-01-02T03:04:05.123456Z".
std::string isoUtcMicros(std::int64_t us);

/// "<dag_id>/<run_id>/<task_id> try <n>" for messages.
std::string describeAttempt(const AttemptRef& attempt);

}  // namespace leoflow::plugins::dispatcher_k8s
