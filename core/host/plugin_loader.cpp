#include "host/plugin_loader.h"
#include "text/quoted.h"

#include <dlfcn.h>

#include <algorithm>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <system_error>
#include <utility>

#include <boost/dll/shared_library.hpp>

#include <leoflow/abi.h>
#include <leoflow/plugin.h>

#include "host/plugin_dirs.h"

namespace leoflow::host {

namespace fs = std::filesystem;

namespace {

constexpr std::string_view kFilePrefix = "leoflow-";
constexpr std::string_view kFileSuffix = ".so";

// struct_size, abi_major and abi_minor lead every descriptor of every ABI (GStreamer/SPA: the struct
// only grows), so they can be read before anything else is trusted.
constexpr std::size_t kLeadingFieldsSize = offsetof(LeoflowPluginDescriptor, abi_minor) + sizeof(std::uint32_t);
// Everything ABI 1.0 reads. A plugin built against a later minor has a larger struct; one built
// against 1.0 (or 2.0) has exactly this much.
constexpr std::size_t kMinDescriptorSize =
    offsetof(LeoflowPluginDescriptor, register_factories) + sizeof(LeoflowPluginDescriptor::register_factories);
// Up to sdk_hash, which the descriptor has since SDK 2.1.
constexpr std::size_t kSdkHashDescriptorSize =
    offsetof(LeoflowPluginDescriptor, sdk_hash) + sizeof(LeoflowPluginDescriptor::sdk_hash);
static_assert(kSdkHashDescriptorSize == sizeof(LeoflowPluginDescriptor),
              "a descriptor field was appended: give it its own size and minor here");

// Whether a descriptor of the host's ABI major and this minor has sdk_hash: since 2.1, and every
// descriptor of a later major.
constexpr bool hasSdkHash(std::uint32_t abi_minor) { return LEOFLOW_ABI_MAJOR > 2 || abi_minor >= 1; }

// The fields a descriptor of the host's ABI major and this minor must have.
constexpr std::size_t descriptorSizeFor(std::uint32_t abi_minor) {
  return hasSdkHash(abi_minor) ? kSdkHashDescriptorSize : kMinDescriptorSize;
}


// "plugin "x" (/path/leoflow-x.so): " — the start of every refusal.
std::string about(const std::string& name, const fs::path& path) {
  return "plugin " + text::quoted(name) + " (" + path.string() + "): ";
}

[[noreturn]] void refuse(PluginErrorKind kind, const std::string& name, const fs::path& path,
                         const std::string& what) {
  throw PluginError(kind, name, path.string(), about(name, path) + what);
}

// Boost.DLL 1.74 clears dlerror() and reports only "bad file descriptor", so ask the dynamic loader
// once more for its reason ("invalid ELF header", "undefined symbol: ..."). A failing dlopen has no
// side effects; should this one succeed (the file was replaced meanwhile) the handle is simply kept,
// like every library we open.
std::string dlopenReason(const fs::path& path) {
  dlerror();
  if (dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL) != nullptr) {
    return "the library loaded only on a second attempt (was it replaced while loading?)";
  }
  const char* reason = dlerror();
  return reason != nullptr ? reason : "the dynamic loader gave no reason";
}

std::string abiString(std::uint32_t major, std::uint32_t minor) {
  return std::to_string(major) + "." + std::to_string(minor);
}

bool isPluginFile(const fs::directory_entry& entry) {
  std::error_code ec;
  return entry.is_regular_file(ec) && pluginNameFromFile(entry.path()).has_value();
}

// The build tree's plugins are searched only by executables inside that build tree (the host, the
// tests), so an installed leoflow never picks up a stale development build.
bool runningFromBuildTree() {
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (ec) return false;
  fs::path root = fs::weakly_canonical(LEOFLOW_BUILD_ROOT, ec);
  if (ec) return false;
  if (root.filename().empty()) root = root.parent_path();
  const auto [root_end, exe_end] = std::mismatch(root.begin(), root.end(), exe.begin(), exe.end());
  return root_end == root.end();
}

std::vector<fs::path> buildTreePluginDirs() {
  std::vector<fs::path> dirs;
  std::error_code ec;
  for (const fs::directory_entry& entry : fs::directory_iterator(LEOFLOW_BUILD_PLUGIN_DIR, ec)) {
    std::error_code dir_ec;
    if (entry.is_directory(dir_ec)) dirs.push_back(entry.path());
  }
  std::sort(dirs.begin(), dirs.end());
  return dirs;
}

std::vector<fs::path> splitPathList(std::string_view list) {
  std::vector<fs::path> dirs;
  std::size_t start = 0;
  while (start <= list.size()) {
    std::size_t end = list.find(':', start);
    if (end == std::string_view::npos) end = list.size();
    if (end > start) dirs.emplace_back(std::string(list.substr(start, end - start)));
    start = end + 1;
  }
  return dirs;
}

}  // namespace

