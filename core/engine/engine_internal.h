// Private to the engine_*.cpp files: what more than one of them needs (Engine::TickState, the
// steady clock in micros). Not part of the engine's interface; include engine.h instead.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <unordered_set>
#include <vector>

#include "engine/engine.h"

namespace leoflow::engine {

inline std::int64_t steadyMicros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

struct Engine::TickState {
  TickKind kind = TickKind::kFull;
  Term term = 0;
  Timestamp now{};
  std::chrono::steady_clock::time_point steady_now;
  TickReport report;
  std::size_t pool_budget = 0;
  std::vector<std::optional<std::size_t>> route_budget;  // lazily asked once per tick
  std::optional<std::size_t> inline_budget;
  // Tasks of the runs advanced this tick still waiting in `scheduled`, not yet offered capacity: a
  // task becoming ready now is queued in the same batch only with capacity beyond them.
  std::size_t waiting_scheduled = 0;
  std::map<std::string, int> active_per_dag;
  // The queued runs advanced this tick that have a max_active_runs slot of their DAG; the other queued
  // ones wait (run_slots.h).
  std::unordered_set<const CachedRun*> given_a_slot;
  std::size_t waited_paused = 0, waited_for_slot = 0;  // queued runs advanced that still wait, and why
  bool active_listed = false;   // the active runs are known: listed this tick, or the cache stands for them
  bool active_counted = false;  // active_per_dag was filled from a listing this tick
  bool listing_walked = false;  // a slice of the periodic listing was compared with the cache
  std::vector<planning::Transition> plan;
  std::vector<planning::Transition> plan_rest;  // scratch of advanceRun's partition
  std::vector<TaskTransitionWrite> writes;
  std::vector<planning::TaskIndex> write_tasks;
  std::vector<std::size_t> write_routes;
  std::vector<RunKey> finished;
};

}  // namespace leoflow::engine
