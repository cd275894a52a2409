// The plugin contract: a library `leoflow-<name>.so` exports exactly one C function,
// `leoflow_plugin_descriptor()`, returning a static descriptor (ARCHITECTURE §3).
//
// The host reads the descriptor with plain C before any plugin C++ runs: struct size first, ABI
// major/minor, build tag, SDK header hash (when the plugin's major.minor is the host's), name (equal
// to the file's <name>), version, description. Only if all of them check out does it call the
// registrar, inside try/catch, which adds the library's factories.
// A library may register several factories, for one role or several (store-redis provides a
// Store and a Leader).
//
// A plugin's whole exporting file:
//
//   #include <leoflow/plugin.h>
//   namespace {
//   void registerFactories(leoflow::PluginRegistrar& r) {
//     r.addDispatcher(std::make_unique<NomadDispatcherFactory>());
//   }
//   }  // namespace
//   LEOFLOW_PLUGIN("dispatcher-nomad", "1.0.0", "runs tasks as Nomad jobs", registerFactories)
#pragma once

#include <cstdint>
#include <memory>

#include <leoflow/abi.h>
#include <leoflow/dispatcher.h>
#include <leoflow/inline_runner.h>
#include <leoflow/leader.h>
#include <leoflow/recorder.h>
#include <leoflow/store.h>

namespace leoflow {

/// Collects the factories a library provides. Ownership passes to the host, which keeps the
/// library loaded for as long as anything it made is alive.
class PluginRegistrar {
 public:
  virtual ~PluginRegistrar() = default;
  virtual void addStore(std::unique_ptr<StoreFactory> factory) = 0;
  virtual void addLeader(std::unique_ptr<LeaderFactory> factory) = 0;
  virtual void addDispatcher(std::unique_ptr<DispatcherFactory> factory) = 0;
  virtual void addInlineRunner(std::unique_ptr<InlineRunnerFactory> factory) = 0;
  virtual void addRecorder(std::unique_ptr<RecorderFactory> factory) = 0;
};

}  // namespace leoflow

extern "C" {

/// The descriptor, versioned by its size: fields are only ever appended.
struct LeoflowPluginDescriptor {
  std::uint32_t struct_size;  ///< sizeof(LeoflowPluginDescriptor) as the plugin was built
  std::uint32_t abi_major;    ///< LEOFLOW_ABI_MAJOR of the plugin's SDK
  std::uint32_t abi_minor;    ///< LEOFLOW_ABI_MINOR of the plugin's SDK
  const char* build_tag;      ///< LEOFLOW_BUILD_TAG of the plugin's build
  const char* name;           ///< "store-redis" for leoflow-store-redis.so
  const char* version;        ///< the plugin's own version
  const char* description;    ///< one line for `leoflow plugins list`
  void (*register_factories)(leoflow::PluginRegistrar& registrar);
  // --- SDK 2.1 ---
  const char* sdk_hash;       ///< LEOFLOW_SDK_HASH of the plugin's SDK headers (ARCHITECTURE §8.17)
};

}  // extern "C"

/// The name of the one symbol a plugin exports.
#define LEOFLOW_PLUGIN_ENTRY_POINT "leoflow_plugin_descriptor"

/// Defines the plugin's exported entry point. Use once per library, at namespace scope.
#define LEOFLOW_PLUGIN(NAME, VERSION, DESCRIPTION, REGISTER_FN)                                  \
  extern "C" __attribute__((visibility("default"))) const LeoflowPluginDescriptor*              \
  leoflow_plugin_descriptor() {                                                                  \
    static const LeoflowPluginDescriptor descriptor{                                             \
        sizeof(LeoflowPluginDescriptor), LEOFLOW_ABI_MAJOR, LEOFLOW_ABI_MINOR, LEOFLOW_BUILD_TAG, \
        NAME, VERSION, DESCRIPTION, REGISTER_FN, LEOFLOW_SDK_HASH};                              \
    return &descriptor;                                                                          \
  }
