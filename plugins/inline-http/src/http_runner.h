// The InlineRunner: http_api requests on libcurl's multi interface, one transfer thread for every
// request in flight, one reporter thread for heartbeats and outcomes (README "How it runs").
#pragma once

#include <condition_variable>
#include <chrono>
#include <cstddef>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <leoflow/context.h>
#include <leoflow/inline_runner.h>

#include "settings.h"

namespace leoflow::plugins::inline_http {

class HttpRunner final : public InlineRunner {
 public:
  HttpRunner(Settings settings, const PluginContext& context);
  ~HttpRunner() override;

  Result<bool> start(const DispatchRequest& request) override;
  void shutdown() override;
  std::size_t freeCapacity() const override;
  std::vector<AttemptRef> heldAttempts() const override;
  Status stop(const AttemptRef& attempt) override;

  struct Transfer;  // one request in flight (http_runner.cpp)

 private:
  struct StopRequest {
    AttemptRef attempt;
    std::string why;
    bool report = false;
  };
  struct PendingReport {
    ExecutionRef execution;
    TaskOutcome outcome;
    std::chrono::steady_clock::time_point not_before;
    std::chrono::milliseconds backoff{50};
  };

  void transferLoop();
  void reporterLoop();
  /// Ends `t` (removed from the multi handle), writes the rest of its log and queues its report.
  void endTransfer(const std::shared_ptr<Transfer>& t, int curl_code, const std::string& stop_reason,
                   bool report);
  void release(const AttemptRef& attempt);
  void wake();

  const Settings settings_;
  const PluginContext context_;
  const std::map<std::string, std::string> secrets_;
  void* multi_ = nullptr;  ///< CURLM*

  mutable std::mutex mutex_;
  std::condition_variable changed_;
  bool stopping_ = false;   ///< shutdown began: no new work
  bool abort_all_ = false;  ///< the grace is over: abort what is in flight
  bool quit_ = false;       ///< the transfer thread ends once nothing is in flight
  bool reporter_quit_ = false;
  std::chrono::steady_clock::time_point reporter_deadline_{};
  std::size_t reserved_ = 0;        ///< slots taken: claims under way plus transfers in flight
  std::set<AttemptRef> claiming_;   ///< start() is claiming these
  std::map<AttemptRef, std::shared_ptr<Transfer>> live_;  ///< claimed, not yet ended
  std::map<AttemptRef, std::string> unclaimed_ids_;  ///< a claim without an answer: retried with this id
  std::vector<std::shared_ptr<Transfer>> incoming_;   ///< for the transfer thread to add
  std::vector<StopRequest> stops_;
  std::deque<PendingReport> reports_;

  std::mutex shutdown_mutex_;
  bool shut_down_ = false;
  std::thread transfer_thread_;
  std::thread reporter_thread_;
};

}  // namespace leoflow::plugins::inline_http
