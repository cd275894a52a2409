// Planner micro-benchmarks on the shapes of docs/bench-shapes.md. Every shape's checksums
// and expected plan are verified before anything is timed; a mismatch aborts the run.
//
// Names are stable so `--benchmark_format=json` output compares run to run:
//   plan_finalize/a..e  launch/f  sim/d  sim/e1000  tick/e10k  tick/e10k_mixed  wait/fanout20k
//   wait/fanout20k_all  rule/eval3
//   cron/next  cron/catchup100 (in cron_bench.cpp)
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>

#include "go_baseline.h"
#include "planning/incremental_planner.h"
#include "planning/plan.h"
#include "planning/trigger_rules.h"
#include "shapes.h"

namespace leoflow::bench {
namespace {

using planning::FinalizeDecision;
using planning::IncrementalPlanner;
using planning::Transition;

[[noreturn]] void die(const std::string& why) {
  std::fprintf(stderr, "planner_bench: %s\n", why.c_str());
  std::exit(1);
}

void check(bool ok, const std::string& what) {
  if (!ok) die("verification failed: " + what);
}

struct Verified {
  std::unique_ptr<CompiledShape> a, b, c, d, e, e_mid, f, d_sim;
};

// SHAPES.md checksums and the expected PlanRun output of each shape.
Verified buildAndVerify() {
  struct Expect {
    const Shape shape;
    std::uint64_t topo, states;
  };
  const Expect expects[] = {
      {chain(1000, 500), 0x28d164b2b74cfa1aULL, 0xa29ab7b30b1087d1ULL},
      {fanOut(10000), 0xe43f387a47196f2cULL, 0x86536043fefc62acULL},
      {fanIn(10000), 0x19389f90d57f3286ULL, 0xccc264b01f2577f9ULL},
      {layered(100, 100, 3, 42, 50), 0xac1acaab17cbcf49ULL, 0x7b791e43e9ae4c3fULL},
      {small(), 0x222cf7093f8702b4ULL, 0xfd9c9fd6f7477746ULL},
      {smallMid(), 0x222cf7093f8702b4ULL, 0x9ebb65a9ac76b8feULL},
  };
  for (const Expect& x : expects) {
    check(topoFnv(x.shape) == x.topo, x.shape.name + " topo_fnv");
    check(statesFnv(x.shape) == x.states, x.shape.name + " states_fnv");
  }
  SplitMix64 sm(42);
  check(sm.next() == 13679457532755275413ULL && sm.next() == 2949826092126892291ULL &&
            sm.next() == 5139283748462763858ULL,
        "SplitMix64(42) sanity values");

  Verified v;
  v.a = std::make_unique<CompiledShape>(expects[0].shape);
  v.b = std::make_unique<CompiledShape>(expects[1].shape);
  v.c = std::make_unique<CompiledShape>(expects[2].shape);
  v.d = std::make_unique<CompiledShape>(expects[3].shape);
  v.e = std::make_unique<CompiledShape>(expects[4].shape);
  v.e_mid = std::make_unique<CompiledShape>(expects[5].shape);
  v.f = std::make_unique<CompiledShape>(fanOutQueue(10000));
  v.d_sim = std::make_unique<CompiledShape>(layered(100, 100, 3, 42, 0));

  // Expected plans: (count, first task index, target) and finalize not done.
  auto expectPlan = [](const CompiledShape& s, std::size_t count, std::uint32_t first, TaskState to) {
    std::vector<Transition> out;
    planning::planRun(s.snapshot(), out);
    check(out.size() == count, s.shape.name + " plan size " + std::to_string(out.size()));
    for (std::size_t k = 0; k < out.size(); ++k) {
      check(out[k].task == first + k && out[k].to == to, s.shape.name + " plan entry " + std::to_string(k));
    }
    check(!planning::finalizeRun(s.snapshot()).done, s.shape.name + " finalize must be not done");
  };
  expectPlan(*v.a, 1, 500, TaskState::kScheduled);
  expectPlan(*v.b, 10000, 1, TaskState::kScheduled);
  expectPlan(*v.c, 1, 10000, TaskState::kScheduled);
  expectPlan(*v.d, 100, 5000, TaskState::kScheduled);
  expectPlan(*v.e, 1, 0, TaskState::kScheduled);
  expectPlan(*v.e_mid, 1, 3, TaskState::kQueued);
  expectPlan(*v.f, 10000, 1, TaskState::kQueued);
  return v;
}

Verified& shapes() {
  static Verified v = buildAndVerify();
  return v;
}

void planFinalize(benchmark::State& state, const CompiledShape* s, double go_ns) {
  const planning::RunSnapshot snap = s->snapshot();
  std::vector<Transition> out;
  out.reserve(s->dag.size());
  GoComparison cmp(state, go_ns, s->dag.size());
  cmp.start();
  for (auto _ : state) {
    planning::planRun(snap, out);
    FinalizeDecision f = planning::finalizeRun(snap);
    benchmark::DoNotOptimize(out.data());
    benchmark::DoNotOptimize(f);
  }
  cmp.finish();
}

// f: launch 10,000 queued tasks, including finding each task's spec (dense index: O(1)).
void launchF(benchmark::State& state) {
  const CompiledShape& s = *shapes().f;
  const planning::RunSnapshot snap = s.snapshot();
  std::vector<Transition> out;
  out.reserve(s.dag.size());
  GoComparison cmp(state, go_ns::kLaunchF, s.dag.size());
  cmp.start();
  for (auto _ : state) {
    planning::planRun(snap, out);
    std::size_t touched = 0;
    for (const Transition& t : out) {
      const TaskSpec& spec = s.shape.tasks[t.task];
      touched += spec.type.size();
    }
    benchmark::DoNotOptimize(touched);
  }
  cmp.finish();
}

// One simulated tick over a run (SHAPES.md "full-run simulation"): plan and finalize on the
// pre-tick state, apply the plan, then the zero-latency executor finishes every new queued task.
// Returns (transitions applied, done, verdict).
struct TickResult {
  std::size_t transitions;
  FinalizeDecision verdict;
};

TickResult simTick(IncrementalPlanner& p, std::vector<Transition>& plan) {
  p.plan(std::nullopt, plan);
  const FinalizeDecision verdict = p.finalize();
  for (const Transition& t : plan) {
    p.setState(t.task, t.to);
    if (t.to == TaskState::kQueued) p.setState(t.task, TaskState::kSuccess);
  }
  return {plan.size(), verdict};
}

void simD(benchmark::State& state) {
  const CompiledShape& s = *shapes().d_sim;
  const planning::RunSnapshot start = s.snapshot();
  IncrementalPlanner planner(s.dag);
  std::vector<Transition> plan;
  plan.reserve(s.dag.size());
  GoComparison cmp(state, go_ns::kSimD, s.dag.size());
  std::size_t ticks = 0, transitions = 0;
  FinalizeDecision verdict;
  cmp.start();
  for (auto _ : state) {
    planner.reset(start);
    ticks = transitions = 0;
    do {
      TickResult r = simTick(planner, plan);
      ++ticks;
      transitions += r.transitions;
      verdict = r.verdict;
    } while (!verdict.done);
  }
  cmp.finish();
  check(ticks == 201 && transitions == 20000 && verdict.state == DagRunState::kSuccess,
        "sim/d: " + std::to_string(ticks) + " ticks, " + std::to_string(transitions) + " transitions");
}

void simE1000(benchmark::State& state) {
  const CompiledShape& s = *shapes().e;
  const planning::RunSnapshot start = s.snapshot();
  std::vector<IncrementalPlanner> runs(1000, IncrementalPlanner(s.dag));
  std::vector<std::uint32_t> active;
  active.reserve(runs.size());
  std::vector<Transition> plan;
  plan.reserve(s.dag.size());
  GoComparison cmp(state, go_ns::kSimE1000, runs.size() * s.dag.size());
  std::size_t ticks = 0, transitions = 0, succeeded = 0;
  cmp.start();
  for (auto _ : state) {
    active.clear();
    for (std::uint32_t r = 0; r < runs.size(); ++r) {
      runs[r].reset(start);
      active.push_back(r);
    }
    ticks = transitions = succeeded = 0;
    while (!active.empty()) {
      ++ticks;
      std::size_t kept = 0;
      for (std::uint32_t r : active) {
        TickResult t = simTick(runs[r], plan);
        transitions += t.transitions;
        if (t.verdict.done) {
          succeeded += t.verdict.state == DagRunState::kSuccess;
        } else {
          active[kept++] = r;
        }
      }
      active.resize(kept);
    }
  }
  cmp.finish();
  check(ticks == 13 && transitions == 20000 && succeeded == 1000,
        "sim/e1000: " + std::to_string(ticks) + " ticks, " + std::to_string(transitions) + " transitions");
}

// 10,000 runs of `small`, each with its own state array; one op plans and finalizes all of them.
// `mixed`: run i starts where the simulation is after i % 13 ticks.
void tickE10k(benchmark::State& state, bool mixed) {
  const CompiledShape& s = *shapes().e;
  constexpr std::size_t kRuns = 10000;
  std::vector<std::vector<TaskState>> states(kRuns, s.shape.states);
  if (mixed) {
    IncrementalPlanner p(s.dag);
    std::vector<Transition> plan;
    std::vector<std::vector<TaskState>> after(13);
    p.reset(s.snapshot());
    for (int tick = 0; tick < 13; ++tick) {
      for (std::uint32_t i = 0; i < s.dag.size(); ++i) after[static_cast<std::size_t>(tick)].push_back(p.state(i));
      simTick(p, plan);
    }
    for (std::size_t r = 0; r < kRuns; ++r) states[r] = after[r % 13];
  }
  std::vector<planning::RunSnapshot> snaps(kRuns, s.snapshot());
  for (std::size_t r = 0; r < kRuns; ++r) snaps[r].states = states[r];
  std::vector<Transition> out;
  out.reserve(s.dag.size());
  GoComparison cmp(state, go_ns::kTickE10k, kRuns * s.dag.size());
  cmp.start();
  for (auto _ : state) {
    std::size_t moves = 0;
    for (const planning::RunSnapshot& snap : snaps) {
      planning::planRun(snap, out);
      moves += out.size() + planning::finalizeRun(snap).done;
    }
    benchmark::DoNotOptimize(moves);
  }
  cmp.finish();
}

// A fan-out of 20,000 waiting for a full executor: the root succeeded, 64 children run, the rest
// wait in `scheduled`. One op plans the run as a tick does when `free` slots have just freed up:
// `quota` offers only those (what the engine asks when every task goes to one executor), else
// every waiting task is offered (what it asked before).
void waitFanout20k(benchmark::State& state, bool quota) {
  constexpr std::uint32_t kChildren = 20000;
  constexpr std::size_t kFree = 4;
  std::vector<TaskSpec> specs(kChildren + 1);
  specs[0].task_id = "root";
  for (std::uint32_t i = 1; i <= kChildren; ++i) {
    specs[i].task_id = "c" + std::to_string(i);
    specs[i].depends_on = {"root"};
  }
  auto dag = planning::CompiledDag::compile(specs);
  if (!dag) die("wait/fanout20k: " + dag.status().toString());
  std::vector<TaskState> states(dag->size(), TaskState::kScheduled);
  states[*dag->find("root")] = TaskState::kSuccess;
  for (std::uint32_t i = 1; i <= 64; ++i) states[*dag->find("c" + std::to_string(i))] = TaskState::kRunning;
  planning::RunSnapshot snap;  // tries, ends and delays left empty: try 1 of 1, none ended, no delay
  snap.dag = &*dag;
  snap.states = states;
  IncrementalPlanner p(*dag);
  p.reset(snap);
  const Timestamp now{std::chrono::seconds{1'800'000'000}};
  std::vector<Transition> out;
  out.reserve(dag->size());
  std::size_t offered = 0, left = 0;
  for (auto _ : state) {
    left = quota ? p.plan(now, out, kFree) : (p.plan(now, out), 0);
    offered = out.size();
    benchmark::DoNotOptimize(out.data());
  }
  check(offered + left == kChildren - 64 && offered == (quota ? kFree : kChildren - 64),
        "wait/fanout20k: " + std::to_string(offered) + " offered, " + std::to_string(left) + " left out");
  state.counters["offered"] = static_cast<double>(offered);
}

void ruleEval3(benchmark::State& state) {
  const TaskState ups[3] = {TaskState::kSuccess, TaskState::kSuccess, TaskState::kRunning};
  GoComparison cmp(state, go_ns::kRuleEval3, 0);
  cmp.start();
  for (auto _ : state) {
    benchmark::DoNotOptimize(ups);
    auto d = planning::evaluateTriggerRule(TriggerRule::kAllSuccess, ups);
    benchmark::DoNotOptimize(d);
  }
  cmp.finish();
}

}  // namespace

void registerPlannerBenchmarks() {
  Verified& v = shapes();
  benchmark::RegisterBenchmark("plan_finalize/a", planFinalize, v.a.get(), go_ns::kPlanFinalizeA);
  benchmark::RegisterBenchmark("plan_finalize/b", planFinalize, v.b.get(), go_ns::kPlanFinalizeB);
  benchmark::RegisterBenchmark("plan_finalize/c", planFinalize, v.c.get(), go_ns::kPlanFinalizeC);
  benchmark::RegisterBenchmark("plan_finalize/d", planFinalize, v.d.get(), go_ns::kPlanFinalizeD);
  benchmark::RegisterBenchmark("plan_finalize/e", planFinalize, v.e.get(), go_ns::kPlanFinalizeE);
  benchmark::RegisterBenchmark("launch/f", launchF);
  benchmark::RegisterBenchmark("sim/d", simD)->Unit(benchmark::kMicrosecond);
  benchmark::RegisterBenchmark("sim/e1000", simE1000)->Unit(benchmark::kMicrosecond);
  benchmark::RegisterBenchmark("tick/e10k", tickE10k, false)->Unit(benchmark::kMicrosecond);
  benchmark::RegisterBenchmark("tick/e10k_mixed", tickE10k, true)->Unit(benchmark::kMicrosecond);
  benchmark::RegisterBenchmark("wait/fanout20k", waitFanout20k, true)->Unit(benchmark::kMicrosecond);
  benchmark::RegisterBenchmark("wait/fanout20k_all", waitFanout20k, false)->Unit(benchmark::kMicrosecond);
  benchmark::RegisterBenchmark("rule/eval3", ruleEval3);
}

}  // namespace leoflow::bench