std::string_view toString(PluginErrorKind kind) noexcept {
  switch (kind) {
    case PluginErrorKind::kInvalidName: return "invalid_name";
    case PluginErrorKind::kNotFound: return "not_found";
    case PluginErrorKind::kLoadFailed: return "load_failed";
    case PluginErrorKind::kNoEntryPoint: return "no_entry_point";
    case PluginErrorKind::kInvalidDescriptor: return "invalid_descriptor";
    case PluginErrorKind::kDescriptorTooSmall: return "descriptor_too_small";
    case PluginErrorKind::kAbiMajorMismatch: return "abi_major_mismatch";
    case PluginErrorKind::kAbiMinorNewer: return "abi_minor_newer";
    case PluginErrorKind::kBuildTagMismatch: return "build_tag_mismatch";
    case PluginErrorKind::kSdkHashMismatch: return "sdk_hash_mismatch";
    case PluginErrorKind::kNameMismatch: return "name_mismatch";
    case PluginErrorKind::kRegistrarThrew: return "registrar_threw";
    case PluginErrorKind::kRegisteredNothing: return "registered_nothing";
    case PluginErrorKind::kDuplicate: return "duplicate";
    case PluginErrorKind::kMissingRole: return "missing_role";
  }
  return "unknown";
}

PluginError::PluginError(PluginErrorKind kind, std::string plugin, std::string path, const std::string& message)
    : std::runtime_error(message), kind_(kind), plugin_(std::move(plugin)), path_(std::move(path)) {}

bool isValidPluginName(std::string_view name) noexcept {
  if (name.empty()) return false;
  const auto lower_or_digit = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  if (!lower_or_digit(name.front())) return false;
  return std::all_of(name.begin(), name.end(),
                     [&](char c) { return lower_or_digit(c) || c == '-' || c == '_'; });
}

std::optional<std::string> pluginNameFromFile(const fs::path& path) {
  const std::string file = path.filename().string();
  if (file.size() <= kFilePrefix.size() + kFileSuffix.size()) return std::nullopt;
  if (!file.starts_with(kFilePrefix) || !file.ends_with(kFileSuffix)) return std::nullopt;
  std::string name = file.substr(kFilePrefix.size(), file.size() - kFilePrefix.size() - kFileSuffix.size());
  if (!isValidPluginName(name)) return std::nullopt;
  return name;
}

std::string pluginFileName(std::string_view name) {
  return std::string(kFilePrefix) + std::string(name) + std::string(kFileSuffix);
}

// --- LoadedPlugin ---------------------------------------------------------------------------------

LoadedPlugin::~LoadedPlugin() = default;

std::vector<std::string> LoadedPlugin::roles() const {
  std::vector<std::string> roles;
  if (!stores_.empty()) roles.emplace_back("store");
  if (!leaders_.empty()) roles.emplace_back("leader");
  if (!dispatchers_.empty()) roles.emplace_back("dispatcher");
  if (!inline_runners_.empty()) roles.emplace_back("inline_runner");
  if (!recorders_.empty()) roles.emplace_back("recorder");
  return roles;
}

void LoadedPlugin::throwMissingRole(std::string_view role) const {
  std::string provided;
  for (const std::string& r : roles()) provided += (provided.empty() ? "" : ", ") + r;
  refuse(PluginErrorKind::kMissingRole, name_, path_,
         "provides no " + std::string(role) + " (it provides: " + provided + ")");
}

