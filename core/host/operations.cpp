#include "host/operations.h"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <deque>
#include <limits>
#include <map>
#include <set>
#include <span>

#include <fmt/format.h>

#include "host/dag_file.h"
#include "host/dag_spec_cache.h"
#include "host/exit_codes.h"
#include "host/json_fields.h"
#include "host/runs_command.h"
#include "host/store_session.h"
#include "schedule/cron.h"
#include "schedule/due_slots.h"
#include "schedule/iso_time.h"

namespace leoflow::host {
namespace {

using ojson = nlohmann::ordered_json;

// Backfill refuses ranges beyond this many slots: a typo in a year should not queue a million runs.
constexpr std::size_t kMaxBackfillSlots = 10'000;

ojson timeOrNull(const std::optional<Timestamp>& t) {
  return t ? ojson(schedule::formatIsoSeconds(*t)) : ojson(nullptr);
}

// The slot the scheduler creates next for a DAG (what `dags list` shows as next_slot): the oldest
// slot due now, else the schedule's next slot after now (and after the last one it created); null
// for manual and @continuous DAGs, a bad expression, or a schedule past its end date.
std::optional<Timestamp> nextSlot(const DagSpec& spec, const std::optional<ScheduledDag>& scheduled, Timestamp now) {
  if (spec.schedule.empty()) return std::nullopt;
  auto parsed = schedule::Schedule::parse(spec.schedule, spec.schedule_timezone);
  if (!parsed) return std::nullopt;
  const schedule::Schedule& sched = *parsed;
  std::optional<Timestamp> last = scheduled ? scheduled->last_logical : std::nullopt;
  if (sched.kind() == schedule::ScheduleKind::kOnce) {
    if (scheduled && scheduled->ever_run) return std::nullopt;
    return spec.start_date && *spec.start_date > now ? *spec.start_date : now;
  }
  if (!sched.hasSlots()) return std::nullopt;
  schedule::DueQuery q;
  q.now = now;
  q.catchup = spec.catchup;
  q.last_logical = last;
  q.start_date = spec.start_date;
  q.end_date = spec.end_date;
  q.max_slots = 1;
  std::vector<Timestamp> due;
  schedule::dueSlots(sched, q, due);
  if (!due.empty()) return due.front();
  Timestamp after = now;
  if (last && *last > after) after = *last;
  if (spec.start_date && *spec.start_date > after) after = *spec.start_date - std::chrono::microseconds(1);
  auto next = sched.next(after);
  if (next && spec.end_date && *next > *spec.end_date) return std::nullopt;
  return next;
}

ojson dagJson(const DagSummary& d, const DagSpec* spec, const std::optional<ScheduledDag>& scheduled,
              const std::optional<DagRunState>& last_run_state, Timestamp now) {
  ojson j = ojson::object();
  j["dag_id"] = d.dag_id;
  j["schedule"] = d.schedule.empty() ? ojson(nullptr) : ojson(d.schedule);
  j["paused"] = d.paused;
  j["version"] = d.version;
  j["tenant"] = d.tenant;
  j["next_slot"] = spec ? timeOrNull(nextSlot(*spec, scheduled, now)) : ojson(nullptr);
  j["last_run_state"] = last_run_state ? ojson(std::string(toString(*last_run_state))) : ojson(nullptr);
  return j;
}

std::optional<DagRunState> lastRunState(Store& store, const std::string& dag_id) {
  RunFilter f;
  f.dag_id = dag_id;
  f.limit = 1;
  auto runs = store.listRuns(f);
  if (!runs) failWith(runs.status(), "listing runs of dag " + dag_id);
  if (runs->empty()) return std::nullopt;
  return runs->front().state;
}

std::map<std::string, ScheduledDag> scheduledByDag(Store& store) {
  std::map<std::string, ScheduledDag> out;
  auto dags = store.scheduledDags();
  if (!dags) failWith(dags.status(), "listing scheduled dags");
  for (ScheduledDag& d : *dags) {
    std::string id = d.dag_id;
    out.emplace(std::move(id), std::move(d));
  }
  return out;
}

// Every task downstream of `roots`, transitively, with the roots, in the DAG's order.
std::vector<std::string> withDownstream(const DagSpec& spec, const std::vector<std::string>& roots) {
  std::map<std::string, std::vector<std::string>> children;
  for (const TaskSpec& t : spec.tasks) {
    for (const std::string& up : t.depends_on) children[up].push_back(t.task_id);
  }
  std::set<std::string> seen(roots.begin(), roots.end());
  std::deque<std::string> todo(roots.begin(), roots.end());
  while (!todo.empty()) {
    const std::string id = todo.front();
    todo.pop_front();
    for (const std::string& c : children[id]) {
      if (seen.insert(c).second) todo.push_back(c);
    }
  }
  std::vector<std::string> out;
  for (const TaskSpec& t : spec.tasks) {
    if (seen.count(t.task_id) != 0) out.push_back(t.task_id);
  }
  return out;
}

std::string note(const std::string& what, const std::string& actor) {
  return what + " by " + (actor.empty() ? defaultActor() : actor);
}

}  // namespace

std::string defaultActor() {
  const char* user = std::getenv("USER");
  char host[256] = {};
  if (gethostname(host, sizeof(host) - 1) != 0) host[0] = '\0';
  return fmt::format("{}@{}", user != nullptr && *user != '\0' ? user : "unknown", host[0] != '\0' ? host : "unknown");
}

RunKey resolveRun(Store& store, const std::string& run_id, const std::optional<std::string>& dag_id) {
  if (dag_id) return RunKey{*dag_id, run_id};
  auto found = store.findRuns(run_id);
  if (!found) failWith(found.status(), "finding run " + run_id);
  if (found->empty()) throw notFound("unknown run " + quote(run_id) + " (leoflow runs list shows the runs)");
  if (found->size() > 1) {
    std::vector<std::string> dags;
    for (const RunKey& k : *found) dags.push_back(k.dag_id);
    throw badInput(fmt::format("run id {} exists in several dags ({}); say which with --dag", quote(run_id),
                               fmt::join(dags, ", ")));
  }
  return (*found)[0];
}

TaskOrder TaskOrder::of(Store& store, const std::string& dag_id, std::int64_t version) {
  TaskOrder order;
  order.version_ = version;
  auto stored = store.getDag(dag_id, version);
  if (!stored) return order;
  auto spec = decodeStoredDag(*stored);
  if (!spec) return order;
  return of(**spec, version);
}

TaskOrder TaskOrder::of(const DagSpec& spec, std::int64_t version) {
  TaskOrder order;
  order.version_ = version;
  order.position_.reserve(spec.tasks.size());
  for (std::size_t i = 0; i < spec.tasks.size(); ++i) order.position_.emplace(spec.tasks[i].task_id, i);
  return order;
}

void TaskOrder::apply(RunRecord& run) const {
  if (position_.empty()) return;
  // Each instance's position looked up once, then sorted as (position, index in the store's
  // order) pairs: stable, and no lookup inside the comparisons.
  std::vector<std::pair<std::size_t, std::size_t>> keyed;
  keyed.reserve(run.tasks.size());
  for (std::size_t i = 0; i < run.tasks.size(); ++i) {
    auto it = position_.find(run.tasks[i].task_id);
    keyed.emplace_back(it == position_.end() ? position_.size() : it->second, i);
  }
  std::sort(keyed.begin(), keyed.end());
  std::vector<TaskInstance> ordered;
  ordered.reserve(run.tasks.size());
  for (const auto& [position, i] : keyed) ordered.push_back(std::move(run.tasks[i]));
  run.tasks = std::move(ordered);
}

void orderTasks(Store& store, RunRecord& run) {
  TaskOrder::of(store, run.key.dag_id, run.dag_version).apply(run);
}

RunRecord loadRun(Store& store, const RunKey& key) {
  auto loaded = store.loadRuns(std::span<const RunKey>(&key, 1));
  if (loaded.empty()) failWith(internalError("no answer"), "loading run " + key.run_id);
  if (!loaded[0]) {
    if (loaded[0].status().code() == StatusCode::kNotFound) {
      throw notFound(fmt::format("unknown run {} of dag {}", quote(key.run_id), quote(key.dag_id)));
    }
    failWith(loaded[0].status(), "loading run " + key.run_id);
  }
  RunRecord run = std::move(loaded[0]).value();
  orderTasks(store, run);
  return run;
}

std::vector<RunRecord> loadRunsOrdered(Store& store, std::span<const RunKey> keys) {
  std::vector<RunRecord> out;
  out.reserve(keys.size());
  std::map<std::int64_t, TaskOrder> orders;  // each version read once
  for (std::size_t first = 0; first < keys.size(); first += kClearSlice) {
    const auto slice = keys.subspan(first, std::min(kClearSlice, keys.size() - first));
    std::vector<Result<RunRecord>> loaded = store.loadRuns(slice);
    if (loaded.size() != slice.size()) failWith(internalError("the store answered a part"), "loading runs");
    for (std::size_t i = 0; i < slice.size(); ++i) {
      if (!loaded[i]) {
        if (loaded[i].status().code() == StatusCode::kNotFound) {
          throw notFound(fmt::format("unknown run {} of dag {}", quote(slice[i].run_id), quote(slice[i].dag_id)));
        }
        failWith(loaded[i].status(), "loading run " + slice[i].run_id);
      }
      RunRecord run = std::move(loaded[i]).value();
      auto order = orders.find(run.dag_version);
      if (order == orders.end()) {
        order = orders.emplace(run.dag_version, TaskOrder::of(store, run.key.dag_id, run.dag_version)).first;
      }
      order->second.apply(run);
      out.push_back(std::move(run));
    }
  }
  return out;
}

LoadedDag loadDag(Store& store, const std::string& dag_id, std::optional<std::int64_t> version) {
  auto stored = store.getDag(dag_id, version);
  if (!stored) {
    if (stored.status().code() == StatusCode::kNotFound) {
      throw notFound("unknown dag " + quote(dag_id) + " (leoflow dags list shows the registered ones)");
    }
    failWith(stored.status(), "reading dag " + dag_id);
  }
  auto spec = decodeStoredDag(*stored);
  if (!spec) failWith(spec.status(), fmt::format("reading dag {} version {}", dag_id, stored->version));
  return {std::move(stored).value(), std::move(spec).value()};
}

std::shared_ptr<const DagSpec> loadDagSpec(Store& store, const std::string& dag_id,
                                           std::optional<std::int64_t> version) {
  return loadDag(store, dag_id, version).spec;
}

// --- Reads -----------------------------------------------------------------------------------------

ojson listDagsJson(Store& store, Timestamp now, const std::optional<std::string>& tenant) {
  auto dags = store.listDags();
  if (!dags) failWith(dags.status(), "listing dags");
  const auto scheduled = scheduledByDag(store);
  ojson a = ojson::array();
  for (const DagSummary& d : *dags) {
    if (tenant && d.tenant != *tenant) continue;
    std::shared_ptr<const DagSpec> spec;
    if (auto stored = store.getDag(d.dag_id, d.version); stored) {
      if (auto decoded = decodeStoredDag(*stored); decoded) spec = std::move(decoded).value();
    }
    auto s = scheduled.find(d.dag_id);
    a.push_back(dagJson(d, spec.get(), s == scheduled.end() ? std::nullopt : std::optional(s->second),
                        lastRunState(store, d.dag_id), now));
  }
  return a;
}

ojson showDagJson(Store& store, const std::string& dag_id, Timestamp now) {
  const LoadedDag dag = loadDag(store, dag_id);
  const DagSpec* spec = dag.spec.get();
  const DagSummary summary{dag.stored.dag_id, spec->schedule, dag.stored.paused, dag.stored.version, spec->tenant};
  const auto scheduled = scheduledByDag(store);
  auto s = scheduled.find(dag_id);
  ojson j = dagJson(summary, spec, s == scheduled.end() ? std::nullopt : std::optional(s->second),
                    lastRunState(store, dag_id), now);
  ojson tasks = ojson::array();
  for (const TaskSpec& t : spec->tasks) {
    ojson tj = ojson::object();
    tj["task_id"] = t.task_id;
    tj["type"] = t.type;
    tj["depends_on"] = t.depends_on;
    tj["trigger_rule"] = std::string(toString(t.trigger_rule));
    tasks.push_back(std::move(tj));
  }
  j["tasks"] = std::move(tasks);
  return j;
}

std::vector<RunRecord> queryRuns(Store& store, const RunQuery& q) {
  RunFilter filter;
  filter.dag_id = q.dag_id;
  filter.tenant = q.tenant;
  filter.logical_since = q.since;
  filter.limit = q.limit;
  if (q.state) {
    auto parsed = parseDagRunState(*q.state);
    if (!parsed) throw badInput("unknown run state " + quote(*q.state) + " (queued, running, success, failed)");
    filter.state = parsed;
  }
  if (q.dag_id) (void)loadDagSpec(store, *q.dag_id);  // an unknown DAG is an error, not an empty list
  auto runs = store.listRuns(filter);
  if (!runs) failWith(runs.status(), "listing runs");
  return std::move(runs).value();
}

// --- Changes -----------------------------------------------------------------------------------------

RunKey triggerRun(Store& store, Timestamp now, const TriggerRequest& r) {
  return triggerRun(store, now, r, loadDag(store, r.dag_id));
}

RunKey triggerRun(Store& store, Timestamp now, const TriggerRequest& r, const LoadedDag& dag) {
  // §8.5: manual__<now with microseconds>, unique per DAG.
  const std::string run_id = r.run_id.empty() ? "manual__" + schedule::formatIsoMicros(now) : r.run_id;
  checkManualRunId(run_id);
  NewRun run{{r.dag_id, run_id}, dag.stored.version, RunTrigger::kManual, r.logical_date.value_or(now), r.conf_json, now,
             dag.spec->tenant};
  Status s = store.createRun(std::nullopt, run);
  if (!s.isOk()) {
    if (s.code() == StatusCode::kAlreadyExists) {
      throw conflict("run id " + quote(run_id) + " already exists for dag " + quote(r.dag_id));
    }
    failWith(s, "triggering dag " + r.dag_id);
  }
  return run.key;
}

namespace {

// The listed tasks of `options` exist in `spec` (the version `run`'s key names), else kNotFound.
void checkListedTasks(const DagSpec& spec, std::int64_t version, const RunKey& run, const ClearOptions& options) {
  std::set<std::string_view> known;
  for (const TaskSpec& t : spec.tasks) known.insert(t.task_id);
  for (const std::string& id : options.task_ids) {
    if (known.count(id) == 0) {
      throw notFound(fmt::format("dag {} (version {}) has no task {}", quote(run.dag_id), version, quote(id)));
    }
  }
}

// The clearTasks request of `runs clear` for `run`, whose version `spec` is (listed tasks checked).
ClearRequest clearRequestFor(const RunRecord& run, const DagSpec& spec, Timestamp now, const ClearOptions& o) {
  std::map<std::string_view, const TaskSpec*> by_id;
  for (const TaskSpec& t : spec.tasks) by_id[t.task_id] = &t;
  std::vector<std::string> ids;
  if (o.task_ids.empty()) {
    // Every task the run has (all of its version's, unless the run was seeded otherwise).
    std::set<std::string_view> present;
    for (const TaskInstance& ti : run.tasks) present.insert(ti.task_id);
    for (const TaskSpec& t : spec.tasks) {
      if (present.count(t.task_id) != 0) ids.push_back(t.task_id);
    }
  } else {
    ids = o.downstream ? withDownstream(spec, o.task_ids) : o.task_ids;
  }
  ClearRequest request;
  request.run = run.key;
  request.failed_only = o.failed_only;
  request.note = note("cleared", o.actor);
  request.at = now;
  request.tasks.reserve(ids.size());
  for (const std::string& id : ids) request.tasks.push_back({id, by_id.at(id)->retries});
  return request;
}

}  // namespace

OperatorOutcome clearRun(Store& store, Timestamp now, const RunKey& key, const ClearOptions& o) {
  const RunRecord run = loadRun(store, key);
  const std::shared_ptr<const DagSpec> spec = loadDagSpec(store, key.dag_id, run.dag_version);
  checkListedTasks(*spec, run.dag_version, key, o);
  auto outcome = store.clearTasks(clearRequestFor(run, *spec, now, o));
  if (!outcome) failWith(outcome.status(), "clearing run " + key.run_id);
  return std::move(outcome).value();
}

std::vector<ClearedRun> clearRange(Store& store, Timestamp now, const std::string& dag_id, Timestamp from,
                                   Timestamp to, const ClearOptions& options, const SliceProgress& progress) {
  if (from > to) throw badInput("--from is after --to");
  (void)loadDagSpec(store, dag_id);
  RunFilter filter;
  filter.dag_id = dag_id;
  filter.logical_since = from;
  filter.logical_until = to;
  filter.limit = 100'000;
  auto runs = store.listRuns(filter);
  if (!runs) failWith(runs.status(), "listing runs of dag " + dag_id);
  std::vector<RunRecord> listed = std::move(runs).value();
  std::erase_if(listed, [](const RunRecord& r) { return r.state == DagRunState::kQueued; });  // nothing to clear yet
  std::sort(listed.begin(), listed.end(),
            [](const RunRecord& a, const RunRecord& b) { return a.logical_date < b.logical_date; });

  // Each version the runs have, read and decoded once, and the listed tasks checked against every
  // one of them before anything is cleared: a task missing from an old version changes nothing.
  std::map<std::int64_t, std::shared_ptr<const DagSpec>> specs;
  for (const RunRecord& r : listed) {
    auto [it, added] = specs.try_emplace(r.dag_version);
    if (!added) continue;
    it->second = loadDagSpec(store, dag_id, r.dag_version);
    checkListedTasks(*it->second, r.dag_version, r.key, options);
  }

  std::vector<ClearedRun> out;
  out.reserve(listed.size());
  for (std::size_t first = 0, end = 0; first < listed.size(); first = end) {
    // kClearSlice runs, fewer when their versions hold more than kClearSliceTasks tasks together:
    // a slice's runs are read whole and sent whole, and a run of a large DAG is large.
    std::size_t tasks = 0;
    for (end = first; end < listed.size() && end - first < kClearSlice; ++end) {
      tasks += specs.at(listed[end].dag_version)->tasks.size();
      if (end > first && tasks > kClearSliceTasks) break;
    }
    std::vector<RunKey> keys;
    keys.reserve(end - first);
    for (std::size_t i = first; i < end; ++i) keys.push_back(listed[i].key);
    std::vector<Result<RunRecord>> loaded = store.loadRuns(keys);
    if (loaded.size() != keys.size()) {
      failWith(internalError(fmt::format("the store answered {} of {} runs", loaded.size(), keys.size())),
               "loading runs of dag " + dag_id);
    }
    std::vector<ClearRequest> slice;
    slice.reserve(keys.size());
    for (std::size_t i = 0; i < keys.size(); ++i) {
      if (!loaded[i]) failWith(loaded[i].status(), "loading run " + keys[i].run_id);
      const RunRecord& run = *loaded[i];
      auto spec = specs.find(run.dag_version);  // the listing's version, unless the run changed since
      if (spec == specs.end()) {
        spec = specs.emplace(run.dag_version, loadDagSpec(store, dag_id, run.dag_version)).first;
        checkListedTasks(*spec->second, run.dag_version, run.key, options);
      }
      slice.push_back(clearRequestFor(run, *spec->second, now, options));
    }
    std::vector<Result<OperatorOutcome>> outcomes = store.clearRuns(slice);
    if (outcomes.size() != slice.size()) {
      failWith(internalError(fmt::format("the store answered {} of {} clears", outcomes.size(), slice.size())),
               "clearing runs of dag " + dag_id);
    }
    // Each clear stands on its own: the runs of the slice after a failed one may be cleared too.
    std::optional<std::size_t> failed;
    for (std::size_t i = 0; i < slice.size(); ++i) {
      if (outcomes[i]) {
        out.push_back({slice[i].run, std::move(outcomes[i]).value()});
      } else if (!failed) {
        failed = i;
      }
    }
    if (failed) {
      failWith(outcomes[*failed].status(),
               fmt::format("clearing run {} ({} other run{} of the range cleared, {} not reached)",
                           slice[*failed].run.run_id, out.size(), out.size() == 1 ? "" : "s", listed.size() - end));
    }
    if (progress) progress(end, listed.size());
  }
  return out;
}

OperatorOutcome markTask(Store& store, Timestamp now, const RunKey& run, const std::string& task_id,
                         const std::string& state, const std::string& actor) {
  auto to = parseTaskState(state);
  if (!to || (*to != TaskState::kSuccess && *to != TaskState::kFailed && *to != TaskState::kSkipped)) {
    throw badInput("--state: a task is marked success, failed or skipped, not " + quote(state));
  }
  MarkTaskRequest r{run, task_id, *to, note("marked " + state, actor), now};
  auto outcome = store.markTask(r);
  if (!outcome) failWith(outcome.status(), fmt::format("marking task {} of run {}", task_id, run.run_id));
  return std::move(outcome).value();
}

OperatorOutcome markRun(Store& store, Timestamp now, const RunKey& run, const std::string& state,
                        const std::string& actor) {
  auto to = parseDagRunState(state);
  if (!to || (*to != DagRunState::kSuccess && *to != DagRunState::kFailed)) {
    throw badInput("--state: a run is marked success or failed, not " + quote(state));
  }
  MarkRunRequest r{run, *to, note("marked " + state, actor), now};
  auto outcome = store.markRun(r);
  if (!outcome) failWith(outcome.status(), "marking run " + run.run_id);
  return std::move(outcome).value();
}

OperatorOutcome cancelRun(Store& store, Timestamp now, const RunKey& run, const std::string& actor) {
  CancelRunRequest r{run, note("cancelled", actor), now};
  auto outcome = store.cancelRun(r);
  if (!outcome) failWith(outcome.status(), "cancelling run " + run.run_id);
  return std::move(outcome).value();
}

namespace {

/// The DAG's queued and running runs, however many runs it has: one listing per active state, each
/// returning only those (the stores read the rest in pages).
std::vector<RunKey> activeRunsOf(Store& store, const std::string& dag_id) {
  std::vector<RunKey> active;
  for (DagRunState state : {DagRunState::kQueued, DagRunState::kRunning}) {
    RunFilter filter;
    filter.dag_id = dag_id;
    filter.state = state;
    filter.limit = std::numeric_limits<std::size_t>::max();
    auto runs = store.listRuns(filter);
    if (!runs) failWith(runs.status(), "listing runs of dag " + dag_id);
    for (RunRecord& r : *runs) active.push_back(std::move(r.key));
  }
  return active;
}

}  // namespace

std::vector<std::string> deleteDag(Store& store, Timestamp now, const std::string& dag_id, bool force,
                                   const std::string& actor, const SliceProgress& progress) {
  (void)loadDagSpec(store, dag_id);
  std::vector<std::string> cancelled;
  // A scheduler may create a run between our cancel and the delete: try a few rounds.
  for (int round = 0; round < 5; ++round) {
    const std::vector<RunKey> active = activeRunsOf(store, dag_id);
    if (!active.empty() && !force) {
      throw conflict(fmt::format("dag {} has {} active run{} ({}{}); wait for them, cancel them, or delete with --force",
                                 quote(dag_id), active.size(), active.size() == 1 ? "" : "s", active.front().run_id,
                                 active.size() > 1 ? ", ..." : ""));
    }
    const std::string why = note("cancelled", actor) + " (dag deleted)";
    for (std::size_t first = 0; first < active.size(); first += kCancelSlice) {
      const std::size_t end = std::min(active.size(), first + kCancelSlice);
      std::vector<CancelRunRequest> slice;
      slice.reserve(end - first);
      for (std::size_t i = first; i < end; ++i) slice.push_back(CancelRunRequest{active[i], why, now});
      const std::vector<Result<OperatorOutcome>> outcomes = store.cancelRuns(slice);
      if (outcomes.size() != slice.size()) {
        failWith(internalError(fmt::format("the store answered {} of {} cancels", outcomes.size(), slice.size())),
                 "cancelling runs of dag " + dag_id);
      }
      // Every run the store cancelled is named before a failure is reported: each cancel stands on
      // its own, so those after a failed one in the slice may have been cancelled too.
      std::optional<std::size_t> failed;
      for (std::size_t i = 0; i < slice.size(); ++i) {
        if (outcomes[i]) {
          cancelled.push_back(slice[i].run.run_id);
        } else if (outcomes[i].status().code() != StatusCode::kConflict && !failed) {
          failed = i;  // conflict: it just finished
        }
      }
      if (failed) failWith(outcomes[*failed].status(), "cancelling run " + slice[*failed].run.run_id);
      if (progress) progress(end, active.size());
    }
    Status s = store.deleteDag(dag_id);
    if (s.isOk()) return cancelled;
    if (s.code() != StatusCode::kConflict || !force) failWith(s, "deleting dag " + dag_id);
  }
  throw conflict("dag " + quote(dag_id) + " keeps getting new runs; pause it first (leoflow dags pause " + dag_id + ")");
}

BackfillResult backfill(Store& store, Timestamp now, const std::string& dag_id, Timestamp from, Timestamp to,
                        const SliceProgress& progress) {
  if (from > to) throw badInput("--from is after --to");
  const LoadedDag dag = loadDag(store, dag_id);
  const DagSpec* spec = dag.spec.get();
  auto parsed = schedule::Schedule::parse(spec->schedule, spec->schedule_timezone);
  if (!parsed || !parsed->hasSlots()) {
    throw badInput(fmt::format("dag {} has {}; backfill needs a cron or @every schedule (trigger single runs with "
                               "leoflow runs trigger {} --logical-date T)",
                               quote(dag_id), spec->schedule.empty() ? "no schedule" : "schedule " + spec->schedule,
                               dag_id));
  }
  std::vector<Timestamp> slots;
  parsed->appendSlots(from - std::chrono::microseconds(1), to, kMaxBackfillSlots + 1, slots);
  if (slots.size() > kMaxBackfillSlots) {
    throw badInput(fmt::format("the range holds more than {} slots of {}; backfill a narrower range", kMaxBackfillSlots,
                               spec->schedule));
  }
  BackfillResult result;
  for (std::size_t first = 0; first < slots.size(); first += kBackfillSlice) {
    const std::size_t end = std::min(slots.size(), first + kBackfillSlice);
    std::vector<NewRun> slice;
    slice.reserve(end - first);
    for (std::size_t i = first; i < end; ++i) {
      slice.push_back(NewRun{{dag_id, "backfill__" + schedule::formatIsoSeconds(slots[i])}, dag.stored.version,
                             RunTrigger::kBackfill, slots[i], "", now, spec->tenant});
    }
    const std::vector<Status> answers = store.createRuns(std::nullopt, slice);
    if (answers.size() != slice.size()) {
      failWith(internalError(fmt::format("the store answered {} of {} runs", answers.size(), slice.size())),
               "creating backfill runs of dag " + dag_id);
    }
    // Each run stands on its own: those of the slice after a failed one may have been created too.
    std::optional<std::size_t> failed;
    for (std::size_t i = 0; i < slice.size(); ++i) {
      if (answers[i].isOk()) {
        result.created.push_back(slice[i].key);
      } else if (answers[i].code() == StatusCode::kAlreadyExists) {
        result.already_taken.push_back(slice[i].logical_date);
      } else if (!failed) {
        failed = i;
      }
    }
    if (failed) {
      failWith(answers[*failed], fmt::format("creating backfill run {} ({} other run{} created, {} slot{} not reached)",
                                             slice[*failed].key.run_id, result.created.size(),
                                             result.created.size() == 1 ? "" : "s", slots.size() - end,
                                             slots.size() - end == 1 ? "" : "s"));
    }
    if (progress) progress(end, slots.size());
  }
  return result;
}

void setPaused(Store& store, const std::string& dag_id, bool paused) {
  Status s = store.setPaused(dag_id, paused);
  if (!s.isOk()) {
    if (s.code() == StatusCode::kNotFound) throw notFound("unknown dag " + quote(dag_id));
    failWith(s, std::string(paused ? "pausing" : "unpausing") + " dag " + dag_id);
  }
}

// --- Logs ------------------------------------------------------------------------------------------

TaskLog readTaskLog(Store& store, const LogReadFn& read, const TaskLogRequest& r) {
  const RunRecord run = loadRun(store, r.run);
  auto it = std::find_if(run.tasks.begin(), run.tasks.end(),
                         [&](const TaskInstance& t) { return t.task_id == r.task_id; });
  if (it == run.tasks.end()) {
    throw notFound(fmt::format("run {} has no task {}{}", quote(r.run.run_id), quote(r.task_id),
                               run.tasks.empty() ? " yet (it has not started)" : ""));
  }
  const std::int32_t try_number = r.try_number.value_or(it->try_number);
  if (try_number < 1 || try_number > it->try_number) {
    throw notFound(fmt::format("task {} has no try {} (its current try is {})", quote(r.task_id), try_number,
                               it->try_number));
  }
  const bool current = try_number == it->try_number;
  if (current && !it->started_at && it->execution_id.empty()) {
    throw notFound(fmt::format("try {} of task {} has not started (state {}); no log yet", try_number,
                               quote(r.task_id), toString(it->state)));
  }
  LogQuery q;
  q.attempt = AttemptRef{r.run, r.task_id, try_number};
  q.run_uid = run.uid;
  q.execution_id = current ? it->execution_id : "";
  q.offset = r.offset;
  q.max_bytes = r.max_bytes;
  if (!read) throw notFound("no dispatcher in the config keeps logs");
  auto chunk = read(q);
  if (!chunk) failWith(chunk.status(), fmt::format("reading the log of {} try {}", r.task_id, try_number));
  TaskLog log{std::move(chunk).value(), q.attempt, it->state};
  // A past try has ended; the current one only once its instance left running/queued.
  const bool attempt_ended = !current || (it->state != TaskState::kRunning && it->state != TaskState::kQueued);
  if (!attempt_ended) log.chunk.complete = false;
  return log;
}

}  // namespace leoflow::host
