#include "host/config.h"
#include "text/quoted.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <limits>
#include <set>
#include <sstream>
#include <string_view>
#include <utility>

#include <toml++/toml.h>

#include "host/plugin_loader.h"

namespace leoflow::host {

namespace fs = std::filesystem;
using std::chrono::milliseconds;

namespace {

// A duration longer than a year is a typo, and capping keeps derived values (30 × tick) far from
// overflow.
constexpr std::int64_t kMaxDurationMs = 365LL * 24 * 3600 * 1000;
constexpr std::int64_t kMaxCount = std::numeric_limits<int>::max();
constexpr const char* kLogLevels[] = {"trace", "debug", "info", "warn", "error"};


int lineOf(const toml::node& node) { return static_cast<int>(node.source().begin.line); }

// A TOML type with its article, for "must be an integer, not a float".
std::string describe(const toml::node& node) {
  switch (node.type()) {
    case toml::node_type::string: return "a string";
    case toml::node_type::integer: return "an integer";
    case toml::node_type::floating_point: return "a float";
    case toml::node_type::boolean: return "a boolean";
    case toml::node_type::table: return "a table";
    case toml::node_type::date: return "a date";
    case toml::node_type::time: return "a time";
    case toml::node_type::date_time: return "a date-time";
    case toml::node_type::array: {
      const toml::array& array = *node.as_array();
      if (array.empty()) return "an empty array";
      if (!array.is_homogeneous()) return "an array of mixed types";
      std::string element = describe(*array.get(0));
      element = element.substr(element.find(' ') + 1);
      return "an array of " + element + "s";
    }
    case toml::node_type::none: break;
  }
  return "nothing";
}

std::string expected(ConfigType type) {
  switch (type) {
    case ConfigType::kString: return "a string";
    case ConfigType::kInt: return "an integer";
    case ConfigType::kBool: return "a boolean";
    case ConfigType::kDouble: return "a number";
    case ConfigType::kStringList: return "an array of strings";
  }
  return "?";
}

struct Entry {
  std::string name;
  const toml::node* node;
  int line;  ///< the value's line, else (a table only implied by a dotted header) the key's
};

// A table's entries in the order the file has them (toml::table iterates by key), so the first
// error reported is the first one in the file.
std::vector<Entry> inFileOrder(const toml::table& table) {
  std::vector<Entry> entries;
  for (auto&& [key, node] : table) {
    const int line = lineOf(node) > 0 ? lineOf(node) : static_cast<int>(key.source().begin.line);
    entries.push_back(Entry{std::string(key.str()), &node, line});
  }
  std::stable_sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    return a.line != b.line ? a.line < b.line
                            : a.node->source().begin.column < b.node->source().begin.column;
  });
  return entries;
}

