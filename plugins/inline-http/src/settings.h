// The runner's configuration ([inline_runner.config], README "Configuration").
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include <leoflow/config.h>

namespace leoflow::plugins::inline_http {

struct Settings {
  std::string section = "inline_runner.config";  ///< for messages
  std::size_t max_parallel = 32;
  int max_timeout_s = 300;
  std::size_t max_response_bytes = 1 << 20;
  std::vector<std::string> secret_env;
  std::string user_agent = "leoflow-inline-http/0.1.0";
  std::string ca_file;  ///< empty: the system's CA bundle
  std::filesystem::path log_dir;
  std::int64_t shutdown_grace_ms = 3000;
};

std::vector<ConfigKey> configKeys();

/// Checks ranges and formats; std::invalid_argument naming the key. Creates nothing.
Settings readSettings(const ConfigView& config);

/// Creates log_dir; std::runtime_error naming the folder when it cannot.
void prepareFolders(const Settings& settings);

/// The values of the secret_env variables set in this process's environment, read now.
std::map<std::string, std::string> readSecrets(const Settings& settings);

}  // namespace leoflow::plugins::inline_http
