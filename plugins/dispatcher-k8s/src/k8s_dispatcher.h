// The Dispatcher: one pod per attempt, followed through one watch on the installation's label
// selector (README "Following the pods").
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include <leoflow/context.h>
#include <leoflow/dispatcher.h>

#include "kube_client.h"
#include "pod_manifest.h"
#include "settings.h"

namespace leoflow::plugins::dispatcher_k8s {

class K8sDispatcher final : public Dispatcher {
 public:
  K8sDispatcher(Settings settings, std::shared_ptr<KubeClient> client, std::string ns, const PluginContext& context);
  ~K8sDispatcher() override;

  /// Lists the installation's pods (adopting them) and starts the watch and the ticker. Throws
  /// std::runtime_error on refused credentials or certificate, UnavailableError when unreachable.
  void start();

  std::vector<std::string> taskTypes() const override { return {"bash", "python"}; }
  std::size_t freeCapacity() const override;
  Result<DispatchOutcome> dispatch(const DispatchRequest& request) override;
  void shutdown() override;
  std::vector<AttemptRef> heldAttempts() const override;
  Status stop(const AttemptRef& attempt) override;

  const std::string& ns() const { return ns_; }

 private:
  using Clock = std::chrono::steady_clock;
  struct Pod {
    PodIdentity id;
    std::string uid;
    std::string phase;          ///< Pending, Running, Succeeded, Failed, Unknown
    std::optional<int> exit_code;
    std::string reason;         ///< terminated or waiting reason
    bool deleted = false;       ///< gone from the API server
    bool claimed = false;       ///< running() accepted for this pod's uid
    bool refused = false;       ///< running() answered kConflict: not current, delete it
    bool done = false;          ///< nothing more to report (finished sent, stopped or refused)
    bool delete_wanted = false;
    bool delete_sent = false;
    int delete_grace = -1;
    std::string stop_note;      ///< why we delete a pod whose attempt goes on being reported
    Clock::time_point first_seen{};
    std::optional<Clock::time_point> running_since;  ///< when this dispatcher first saw it Running
    /// The task container's `state.running.startedAt` (or `terminated.startedAt`): the execution
    /// timeout counts from it, also after an adoption; running_since only when it is absent.
    std::optional<std::chrono::system_clock::time_point> started_at;
    Clock::time_point last_beat{};
    std::optional<Clock::time_point> finished_at;
  };

  void applyPod(const nlohmann::json& pod, const std::string& type);  // mutex_ held
  Status listPods();
  void watchLoop();
  void tickLoop();
  void tickPod(const std::string& name);
  void deletePod(const std::string& name, int grace_s);
  std::string fetchLogText(const std::string& name, const Pod& pod, const TaskOutcome& outcome);
  bool live(const Pod& p) const;
  void sleepFor(std::chrono::milliseconds d);

  const Settings settings_;
  std::shared_ptr<KubeClient> client_;
  const std::string ns_;
  const PluginContext& context_;
  const std::string selector_;

  mutable std::mutex mutex_;
  std::map<std::string, Pod> pods_;
  std::set<std::string> inflight_;  ///< pods being created: counted once, whether or not the watch saw them yet
  std::size_t usedLocked() const;
  std::string resource_version_;
  std::atomic<bool> shut_{false};
  std::mutex sleep_mutex_;
  std::condition_variable sleep_cv_;
  std::thread watcher_;
  std::thread ticker_;
};

}  // namespace leoflow::plugins::dispatcher_k8s
