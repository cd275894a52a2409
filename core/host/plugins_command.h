// `leoflow plugins list | describe NAME | check PATH`: what the loader finds, what a plugin
// provides and accepts, and whether a given library would be accepted (ARCHITECTURE §3, §5).
#pragma once

#include <filesystem>
#include <iosfwd>
#include <string>
#include <vector>

namespace CLI {
class App;
}

namespace leoflow::host {

struct CommandContext;
class PluginLoader;

/// The [plugins] search_path of the config the command would use (--config, then $LEOFLOW_CONFIG,
/// then ./leoflow.toml); empty when there is none. Throws ConfigError for a config that is named
/// but missing or broken.
std::vector<std::filesystem::path> configuredSearchPath(const std::string& cli_config);

/// Every plugin on the search path: name, version, roles, path, description. A library shadowed by
/// an earlier one of the same name is marked, and a refused one shows why. Returns the exit code
/// (0: listing is not checking; `plugins check` judges a library).
int runPluginsList(PluginLoader& loader, std::ostream& out, std::ostream& err);

/// Loads NAME from the search path and prints its descriptor, roles and each factory's config keys
/// (name, type, required or default, help). Exit 2 with the loader's message when it is refused.
int runPluginsDescribe(PluginLoader& loader, const std::string& name, std::ostream& out, std::ostream& err);

/// Loads the library at `path` as the host would and prints what describe prints; on refusal the
/// exact reason goes to `err` and the exit code is 2 (§8.6).
int runPluginsCheck(PluginLoader& loader, const std::filesystem::path& path, std::ostream& out, std::ostream& err);

void addPluginsCommand(CLI::App& app, CommandContext& ctx);

}  // namespace leoflow::host
