// The pod of one attempt (README "Pods"), and the attempt a pod belongs to.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include <leoflow/dispatcher.h>
#include <leoflow/status.h>

#include "settings.h"

namespace leoflow::plugins::dispatcher_k8s {

inline constexpr const char* kLabelInstallation = "leoflow.io/installation";
inline constexpr const char* kContainerName = "task";

/// The pod manifest for `request`: name, labels, annotations, image, command, env, resources and
/// execution hints, restartPolicy Never, the activeDeadlineSeconds backstop. kInvalidArgument when
/// the task can never run here (another type, no entrypoint, no image).
Result<nlohmann::json> buildPod(const DispatchRequest& request, const Settings& settings, const std::string& ns);

/// "leoflow.io/installation=<value>" (URL-encoded by the caller).
std::string installationSelector(const Settings& settings);

/// What a pod's annotations say about its attempt.
struct PodIdentity {
  AttemptRef attempt;
  std::int64_t run_uid = 0;
  std::string tenant;
  int execution_timeout_s = 0;
  std::string command;  ///< for the log header
};
std::optional<PodIdentity> identityOf(const nlohmann::json& pod);

}  // namespace leoflow::plugins::dispatcher_k8s
