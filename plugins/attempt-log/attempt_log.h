// An attempt's log file, as every plugin that keeps one writes and serves it (dispatcher-local,
// dispatcher-k8s, inline-http; their READMEs, "Logs"): where it lives, its header and footer, and
// reading it by offset. One implementation, so that the three agree on the layout a person finds
// under `log_dir` and on what makes a log complete.
//
//   leoflow: ==== attempt <dag_id>/<run_id>/<task_id> try <n>
//   leoflow: run uid <run_uid>, tenant <tenant>
//   leoflow: host <host name, or "pod <namespace>/<name>">
//   leoflow: execution <execution id>
//   leoflow: command <the command, on one line>
//   leoflow: started <2026-01-02T03:04:05.123456Z>      (left out when not known)
//   leoflow: ====
//   ... the task's output ...
//   leoflow: ==== end of execution <execution id>
//   leoflow: outcome <success | failed: note>
//   leoflow: exit code <n | none>
//   leoflow: ended <2026-01-02T03:04:07.654321Z>
//
// A log is complete when its last 64 KiB hold the footer naming the execution its header names.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include <leoflow/dispatcher.h>

namespace leoflow::plugins::attempt_log {

/// Longest encoded path component; longer ones are cut and end in "%%" and a hash.
inline constexpr std::size_t kMaxComponent = 180;

/// FNV-1a, 64 bits: short, stable names for over-long ids (not a security boundary).
std::uint64_t fnv1a64(std::string_view data) noexcept;

/// Encodes one path component so it is safe and distinct: letters, digits and "-_.:+=@," stay
/// (a leading '.' does not, so no component is hidden, "." or ".."), every other byte becomes %XX,
/// the empty string becomes "%". Distinct inputs give distinct outputs; a result longer than
/// kMaxComponent is cut and suffixed with "%%" and a 64-bit hash of the input.
std::string encodeComponent(std::string_view raw);

/// `encoded` (longer than kMaxComponent) cut to 160 bytes without splitting a %XX escape, then "%%"
/// and the hash of `whole`: "%%" never occurs in an encoded string, so a shortened name cannot equal a
/// full one. encodeComponent() ends so; so may a name made of several encoded ids.
std::string shortenEncoded(std::string encoded, std::string_view whole);

/// <log_dir>/<dag_id>/<run_id>/<run_uid>/<task_id>/<try>.log, each id encoded.
std::filesystem::path attemptLogPath(const std::filesystem::path& log_dir, const AttemptRef& attempt,
                                     std::int64_t run_uid);

/// Control characters (and DEL) as \xNN, so an id cannot break a log's lines.
std::string printable(std::string_view s);

/// This machine's host name, as makeExecutionId() writes it ("?" when unknown).
std::string hostName();

/// "2026-01-02T03:04:05.123456Z": microseconds since the epoch, UTC.
std::string isoUtcMicros(std::int64_t us);
std::int64_t microsOf(std::chrono::system_clock::time_point t);

/// "<dag_id>/<run_id>/<task_id> try <n>", control characters escaped: for headers and messages.
std::string describeAttempt(const AttemptRef& attempt);

struct LogHeader {
  AttemptRef attempt;
  std::int64_t run_uid = 0;
  std::string tenant;
  std::string host;          ///< written as given (hostName(), or "pod <ns>/<name>"), escaped
  std::string execution_id;
  std::string command;       ///< one line, already in the plugin's form (escaped here once more)
  std::optional<std::int64_t> started_us;
};
std::string formatLogHeader(const LogHeader& header);

/// The footer: outcome, exit code, end time. Starts with a newline when `after_partial_line`.
std::string formatLogFooter(const std::string& execution_id, const TaskOutcome& outcome,
                            std::chrono::system_clock::time_point ended, bool after_partial_line = false);

/// Up to `length` bytes of `fd` from `offset` (fewer at its end).
std::string preadUpTo(int fd, std::uint64_t offset, std::size_t length);

/// The execution id the header at the start of `fd` names; nullopt without a header.
std::optional<std::string> headerExecutionId(int fd);

/// True when the header of `fd` names `execution_id` and the last 64 KiB before `size` hold its
/// whole footer.
bool hasFooter(int fd, std::uint64_t size, const std::string& execution_id);

/// The host an execution id names: "local/<host>/<pid>/<hex>" or "<host>/<pid>/<hex>"
/// (leoflow/execution_id.h); nullopt for another form (a pod's UID).
std::optional<std::string> hostOfExecution(std::string_view execution_id);

/// Serves `query` from <log_dir>'s files: the bytes from its offset, and whether the log is
/// complete once they reach its end. No file: kNotFound, naming the host the execution ran on when
/// that is not `this_host`; a file that cannot be read: kUnavailable.
Result<LogChunk> readLog(const std::filesystem::path& log_dir, const std::string& this_host, const LogQuery& query);

}  // namespace leoflow::plugins::attempt_log