StoreFactory& LoadedPlugin::storeFactory() const {
  if (stores_.empty()) throwMissingRole("store");
  return *stores_.front();
}

LeaderFactory& LoadedPlugin::leaderFactory() const {
  if (leaders_.empty()) throwMissingRole("leader");
  return *leaders_.front();
}

DispatcherFactory& LoadedPlugin::dispatcherFactory() const {
  if (dispatchers_.empty()) throwMissingRole("dispatcher");
  return *dispatchers_.front();
}

InlineRunnerFactory& LoadedPlugin::inlineRunnerFactory() const {
  if (inline_runners_.empty()) throwMissingRole("inline_runner");
  return *inline_runners_.front();
}

RecorderFactory& LoadedPlugin::recorderFactory() const {
  if (recorders_.empty()) throwMissingRole("recorder");
  return *recorders_.front();
}

// --- the registrar handed to a plugin -------------------------------------------------------------

// Collects factories without ever throwing back into the plugin's frames: problems (a null
// factory) are noted and judged after the registrar returns.
class CollectingRegistrar final : public PluginRegistrar {
 public:
  explicit CollectingRegistrar(LoadedPlugin& plugin) : plugin_(plugin) {}

  void addStore(std::unique_ptr<StoreFactory> factory) override { add(plugin_.stores_, std::move(factory), "store"); }
  void addLeader(std::unique_ptr<LeaderFactory> factory) override {
    add(plugin_.leaders_, std::move(factory), "leader");
  }
  void addDispatcher(std::unique_ptr<DispatcherFactory> factory) override {
    add(plugin_.dispatchers_, std::move(factory), "dispatcher");
  }
  void addInlineRunner(std::unique_ptr<InlineRunnerFactory> factory) override {
    add(plugin_.inline_runners_, std::move(factory), "inline_runner");
  }
  void addRecorder(std::unique_ptr<RecorderFactory> factory) override {
    add(plugin_.recorders_, std::move(factory), "recorder");
  }

  /// The role of the first null factory, if any.
  const std::string& nullRole() const noexcept { return null_role_; }

 private:
  template <typename Factory>
  void add(std::vector<std::unique_ptr<Factory>>& to, std::unique_ptr<Factory> factory, const char* role) {
    if (!factory) {
      if (null_role_.empty()) null_role_ = role;
      return;
    }
    to.push_back(std::move(factory));
  }

  LoadedPlugin& plugin_;
  std::string null_role_;
};

// --- the process-wide registry --------------------------------------------------------------------

// Every library ever opened, keyed by canonical path, with what came of it. Never destroyed: a
// library must outlive every object it made (vtables and code live in it), and at exit other
// statics or threads may still hold such objects, so the registry is deliberately leaked
// (DuckDB: loaded libraries are never closed).
class PluginLibraries {
 public:
  static PluginLibraries& instance() {
    static PluginLibraries* const registry = new PluginLibraries();
    return *registry;
  }

  const LoadedPlugin& load(const fs::path& canonical_path, const std::string& name) {
    const std::lock_guard<std::mutex> lock(mutex_);
    auto it = entries_.find(canonical_path);
    if (it == entries_.end()) {
      Entry entry;
      try {
        entry.plugin = open(canonical_path, name);
      } catch (const PluginError& e) {
        entry.error = e;
      }
      it = entries_.emplace(canonical_path, std::move(entry)).first;
    }
    if (it->second.error) throw *it->second.error;
    const LoadedPlugin& plugin = *it->second.plugin;
    // Two names for one file (a symlink): the descriptor matched the first one only.
    if (plugin.name() != name) {
      refuse(PluginErrorKind::kNameMismatch, name, canonical_path,
             "descriptor names " + text::quoted(plugin.name()) + ", not " + text::quoted(name) + " as the file name says");
    }
    return plugin;
  }

 private:
  struct Entry {
    std::unique_ptr<LoadedPlugin> plugin;
    std::optional<PluginError> error;  ///< a refused library is refused again without running its code
  };

  PluginLibraries() = default;

