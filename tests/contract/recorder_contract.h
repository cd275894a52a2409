// The Recorder contract suite (recorder.h, docs/writing-a-plugin.md §6.5): every hook, the SDK 3.1
// ones included, is safe from many threads at once, never blocks the caller on its destination,
// never throws, takes any id, and lets itself be destroyed promptly with samples pending. A
// recorder whose output the harness can observe must also deliver what it was told.
//
// A backend instantiates it in its own test file:
//
//   RecorderHarness statsdHarness() {
//     RecorderHarness h;
//     h.name = "Statsd";
//     h.create = [](RecorderDestination d) -> RecorderSetup { ... };
//     return h;
//   }
//   INSTANTIATE_TEST_SUITE_P(Statsd, RecorderContract, ::testing::Values(statsdHarness()), HarnessName{});
//
// and links `recorder_contract_dep` (tests/contract/meson.build).
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <ostream>
#include <string>

#include <gtest/gtest.h>

#include <leoflow/recorder.h>

#include "contract/store_contract.h"  // HarnessName

namespace leoflow::contract {

/// Where the recorder under test is pointed.
enum class RecorderDestination {
  kObserved,  ///< somewhere the harness reads back (a listener of its own)
  kAbsent,    ///< a destination that does not exist or does not answer
};

struct RecorderSetup {
  std::unique_ptr<Recorder> recorder;
  /// Everything delivered to an observed destination so far, as text, after giving the recorder
  /// time to send what it holds (empty function: the harness cannot observe its output).
  std::function<std::string()> delivered;
  /// Kept alive for the test (a listener).
  std::shared_ptr<void> resources;
};

struct RecorderHarness {
  std::string name;
  std::function<RecorderSetup(RecorderDestination)> create;
};

inline std::ostream& operator<<(std::ostream& os, const RecorderHarness& h) { return os << h.name; }

class RecorderContract : public ::testing::TestWithParam<RecorderHarness> {};

}  // namespace leoflow::contract
