#include "log_file.h"

namespace leoflow::plugins::inline_http {

std::string formatLogHeader(const AttemptRef& attempt, std::int64_t run_uid, const std::string& tenant,
                            const std::string& execution_id, const std::string& command,
                            std::chrono::system_clock::time_point started) {
  return attempt_log::formatLogHeader(
      {attempt, run_uid, tenant, hostName(), execution_id, command, attempt_log::microsOf(started)});
}

Result<LogChunk> HttpLogReader::read(const LogQuery& query) { return attempt_log::readLog(log_dir_, host_, query); }

}  // namespace leoflow::plugins::inline_http