  std::unique_ptr<LoadedPlugin> open(const fs::path& path, const std::string& name) {
    namespace mode = boost::dll::load_mode;
    boost::dll::shared_library library;
    std::error_code ec;
    // rtld_now: an unresolved symbol fails here, with a reason, not later in the middle of a tick.
    // rtld_local: plugins cannot see (or clash with) each other's symbols.
    library.load(path, mode::rtld_now | mode::rtld_local, ec);
    if (ec || !library.is_loaded()) {
      refuse(PluginErrorKind::kLoadFailed, name, path, "cannot load the library: " + dlopenReason(path));
    }
    libraries_.push_back(std::move(library));
    const boost::dll::shared_library& lib = libraries_.back();

    if (!lib.has(LEOFLOW_PLUGIN_ENTRY_POINT)) {
      refuse(PluginErrorKind::kNoEntryPoint, name, path,
             "no entry point: the library does not export " LEOFLOW_PLUGIN_ENTRY_POINT
             " (define it with LEOFLOW_PLUGIN from <leoflow/plugin.h>)");
    }
    using EntryPoint = const LeoflowPluginDescriptor*();
    const LeoflowPluginDescriptor* descriptor = nullptr;
    try {
      descriptor = lib.get<EntryPoint>(LEOFLOW_PLUGIN_ENTRY_POINT)();
    } catch (...) {
      refuse(PluginErrorKind::kInvalidDescriptor, name, path, LEOFLOW_PLUGIN_ENTRY_POINT " threw");
    }
    checkDescriptor(descriptor, path, name);

    auto plugin = std::unique_ptr<LoadedPlugin>(new LoadedPlugin());
    plugin->name_ = descriptor->name;
    plugin->version_ = descriptor->version;
    plugin->description_ = descriptor->description;
    plugin->path_ = path;
    plugin->build_tag_ = descriptor->build_tag;
    if (hasSdkHash(descriptor->abi_minor)) plugin->sdk_hash_ = descriptor->sdk_hash;  // checked non-null
    plugin->abi_major_ = descriptor->abi_major;
    plugin->abi_minor_ = descriptor->abi_minor;
    registerFactories(*plugin, *descriptor);
    return plugin;
  }

