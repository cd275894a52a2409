#include "factory.h"

#include "k8s_dispatcher.h"
#include "kube_client.h"
#include "kubeconfig.h"
#include "log_store.h"
#include "settings.h"

namespace leoflow::plugins::dispatcher_k8s {
namespace {

struct Resolved {
  Settings settings;
  std::shared_ptr<KubeClient> client;
  std::string ns;
};

Resolved resolve(const ConfigView& config, const PluginContext& context) {
  Resolved r;
  r.settings = readSettings(config);
  Connection c = r.settings.kubeconfig.empty() ? inCluster(r.settings.service_account_dir)
                                               : loadKubeconfig(r.settings.kubeconfig, r.settings.context);
  r.ns = !r.settings.namespace_.empty() ? r.settings.namespace_ : !c.namespace_.empty() ? c.namespace_ : "default";
  r.client = std::make_shared<KubeClient>(std::move(c), r.settings.qps, r.settings.burst, r.settings.request_timeout_s,
                                          context.logger());
  return r;
}

}  // namespace

std::vector<ConfigKey> K8sDispatcherFactory::configKeys() const { return dispatcher_k8s::configKeys(); }

std::unique_ptr<Dispatcher> K8sDispatcherFactory::create(const ConfigView& config, const PluginContext& context) {
  Resolved r = resolve(config, context);
  std::error_code ec;
  std::filesystem::create_directories(r.settings.log_dir, ec);
  if (ec) {
    throw std::runtime_error("dispatcher-k8s: cannot create log_dir \"" + r.settings.log_dir.string() + "\": " +
                             ec.message());
  }
  auto d = std::make_unique<K8sDispatcher>(std::move(r.settings), std::move(r.client), std::move(r.ns), context);
  d->start();
  return d;
}

std::unique_ptr<LogReader> K8sDispatcherFactory::createLogReader(const ConfigView& config,
                                                                 const PluginContext& context) {
  Resolved r = resolve(config, context);
  return std::make_unique<K8sLogReader>(std::move(r.settings), std::move(r.client), std::move(r.ns));
}

}  // namespace leoflow::plugins::dispatcher_k8s
