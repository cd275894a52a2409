// planner_bench: verifies every shape, then runs the benchmarks (Google Benchmark flags apply).
#include <benchmark/benchmark.h>

namespace leoflow::bench {
void registerPlannerBenchmarks();
void registerCronBenchmarks();
}  // namespace leoflow::bench

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 2;
  leoflow::bench::registerPlannerBenchmarks();
  leoflow::bench::registerCronBenchmarks();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
