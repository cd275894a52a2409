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

#include "attempt_log.h"
#include "settings.h"

namespace leoflow::plugins::inline_http {

// Shared with the other plugins that keep attempt logs (attempt_log.h).
using attempt_log::attemptLogPath;
using attempt_log::describeAttempt;
using attempt_log::formatLogFooter;
using attempt_log::hostName;
using attempt_log::printable;

/// The header of a request's log: its command is "<METHOD> <url> (timeout <n> s)".
std::string formatLogHeader(const AttemptRef& attempt, std::int64_t run_uid, const std::string& tenant,
                            const std::string& execution_id, const std::string& command,
                            std::chrono::system_clock::time_point started);

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
