// Leader by lease (ARCHITECTURE §2, §8.7): `SET <prefix>:leader <replica id> NX PX lease_ms`.
//
// The lease says who leads; the fencing term comes from the Store's claimTerm. Renewal and release
// are compare-and-set scripts, so a replica only ever extends or deletes its own lease.
#pragma once

#include <leoflow/context.h>
#include <leoflow/leader.h>

#include "redis_client.h"

namespace leoflow::plugins::store_redis {

class RedisLeader final : public Leader {
 public:
  /// Connects; throws naming the URL when Redis cannot be reached.
  RedisLeader(const Settings& settings, const PluginContext& context);

  Result<bool> tryAcquire() override;
  Result<bool> check() override;
  Status release() override;
  std::chrono::milliseconds checkInterval() const override;

 private:
  RedisClient client_;
  std::string identity_;
  std::string key_;
  std::string lease_ms_;
  bool leading_ = false;  // only for log lines: Redis is the truth
};

}  // namespace leoflow::plugins::store_redis
