#include "log_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

namespace leoflow::plugins::dispatcher_local {
namespace {

bool plainWord(std::string_view word) {
  if (word.empty()) return false;
  for (const char c : word) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    std::string_view("-_./:=@,+%").find(c) != std::string_view::npos;
    if (!ok) return false;
  }
  return true;
}

std::string quoteWord(std::string_view word) {
  if (plainWord(word)) return std::string(word);
  bool control = false;
  for (const char c : word) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) control = true;
  }
  std::string out;
  if (!control) {
    out.push_back('\'');
    for (const char c : word) {
      if (c == '\'') {
        out += "'\\''";
      } else {
        out.push_back(c);
      }
    }
    out.push_back('\'');
    return out;
  }
  out = "$'";
  for (const char c : word) {
    const auto u = static_cast<unsigned char>(c);
    switch (c) {
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      case '\r': out += "\\r"; break;
      case '\\': out += "\\\\"; break;
      case '\'': out += "\\'"; break;
      default:
        if (u < 0x20 || u == 0x7f) {
          out += fmt::format("\\x{:02x}", u);
        } else {
          out.push_back(c);
        }
    }
  }
  out.push_back('\'');
  return out;
}

}  // namespace

std::string describeCommand(const std::vector<std::string>& argv) {
  std::string out;
  for (const std::string& word : argv) {
    if (!out.empty()) out.push_back(' ');
    out += quoteWord(word);
  }
  return out;
}

std::string formatLogHeader(const StateRecord& record, const std::vector<std::string>& argv) {
  return attempt_log::formatLogHeader({record.attempt, record.run_uid, record.tenant, hostName(), record.execution_id,
                                       describeCommand(argv), record.started_at_us});
}

void appendLogFooter(const std::string& path, const std::string& execution_id, const TaskOutcome& outcome) {
  if (path.empty()) return;
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_APPEND | O_CLOEXEC));
  if (!fd.valid()) return;
  struct stat st{};
  if (::fstat(fd.get(), &st) != 0) return;
  const auto size = static_cast<std::uint64_t>(st.st_size);
  if (hasFooter(fd.get(), size, execution_id)) return;
  const bool partial = size > 0 && attempt_log::preadUpTo(fd.get(), size - 1, 1) != "\n";
  const std::string footer = formatLogFooter(execution_id, outcome, std::chrono::system_clock::now(), partial);
  [[maybe_unused]] const ssize_t n = ::write(fd.get(), footer.data(), footer.size());
}

Result<LogChunk> LocalLogReader::read(const LogQuery& query) {
  return attempt_log::readLog(settings_.log_dir, host_, query);
}

}  // namespace leoflow::plugins::dispatcher_local
