// The Leader contract suite: mutual exclusion, renewal, release and fail-over, checked against any
// Leader backend (ARCHITECTURE §2 "Leadership and fencing", §8.7; leader.h).
//
// A backend instantiates it in its own test file:
//
//   #include "contract/leader_contract.h"
//   namespace leoflow::contract {
//   namespace {
//   LeaderHarness redisLeaderHarness() {
//     return {"Redis", [] {
//       LeaderSetup s;
//       s.lease = std::chrono::milliseconds{400};             // short, for the test
//       s.first = makeRedisLeader("replica-a", s.lease);       // both on the same fresh key
//       s.second = makeRedisLeader("replica-b", s.lease);
//       s.advance = [](std::chrono::milliseconds d) { std::this_thread::sleep_for(d); };
//       s.lapse = [] { std::this_thread::sleep_for(std::chrono::milliseconds{450}); };
//       return s;
//     }};
//   }
//   }  // namespace
//   INSTANTIATE_TEST_SUITE_P(Redis, LeaderContract, ::testing::Values(redisLeaderHarness()),
//                            HarnessName{});
//   }  // namespace leoflow::contract
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <ostream>
#include <string>

#include <gtest/gtest.h>

#include <leoflow/leader.h>

#include "contract/store_contract.h"  // HarnessName

namespace leoflow::contract {

/// Two replicas contending for one fresh lease or lock, and the means to move time.
struct LeaderSetup {
  /// Two distinct replicas; nobody holds the lease when the setup is handed over.
  std::unique_ptr<Leader> first;
  std::unique_ptr<Leader> second;
  /// The lease duration; zero for a lock without a lease (a PostgreSQL advisory lock), for which
  /// the tests that wait out a lease are skipped.
  std::chrono::milliseconds lease{0};
  /// Lets `d` pass for the leaders: advances a fake clock, or sleeps for a real backend.
  std::function<void(std::chrono::milliseconds)> advance;
  /// Makes the current holder lose leadership behind its back, the way it happens in production:
  /// the lease runs out while the holder is paused (wait past the lease), or the lock's session
  /// is killed.
  std::function<void()> lapse;
  /// Anything the leaders need kept alive for the test (a clock, a server connection).
  std::shared_ptr<void> resources;
};

struct LeaderHarness {
  /// The instantiation's name: letters, digits and underscores only.
  std::string name;
  std::function<LeaderSetup()> make;
};

void PrintTo(const LeaderHarness& harness, std::ostream* os);

class LeaderContract : public ::testing::TestWithParam<LeaderHarness> {
 protected:
  void SetUp() override;
  void TearDown() override;

  Leader& first() { return *setup_.first; }
  Leader& second() { return *setup_.second; }

  LeaderSetup setup_;
};

}  // namespace leoflow::contract
