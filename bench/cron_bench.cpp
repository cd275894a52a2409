// Cron benchmarks (SHAPES.md, last two rows of the Go table):
//   cron/next        the next slot of `*/5 * * * *` after a moving instant
//   cron/catchup100  the due slots of `*/5 * * * *` with catch-up, 100 slots behind (one dueSlots call)
// Both verify their answers before anything is timed; a mismatch aborts the run.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>

#include "go_baseline.h"
#include "schedule/cron.h"
#include "schedule/due_slots.h"
#include "schedule/iso_time.h"

namespace leoflow::bench {
namespace {

using namespace std::chrono_literals;

[[noreturn]] void die(const std::string& why) {
  std::fprintf(stderr, "planner_bench: cron verification failed: %s\n", why.c_str());
  std::exit(1);
}

Timestamp at(const char* iso) {
  const auto t = schedule::parseIsoTime(iso);
  if (!t) die(std::string("bad time ") + iso);
  return *t;
}

schedule::Schedule everyFiveMinutes() {
  auto s = schedule::Schedule::parse("*/5 * * * *");
  if (!s.isOk()) die(s.status().toString());
  return std::move(*s);
}

void cronNext(benchmark::State& state) {
  const schedule::Schedule s = everyFiveMinutes();
  const Timestamp origin = at("2026-03-01T00:02:30Z");
  if (s.next(origin) != at("2026-03-01T00:05:00Z")) die("next(00:02:30) is not 00:05");
  if (s.next(at("2026-12-31T23:59:00Z")) != at("2027-01-01T00:00:00Z")) die("next across the year");
  Timestamp t = origin;
  std::size_t steps = 0;
  GoComparison cmp(state, go_ns::kCronNext, 0);
  cmp.start();
  for (auto _ : state) {
    // A moving input (each answer plus 90 s), restarted now and then so it stays in one era.
    const auto next = s.next(t);
    benchmark::DoNotOptimize(next);
    t = *next + 90s;
    if (++steps == 100'000) {
      t = origin;
      steps = 0;
    }
  }
  cmp.finish();
}

void cronCatchup100(benchmark::State& state) {
  const schedule::Schedule s = everyFiveMinutes();
  schedule::DueQuery q;
  q.now = at("2026-03-01T12:00:00Z");
  q.catchup = true;
  q.last_logical = q.now - 100 * 5min;
  q.max_slots = 100;
  std::vector<Timestamp> out;
  out.reserve(128);
  schedule::dueSlots(s, q, out);
  if (out.size() != 100 || out.front() != at("2026-03-01T03:45:00Z") || out.back() != q.now) {
    die("catch-up gave " + std::to_string(out.size()) + " slots, not 03:45..12:00");
  }
  GoComparison cmp(state, go_ns::kCronCatchup100, 0);
  cmp.start();
  for (auto _ : state) {
    schedule::dueSlots(s, q, out);
    benchmark::DoNotOptimize(out.data());
  }
  cmp.finish();
}

}  // namespace

void registerCronBenchmarks() {
  benchmark::RegisterBenchmark("cron/next", cronNext);
  benchmark::RegisterBenchmark("cron/catchup100", cronCatchup100);
}

}  // namespace leoflow::bench