  // Plain C field reads, in the order that keeps each read safe: the leading integers, then (ABI
  // permitting) the rest of the struct, then the strings it points to (ARCHITECTURE §3).
  static void checkDescriptor(const LeoflowPluginDescriptor* d, const fs::path& path, const std::string& name) {
    if (d == nullptr) {
      refuse(PluginErrorKind::kInvalidDescriptor, name, path, LEOFLOW_PLUGIN_ENTRY_POINT " returned null");
    }
    const std::string too_small = "descriptor struct_size is " + std::to_string(d->struct_size) +
                                  " bytes, too small for ABI " + abiString(LEOFLOW_ABI_MAJOR, LEOFLOW_ABI_MINOR) +
                                  " (at least " + std::to_string(kMinDescriptorSize) + " bytes)";
    if (d->struct_size < kLeadingFieldsSize) refuse(PluginErrorKind::kDescriptorTooSmall, name, path, too_small);
    if (d->abi_major != LEOFLOW_ABI_MAJOR) {
      refuse(PluginErrorKind::kAbiMajorMismatch, name, path,
             "ABI major " + std::to_string(d->abi_major) + " (SDK " + abiString(d->abi_major, d->abi_minor) +
                 ") differs from the host's " + std::to_string(LEOFLOW_ABI_MAJOR) + " (SDK " +
                 abiString(LEOFLOW_ABI_MAJOR, LEOFLOW_ABI_MINOR) + "); rebuild the plugin against this SDK");
    }
    if (d->abi_minor > LEOFLOW_ABI_MINOR) {
      refuse(PluginErrorKind::kAbiMinorNewer, name, path,
             "built for SDK " + abiString(d->abi_major, d->abi_minor) + ", newer than the host's SDK " +
                 abiString(LEOFLOW_ABI_MAJOR, LEOFLOW_ABI_MINOR) +
                 " (ABI minor " + std::to_string(d->abi_minor) + " > " + std::to_string(LEOFLOW_ABI_MINOR) +
                 "); upgrade leoflow or rebuild the plugin against this SDK");
    }
    // From here on the plugin's minor is at most the host's: it has the fields of its minor.
    const std::size_t needed = descriptorSizeFor(d->abi_minor);
    if (d->struct_size < needed) {
      refuse(PluginErrorKind::kDescriptorTooSmall, name, path,
             "descriptor struct_size is " + std::to_string(d->struct_size) + " bytes, too small for ABI " +
                 abiString(d->abi_major, d->abi_minor) + " (at least " + std::to_string(needed) + " bytes)");
    }
    const auto null_field = [&](const char* field) {
      refuse(PluginErrorKind::kInvalidDescriptor, name, path, std::string("descriptor field ") + field + " is null");
    };
    if (d->build_tag == nullptr) null_field("build_tag");
    if (d->name == nullptr) null_field("name");
    if (d->version == nullptr) null_field("version");
    if (d->description == nullptr) null_field("description");
    if (d->register_factories == nullptr) null_field("register_factories");
    if (hasSdkHash(d->abi_minor) && d->sdk_hash == nullptr) null_field("sdk_hash");
    // DuckDB's lesson: a C++ interface must match the host's build exactly, so compare the whole tag.
    if (std::strcmp(d->build_tag, LEOFLOW_BUILD_TAG) != 0) {
      refuse(PluginErrorKind::kBuildTagMismatch, name, path,
             "build tag " + text::quoted(d->build_tag) + " differs from the host's " + text::quoted(LEOFLOW_BUILD_TAG) +
                 "; build the plugin with the host's compiler, C++ standard, spdlog and fmt");
    }
    // The ABI version alone does not identify the SDK: two builds may have different headers at one
    // major.minor (a development tree, a patched SDK), and a plugin of one calling into the other
    // through a changed vtable or struct crashes. So at equal major.minor the header hashes must be
    // equal too; an older minor's headers are a different SDK by definition and not compared
    // (ARCHITECTURE §8.17).
    if (d->abi_minor == LEOFLOW_ABI_MINOR && std::strcmp(d->sdk_hash, LEOFLOW_SDK_HASH) != 0) {
      refuse(PluginErrorKind::kSdkHashMismatch, name, path,
             "built against SDK " + abiString(d->abi_major, d->abi_minor) + " headers with hash " +
                 text::quoted(d->sdk_hash) + ", but the host's SDK " +
                 abiString(LEOFLOW_ABI_MAJOR, LEOFLOW_ABI_MINOR) + " headers hash to " +
                 text::quoted(LEOFLOW_SDK_HASH) +
                 ": the same ABI version with other interfaces (another leoflow revision or changed "
                 "headers); rebuild the plugin against this leoflow's SDK");
    }
    if (name != d->name) {
      refuse(PluginErrorKind::kNameMismatch, name, path,
             "descriptor names " + text::quoted(d->name) + ", not " + text::quoted(name) + " as the file name says");
    }
  }

  static void registerFactories(LoadedPlugin& plugin, const LeoflowPluginDescriptor& d) {
    const std::string& name = plugin.name_;
    const fs::path& path = plugin.path_;
    CollectingRegistrar registrar(plugin);
    try {
      d.register_factories(registrar);
    } catch (const std::exception& e) {
      refuse(PluginErrorKind::kRegistrarThrew, name, path, std::string("registrar threw: ") + e.what());
    } catch (...) {
      refuse(PluginErrorKind::kRegistrarThrew, name, path, "registrar threw a non-standard exception");
    }
    if (!registrar.nullRole().empty()) {
      refuse(PluginErrorKind::kInvalidDescriptor, name, path,
             "registrar added a null " + registrar.nullRole() + " factory");
    }
    const auto once = [&](std::size_t count, const char* role) {
      if (count > 1) {
        refuse(PluginErrorKind::kDuplicate, name, path,
               "registers " + std::to_string(count) + " " + role +
                   " factories; a library provides at most one factory per role");
      }
    };
    once(plugin.stores_.size(), "store");
    once(plugin.leaders_.size(), "leader");
    once(plugin.dispatchers_.size(), "dispatcher");
    once(plugin.inline_runners_.size(), "inline_runner");
    once(plugin.recorders_.size(), "recorder");
    if (plugin.roles().empty()) {
      refuse(PluginErrorKind::kRegisteredNothing, name, path, "registrar registered no factory");
    }
  }

