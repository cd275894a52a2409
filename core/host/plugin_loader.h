// The plugin loader: finds `leoflow-<name>.so` along a search path, checks its descriptor with plain
// field reads before any plugin C++ runs, calls its registrar and keeps the library loaded for the
// rest of the process (ARCHITECTURE §3, STYLE.md: libcamera, GStreamer, DuckDB, Ceph).
//
// Every way a library can be refused has its own PluginErrorKind, and every message names the
// plugin, the path and both sides of a mismatch, so `leoflow plugins check` and a failed start-up
// say exactly what is wrong in one line.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <leoflow/dispatcher.h>
#include <leoflow/inline_runner.h>
#include <leoflow/leader.h>
#include <leoflow/recorder.h>
#include <leoflow/store.h>

namespace leoflow::host {

/// Why a plugin was refused. Each kind is one failure mode, with its own fixture in tests/loader.
enum class PluginErrorKind : std::uint8_t {
  kInvalidName,          ///< not a plugin name ([a-z0-9][a-z0-9_-]*), or a file not named leoflow-<name>.so
  kNotFound,             ///< no leoflow-<name>.so on the search path (every path tried is listed)
  kLoadFailed,           ///< dlopen refused the file (not a library, an undefined symbol, ...)
  kNoEntryPoint,         ///< the library does not export leoflow_plugin_descriptor
  kInvalidDescriptor,    ///< the entry point returned null or threw, a null field, or a null factory registered
  kDescriptorTooSmall,   ///< struct_size is smaller than the fields this ABI needs
  kAbiMajorMismatch,     ///< the plugin's ABI major differs from the host's
  kAbiMinorNewer,        ///< the plugin needs a newer SDK minor than the host has
  kBuildTagMismatch,     ///< compiler, standard library, C++ standard, spdlog or fmt differ
  kSdkHashMismatch,      ///< same ABI major.minor as the host, but built against other SDK headers
  kNameMismatch,         ///< the descriptor's name is not the file's <name>
  kRegistrarThrew,       ///< the registrar threw; the message carries the exception's what()
  kRegisteredNothing,    ///< the registrar added no factory
  kDuplicate,            ///< two factories for one role in one library
  kMissingRole,          ///< the plugin provides no factory for the role the config asks of it
};

/// A short, stable name for a kind: "not_found", "abi_major_mismatch", ...
std::string_view toString(PluginErrorKind kind) noexcept;

/// A refused plugin. Start-up ends with what() on one line (ARCHITECTURE §3 "Errors").
class PluginError : public std::runtime_error {
 public:
  PluginError(PluginErrorKind kind, std::string plugin, std::string path, const std::string& message);

  PluginErrorKind kind() const noexcept { return kind_; }
  /// The plugin's name as asked for (or as read from the file name); may be empty.
  const std::string& plugin() const noexcept { return plugin_; }
  /// The library's path; empty when none was found.
  const std::string& path() const noexcept { return path_; }

 private:
  PluginErrorKind kind_;
  std::string plugin_;
  std::string path_;
};

/// True for names a plugin may have: lower-case letters, digits, '-' and '_', starting with a letter
/// or digit. Rejecting anything else keeps a name from escaping the search directories ("../x").
bool isValidPluginName(std::string_view name) noexcept;

/// "store-redis" for ".../leoflow-store-redis.so"; nullopt when the file name has another shape.
std::optional<std::string> pluginNameFromFile(const std::filesystem::path& path);

/// "leoflow-store-redis.so" for "store-redis".
std::string pluginFileName(std::string_view name);

/// One library, loaded once and never unloaded while the process lives: the factories and every
/// object they create have their code and vtables in it (TOOLCHAIN.md, Boost.DLL).
/// Immutable after loading, so it may be read from any thread.
class LoadedPlugin {
 public:
  LoadedPlugin(const LoadedPlugin&) = delete;
  LoadedPlugin& operator=(const LoadedPlugin&) = delete;
  ~LoadedPlugin();

