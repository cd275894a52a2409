// An attempt's log (README "Logs"): the header written before the request is sent, the request and
// the response, and the footer; and the LogReader that serves the files by offset.
//
//   leoflow: ==== attempt <dag_id>/<run_id>/<task_id> try <n>
//   leoflow: run uid <run_uid>, tenant <tenant>
//   leoflow: host <host name>
//   leoflow: execution <execution id>
//   leoflow: command <METHOD> <url> (timeout <n> s)
//   leoflow: started <2026-01-02T03:04:05.123456Z>
//   leoflow: ====
//   > POST /path HTTP ... request headers (Authorization, Cookie, ... as ***)
//   < HTTP/1.1 200 OK ... response headers, a blank line, the body
//   leoflow: timing ...
//   leoflow: ==== end of execution <execution id>
//   leoflow: outcome <success | failed: note>
//   leoflow: exit code none
//   leoflow: ended <2026-01-02T03:04:07.654321Z>
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include <leoflow/dispatcher.h>

#include "settings.h"

namespace leoflow::plugins::inline_http {

std::string hostName();
std::string isoUtcMicros(std::chrono::system_clock::time_point t);
/// "<dag_id>/<run_id>/<task_id> try <n>", control characters escaped.
std::string describeAttempt(const AttemptRef& attempt);
/// Control characters as \xNN.
std::string printable(std::string_view s);

/// Letters, digits and "-_.:+=@," stay (not a leading '.'), anything else %XX; long ones cut + hash.
std::string encodeComponent(std::string_view raw);
/// <log_dir>/<dag_id>/<run_id>/<run_uid>/<task_id>/<try>.log, each id encoded.
std::filesystem::path attemptLogPath(const std::filesystem::path& log_dir, const AttemptRef& attempt,
                                     std::int64_t run_uid);

std::string formatLogHeader(const AttemptRef& attempt, std::int64_t run_uid, const std::string& tenant,
                            const std::string& execution_id, const std::string& command,
                            std::chrono::system_clock::time_point started);
std::string formatLogFooter(const std::string& execution_id, const TaskOutcome& outcome,
                            std::chrono::system_clock::time_point ended);

/// Reads <log_dir>'s files; starts nothing. Thread-safe.
class HttpLogReader final : public LogReader {
 public:
  explicit HttpLogReader(std::filesystem::path log_dir) : log_dir_(std::move(log_dir)), host_(hostName()) {}
  Result<LogChunk> read(const LogQuery& query) override;

 private:
  const std::filesystem::path log_dir_;
  const std::string host_;
};

}  // namespace leoflow::plugins::inline_http
