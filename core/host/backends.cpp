#include "host/backends.h"

#include <random>
#include <thread>

#include <fmt/format.h>
#include <unistd.h>

#include "host/logging.h"

namespace leoflow::host {
namespace {

std::string where(const PluginSection& s) {
  return fmt::format("plugin {} ([{}] in {}:{})", s.plugin, s.section, s.file, s.line);
}

// The role a section configures, for people: "store", "leader", "dispatcher", "recorder", ...
std::string role(const PluginSection& s) {
  std::string r = s.section.substr(0, s.section.find('['));
  if (r == "dispatchers") r = "dispatcher";
  return r;
}

// Runs a factory's create(), turning its exceptions into the host's start-up errors; an
// unreachable backend is retried while `retry` says so.
template <typename Make>
auto create(const PluginSection& s, const std::function<bool(const std::string&, int)>& retry, Make&& make)
    -> decltype(make()) {
  for (int attempt = 1;; ++attempt) {
    try {
      auto made = make();
      if (!made) throw StartupError(where(s) + ": create() returned nothing");
      return made;
    } catch (const UnavailableError& e) {
      const std::string why = where(s) + ": " + role(s) + " unreachable: " + e.what();
      if (!retry || !retry(why, attempt)) throw BackendUnavailable(why);
    } catch (const StartupError&) {
      throw;
    } catch (const std::exception& e) {
      throw StartupError(where(s) + ": " + e.what());
    }
  }
}

}  // namespace

// Plugins that do not run attempts (stores, leaders, recorders) get this sink: they have nothing
// to report, and a call is a plugin bug worth an error rather than a crash.
struct Backends::NullEvents final : TaskEvents {
  Status running(const ExecutionRef&) override { return internalError("this plugin has no task events"); }
  Status heartbeat(const ExecutionRef&) override { return internalError("this plugin has no task events"); }
  Status finished(const ExecutionRef&, const TaskOutcome&) override {
    return internalError("this plugin has no task events");
  }
};

std::string makeReplicaId() {
  char host[256] = {};
  if (gethostname(host, sizeof(host) - 1) != 0) std::snprintf(host, sizeof(host), "unknown");
  std::random_device rd;
  return fmt::format("{}-{}-{:04x}", host, getpid(), rd() & 0xffffu);
}

std::chrono::milliseconds Backends::heartbeatInterval(std::chrono::milliseconds agent_lost_threshold) {
  using std::chrono::milliseconds;
  const milliseconds sixth = agent_lost_threshold / 6;
  const milliseconds floor = std::min(milliseconds{1000}, agent_lost_threshold / 3);
  return std::max({sixth, floor, milliseconds{10}});
}

Backends::Backends(const HostConfig& config, PluginLoader& loader, Scope scope,
                   std::function<bool(const std::string& why, int attempt)> retry_unavailable)
    : null_events_(std::make_unique<NullEvents>()), replica_id_(makeReplicaId()) {
  const auto heartbeat = heartbeatInterval(config.scheduler.agent_lost_threshold);
  auto context = [&](const std::string& plugin, TaskEvents& events) -> PluginContext& {
    contexts_.push_back(std::make_unique<PluginContext>(plugin, makeLogger("plugin." + plugin), clock_, events,
                                                        recorders_fanout_, heartbeat, replica_id_));
    return *contexts_.back();
  };
  const bool everything = scope == Scope::kScheduler;
  const bool executors = scope != Scope::kStoreOnly;  // their configs, for log readers at least

  // 1. Load every plugin and judge every config table before anything connects.
  const LoadedPlugin& store_lib = loader.load(config.store.plugin);
  StoreFactory& store_factory = store_lib.storeFactory();
  const ConfigView store_config = bindPluginConfig(config.store, store_factory.configKeys());
  store_plugin_ = config.store.plugin;

  const PluginSection leader_section = config.leaderSection();
  LeaderFactory* leader_factory = nullptr;
  ConfigView leader_config;
  struct PlannedDispatcher {
    const PluginSection* section;
    DispatcherFactory* factory;
    ConfigView config;
  };
  std::vector<PlannedDispatcher> planned_dispatchers;
  InlineRunnerFactory* inline_factory = nullptr;
  ConfigView inline_config;
  struct PlannedRecorder {
    const PluginSection* section;
    RecorderFactory* factory;
    ConfigView config;
    std::uint32_t abi_minor;  ///< SDK 3.1 hooks only reach recorders of 3.1 or newer
  };
  std::vector<PlannedRecorder> planned_recorders;
  if (executors) {
    for (const PluginSection& d : config.dispatchers) {
      DispatcherFactory& f = loader.load(d.plugin).dispatcherFactory();
      planned_dispatchers.push_back({&d, &f, bindPluginConfig(d, f.configKeys())});
    }
    if (config.inline_runner) {
      const LoadedPlugin& inline_plugin = loader.load(config.inline_runner->plugin);
      inline_factory = &inline_plugin.inlineRunnerFactory();
      inline_abi_minor_ = inline_plugin.abiMinor();
      inline_config = bindPluginConfig(*config.inline_runner, inline_factory->configKeys());
      inline_plugin_ = config.inline_runner->plugin;
    }
  }
  if (everything) {
    leader_factory = &loader.load(leader_section.plugin).leaderFactory();
    leader_config = bindPluginConfig(leader_section, leader_factory->configKeys());
    leader_plugin_ = leader_section.plugin;
    for (const PluginSection& r : config.recorders) {
      const LoadedPlugin& plugin = loader.load(r.plugin);
      RecorderFactory& f = plugin.recorderFactory();
      planned_recorders.push_back({&r, &f, bindPluginConfig(r, f.configKeys()), plugin.abiMinor()});
    }
  }

  // 2. Create, recorders first so everything else can count from the start.
  for (const PlannedRecorder& r : planned_recorders) {
    PluginContext& ctx = context(r.section->plugin, *null_events_);
    recorders_.push_back(create(*r.section, retry_unavailable, [&] { return r.factory->create(r.config, ctx); }));
    recorders_fanout_.add(*recorders_.back(), r.abi_minor);
  }
  {
    PluginContext& ctx = context(config.store.plugin, *null_events_);
    store_ = create(config.store, retry_unavailable, [&] { return store_factory.create(store_config, ctx); });
    store_abi_minor_ = store_lib.abiMinor();
    guarded_store_ = std::make_unique<engine::GuardedStore>(*store_, store_plugin_, store_abi_minor_);
  }
  events_ = std::make_unique<engine::TaskEventsSink>(*guarded_store_, clock_, wake_, makeLogger("events"),
                                                     &recorders_fanout_);
  // Log readers start nothing (no warm shells, no adoption): made for `tasks logs` and the API.
  // nullptr is a plugin that keeps no logs; a throwing factory is a start-up error like create().
  auto addLogReader = [&](const PluginSection& section, auto&& make) {
    std::unique_ptr<LogReader> reader;
    try {
      reader = make();
    } catch (const std::exception& e) {
      throw StartupError(where(section) + ": creating its log reader failed: " + e.what());
    }
    if (reader) log_readers_.push_back({section.plugin, std::move(reader)});
  };
  for (const PlannedDispatcher& d : planned_dispatchers) {
    PluginContext& ctx = context(d.section->plugin, *null_events_);
    addLogReader(*d.section, [&] { return d.factory->createLogReader(d.config, ctx); });
  }
  if (inline_factory != nullptr) {
    PluginContext& ctx = context(config.inline_runner->plugin, *null_events_);
    addLogReader(*config.inline_runner, [&] { return inline_factory->createLogReader(inline_config, ctx); });
  }
  if (!everything) return;
  {
    PluginContext& ctx = context(leader_section.plugin, *null_events_);
    leader_ = create(leader_section, retry_unavailable, [&] { return leader_factory->create(leader_config, ctx); });
  }
  for (const PlannedDispatcher& d : planned_dispatchers) {
    PluginContext& ctx = context(d.section->plugin, *events_);
    dispatchers_.push_back({d.section->plugin, d.section->task_types,
                            create(*d.section, retry_unavailable, [&] { return d.factory->create(d.config, ctx); })});
  }
  if (inline_factory != nullptr) {
    PluginContext& ctx = context(config.inline_runner->plugin, *events_);
    inline_runner_ = create(*config.inline_runner, retry_unavailable,
                            [&] { return inline_factory->create(inline_config, ctx); });
  }
}

Backends::~Backends() {
  // Executors may still report while they stop: stop them before the sink and the store go.
  log_readers_.clear();
  inline_runner_.reset();
  dispatchers_.clear();
  leader_.reset();
  events_.reset();
  guarded_store_.reset();
  store_.reset();
  recorders_.clear();
}

Result<LogChunk> Backends::readLog(const LogQuery& query) {
  if (log_readers_.empty()) {
    return leoflow::notFound("no configured dispatcher or inline runner keeps logs");
  }
  std::optional<Status> best;
  for (NamedLogReader& r : log_readers_) {
    Result<LogChunk> chunk = engine::guardCall(r.plugin, [&] { return r.reader->read(query); });
    if (chunk) return chunk;
    if (chunk.status().code() != StatusCode::kNotFound) return chunk;  // a real failure: say it
    // Prefer a reader that knows where the log is over one that merely has none.
    if (!best || chunk.status().message().find(" on host ") != std::string::npos) best = chunk.status();
  }
  return *best;
}

std::vector<engine::DispatcherRoute> Backends::dispatcherRoutes() {
  std::vector<engine::DispatcherRoute> routes;
  for (Route& r : dispatchers_) routes.push_back({r.plugin, r.dispatcher.get(), r.task_types});
  return routes;
}

}  // namespace leoflow::host
