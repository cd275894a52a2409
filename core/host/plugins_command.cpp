#include "host/plugins_command.h"

#include <algorithm>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <sstream>
#include <variant>

#include <CLI/CLI.hpp>

#include <leoflow/abi.h>
#include <leoflow/config.h>

#include "host/command_context.h"
#include "host/config.h"
#include "host/exit_codes.h"
#include "host/plugin_loader.h"

namespace leoflow::host {

namespace fs = std::filesystem;

namespace {

std::string join(const std::vector<std::string>& words, const char* separator = ", ") {
  std::string text;
  for (const std::string& w : words) text += (text.empty() ? "" : separator) + w;
  return text;
}

std::string formatValue(const ConfigValue& value) {
  struct Formatter {
    std::string operator()(const std::string& s) const { return "\"" + s + "\""; }
    std::string operator()(std::int64_t i) const { return std::to_string(i); }
    std::string operator()(bool b) const { return b ? "true" : "false"; }
    std::string operator()(double d) const {
      std::ostringstream out;
      out << d;
      return out.str();
    }
    std::string operator()(const std::vector<std::string>& list) const {
      std::vector<std::string> items;
      for (const std::string& s : list) items.push_back((*this)(s));
      return "[" + join(items) + "]";
    }
  };
  return std::visit(Formatter{}, value);
}

// A left-aligned column: `text` padded to `width`.
std::string pad(const std::string& text, std::size_t width) {
  return text.size() >= width ? text : text + std::string(width - text.size(), ' ');
}

void printKeys(const char* role, const std::vector<ConfigKey>& keys, std::ostream& out) {
  out << role << " config keys:";
  if (keys.empty()) {
    out << " none\n";
    return;
  }
  out << '\n';
  std::size_t name_width = 0, type_width = 0, rule_width = 0;
  std::vector<std::string> rules;
  for (const ConfigKey& key : keys) {
    rules.push_back(key.required ? "required"
                                 : key.default_value ? "default " + formatValue(*key.default_value) : "optional");
    name_width = std::max(name_width, key.name.size());
    type_width = std::max(type_width, std::string(toString(key.type)).size());
    rule_width = std::max(rule_width, rules.back().size());
  }
  for (std::size_t i = 0; i < keys.size(); ++i) {
    const ConfigKey& key = keys[i];
    out << "  " << pad(key.name, name_width) << "  " << pad(toString(key.type), type_width) << "  "
        << pad(rules[i], rule_width) << "  " << key.help << '\n';
  }
}

// The descriptor, then each factory with its keys. configKeys() is plugin code: a throwing one is
// reported, not allowed to end the command with a stack trace.
int describePlugin(const LoadedPlugin& plugin, std::ostream& out, std::ostream& err, const char* program) {
  out << "plugin:      " << plugin.name() << '\n'
      << "version:     " << plugin.version() << '\n'
      << "description: " << plugin.description() << '\n'
      << "path:        " << plugin.path().string() << '\n'
      << "sdk:         " << plugin.abiMajor() << '.' << plugin.abiMinor() << '\n'
      << "sdk hash:    " << (plugin.sdkHash().empty() ? "none (an SDK 2.0 descriptor)" : plugin.sdkHash()) << '\n'
      << "build tag:   " << plugin.buildTag() << '\n'
      << "roles:       " << join(plugin.roles()) << '\n';
  const auto keys = [&](const char* role, const auto& factories) {
    for (const auto& factory : factories) {
      try {
        printKeys(role, factory->configKeys(), out);
      } catch (const std::exception& e) {
        err << program << "plugin \"" << plugin.name() << "\": the " << role
            << " factory's configKeys() threw: " << e.what() << '\n';
        return false;
      }
    }
    return true;
  };
  const bool ok = keys("store", plugin.stores()) && keys("leader", plugin.leaders()) &&
                  keys("dispatcher", plugin.dispatchers()) && keys("inline_runner", plugin.inlineRunners()) &&
                  keys("recorder", plugin.recorders());
  return ok ? kExitOk : kExitBadInput;
}

// Runs `fn` with a loader on the configured search path; a broken config is exit 2 with its message.
int withLoader(const CommandContext& ctx, const char* program, const std::function<int(PluginLoader&)>& fn) {
  std::vector<fs::path> configured;
  try {
    configured = configuredSearchPath(ctx.config_path);
  } catch (const ConfigError& e) {
    *ctx.err << program << e.what() << '\n';
    return kExitBadInput;
  }
  PluginLoader loader(std::move(configured));
  return fn(loader);
}

}  // namespace

std::vector<fs::path> configuredSearchPath(const std::string& cli_config) {
  std::string path;
  try {
    path = findConfigPath(cli_config);
  } catch (const ConfigError&) {
    return {};  // no config anywhere: the defaults apply
  }
  return loadHostConfig(path).plugin_search_path;
}

int runPluginsList(PluginLoader& loader, std::ostream& out, std::ostream& /*err*/) {
  const std::vector<fs::path> files = loader.discover();
  if (files.empty()) {
    std::vector<std::string> dirs;
    for (const fs::path& dir : loader.searchPath()) dirs.push_back(dir.string());
    out << "no plugins found; searched " << join(dirs) << '\n';
    return kExitOk;
  }
  struct Row {
    std::string name, version, roles, path, description;
  };
  std::vector<Row> rows;
  std::map<std::string, std::string> first_of_name;  // the library load(name) would take
  for (const fs::path& file : files) {
    Row row;
    row.name = pluginNameFromFile(file).value_or("?");
    row.path = file.string();
    try {
      const LoadedPlugin& plugin = loader.loadFile(file);
      row.version = plugin.version();
      row.roles = join(plugin.roles(), ",");
      row.description = plugin.description();
    } catch (const PluginError& e) {
      // The name and path are columns already: keep only the reason.
      std::string reason = e.what();
      const std::string prefix = "plugin \"" + row.name + "\" (" + e.path() + "): ";
      if (reason.starts_with(prefix)) reason.erase(0, prefix.size());
      row.version = "-";
      row.roles = "-";
      row.description = "refused: " + reason;
    }
    auto [first, inserted] = first_of_name.emplace(row.name, row.path);
    if (!inserted) row.description += " [shadowed by " + first->second + "]";
    rows.push_back(std::move(row));
  }
  Row header{"NAME", "VERSION", "ROLES", "PATH", "DESCRIPTION"};
  std::size_t name_width = header.name.size(), version_width = header.version.size(),
              roles_width = header.roles.size(), path_width = header.path.size();
  for (const Row& row : rows) {
    name_width = std::max(name_width, row.name.size());
    version_width = std::max(version_width, row.version.size());
    roles_width = std::max(roles_width, row.roles.size());
    path_width = std::max(path_width, row.path.size());
  }
  rows.insert(rows.begin(), header);
  for (const Row& row : rows) {
    out << pad(row.name, name_width) << "  " << pad(row.version, version_width) << "  "
        << pad(row.roles, roles_width) << "  " << pad(row.path, path_width) << "  " << row.description << '\n';
  }
  return kExitOk;
}

int runPluginsDescribe(PluginLoader& loader, const std::string& name, std::ostream& out, std::ostream& err) {
  constexpr const char* kProgram = "leoflow plugins describe: ";
  try {
    return describePlugin(loader.load(name), out, err, kProgram);
  } catch (const PluginError& e) {
    err << kProgram << e.what() << '\n';
    return kExitBadInput;
  }
}

int runPluginsCheck(PluginLoader& loader, const fs::path& path, std::ostream& out, std::ostream& err) {
  constexpr const char* kProgram = "leoflow plugins check: ";
  try {
    const LoadedPlugin& plugin = loader.loadFile(path);
    const int code = describePlugin(plugin, out, err, kProgram);
    if (code == kExitOk) out << "ok: " << plugin.path().string() << " is accepted by this leoflow (SDK "
                             << LEOFLOW_ABI_MAJOR << '.' << LEOFLOW_ABI_MINOR << ", sdk hash " LEOFLOW_SDK_HASH ")\n";
    return code;
  } catch (const PluginError& e) {
    err << kProgram << e.what() << '\n';
    return kExitBadInput;
  }
}

void addPluginsCommand(CLI::App& app, CommandContext& ctx) {
  CLI::App* plugins = app.add_subcommand("plugins", "Inspect plugins: list, describe NAME, check PATH");
  plugins->require_subcommand(1);
  plugins->footer(
      "The search path: [plugins] search_path of the config (--config, $LEOFLOW_CONFIG, ./leoflow.toml),\n"
      "$LEOFLOW_PLUGIN_PATH (colon-separated), the build tree (when run from it), the install directory.");

  CLI::App* list = plugins->add_subcommand("list", "Every plugin on the search path: name, version, roles, path");
  list->callback([&ctx] {
    ctx.exit_code = withLoader(ctx, "leoflow plugins list: ",
                               [&ctx](PluginLoader& loader) { return runPluginsList(loader, *ctx.out, *ctx.err); });
  });

  // Owned by the callbacks, which the app keeps as long as the options refer to them.
  auto name = std::make_shared<std::string>();
  CLI::App* describe =
      plugins->add_subcommand("describe", "A plugin's descriptor, roles and config keys, found by name");
  describe->add_option("NAME", *name, "The plugin's name, e.g. store-redis for leoflow-store-redis.so")->required();
  describe->callback([&ctx, name] {
    ctx.exit_code = withLoader(ctx, "leoflow plugins describe: ", [&ctx, name](PluginLoader& loader) {
      return runPluginsDescribe(loader, *name, *ctx.out, *ctx.err);
    });
  });

  auto path = std::make_shared<std::string>();
  CLI::App* check = plugins->add_subcommand(
      "check", "Load one library as the host would; exit 2 with the reason if it would be refused");
  check->add_option("PATH", *path, "The library, named leoflow-<name>.so")->required();
  check->callback([&ctx, path] {
    ctx.exit_code = withLoader(ctx, "leoflow plugins check: ", [&ctx, path](PluginLoader& loader) {
      return runPluginsCheck(loader, *path, *ctx.out, *ctx.err);
    });
  });
}

}  // namespace leoflow::host
