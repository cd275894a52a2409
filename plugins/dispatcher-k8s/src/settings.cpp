#include "settings.h"

#include <fstream>
#include <sstream>
#include <stdexcept>

#include "kubeconfig.h"

namespace leoflow::plugins::dispatcher_k8s {
namespace {

std::string where(const ConfigView& config, const std::string& key) {
  return "key \"" + key + "\" in [" + config.section() + "]";
}
std::string stringOr(const ConfigView& c, const std::string& key, const std::string& fallback) {
  return c.has(key) ? c.getString(key) : fallback;
}
std::int64_t intOr(const ConfigView& c, const std::string& key, std::int64_t fallback) {
  return c.has(key) ? c.getInt(key) : fallback;
}
int bounded(const ConfigView& c, const std::string& key, std::int64_t fallback, std::int64_t lo, std::int64_t hi) {
  const std::int64_t v = intOr(c, key, fallback);
  if (v < lo || v > hi) {
    throw std::invalid_argument(where(c, key) + ": must be between " + std::to_string(lo) + " and " +
                                std::to_string(hi) + ", got " + std::to_string(v));
  }
  return static_cast<int>(v);
}

}  // namespace

std::vector<ConfigKey> configKeys() {
  using S = std::string;
  return {
      {"kubeconfig", ConfigType::kString, false, std::nullopt,
       "kubeconfig file (its current context); absent = in-cluster (service-account token and CA)"},
      {"context", ConfigType::kString, false, std::nullopt, "kubeconfig context to use instead of current-context"},
      {"namespace", ConfigType::kString, false, std::nullopt,
       "namespace of the pods; absent = the context's, else the service account's, else \"default\""},
      {"image", ConfigType::kString, false, ConfigValue{S("")}, "image of tasks that name none"},
      {"installation", ConfigType::kString, false, ConfigValue{S("leoflow")},
       "value of the leoflow.io/installation label: the pods this dispatcher watches, adopts and deletes"},
      {"pod_template_file", ConfigType::kString, false, std::nullopt,
       "a pod (JSON or YAML) the generated one is merged onto: security contexts, imagePullSecrets, volumes, "
       "affinity, envFrom; its container \"task\" (or its first) is the task's"},
      {"max_parallel", ConfigType::kInt, false, ConfigValue{std::int64_t{64}}, "live pods at most"},
      {"qps", ConfigType::kDouble, false, ConfigValue{20.0}, "client-side rate limit, requests per second"},
      {"burst", ConfigType::kInt, false, ConfigValue{std::int64_t{40}}, "client-side rate limit, burst"},
      {"pending_timeout_s", ConfigType::kInt, false, ConfigValue{std::int64_t{300}},
       "a pod Pending longer (image pull errors, unschedulable) is deleted and its attempt failed"},
      {"termination_grace_s", ConfigType::kInt, false, ConfigValue{std::int64_t{30}},
       "grace period of a pod's deletion (stop, timeout, no longer current)"},
      {"delete_finished_after_s", ConfigType::kInt, false, ConfigValue{std::int64_t{300}},
       "finished pods are deleted this long after they ended, their log copied into log_dir first"},
      {"log_dir", ConfigType::kString, false, ConfigValue{S("./.leoflow/logs")},
       "saved pod logs: <log_dir>/<dag_id>/<run_id>/<run_uid>/<task_id>/<try>.log"},
      {"service_account_dir", ConfigType::kString, false,
       ConfigValue{S("/var/run/secrets/kubernetes.io/serviceaccount")},
       "in-cluster: the folder of the service account's token, ca.crt and namespace"},
  };
}

Settings readSettings(const ConfigView& c) {
  Settings s;
  s.section = c.section();
  s.kubeconfig = stringOr(c, "kubeconfig", "");
  s.context = stringOr(c, "context", "");
  s.namespace_ = stringOr(c, "namespace", "");
  s.image = stringOr(c, "image", "");
  s.installation = stringOr(c, "installation", "leoflow");
  if (s.installation.empty()) throw std::invalid_argument(where(c, "installation") + ": must not be empty");
  s.max_parallel = static_cast<std::size_t>(bounded(c, "max_parallel", 64, 1, 100000));
  s.qps = c.has("qps") ? c.getDouble("qps") : 20.0;
  if (!(s.qps > 0)) throw std::invalid_argument(where(c, "qps") + ": must be positive");
  s.burst = bounded(c, "burst", 40, 1, 100000);
  s.pending_timeout_s = bounded(c, "pending_timeout_s", 300, 1, 86400 * 7);
  s.termination_grace_s = bounded(c, "termination_grace_s", 30, 0, 86400);
  s.delete_finished_after_s = bounded(c, "delete_finished_after_s", 300, 0, 86400 * 30);
  const std::string log_dir = stringOr(c, "log_dir", "./.leoflow/logs");
  if (log_dir.empty()) throw std::invalid_argument(where(c, "log_dir") + ": must not be empty");
  s.log_dir = std::filesystem::absolute(log_dir).lexically_normal();
  s.service_account_dir = stringOr(c, "service_account_dir", s.service_account_dir.string());
  s.pod_template_file = stringOr(c, "pod_template_file", "");
  if (!s.pod_template_file.empty()) {
    std::ifstream in(s.pod_template_file, std::ios::binary);
    if (!in) throw std::invalid_argument(where(c, "pod_template_file") + ": cannot read \"" + s.pod_template_file + "\"");
    std::ostringstream text;
    text << in.rdbuf();
    s.pod_template = parseYaml(text.str(), where(c, "pod_template_file") + ": \"" + s.pod_template_file + "\"");
    if (!s.pod_template.is_object() || (s.pod_template.contains("kind") && s.pod_template["kind"] != "Pod")) {
      throw std::invalid_argument(where(c, "pod_template_file") + ": \"" + s.pod_template_file + "\" is not a Pod");
    }
  }
  return s;
}

}  // namespace leoflow::plugins::dispatcher_k8s
