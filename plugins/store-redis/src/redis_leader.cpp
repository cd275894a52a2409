#include "redis_leader.h"

#include <algorithm>

namespace leoflow::plugins::store_redis {

RedisLeader::RedisLeader(const Settings& settings, const PluginContext& context)
    : client_(settings, context.logger()),
      identity_(context.replicaId()),
      key_(settings.key_prefix + ":leader"),
      lease_ms_(std::to_string(settings.lease.count())) {
  client_.start();
  client_.logger()->info("leader lease ready url={} key={} identity={} lease_ms={}", settings.endpoint.redacted,
                         key_, identity_, lease_ms_);
}

Result<bool> RedisLeader::tryAcquire() {
  auto set = client_.command({"SET", key_, identity_, "NX", "PX", lease_ms_});
  if (!set) return set.status();
  bool won = (*set)->type == REDIS_REPLY_STATUS;  // +OK; nil when someone holds the lease
  if (!won) {
    // Perhaps it is us (leader.h: true when this replica "already did" lead): renew it then.
    auto renewed = client_.eval(lua::kLeaseRenew, {identity_, lease_ms_});
    if (!renewed) return renewed.status();
    won = (*renewed)->type == REDIS_REPLY_INTEGER && (*renewed)->integer == 1;
  }
  if (won && !leading_) client_.logger()->info("lease acquired identity={} lease_ms={}", identity_, lease_ms_);
  leading_ = won;
  return won;
}

Result<bool> RedisLeader::check() {
  auto renewed = client_.eval(lua::kLeaseRenew, {identity_, lease_ms_});
  if (!renewed) return renewed.status();
  const bool ours = (*renewed)->type == REDIS_REPLY_INTEGER && (*renewed)->integer == 1;
  if (!ours && leading_) client_.logger()->warn("lease lost identity={}", identity_);
  leading_ = ours;
  return ours;
}

Status RedisLeader::release() {
  auto released = client_.eval(lua::kLeaseRelease, {identity_});
  if (!released) return released.status();
  const bool was_ours = (*released)->type == REDIS_REPLY_INTEGER && (*released)->integer == 1;
  if (was_ours) {
    client_.logger()->info("lease released identity={}", identity_);
  } else {
    client_.logger()->debug("release skipped: the lease is not ours identity={}", identity_);
  }
  leading_ = false;
  return Status::ok();
}

std::chrono::milliseconds RedisLeader::checkInterval() const {
  return std::max(std::chrono::milliseconds(1), client_.settings().lease / 3);
}

}  // namespace leoflow::plugins::store_redis
