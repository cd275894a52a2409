// Pod logs (README "Logs"): the copy saved into log_dir before a finished pod is deleted, between a
// header and a footer like dispatcher-local's, and the LogReader that serves the live log through
// the API (GET .../pods/{name}/log) while the pod exists, then the saved copy.
//
//   leoflow: ==== attempt <dag_id>/<run_id>/<task_id> try <n>
//   leoflow: run uid <run_uid>, tenant <tenant>
//   leoflow: host pod <namespace>/<pod name>
//   leoflow: execution <pod uid>
//   leoflow: command <the container's command>
//   leoflow: ====
//   ... the container's log ...
//   leoflow: ==== end of execution <pod uid>
//   leoflow: outcome <success | failed: note>
//   leoflow: exit code <n | none>
//   leoflow: ended <2026-01-02T03:04:07.654321Z>
#pragma once

#include <filesystem>
#include <memory>
#include <string>

#include <leoflow/dispatcher.h>

#include "kube_client.h"
#include "pod_manifest.h"
#include "settings.h"

namespace leoflow::plugins::dispatcher_k8s {

std::string formatLogHeader(const PodIdentity& id, const std::string& ns, const std::string& pod,
                            const std::string& uid);
std::string formatLogFooter(const std::string& uid, const TaskOutcome& outcome, bool after_partial_line);

/// Writes header + log + footer to the attempt's file under log_dir (atomically: a temporary file
/// renamed). Returns false when it could not.
bool saveLog(const Settings& settings, const PodIdentity& id, const std::string& text);

class K8sLogReader final : public LogReader {
 public:
  K8sLogReader(Settings settings, std::shared_ptr<KubeClient> client, std::string ns)
      : settings_(std::move(settings)), client_(std::move(client)), ns_(std::move(ns)) {}
  Result<LogChunk> read(const LogQuery& query) override;

 private:
  const Settings settings_;
  std::shared_ptr<KubeClient> client_;
  const std::string ns_;
};

}  // namespace leoflow::plugins::dispatcher_k8s
