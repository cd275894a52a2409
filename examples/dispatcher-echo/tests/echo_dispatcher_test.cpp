// The echo dispatcher's own unit tests: a third-party plugin tests itself with the SDK and a
// TaskEvents of its own, no leoflow source tree needed.
#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <spdlog/logger.h>
#include <spdlog/sinks/ostream_sink.h>

#include <leoflow/recorder.h>

#include "../src/echo_dispatcher.h"

namespace {

using leoflow::AttemptRef;
using leoflow::DispatchOutcome;
using leoflow::plugins::dispatcher_echo::EchoDispatcherFactory;

class RecordingEvents final : public leoflow::TaskEvents {
 public:
  // Every report carries the execution that claimed the attempt (SDK 2: claim before run).
  leoflow::Status running(const leoflow::ExecutionRef& e) override { return add("running " + e.attempt.task_id); }
  leoflow::Status heartbeat(const leoflow::ExecutionRef& e) override {
    return add("heartbeat " + e.attempt.task_id);
  }
  leoflow::Status finished(const leoflow::ExecutionRef& e, const leoflow::TaskOutcome& o) override {
    return add("finished " + e.attempt.task_id + (o.success ? " success " : " failed ") + o.message);
  }

  /// Waits (bounded) until `n` finished reports arrived.
  bool waitFinished(std::size_t n) {
    std::unique_lock<std::mutex> lock(mutex_);
    return changed_.wait_for(lock, std::chrono::seconds(10), [&] { return finished_ >= n; });
  }
  std::vector<std::string> calls() {
    const std::lock_guard<std::mutex> lock(mutex_);
    return calls_;
  }

 private:
  leoflow::Status add(std::string call) {
    const std::lock_guard<std::mutex> lock(mutex_);
    if (call.starts_with("finished")) ++finished_;
    calls_.push_back(std::move(call));
    changed_.notify_all();
    return {};
  }
  std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<std::string> calls_;
  std::size_t finished_ = 0;
};

class NullRecorder final : public leoflow::Recorder {
 public:
  void recordSchedulerDecision(std::string_view) override {}
  void recordTaskTransition(leoflow::TaskState, leoflow::TaskState, std::string_view) override {}
  void recordUndispatchable(std::string_view) override {}
  void recordSchedulerStepDown(std::string_view) override {}
  void observeSchedulerReacquire(std::chrono::microseconds) override {}
  void observeTickDuration(std::chrono::microseconds) override {}
  void setDispatchQueueDepth(std::int64_t) override {}
  void observeDispatchLatency(std::chrono::microseconds) override {}
  void observeTaskDuration(std::string_view, std::string_view, std::string_view, std::chrono::microseconds) override {}
};

class WallClock final : public leoflow::Clock {
 public:
  leoflow::Timestamp now() const override {
    return std::chrono::time_point_cast<std::chrono::microseconds>(std::chrono::system_clock::now());
  }
};

class EchoTest : public ::testing::Test {
 protected:
  std::unique_ptr<leoflow::Dispatcher> make(std::int64_t delay_ms, std::int64_t max_parallel,
                                            std::chrono::milliseconds heartbeat = std::chrono::seconds(1)) {
    const leoflow::ConfigView config("dispatcher.config", {{"delay_ms", leoflow::ConfigValue(delay_ms)},
                                                           {"max_parallel", leoflow::ConfigValue(max_parallel)}});
    auto logger = std::make_shared<spdlog::logger>("plugin.dispatcher-echo",
                                                   std::make_shared<spdlog::sinks::ostream_sink_mt>(log_));
    const leoflow::PluginContext context("dispatcher-echo", logger, clock_, events_, recorder_, heartbeat, "replica-1");
    return EchoDispatcherFactory().create(config, context);
  }

  static leoflow::DispatchRequest request(const std::string& task, int try_number = 1) {
    leoflow::DispatchRequest r;
    r.attempt = AttemptRef{leoflow::RunKey{"etl", "manual__1"}, task, try_number};
    r.task.task_id = task;
    r.task.entrypoint = "make " + task;
    return r;
  }

  std::ostringstream log_;
  WallClock clock_;
  RecordingEvents events_;
  NullRecorder recorder_;
};

TEST_F(EchoTest, ReportsRunningThenFinishedWithTheEntrypoint) {
  auto d = make(5, 4);
  EXPECT_TRUE(d->taskTypes().empty());
  EXPECT_EQ(d->dispatch(request("a")).value(), DispatchOutcome::kStarted);
  ASSERT_TRUE(events_.waitFinished(1));
  d->shutdown();
  const std::vector<std::string> calls = events_.calls();
  ASSERT_EQ(calls.size(), 2u);
  EXPECT_EQ(calls[0], "running a");
  EXPECT_EQ(calls[1], "finished a success echo: make a");
}

TEST_F(EchoTest, IsIdempotentPerAttemptAndBoundedByMaxParallel) {
  auto d = make(200, 2);
  EXPECT_EQ(d->freeCapacity(), 2u);
  EXPECT_EQ(d->dispatch(request("a")).value(), DispatchOutcome::kStarted);
  EXPECT_EQ(d->dispatch(request("a")).value(), DispatchOutcome::kAlreadyRunning);
  EXPECT_EQ(d->freeCapacity(), 1u);
  EXPECT_EQ(d->dispatch(request("a", 2)).value(), DispatchOutcome::kStarted);  // a new try is a new attempt
  EXPECT_EQ(d->freeCapacity(), 0u);
  EXPECT_EQ(d->dispatch(request("b")).value(), DispatchOutcome::kAtCapacity);
  ASSERT_TRUE(events_.waitFinished(2));
  EXPECT_EQ(d->dispatch(request("a")).value(), DispatchOutcome::kAlreadyRunning);  // even once finished
  d->shutdown();
  EXPECT_EQ(d->dispatch(request("c")).status().code(), leoflow::StatusCode::kCancelled);
}

TEST_F(EchoTest, HeartbeatsWhileWaiting) {
  auto d = make(60, 1, std::chrono::milliseconds(20));
  EXPECT_EQ(d->dispatch(request("slow")).value(), DispatchOutcome::kStarted);
  ASSERT_TRUE(events_.waitFinished(1));
  d->shutdown();
  const std::vector<std::string> calls = events_.calls();
  EXPECT_GE(std::count(calls.begin(), calls.end(), "heartbeat slow"), 2);
}

TEST_F(EchoTest, ShutdownWaitsForEveryAttempt) {
  auto d = make(50, 4);
  for (const char* t : {"a", "b", "c"}) EXPECT_EQ(d->dispatch(request(t)).value(), DispatchOutcome::kStarted);
  d->shutdown();
  EXPECT_EQ(events_.calls().size(), 6u);
}

TEST_F(EchoTest, TheFactoryChecksRanges) {
  EXPECT_THROW(make(-1, 1), std::invalid_argument);
  EXPECT_THROW(make(60'001, 1), std::invalid_argument);
  EXPECT_THROW(make(10, 0), std::invalid_argument);
  const std::vector<leoflow::ConfigKey> keys = EchoDispatcherFactory().configKeys();
  ASSERT_EQ(keys.size(), 2u);
  EXPECT_EQ(keys[0].name, "delay_ms");
  EXPECT_EQ(std::get<std::int64_t>(*keys[0].default_value), 10);
  EXPECT_EQ(keys[1].name, "max_parallel");
  EXPECT_EQ(std::get<std::int64_t>(*keys[1].default_value), 4);
}

}  // namespace
