// End-to-end and chaos tests run once per store (TEST_P over e2eStores()): the same scenario on
// store-redis and on store-postgres, each on a server of the test's own.
#pragma once

#include <string>

#include <gtest/gtest.h>

#include "support/e2e_stack.h"

namespace leoflow::testing {

/// The fixture of a test run on every store; GetParam() is the store's name. A store that cannot
/// run here (plugin not built, server not installed) skips — and fails under CI=true.
class StoreTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (auto why = stackUnavailable(GetParam())) {
      if (inCi()) FAIL() << *why << " (CI=true: a store may not be skipped)";
      GTEST_SKIP() << *why;
    }
  }

  /// Options for a stack on this test's store.
  E2eStack::Options options() const {
    E2eStack::Options o;
    o.store = GetParam();
    return o;
  }
};

}  // namespace leoflow::testing

/// Runs every TEST_P of `Fixture` (a StoreTest) once per store, named by the store
/// (`Stores/Chaos.Name/postgres`).
#define INSTANTIATE_FOR_EVERY_STORE(Fixture)                                                   \
  INSTANTIATE_TEST_SUITE_P(Stores, Fixture, ::testing::ValuesIn(::leoflow::testing::e2eStores()), \
                           [](const ::testing::TestParamInfo<std::string>& info) { return info.param; })