bool isEnvNameStart(char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_'; }
bool isEnvNameChar(char c) { return isEnvNameStart(c) || (c >= '0' && c <= '9'); }

// ARCHITECTURE §4: `${NAME}` is replaced by the environment variable NAME, so secrets stay out of
// the file; `$${` is a literal `${`. Returns the reason on failure. With `unset` given, an unset
// variable is not a failure: *unset becomes true (and the variable reads as empty).
std::optional<std::string> substituteEnv(std::string_view text, std::string& out, bool* unset = nullptr) {
  out.clear();
  for (std::size_t i = 0; i < text.size();) {
    if (text.compare(i, 3, "$${") == 0) {
      out += "${";
      i += 3;
      continue;
    }
    if (text.compare(i, 2, "${") != 0) {
      out += text[i++];
      continue;
    }
    const std::size_t close = text.find('}', i + 2);
    if (close == std::string_view::npos) return "unterminated \"${\" (write \"$${\" for a literal \"${\")";
    const std::string_view name = text.substr(i + 2, close - i - 2);
    if (name.empty() || !isEnvNameStart(name.front()) || !std::all_of(name.begin(), name.end(), isEnvNameChar)) {
      return "\"${" + std::string(name) + "}\" is not an environment variable reference (letters, digits, '_')";
    }
    const char* value = std::getenv(std::string(name).c_str());
    if (value == nullptr && unset == nullptr) return "environment variable " + std::string(name) + " is not set";
    if (value == nullptr) {
      *unset = true;
    } else {
      out += value;
    }
    i = close + 1;
  }
  return std::nullopt;
}

// Reads the host's part of one file; every failure names the file and line.
class Reader {
 public:
  explicit Reader(std::string file) : file_(std::move(file)) {}

  [[noreturn]] void fail(int line, const std::string& message) const { throw ConfigError(file_, line, message); }

  const std::string& file() const noexcept { return file_; }

  static std::string where(std::string_view key, std::string_view section) {
    return "key " + text::quoted(key) + " in [" + std::string(section) + "]";
  }

  std::string string(const toml::node& node, std::string_view key, std::string_view section) const {
    const auto* value = node.as_string();
    if (value == nullptr) fail(lineOf(node), where(key, section) + " must be a string, not " + describe(node));
    return substituted(value->get(), lineOf(node), key, section);
  }

  std::string substituted(std::string_view text, int line, std::string_view key, std::string_view section) const {
    std::string out;
    if (auto problem = substituteEnv(text, out)) fail(line, where(key, section) + ": " + *problem);
    return out;
  }

  std::vector<std::string> stringList(const toml::node& node, std::string_view key, std::string_view section) const {
    const auto* array = node.as_array();
    const auto is_string = [](const toml::node& n) { return n.is_string(); };
    if (array == nullptr || !std::all_of(array->begin(), array->end(), is_string)) {
      fail(lineOf(node), where(key, section) + " must be an array of strings, not " + describe(node));
    }
    std::vector<std::string> values;
    for (const toml::node& element : *array) {
      values.push_back(substituted(element.as_string()->get(), lineOf(node), key, section));
    }
    return values;
  }

  std::int64_t positiveInteger(const toml::node& node, std::string_view key, std::string_view section,
                               std::int64_t max, std::string_view unit) const {
    const auto* value = node.as_integer();
    if (value == nullptr) {
      fail(lineOf(node), where(key, section) + " must be an integer" + std::string(unit) + ", not " + describe(node));
    }
    const std::int64_t v = value->get();
    if (v <= 0) fail(lineOf(node), where(key, section) + " must be positive, got " + std::to_string(v));
    if (v > max) {
      fail(lineOf(node), where(key, section) + " must be at most " + std::to_string(max) + ", got " + std::to_string(v));
    }
    return v;
  }

  milliseconds positiveMs(const toml::node& node, std::string_view key, std::string_view section) const {
    return milliseconds(positiveInteger(node, key, section, kMaxDurationMs, " (milliseconds)"));
  }

  // `*_s` keys take integers or floats: tests shorten thresholds below a second (§8.12).
  milliseconds positiveSeconds(const toml::node& node, std::string_view key, std::string_view section) const {
    double seconds = 0;
    if (const auto* i = node.as_integer()) {
      seconds = static_cast<double>(i->get());
    } else if (const auto* f = node.as_floating_point()) {
      seconds = f->get();
    } else {
      fail(lineOf(node), where(key, section) + " must be a number of seconds, not " + describe(node));
    }
    std::ostringstream shown;
    shown << seconds;
    if (!std::isfinite(seconds) || seconds <= 0) {
      fail(lineOf(node), where(key, section) + " must be a positive number of seconds, got " + shown.str());
    }
    if (seconds * 1000 > static_cast<double>(kMaxDurationMs)) {
      fail(lineOf(node), where(key, section) + " must be at most " + std::to_string(kMaxDurationMs / 1000) +
                             " seconds, got " + shown.str());
    }
    return milliseconds(std::max<std::int64_t>(1, std::llround(seconds * 1000)));
  }

  const toml::table& table(const toml::node& node, std::string_view name) const {
    const auto* t = node.as_table();
    if (t == nullptr) fail(lineOf(node), "[" + std::string(name) + "] must be a table, not " + describe(node));
    return *t;
  }

 private:
  std::string file_;
};

SchedulerSettings readScheduler(const Reader& r, const toml::table& table) {
  constexpr std::string_view kSection = "scheduler";
  SchedulerSettings s;
  for (const auto& [key, node, line] : inFileOrder(table)) {
    const toml::node& n = *node;
    if (key == "tick_interval_ms") {
      s.tick_interval = r.positiveMs(n, key, kSection);
    } else if (key == "orphan_threshold_s") {
      s.orphan_threshold = r.positiveSeconds(n, key, kSection);
    } else if (key == "agent_lost_threshold_s") {
      s.agent_lost_threshold = r.positiveSeconds(n, key, kSection);
    } else if (key == "dispatch_lost_threshold_s") {
      s.dispatch_lost_threshold = r.positiveSeconds(n, key, kSection);
    } else if (key == "dispatch_pool_size") {
      s.dispatch_pool_size = static_cast<int>(r.positiveInteger(n, key, kSection, kMaxCount, ""));
    } else if (key == "dispatch_queue_size") {
      s.dispatch_queue_size = static_cast<int>(r.positiveInteger(n, key, kSection, kMaxCount, ""));
    } else if (key == "step_timeout_ms") {
      s.step_timeout = r.positiveMs(n, key, kSection);
    } else if (key == "dispatch_retry_limit") {
      s.dispatch_retry_limit = static_cast<int>(r.positiveInteger(n, key, kSection, kMaxCount, ""));
    } else if (key == "dispatch_retry_backoff_ms") {
      s.dispatch_retry_backoff = r.positiveMs(n, key, kSection);
    } else if (key == "shutdown_grace_ms") {
      // The process ends within 10 s of SIGTERM, by force 9 s after it (scheduler_command.cpp): the
      // dispatch pool's drain must leave time for stepping down and the dispatchers' shutdown.
      s.shutdown_grace = milliseconds(r.positiveInteger(n, key, kSection, 8000, " (milliseconds)"));
    } else if (key == "reaper_batch_size") {
      s.reaper_batch_size = static_cast<int>(r.positiveInteger(n, key, kSection, kMaxCount, ""));
    } else if (key == "log_level") {
      s.log_level = r.string(n, key, kSection);
      if (std::find(std::begin(kLogLevels), std::end(kLogLevels), s.log_level) == std::end(kLogLevels)) {
        r.fail(line, Reader::where(key, kSection) +
                              " must be one of trace, debug, info, warn, error; got " + text::quoted(s.log_level));
      }
    } else {
      r.fail(line, "unknown key " + text::quoted(key) + " in [scheduler]");
    }
  }
  return s;
}

// "host:port" or "[v6]:port"; returns the reason it is not one.
std::optional<std::string> splitListen(const std::string& listen, std::string& host, int& port) {
  std::string port_text;
  if (!listen.empty() && listen.front() == '[') {
    const std::size_t close = listen.find(']');
    if (close == std::string::npos || close + 1 >= listen.size() || listen[close + 1] != ':') {
      return "an IPv6 address is written \"[::1]:8790\"";
    }
    host = listen.substr(1, close - 1);
    port_text = listen.substr(close + 2);
  } else {
    const std::size_t colon = listen.rfind(':');
    if (colon == std::string::npos) return "it has no port (write \"127.0.0.1:8790\"; port 0 picks a free one)";
    host = listen.substr(0, colon);
    if (host.find(':') != std::string::npos) return "an IPv6 address is written \"[::1]:8790\"";
    port_text = listen.substr(colon + 1);
  }
  if (host.empty()) return "it has no host (write \"127.0.0.1:8790\", or \"0.0.0.0:8790\" for every interface)";
  if (port_text.empty() || port_text.size() > 5 ||
      !std::all_of(port_text.begin(), port_text.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return "the port must be a number from 0 to 65535";
  }
  port = std::stoi(port_text);
  if (port > 65535) return "the port must be a number from 0 to 65535";
  return std::nullopt;
}

HttpSettings readHttp(const Reader& r, const toml::node& node, int fallback_line) {
  constexpr std::string_view kSection = "http";
  const toml::table& table = r.table(node, kSection);
  HttpSettings h;
  h.file = r.file();
  h.line = lineOf(node) > 0 ? lineOf(node) : fallback_line;
  int listen_line = h.line;
  for (const auto& [key, value, line] : inFileOrder(table)) {
    if (key == "listen") {
      h.listen = r.string(*value, key, kSection);
      listen_line = line;
    } else if (key == "token") {
      // §8.15 "absent or empty: no token": `token = "${LEOFLOW_API_TOKEN}"` with the variable unset
      // or empty means no token (writes refused, loopback only) rather than a start-up error.
      const auto* text = value->as_string();
      if (text == nullptr) r.fail(line, Reader::where(key, kSection) + " must be a string, not " + describe(*value));
      bool unset = false;
      if (auto problem = substituteEnv(text->get(), h.token, &unset)) {
        r.fail(line, Reader::where(key, kSection) + ": " + *problem);
      }
      if (unset) h.token.clear();
    } else {
      r.fail(line, "unknown key " + text::quoted(key) + " in [http]");
    }
  }
  if (auto problem = splitListen(h.listen, h.host, h.port)) {
    r.fail(listen_line, Reader::where("listen", kSection) + ": " + text::quoted(h.listen) +
                            " is not \"host:port\": " + *problem);
  }
  return h;
}

std::vector<fs::path> readPlugins(const Reader& r, const toml::table& table) {
  std::vector<fs::path> search_path;
  // Relative directories are read from the config file's directory, wherever leoflow is started.
  const fs::path base = fs::absolute(fs::path(r.file())).parent_path();
  for (const auto& [key, node, line] : inFileOrder(table)) {
    if (key != "search_path") r.fail(line, "unknown key " + text::quoted(key) + " in [plugins]");
    for (const std::string& dir : r.stringList(*node, key, "plugins")) {
      if (dir.empty()) r.fail(line, Reader::where(key, "plugins") + " has an empty directory");
      const fs::path p(dir);
      search_path.push_back(p.is_absolute() ? p : (base / p).lexically_normal());
    }
  }
  return search_path;
}

RawConfigValue rawValue(const toml::node& node, int line) {
  RawConfigValue raw;
  raw.line = line;
  raw.type_name = describe(node);
  if (const auto* s = node.as_string()) {
    raw.value = ConfigValue(std::string(s->get()));
  } else if (const auto* i = node.as_integer()) {
    raw.value = ConfigValue(i->get());
  } else if (const auto* f = node.as_floating_point()) {
    raw.value = ConfigValue(f->get());
  } else if (const auto* b = node.as_boolean()) {
    raw.value = ConfigValue(b->get());
  } else if (const auto* a = node.as_array()) {
    if (std::all_of(a->begin(), a->end(), [](const toml::node& n) { return n.is_string(); })) {
      std::vector<std::string> strings;
      for (const toml::node& element : *a) strings.emplace_back(element.as_string()->get());
      raw.value = ConfigValue(std::move(strings));
      raw.type_name = "an array of strings";
    }
  }
  return raw;
}

PluginSection readPluginSection(const Reader& r, const toml::node& node, std::string section, int fallback_line,
                                bool takes_task_types) {
  const toml::table& table = r.table(node, section);
  PluginSection s;
  s.file = r.file();
  s.line = lineOf(node) > 0 ? lineOf(node) : fallback_line;
  auto config = std::make_shared<RawPluginConfig>();
  config->section = section + ".config";
  for (const auto& [key, value, line] : inFileOrder(table)) {
    const toml::node& n = *value;
    if (key == "plugin") {
      s.plugin = r.string(n, key, section);
      if (!isValidPluginName(s.plugin)) {
        r.fail(line, Reader::where(key, section) + ": " + text::quoted(s.plugin) +
                              " is not a plugin name (lower-case letters, digits, '-' and '_')");
      }
    } else if (key == "config") {
      const toml::table& config_table = r.table(n, config->section);
      config->line = line;
      for (const auto& [config_key, config_node, config_line] : inFileOrder(config_table)) {
        config->entries.emplace(config_key, rawValue(*config_node, config_line));
      }
    } else if (key == "task_types" && takes_task_types) {
      s.task_types = r.stringList(n, key, section);
      if (s.task_types.empty()) {
        r.fail(line, Reader::where(key, section) + " is empty; leave it out to take every task type");
      }
      std::set<std::string> seen;
      for (const std::string& type : s.task_types) {
        if (type.empty()) r.fail(line, Reader::where(key, section) + " has an empty task type");
        if (!seen.insert(type).second) {
          r.fail(line, Reader::where(key, section) + " lists " + text::quoted(type) + " twice");
        }
      }
    } else {
      r.fail(line, "unknown key " + text::quoted(key) + " in [" + section + "]");
    }
  }
  if (s.plugin.empty()) r.fail(s.line, "missing key \"plugin\" in [" + section + "]");
  s.section = std::move(section);
  s.config = std::move(config);
  return s;
}

// Several dispatchers split the task types between them: a type may go to one dispatcher only,
// and at most one dispatcher (the one without task_types) takes the rest.
void checkDispatcherTypes(const Reader& r, const std::vector<PluginSection>& dispatchers) {
  std::map<std::string, const PluginSection*> owner;
  const PluginSection* catch_all = nullptr;
  for (const PluginSection& d : dispatchers) {
    if (d.task_types.empty()) {
      if (catch_all != nullptr) {
        r.fail(d.line, "[" + d.section + "] has no task_types, like [" + catch_all->section + "] (line " +
                           std::to_string(catch_all->line) + "): only one dispatcher may take every task type");
      }
      catch_all = &d;
    }
    for (const std::string& type : d.task_types) {
      auto [it, inserted] = owner.emplace(type, &d);
      if (!inserted) {
        r.fail(d.line, "task type " + text::quoted(type) + " of [" + d.section + "] is already taken by [" +
                           it->second->section + "] (line " + std::to_string(it->second->line) + ")");
      }
    }
  }
}

}  // namespace

// --- ConfigError ----------------------------------------------------------------------------------

ConfigError::ConfigError(const std::string& message) : std::runtime_error(message) {}

ConfigError::ConfigError(std::string file, int line, const std::string& message)
    : std::runtime_error(file + (line > 0 ? ":" + std::to_string(line) : std::string()) + ": " + message),
      file_(std::move(file)),
      line_(line) {}

ConfigError::ConfigError(std::string file, int line, int column, const std::string& message)
    : std::runtime_error(file + ":" + std::to_string(line) + ":" + std::to_string(column) + ": " + message),
      file_(std::move(file)),
      line_(line) {}

// --- the host's settings --------------------------------------------------------------------------

milliseconds SchedulerSettings::stepTimeout() const {
  // BEHAVIOUR §2.1: max(30 × interval, 30 s).
  return step_timeout ? *step_timeout : std::max<milliseconds>(30 * tick_interval, std::chrono::seconds(30));
}

bool isLoopbackHost(const std::string& host) {
  if (host == "localhost" || host == "::1" || host == "0:0:0:0:0:0:0:1") return true;
  // 127.0.0.0/8, written as a dotted quad.
  if (host.rfind("127.", 0) != 0) return false;
  int parts = 0;
  std::size_t i = 0;
  while (i <= host.size()) {
    const std::size_t dot = std::min(host.find('.', i), host.size());
    const std::string part = host.substr(i, dot - i);
    if (part.empty() || part.size() > 3 ||
        !std::all_of(part.begin(), part.end(), [](char c) { return c >= '0' && c <= '9'; }) || std::stoi(part) > 255) {
      return false;
    }
    ++parts;
    i = dot + 1;
  }
  return parts == 4;
}

PluginSection HostConfig::leaderSection() const {
  if (leader) return *leader;
  // §8.6: without [leader], the store's plugin provides the Leader with the store's config.
  PluginSection lent = store;
  lent.config_lent_by_store = true;
  return lent;
}

std::string findConfigPath(const std::string& cli_value) {
  if (!cli_value.empty()) return cli_value;
  if (const char* env = std::getenv("LEOFLOW_CONFIG"); env != nullptr && *env != '\0') return env;
  std::error_code ec;
  if (fs::exists("leoflow.toml", ec)) return "leoflow.toml";
  throw ConfigError(
      "no config file: pass --config FILE, set $LEOFLOW_CONFIG, or put leoflow.toml in the current directory");
}

HostConfig loadHostConfig(const std::string& path) {
  const Reader r(path);
  std::error_code ec;
  if (fs::is_directory(path, ec)) r.fail(0, "cannot read the config file: it is a directory");
  std::ifstream in(path, std::ios::binary);
  if (!in) r.fail(0, std::string("cannot read the config file: ") + std::strerror(errno));
  std::stringstream text;
  text << in.rdbuf();

  toml::table root;
  try {
    root = toml::parse(text.str(), std::string_view(path));
  } catch (const toml::parse_error& e) {
    throw ConfigError(path, static_cast<int>(e.source().begin.line), static_cast<int>(e.source().begin.column),
                      "invalid TOML: " + std::string(e.description()));
  }

  HostConfig config;
  config.path = path;
  int dispatcher_line = 0, dispatchers_line = 0;
  for (const auto& [name, node, line] : inFileOrder(root)) {
    const toml::node& n = *node;
    if (name == "scheduler") {
      config.scheduler = readScheduler(r, r.table(n, name));
    } else if (name == "plugins") {
      config.plugin_search_path = readPlugins(r, r.table(n, name));
    } else if (name == "store") {
      config.store = readPluginSection(r, n, name, line, false);
    } else if (name == "leader") {
      config.leader = readPluginSection(r, n, name, line, false);
    } else if (name == "inline_runner") {
      config.inline_runner = readPluginSection(r, n, name, line, false);
    } else if (name == "dispatcher") {
      if (n.is_array()) {
        r.fail(line, "[dispatcher] must be a table; for several dispatchers write [[dispatchers]]");
      }
      dispatcher_line = line;
      config.dispatchers.push_back(readPluginSection(r, n, name, line, true));
    } else if (name == "dispatchers") {
      const toml::array* array = n.as_array();
      if (array == nullptr || !array->is_array_of_tables()) {
        r.fail(line, "[[dispatchers]] must be an array of tables (write [[dispatchers]], or [dispatcher] for one)");
      }
      dispatchers_line = line;
      for (std::size_t i = 0; i < array->size(); ++i) {
        config.dispatchers.push_back(
            readPluginSection(r, *array->get(i), "dispatchers[" + std::to_string(i) + "]", line, true));
      }
    } else if (name == "recorder") {
      if (const toml::array* array = n.as_array()) {
        if (!array->is_array_of_tables()) r.fail(line, "[[recorder]] must be an array of tables");
        for (std::size_t i = 0; i < array->size(); ++i) {
          config.recorders.push_back(
              readPluginSection(r, *array->get(i), "recorder[" + std::to_string(i) + "]", line, false));
        }
      } else {
        config.recorders.push_back(readPluginSection(r, n, name, line, false));
      }
    } else if (name == "http") {
      config.http = readHttp(r, n, line);
    } else if (n.is_table()) {
      r.fail(line, "unknown section [" + name + "]");
    } else if (n.is_array_of_tables()) {
      r.fail(line, "unknown section [[" + name + "]]");
    } else {
      r.fail(line, "unknown key " + text::quoted(name));
    }
  }

  if (dispatcher_line > 0 && dispatchers_line > 0) {
    r.fail(std::max(dispatcher_line, dispatchers_line),
           "[dispatcher] and [[dispatchers]] are both present; use [dispatcher] for one dispatcher or "
           "[[dispatchers]] for several");
  }
  if (config.store.plugin.empty()) r.fail(0, "missing [store] section: the store plugin is required");
  if (config.dispatchers.empty()) {
    r.fail(0, "missing [dispatcher] section (or [[dispatchers]]): a dispatcher plugin is required");
  }
  checkDispatcherTypes(r, config.dispatchers);
  return config;
}

// --- a plugin's keys ------------------------------------------------------------------------------

namespace {

ConfigValue normalizedDefault(const ConfigKey& key) {
  // A float key may declare an integer default (`0` rather than `0.0`); hand out what getDouble reads.
  if (key.type == ConfigType::kDouble) {
    if (const auto* i = std::get_if<std::int64_t>(&*key.default_value)) return static_cast<double>(*i);
  }
  return *key.default_value;
}

}  // namespace

ConfigView bindPluginConfig(const PluginSection& section, const std::vector<ConfigKey>& keys) {
  static const RawPluginConfig kEmpty;
  const RawPluginConfig& raw = section.config ? *section.config : kEmpty;
  const std::string view_section = raw.section.empty() ? section.section + ".config" : raw.section;
  const Reader r(section.file);
  const auto where = [&](const std::string& key) { return Reader::where(key, view_section); };
  const std::string lent_note =
      section.config_lent_by_store ? " (there is no [leader], so the leader reads the store's config)" : "";

  std::map<std::string, const ConfigKey*> declared;
  for (const ConfigKey& key : keys) declared.emplace(key.name, &key);

  std::vector<std::pair<std::string, const RawConfigValue*>> entries;
  for (const auto& [name, value] : raw.entries) entries.emplace_back(name, &value);
  std::stable_sort(entries.begin(), entries.end(),
                   [](const auto& a, const auto& b) { return a.second->line < b.second->line; });

  std::map<std::string, ConfigValue> values;
  for (const auto& [name, value] : entries) {
    auto it = declared.find(name);
    if (it == declared.end()) {
      // Keys of the Store's table that the Leader does not know were already judged by the Store.
      if (section.config_lent_by_store) continue;
      std::string accepted;
      for (const ConfigKey& key : keys) accepted += (accepted.empty() ? "" : ", ") + key.name;
      r.fail(value->line, "unknown key " + text::quoted(name) + " in [" + view_section + "] (plugin " +
                              text::quoted(section.plugin) + " accepts: " + (accepted.empty() ? "no keys" : accepted) +
                              ")");
    }
    const ConfigKey& key = *it->second;
    const auto wrong_type = [&] {
      r.fail(value->line, where(name) + " must be " + expected(key.type) + ", not " + value->type_name + lent_note);
    };
    if (!value->value) wrong_type();
    const ConfigValue& v = *value->value;
    switch (key.type) {
      case ConfigType::kString: {
        const auto* s = std::get_if<std::string>(&v);
        if (s == nullptr) wrong_type();
        values.emplace(name, r.substituted(*s, value->line, name, view_section));
        break;
      }
      case ConfigType::kInt:
        // Integer keys take TOML integers only: 2.5 workers is a mistake, not a rounding.
        if (!std::holds_alternative<std::int64_t>(v)) wrong_type();
        values.emplace(name, v);
        break;
      case ConfigType::kBool:
        if (!std::holds_alternative<bool>(v)) wrong_type();
        values.emplace(name, v);
        break;
      case ConfigType::kDouble:
        if (const auto* i = std::get_if<std::int64_t>(&v)) {
          values.emplace(name, static_cast<double>(*i));
        } else if (std::holds_alternative<double>(v)) {
          values.emplace(name, v);
        } else {
          wrong_type();
        }
        break;
      case ConfigType::kStringList: {
        const auto* list = std::get_if<std::vector<std::string>>(&v);
        if (list == nullptr) wrong_type();
        std::vector<std::string> substituted;
        for (const std::string& s : *list) substituted.push_back(r.substituted(s, value->line, name, view_section));
        values.emplace(name, std::move(substituted));
        break;
      }
    }
  }

  for (const ConfigKey& key : keys) {
    if (values.count(key.name) != 0) continue;
    if (key.required) {
      r.fail(raw.line > 0 ? raw.line : section.line,
             "missing required key " + text::quoted(key.name) + " in [" + view_section + "] (" + expected(key.type) +
                 (key.help.empty() ? "" : ": " + key.help) + ")" + lent_note);
    }
    if (key.default_value) values.emplace(key.name, normalizedDefault(key));
  }
  return ConfigView(view_section, std::move(values));
}

}  // namespace leoflow::host