  const std::string& name() const noexcept { return name_; }
  const std::string& version() const noexcept { return version_; }
  const std::string& description() const noexcept { return description_; }
  /// The absolute path the library was loaded from.
  const std::filesystem::path& path() const noexcept { return path_; }
  const std::string& buildTag() const noexcept { return build_tag_; }
  /// LEOFLOW_SDK_HASH of the plugin's SDK headers; empty for a plugin of SDK 2.0, whose descriptor
  /// has no such field (ARCHITECTURE §8.17).
  const std::string& sdkHash() const noexcept { return sdk_hash_; }
  std::uint32_t abiMajor() const noexcept { return abi_major_; }
  std::uint32_t abiMinor() const noexcept { return abi_minor_; }

  /// At most one factory per role (a second one is refused as kDuplicate).
  const std::vector<std::unique_ptr<StoreFactory>>& stores() const noexcept { return stores_; }
  const std::vector<std::unique_ptr<LeaderFactory>>& leaders() const noexcept { return leaders_; }
  const std::vector<std::unique_ptr<DispatcherFactory>>& dispatchers() const noexcept { return dispatchers_; }
  const std::vector<std::unique_ptr<InlineRunnerFactory>>& inlineRunners() const noexcept { return inline_runners_; }
  const std::vector<std::unique_ptr<RecorderFactory>>& recorders() const noexcept { return recorders_; }

  /// The roles it provides, in the order store, leader, dispatcher, inline_runner, recorder.
  std::vector<std::string> roles() const;

  /// The factory for a role; throws PluginError (kMissingRole) naming the roles it does provide,
  /// for a config that asks a plugin for something it does not make.
  StoreFactory& storeFactory() const;
  LeaderFactory& leaderFactory() const;
  DispatcherFactory& dispatcherFactory() const;
  InlineRunnerFactory& inlineRunnerFactory() const;
  RecorderFactory& recorderFactory() const;

 private:
  friend class PluginLibraries;
  friend class CollectingRegistrar;
  LoadedPlugin() = default;

  [[noreturn]] void throwMissingRole(std::string_view role) const;

  std::string name_;
  std::string version_;
  std::string description_;
  std::filesystem::path path_;
  std::string build_tag_;
  std::string sdk_hash_;
  std::uint32_t abi_major_ = 0;
  std::uint32_t abi_minor_ = 0;
  std::vector<std::unique_ptr<StoreFactory>> stores_;
  std::vector<std::unique_ptr<LeaderFactory>> leaders_;
  std::vector<std::unique_ptr<DispatcherFactory>> dispatchers_;
  std::vector<std::unique_ptr<InlineRunnerFactory>> inline_runners_;
  std::vector<std::unique_ptr<RecorderFactory>> recorders_;
};

/// Finds and loads plugins. Libraries live in one process-wide registry keyed by their canonical
/// path, so two loaders (or two calls) share one load; references returned stay valid until the
/// process exits. A PluginLoader itself is meant for one thread (start-up, a CLI command); the
/// registry behind it is thread-safe.
class PluginLoader {
 public:
  /// `configured_search_path` is [plugins] search_path (already absolute). The full path is, in
  /// order: that, $LEOFLOW_PLUGIN_PATH (colon-separated), each immediate subdirectory of the build
  /// tree's plugins/ (only when this executable runs from that build tree), the install directory
  /// (<prefix>/<libdir>/leoflow/plugins). Duplicates are dropped, the first place kept.
  explicit PluginLoader(std::vector<std::filesystem::path> configured_search_path);

  const std::vector<std::filesystem::path>& searchPath() const noexcept { return search_path_; }

  /// Loads leoflow-<name>.so from the first directory of the search path that has it. A library
  /// of the same name further down the path is shadowed (`plugins list` shows it). Throws
  /// PluginError; a refused library is refused again, without re-running its code, on a retry.
  const LoadedPlugin& load(const std::string& name);

  /// Loads one file, wherever it is (for `leoflow plugins check`). The file must be named
  /// leoflow-<name>.so and its descriptor must carry that name.
  const LoadedPlugin& loadFile(const std::filesystem::path& path);

  /// Every leoflow-*.so on the search path, in search-path order then by name, shadowed ones
  /// included; nothing is loaded.
  std::vector<std::filesystem::path> discover() const;

 private:
  std::vector<std::filesystem::path> search_path_;
};

}  // namespace leoflow::host
