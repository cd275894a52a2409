// The plugin's configuration keys and their checked values (README "Configuration").
#pragma once

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <leoflow/config.h>

namespace leoflow::plugins::dispatcher_k8s {

struct Settings {
  std::string kubeconfig;           ///< empty = in-cluster
  std::string context;              ///< empty = the kubeconfig's current-context
  std::string namespace_;           ///< empty = the context's, else the service account's, else "default"
  std::string image;                ///< for tasks without an image of their own
  std::string installation = "leoflow";
  std::size_t max_parallel = 64;
  double qps = 20;
  int burst = 40;
  int pending_timeout_s = 300;
  int termination_grace_s = 30;
  int delete_finished_after_s = 300;
  std::filesystem::path log_dir;
  std::filesystem::path service_account_dir = "/var/run/secrets/kubernetes.io/serviceaccount";
  std::string pod_template_file;
  nlohmann::json pod_template;      ///< the template's pod, or null
  int request_timeout_s = 30;
  int watch_timeout_s = 60;
  std::string section;
};

std::vector<ConfigKey> configKeys();
/// Reads and checks the values; throws std::invalid_argument naming the section and the key.
Settings readSettings(const ConfigView& config);

}  // namespace leoflow::plugins::dispatcher_k8s
