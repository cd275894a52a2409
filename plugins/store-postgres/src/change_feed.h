// The change feed: LISTEN on the installation's channel over a session of its own (direct_dsn when
// set, since LISTEN does not survive a transaction-mode pooler), on a thread of its own (ARCHITECTURE
// §2 "Wake-ups"). The SQL functions NOTIFY in the transactions that change state, so a change is
// heard only once it is committed.
//
// When the session drops (a server restart, a network fault) the thread reconnects with back-off
// (50 ms doubling to 1 s), listens again and calls onResync(), since notifications sent meanwhile
// are lost. A quiet session is probed every second, so a dead peer is noticed within about the
// statement timeout. stop() wakes the thread through a pipe: it returns at once.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include <spdlog/logger.h>

#include <leoflow/status.h>
#include <leoflow/store.h>

#include "connection_pool.h"

namespace leoflow::plugins::store_postgres {

class ChangeFeed {
 public:
  /// Listens on `channel`: the settings' channel() (every change) or runChannel() (run changes only).
  ChangeFeed(const ConnectionPool& pool, std::string channel, std::shared_ptr<spdlog::logger> logger);
  ~ChangeFeed();
  ChangeFeed(const ChangeFeed&) = delete;
  ChangeFeed& operator=(const ChangeFeed&) = delete;

  /// Listens before returning, so every change committed after it returns is delivered.
  /// kUnavailable (and nothing started) when the server cannot be reached.
  Status start(ChangeSink& sink);
  /// Stops the thread and closes the session; no sink call happens after it returns.
  void stop();

 private:
  class Listener;
  struct Connected;

  std::unique_ptr<Connected> connectAndListen(std::string& error);
  void run(std::unique_ptr<Connected> connected);
  void deliver(const std::string& payload);
  /// Sleeps up to `ms` unless stop() is called; true when stopping.
  bool waitForStop(std::chrono::milliseconds ms);

  const ConnectionPool& pool_;
  const std::shared_ptr<spdlog::logger> logger_;
  const std::string channel_;
  ChangeSink* sink_ = nullptr;
  std::thread thread_;
  std::atomic<bool> stopping_{false};
  int wake_read_ = -1;
  int wake_write_ = -1;
};

}  // namespace leoflow::plugins::store_postgres
