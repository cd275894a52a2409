#include "settings.h"

#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <system_error>

namespace leoflow::plugins::inline_http {
namespace {

constexpr std::int64_t kDefaultMaxParallel = 32;
constexpr std::int64_t kDefaultMaxTimeoutS = 300;
constexpr std::int64_t kDefaultMaxResponseBytes = 1 << 20;
constexpr const char* kDefaultUserAgent = "leoflow-inline-http/0.1.0";
constexpr const char* kDefaultLogDir = "./.leoflow/http-logs";
constexpr std::int64_t kDefaultShutdownGraceMs = 3000;

std::string where(const ConfigView& config, const std::string& key) {
  return "key \"" + key + "\" in [" + config.section() + "]";
}

std::int64_t intOr(const ConfigView& config, const std::string& key, std::int64_t fallback) {
  return config.has(key) ? config.getInt(key) : fallback;
}

std::string stringOr(const ConfigView& config, const std::string& key, const std::string& fallback) {
  return config.has(key) ? config.getString(key) : fallback;
}

std::int64_t ranged(const ConfigView& config, const std::string& key, std::int64_t fallback, std::int64_t lo,
                    std::int64_t hi) {
  const std::int64_t v = intOr(config, key, fallback);
  if (v < lo || v > hi) {
    throw std::invalid_argument(where(config, key) + ": " + std::to_string(v) + " is out of range (" +
                                std::to_string(lo) + " to " + std::to_string(hi) + ")");
  }
  return v;
}

bool envName(const std::string& name) {
  if (name.empty() || (name[0] >= '0' && name[0] <= '9')) return false;
  for (char c : name) {
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return false;
  }
  return true;
}

}  // namespace

std::vector<ConfigKey> configKeys() {
  return {
      {"max_parallel", ConfigType::kInt, false, ConfigValue{kDefaultMaxParallel},
       "requests in flight at once; freeCapacity() is this minus those in flight (1 to 10000)"},
      {"max_timeout_s", ConfigType::kInt, false, ConfigValue{kDefaultMaxTimeoutS},
       "the longest timeout an inline task may have; a task above it fails at once (run it as a pod)"},
      {"max_response_bytes", ConfigType::kInt, false, ConfigValue{kDefaultMaxResponseBytes},
       "the largest response body kept in the attempt's log; a larger one fails the task"},
      {"secret_env", ConfigType::kStringList, false, ConfigValue{std::vector<std::string>{}},
       "environment variables a header value may name as ${NAME}; any other ${NAME} is an error"},
      {"user_agent", ConfigType::kString, false, ConfigValue{std::string(kDefaultUserAgent)},
       "the User-Agent sent unless the task sets one"},
      {"ca_file", ConfigType::kString, false, ConfigValue{std::string()},
       "a PEM file of CA certificates to verify servers with instead of the system's (TLS is always verified)"},
      {"log_dir", ConfigType::kString, false, ConfigValue{std::string(kDefaultLogDir)},
       "attempt logs: <log_dir>/<dag_id>/<run_id>/<run_uid>/<task_id>/<try>.log (request, response, timing)"},
      {"shutdown_grace_ms", ConfigType::kInt, false, ConfigValue{kDefaultShutdownGraceMs},
       "how long shutdown lets requests in flight finish before they are aborted and reported failed"},
  };
}

Settings readSettings(const ConfigView& config) {
  Settings s;
  s.section = config.section().empty() ? "inline_runner.config" : config.section();
  s.max_parallel = static_cast<std::size_t>(ranged(config, "max_parallel", kDefaultMaxParallel, 1, 10000));
  s.max_timeout_s = static_cast<int>(ranged(config, "max_timeout_s", kDefaultMaxTimeoutS, 1, 86400));
  s.max_response_bytes = static_cast<std::size_t>(
      ranged(config, "max_response_bytes", kDefaultMaxResponseBytes, 0, std::int64_t{1} << 30));
  if (config.has("secret_env")) s.secret_env = config.getStringList("secret_env");
  for (const std::string& name : s.secret_env) {
    if (!envName(name)) {
      throw std::invalid_argument(where(config, "secret_env") + ": \"" + name + "\" is not an environment variable name");
    }
  }
  s.user_agent = stringOr(config, "user_agent", kDefaultUserAgent);
  if (s.user_agent.find_first_of("\r\n") != std::string::npos) {
    throw std::invalid_argument(where(config, "user_agent") + ": must be one line");
  }
  s.ca_file = stringOr(config, "ca_file", "");
  if (!s.ca_file.empty() && ::access(s.ca_file.c_str(), R_OK) != 0) {
    throw std::invalid_argument(where(config, "ca_file") + ": cannot read \"" + s.ca_file + "\": " +
                                std::strerror(errno));
  }
  const std::string log_dir = stringOr(config, "log_dir", kDefaultLogDir);
  if (log_dir.empty()) throw std::invalid_argument(where(config, "log_dir") + ": must not be empty");
  std::error_code ec;
  s.log_dir = std::filesystem::absolute(log_dir, ec).lexically_normal();
  if (ec) throw std::invalid_argument(where(config, "log_dir") + ": \"" + log_dir + "\": " + ec.message());
  s.shutdown_grace_ms = ranged(config, "shutdown_grace_ms", kDefaultShutdownGraceMs, 0, 600000);
  return s;
}

void prepareFolders(const Settings& s) {
  std::error_code ec;
  std::filesystem::create_directories(s.log_dir, ec);
  if (ec || !std::filesystem::is_directory(s.log_dir, ec)) {
    throw std::runtime_error("inline-http: cannot create log_dir folder \"" + s.log_dir.string() + "\" ([" +
                             s.section + "]): " + (ec ? ec.message() : "not a directory"));
  }
}

std::map<std::string, std::string> readSecrets(const Settings& settings) {
  std::map<std::string, std::string> out;
  for (const std::string& name : settings.secret_env) {
    if (const char* v = std::getenv(name.c_str()); v != nullptr) out[name] = v;
  }
  return out;
}

}  // namespace leoflow::plugins::inline_http
