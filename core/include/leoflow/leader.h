// Leader: decides which replica plans (ARCHITECTURE §2, §8.7).
//
// The Leader only says *who* leads (a Postgres advisory lock, a Redis lease); fencing is the
// Store's term, claimed right after winning. Any Leader plugin pairs with any Store.
#pragma once

#include <chrono>
#include <memory>
#include <vector>

#include <leoflow/config.h>
#include <leoflow/context.h>
#include <leoflow/status.h>

namespace leoflow {

/// Not thread-safe: the host's campaign loop is its only caller.
class Leader {
 public:
  virtual ~Leader() = default;
  Leader() = default;
  Leader(const Leader&) = delete;
  Leader& operator=(const Leader&) = delete;

  /// Tries to become leader without blocking: true when this replica now leads (or already did).
  virtual Result<bool> tryAcquire() = 0;
  /// Called every checkInterval() while leading: renews a lease, or verifies a lock is still held.
  /// false means leadership is lost; an error means it could not be checked (the host steps down
  /// after repeated errors).
  virtual Result<bool> check() = 0;
  /// Gives leadership up, only if this replica holds it.
  virtual Status release() = 0;
  /// How often check() must run, and how often a follower retries tryAcquire(); fail-over takes
  /// at most about one lease or one such interval.
  virtual std::chrono::milliseconds checkInterval() const = 0;
};

class LeaderFactory {
 public:
  virtual ~LeaderFactory() = default;
  virtual std::vector<ConfigKey> configKeys() const = 0;
  /// Throws std::exception with a clear message when it cannot connect.
  virtual std::unique_ptr<Leader> create(const ConfigView& config, const PluginContext& context) = 0;
};

}  // namespace leoflow
