// The change feed: a dedicated pub/sub connection and thread (ARCHITECTURE §2 "Wake-ups").
//
// Every write script PUBLISHes a compact message on the store's channel; this thread turns them into
// Change values for the one ChangeSink. When the connection drops (Redis restarted) it reconnects
// with back-off (50 ms doubling to 1 s), subscribes again and calls onResync(), since messages sent
// meanwhile are lost. A quiet connection is probed with PING every second, so a dead peer is noticed
// within about command_timeout_ms. stop() wakes the thread through a pipe: it returns at once.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include <spdlog/logger.h>

#include <leoflow/status.h>
#include <leoflow/store.h>

#include "connection.h"
#include "settings.h"

namespace leoflow::plugins::store_redis {

class ChangeFeed {
 public:
  ChangeFeed(Settings settings, std::string channel, std::shared_ptr<spdlog::logger> logger);
  ~ChangeFeed();
  ChangeFeed(const ChangeFeed&) = delete;
  ChangeFeed& operator=(const ChangeFeed&) = delete;

  /// Subscribes before returning, so every change published after it returns is delivered.
  /// kUnavailable (and nothing started) when Redis cannot be reached.
  Status start(ChangeSink& sink);
  /// Stops the thread and closes the connection; no sink call happens after it returns.
  void stop();

 private:
  std::unique_ptr<Connection> connectAndSubscribe(std::string& error);
  void run(std::unique_ptr<Connection> conn);
  void deliver(const redisReply* reply);
  /// Sleeps up to `ms` unless stop() is called; true when stopping.
  bool waitForStop(std::chrono::milliseconds ms);

  const Settings settings_;
  const std::string channel_;
  const std::shared_ptr<spdlog::logger> logger_;
  ChangeSink* sink_ = nullptr;
  std::thread thread_;
  std::atomic<bool> stopping_{false};
  int wake_read_ = -1;
  int wake_write_ = -1;
};

}  // namespace leoflow::plugins::store_redis