  std::mutex mutex_;
  std::map<fs::path, Entry> entries_;
  std::vector<boost::dll::shared_library> libraries_;  ///< every library opened; never closed
};

// --- PluginLoader ---------------------------------------------------------------------------------

PluginLoader::PluginLoader(std::vector<fs::path> configured_search_path) {
  std::vector<fs::path> dirs = std::move(configured_search_path);
  if (const char* env = std::getenv("LEOFLOW_PLUGIN_PATH"); env != nullptr) {
    for (fs::path& dir : splitPathList(env)) dirs.push_back(std::move(dir));
  }
  if (runningFromBuildTree()) {
    for (fs::path& dir : buildTreePluginDirs()) dirs.push_back(std::move(dir));
  }
  dirs.emplace_back(LEOFLOW_INSTALL_PLUGIN_DIR);
  for (fs::path& dir : dirs) {
    std::error_code ec;
    fs::path absolute = fs::absolute(dir, ec).lexically_normal();
    if (ec) absolute = dir.lexically_normal();
    if (absolute.filename().empty() && absolute.has_parent_path() && absolute != absolute.root_path()) {
      absolute = absolute.parent_path();  // "/a/b/" and "/a/b" are one directory
    }
    if (std::find(search_path_.begin(), search_path_.end(), absolute) == search_path_.end()) {
      search_path_.push_back(std::move(absolute));
    }
  }
}

const LoadedPlugin& PluginLoader::load(const std::string& name) {
  if (!isValidPluginName(name)) {
    throw PluginError(PluginErrorKind::kInvalidName, name, "",
                      text::quoted(name) + " is not a plugin name: use lower-case letters, digits, '-' and '_'");
  }
  const std::string file = pluginFileName(name);
  std::string tried;
  for (const fs::path& dir : search_path_) {
    const fs::path candidate = dir / file;
    std::error_code ec;
    if (fs::is_regular_file(candidate, ec)) {
      const fs::path canonical = fs::canonical(candidate, ec);
      return PluginLibraries::instance().load(ec ? candidate : canonical, name);
    }
    tried += (tried.empty() ? "" : ", ") + candidate.string();
  }
  throw PluginError(PluginErrorKind::kNotFound, name, "",
                    "plugin " + text::quoted(name) + " not found; tried " + tried +
                        " (add its directory to [plugins] search_path or $LEOFLOW_PLUGIN_PATH)");
}

const LoadedPlugin& PluginLoader::loadFile(const fs::path& path) {
  std::error_code ec;
  const fs::path absolute = fs::absolute(path, ec).lexically_normal();
  const std::optional<std::string> name = pluginNameFromFile(absolute);
  if (!fs::is_regular_file(absolute, ec)) {
    throw PluginError(PluginErrorKind::kNotFound, name.value_or(""), absolute.string(),
                      "plugin file " + absolute.string() + " does not exist or is not a file");
  }
  if (!name) {
    throw PluginError(PluginErrorKind::kInvalidName, "", absolute.string(),
                      "plugin file " + absolute.string() +
                          " is not named leoflow-<name>.so (<name>: lower-case letters, digits, '-' and '_')");
  }
  const fs::path canonical = fs::canonical(absolute, ec);
  return PluginLibraries::instance().load(ec ? absolute : canonical, *name);
}

std::vector<fs::path> PluginLoader::discover() const {
  std::vector<fs::path> found;
  std::vector<fs::path> seen;  // canonical paths: one file reached through two listed directories
  for (const fs::path& dir : search_path_) {
    std::vector<fs::path> here;
    std::error_code ec;
    for (const fs::directory_entry& entry : fs::directory_iterator(dir, ec)) {
      if (isPluginFile(entry)) here.push_back(entry.path());
    }
    std::sort(here.begin(), here.end());
    for (fs::path& file : here) {
      std::error_code canonical_ec;
      const fs::path canonical = fs::canonical(file, canonical_ec);
      if (!canonical_ec && std::find(seen.begin(), seen.end(), canonical) != seen.end()) continue;
      if (!canonical_ec) seen.push_back(canonical);
      found.push_back(std::move(file));
    }
  }
  return found;
}

}  // namespace leoflow::host
