// The Go planner's figures on this machine kind (docs/bench-shapes.md, Go 1.19 column, wall
// time per operation), and how benchmarks report their ratio against them.
#pragma once

#include <chrono>
#include <cstddef>

#include <benchmark/benchmark.h>

namespace leoflow::bench {

namespace go_ns {
inline constexpr double kPlanFinalizeA = 159e3;
inline constexpr double kPlanFinalizeB = 2.19e6;
inline constexpr double kPlanFinalizeC = 2.27e6;
inline constexpr double kPlanFinalizeD = 2.61e6;
inline constexpr double kPlanFinalizeE = 1.60e3;
inline constexpr double kTickE10k = 22.3e6;
inline constexpr double kLaunchF = 103e6;
inline constexpr double kSimD = 490e6;
inline constexpr double kSimE1000 = 24.3e6;
inline constexpr double kRuleEval3 = 9.8;
inline constexpr double kCronNext = 0.61e3;
inline constexpr double kCronCatchup100 = 64e3;
}  // namespace go_ns

/// Times the benchmark loop itself so the ratio to Go can be a counter of the report: wrap the
/// `for (auto _ : state)` loop between start() and finish().
class GoComparison {
 public:
  GoComparison(benchmark::State& state, double go_ns_per_op, std::size_t tasks_per_op)
      : state_(state), go_ns_(go_ns_per_op), tasks_(tasks_per_op) {}

  void start() { t0_ = std::chrono::steady_clock::now(); }

  void finish() {
    const auto elapsed = std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0_);
    const double per_op = elapsed.count() / static_cast<double>(state_.iterations());
    if (tasks_ > 0) state_.counters["ns_per_task"] = per_op / static_cast<double>(tasks_);
    state_.counters["x_faster_than_go"] = go_ns_ / per_op;
  }

 private:
  benchmark::State& state_;
  double go_ns_;
  std::size_t tasks_;
  std::chrono::steady_clock::time_point t0_;
};

}  // namespace leoflow::bench
