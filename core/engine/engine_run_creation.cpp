// Engine, run creation: createDueRuns, the full-tick phase that creates due cron runs within
// max_active_runs. Split from engine.cpp.
#include "engine/engine.h"

#include <set>

#include "engine/engine_internal.h"
#include "schedule/due_slots.h"
#include "schedule/iso_time.h"

namespace leoflow::engine {

// ---------------------------------------------------------------------------------------------------
// Run creation (BEHAVIOUR §3.2, §3.6 with §10 items 21-28 fixed)

int Engine::cachedActiveRuns(const std::string& dag_id) const {
  // RunKey orders by DAG first: the DAG's runs are one range of each map.
  int n = 0;
  for (auto it = runs_.lower_bound(RunKey{dag_id, ""}); it != runs_.end() && it->first.dag_id == dag_id; ++it) ++n;
  for (auto it = broken_runs_.lower_bound(RunKey{dag_id, ""}); it != broken_runs_.end() && it->first.dag_id == dag_id;
       ++it) {
    ++n;
  }
  return n;
}

void Engine::createDueRuns(TickState& t) {
  auto dags = store_.scheduledDags();
  if (!dags) {
    log_->error("listing scheduled dags failed error={}", dags.status().toString());
    decision("scheduled_dags_list_error");
    noteStatus(t, dags.status());
    return;
  }
  std::vector<Timestamp> slots;
  for (const ScheduledDag& d : *dags) {
    if (cancelled()) return;
    try {
      const auto& parsed = schedules_.get(d.schedule, d.schedule_timezone);
      if (!parsed) {
        // Warn once per bad expression, not every tick (BEHAVIOUR §3.2 step 3).
        auto& warned = warned_schedules_[d.dag_id];
        if (warned != d.schedule) {
          warned = d.schedule;
          log_->warn("dag has an unparseable schedule; it will not run on a schedule until fixed dag_id={} "
                     "schedule=\"{}\" error={}",
                     d.dag_id, d.schedule, parsed.status().message());
        }
        continue;
      }
      warned_schedules_.erase(d.dag_id);  // fixed: a new bad expression warns again
      const schedule::Schedule& sched = *parsed;
      const int active = t.active_counted ? t.active_per_dag[d.dag_id] : cachedActiveRuns(d.dag_id);
      int created = 0;
      auto headroom = [&] { return d.max_active_runs <= 0 || active + created < d.max_active_runs; };
      auto create = [&](Timestamp logical, const std::string& run_id) -> bool {
        NewRun run{{d.dag_id, run_id}, d.version, RunTrigger::kScheduled, logical, "", t.now, d.tenant};
        Status s = store_.createRun(t.term, run);
        if (s.isOk()) {
          ++created;
          ++t.report.runs_created;
          decision("create_run");
          log_->info("run created dag_id={} run_id={} logical_date={}", d.dag_id, run_id,
                     schedule::formatIsoSeconds(logical));
          return true;
        }
        // Another leader or tick made it, or a backfill or --logical-date run holds the slot: either
        // way the slot is taken and catch-up goes on with the next.
        if (s.code() == StatusCode::kAlreadyExists) return true;
        log_->error("creating scheduled run failed dag_id={} run_id={} error={}", d.dag_id, run_id, s.toString());
        decision("create_run_error");
        noteStatus(t, s);
        return s.code() != StatusCode::kFenced;
      };

      if (sched.kind() == schedule::ScheduleKind::kContinuous) {
        // The engine starts a @continuous run whenever none is active (ARCHITECTURE §8.4).
        if (active == 0 && (!d.end_date || t.now <= *d.end_date) && (!d.start_date || t.now >= *d.start_date)) {
          create(t.now, "scheduled__" + schedule::formatIsoMicros(t.now));
        }
        continue;
      }
      schedule::DueQuery q;
      q.now = t.now;
      q.catchup = d.catchup;
      q.last_logical = d.last_logical;
      q.start_date = d.start_date;
      q.end_date = d.end_date;
      schedule::dueSlots(sched, q, slots);
      for (Timestamp slot : slots) {
        // BEHAVIOUR §3.6: @once ignores max_active_runs; other slots stop at the cap, and are
        // created on a later tick (catch-up fills them in; without it the latest slot wins).
        if (sched.kind() != schedule::ScheduleKind::kOnce && !headroom()) {
          decision("max_active_runs_cap");
          log_->debug("skipping due run; dag is at max_active_runs cap dag_id={} max_active_runs={}", d.dag_id,
                      d.max_active_runs);
          break;
        }
        if (!create(slot, "scheduled__" + schedule::formatIsoSeconds(slot))) break;
      }
    } catch (const std::exception& e) {
      log_->error("creating runs for dag failed dag_id={} error={}", d.dag_id, e.what());
      decision("create_run_error");
      ++t.report.errors;
    }
  }
  // Caches follow the DAGs that have schedules now: a deleted DAG or an edited expression goes.
  std::set<std::string> scheduled;
  for (const ScheduledDag& d : *dags) scheduled.insert(d.dag_id);
  std::erase_if(warned_schedules_, [&](const auto& kv) { return scheduled.count(kv.first) == 0; });
  schedules_.sweepUnused();
}

}  // namespace leoflow::engine
