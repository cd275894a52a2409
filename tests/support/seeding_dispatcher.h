// A Dispatcher wrapper for tests of executors: it plays the engine's part around the dispatcher under
// test — every dispatch() first makes the attempt queued in the store the test answers reports from
// (MemoryStore::seedQueuedAttempt), then hands it over; everything else passes through.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <leoflow/dispatcher.h>

namespace leoflow::testing {

class SeedingDispatcher final : public Dispatcher {
 public:
  using Seed = std::function<void(const AttemptRef&)>;
  SeedingDispatcher(std::unique_ptr<Dispatcher> inner, Seed seed) : inner_(std::move(inner)), seed_(std::move(seed)) {}

  std::vector<std::string> taskTypes() const override { return inner_->taskTypes(); }
  std::size_t freeCapacity() const override { return inner_->freeCapacity(); }
  Result<DispatchOutcome> dispatch(const DispatchRequest& request) override {
    seed_(request.attempt);
    return inner_->dispatch(request);
  }
  Status reconcile() override { return inner_->reconcile(); }
  void shutdown() override { inner_->shutdown(); }

 private:
  std::unique_ptr<Dispatcher> inner_;
  Seed seed_;
};

}  // namespace leoflow::testing
