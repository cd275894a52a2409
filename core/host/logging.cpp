#include "host/logging.h"

#include <mutex>

#include <spdlog/sinks/stdout_color_sinks.h>

namespace leoflow::host {
namespace {

struct Shared {
  std::mutex mutex;
  std::shared_ptr<spdlog::sinks::stderr_color_sink_mt> sink = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
  spdlog::level::level_enum level = spdlog::level::info;
};

Shared& shared() {
  static Shared s;
  return s;
}

}  // namespace

bool setLogLevel(const std::string& level) {
  const auto parsed = spdlog::level::from_str(level);
  if (parsed == spdlog::level::off && level != "off") return false;
  std::lock_guard lock(shared().mutex);
  shared().level = parsed;
  return true;
}

std::shared_ptr<spdlog::logger> makeLogger(const std::string& name) {
  std::lock_guard lock(shared().mutex);
  auto logger = std::make_shared<spdlog::logger>(name, shared().sink);
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %^%-5l%$ %n %v", spdlog::pattern_time_type::utc);
  logger->set_level(shared().level);
  logger->flush_on(spdlog::level::warn);
  return logger;
}

}  // namespace leoflow::host
