// The host owns spdlog: one stderr sink, one logger per component ("leoflow", "engine",
// "plugin.<name>"), never spdlog's global registry (it does not span shared libraries).
#pragma once

#include <memory>
#include <string>

#include <spdlog/logger.h>

namespace leoflow::host {

/// Sets the level every logger made from now on gets ("trace" … "error"); false for an unknown name.
bool setLogLevel(const std::string& level);

/// A logger writing to stderr through the shared sink.
std::shared_ptr<spdlog::logger> makeLogger(const std::string& name);

}  // namespace leoflow::host
