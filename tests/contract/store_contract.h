// The Store contract suite: every rule of core/include/leoflow/store.h, checked against any backend
// (ARCHITECTURE §7: one parameterised suite per role, run against every Store).
//
// A backend runs the whole suite with one instantiation in its own test file:
//
//   #include "contract/store_contract.h"
//   namespace leoflow::contract {
//   namespace {
//   StoreHarness redisHarness() {
//     return {"Redis",
//             [] { return makeRedisStoreOnAFlushedDatabase(); },     // an EMPTY store
//             [](Store&) { return connectAnotherRedisStore(); }};  // same database; optional
//   }
//   }  // namespace
//   INSTANTIATE_TEST_SUITE_P(Redis, StoreContract, ::testing::Values(redisHarness()), HarnessName{});
//   }  // namespace leoflow::contract
//
// and links `contract_suites_dep` (tests/contract/meson.build), which brings the test bodies in.
//
// Timestamps used by the suite are whole milliseconds (§8.5: stored times keep at least that).
#pragma once

#include <functional>
#include <memory>
#include <ostream>
#include <string>

#include <gtest/gtest.h>

#include <leoflow/store.h>

namespace leoflow::contract {

/// How the suite gets stores of one backend.
struct StoreHarness {
  /// The instantiation's name: letters, digits and underscores only (a GoogleTest name part).
  std::string name;
  /// A store on an EMPTY backend: no DAGs, no runs, no term claimed, no liveness record. Called once
  /// per test; a database backend flushes its database here.
  std::function<std::unique_ptr<Store>()> make_fresh;
  /// Optional: another store on the same backend as `first` (another process sharing the
  /// database). The change-feed tests that need it are skipped when it is empty.
  std::function<std::unique_ptr<Store>(Store& first)> make_second_handle;
};

void PrintTo(const StoreHarness& harness, std::ostream* os);

/// Names each instantiation after its harness (shared with the leader suite).
struct HarnessName {
  template <typename Param>
  std::string operator()(const ::testing::TestParamInfo<Param>& info) const {
    return info.param.name;
  }
};

/// The fixture: a fresh store per test, unsubscribed and destroyed after it.
class StoreContract : public ::testing::TestWithParam<StoreHarness> {
 protected:
  void SetUp() override;
  void TearDown() override;

  Store& store() { return *store_; }
  /// Another handle on the same backend, or nullptr when the harness has none.
  std::unique_ptr<Store> secondHandle();

  std::unique_ptr<Store> store_;
};

}  // namespace leoflow::contract
