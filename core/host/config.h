// The host's configuration file, leoflow.toml (ARCHITECTURE §4, §8.6).
//
// Only the host parses TOML. loadHostConfig() checks every host key and section — names, types,
// ranges, ${ENV} references — before any plugin is loaded, and keeps each plugin's
// [<section>.config] table as written; bindPluginConfig() later judges that table against the keys
// the plugin's factory declares, before create() is called. No TOML type leaves this file's .cpp:
// the engine sees plain values.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <leoflow/config.h>

namespace leoflow::host {

/// A configuration error. what() names the file and line (`leoflow.toml:3: unknown key
/// "tick_interval_msec" in [scheduler]`); a syntax error also names the column.
class ConfigError : public std::runtime_error {
 public:
  /// Neither file nor line: the message stands alone.
  explicit ConfigError(const std::string& message);
  /// "file:line: message"; line 0 means the whole file ("file: message").
  ConfigError(std::string file, int line, const std::string& message);
  /// "file:line:column: message".
  ConfigError(std::string file, int line, int column, const std::string& message);

  const std::string& file() const noexcept { return file_; }
  int line() const noexcept { return line_; }

 private:
  std::string file_;
  int line_ = 0;
};

/// [scheduler]. Keys are the field names with their unit: tick_interval_ms, orphan_threshold_s,
/// agent_lost_threshold_s, dispatch_lost_threshold_s, dispatch_pool_size, dispatch_queue_size,
/// step_timeout_ms, dispatch_retry_limit, dispatch_retry_backoff_ms, shutdown_grace_ms,
/// reaper_batch_size, log_level. `*_ms` keys take integers; `*_s` keys take integers or floats
/// (tests use sub-second thresholds, §8.12).
struct SchedulerSettings {
  std::chrono::milliseconds tick_interval{1000};
  std::chrono::milliseconds orphan_threshold{300'000};
  std::chrono::milliseconds agent_lost_threshold{90'000};
  std::chrono::milliseconds dispatch_lost_threshold{180'000};
  int dispatch_pool_size = 16;
  int dispatch_queue_size = 256;
  /// Absent: max(30 × tick, 30 s) (BEHAVIOUR §2.1); see stepTimeout().
  std::optional<std::chrono::milliseconds> step_timeout;
  int dispatch_retry_limit = 5;                           ///< hand-over attempts before the attempt fails
  std::chrono::milliseconds dispatch_retry_backoff{200};  ///< first back-off, doubled each time
  std::chrono::milliseconds shutdown_grace{8000};         ///< drain bound on SIGTERM (§8.11: exit within 10 s)
  int reaper_batch_size = 100;
  std::string log_level = "info";                         ///< trace, debug, info, warn or error

  /// step_timeout, or its default max(30 × tick, 30 s).
  std::chrono::milliseconds stepTimeout() const;
};

/// One value of a plugin's [<section>.config] table as written, before the factory's keys judge it.
/// Strings keep their ${ENV} references; bindPluginConfig() substitutes them.
struct RawConfigValue {
  /// nullopt for a TOML type no plugin key can have (a table, a date, an array of non-strings).
  std::optional<ConfigValue> value;
  std::string type_name;  ///< as TOML names it, for messages: "string", "integer", "table", ...
  int line = 0;
};

/// A plugin's [<section>.config] table, as written.
struct RawPluginConfig {
  std::string section;  ///< "store.config", "dispatchers[1].config", ...
  int line = 0;         ///< where the table starts; 0 when the file has none
  std::map<std::string, RawConfigValue> entries;
};

/// One plugin section: [store], [leader], [dispatcher], [[dispatchers]], [inline_runner], [[recorder]].
struct PluginSection {
  std::string section;                    ///< "store", "leader", "dispatchers[1]", "recorder[0]", ...
  std::string plugin;                     ///< "store-redis" (${ENV} already substituted)
  std::vector<std::string> task_types;    ///< dispatchers only; empty = every type
  std::shared_ptr<const RawPluginConfig> config;  ///< never null; empty when there is no config table
  /// The store's table lent to the Leader when [leader] is absent (§8.6): keys only the Store
  /// knows are not errors when the Leader's keys judge it.
  bool config_lent_by_store = false;
  std::string file;                       ///< where the section is, for messages
  int line = 0;
};

/// [http] (ARCHITECTURE §8.15): the health, status and API server of `leoflow scheduler`.
struct HttpSettings {
  /// "host:port" ("[::1]:port" for IPv6); port 0 picks a free port. Default 127.0.0.1:8790.
  std::string listen = "127.0.0.1:8790";
  std::string host = "127.0.0.1";  ///< listen's host, brackets removed
  int port = 8790;                 ///< listen's port
  /// The bearer token every /api/v1 request must carry (${ENV} substituted); empty: no token, so
  /// writes are refused and only a loopback listen is allowed.
  std::string token;
  std::string file;  ///< where the section is, for messages
  int line = 0;
};

/// Whether `host` (as HttpSettings::host holds it) names the loopback interface: localhost,
/// 127.0.0.0/8 or ::1.
bool isLoopbackHost(const std::string& host);

struct HostConfig {
  std::string path;  ///< the file, as named on the command line or in $LEOFLOW_CONFIG
  SchedulerSettings scheduler;
  /// [plugins] search_path, relative entries resolved against the config file's directory.
  std::vector<std::filesystem::path> plugin_search_path;
  PluginSection store;
  std::optional<PluginSection> leader;  ///< absent: the store's plugin with the store's config
  std::vector<PluginSection> dispatchers;  ///< [dispatcher] (one) or [[dispatchers]] (several), never empty
  std::optional<PluginSection> inline_runner;
  std::vector<PluginSection> recorders;  ///< [[recorder]]
  std::optional<HttpSettings> http;      ///< [http]; absent: no HTTP server

  /// [leader], or the store's plugin and config lent to the Leader when it is absent.
  PluginSection leaderSection() const;
};

/// Which file to read: `cli_value` (--config) when set, then $LEOFLOW_CONFIG, then ./leoflow.toml
/// if it exists. Throws ConfigError naming all three when there is none. The file named by --config
/// or $LEOFLOW_CONFIG is returned even if it does not exist (loading it says so).
std::string findConfigPath(const std::string& cli_value);

/// Reads and checks the host's part of `path`: every host key and section, before any plugin is
/// loaded. Throws ConfigError.
HostConfig loadHostConfig(const std::string& path);

/// Checks a plugin section's config table against the keys its factory declares: an unknown key,
/// a value of the wrong type, a missing required key or an unset ${ENV} reference throws
/// ConfigError naming the file, the line and the key. Defaults are filled in, ${NAME} references in
/// strings replaced by the environment ($${ escapes). The view's section is "<section>.config".
ConfigView bindPluginConfig(const PluginSection& section, const std::vector<ConfigKey>& keys);

}  // namespace leoflow::host
