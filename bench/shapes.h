// The planner benchmark shapes of docs/bench-shapes.md, rebuilt exactly (same ids, same
// dependency order, same PRNG) so the figures compare with the Go baseline measured there.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <leoflow/domain.h>

#include "planning/compiled_dag.h"
#include "planning/plan.h"

namespace leoflow::bench {

/// A shape: its task list and the initial state of every task.
struct Shape {
  std::string name;
  std::vector<TaskSpec> tasks;
  std::vector<TaskState> states;
};

Shape chain(int n, int n_success);                  // a: chain(1000, 500)
Shape fanOut(int children);                         // b: fan_out(10000)
Shape fanIn(int roots);                             // c: fan_in(10000)
Shape layered(int layers, int width, int fan_in, std::uint64_t seed, int success_layers);  // d
Shape small();                                      // e
Shape smallMid();                                   // e'
Shape fanOutQueue(int children);                    // f: fan_out with every child scheduled

/// SplitMix64, the shapes' PRNG.
class SplitMix64 {
 public:
  explicit SplitMix64(std::uint64_t seed) : state_(seed) {}
  std::uint64_t next();

 private:
  std::uint64_t state_;
};

/// FNV-1a 64 over "<task_id>:<dep1>,<dep2>,...\n" in task order.
std::uint64_t topoFnv(const Shape& s);
/// FNV-1a 64 over "<task_id>=<state>\n" in task order.
std::uint64_t statesFnv(const Shape& s);

/// A compiled shape with the arrays a snapshot views (no retries: tries and max_tries are empty).
struct CompiledShape {
  explicit CompiledShape(const Shape& s);
  planning::RunSnapshot snapshot() const;

  Shape shape;
  planning::CompiledDag dag;
};

}  // namespace leoflow::bench
