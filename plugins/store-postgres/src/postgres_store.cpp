#include "postgres_store.h"

#include <algorithm>
#include <map>
#include <optional>
#include <set>

#include <pqxx/except>
#include <pqxx/nontransaction>
#include <pqxx/result>

#include "migrator.h"
#include "pg_errors.h"
#include "sql_params.h"

namespace leoflow::plugins::store_postgres {
namespace {

// Executor reports written together (report_batcher.h): at most this many in one transaction (each is a
// subtransaction there, and PostgreSQL keeps up to 64 of a transaction's in shared memory), and at most
// this many such transactions at once, so one batch runs its statements while another waits for its flush.
constexpr std::size_t kMaxReportBatch = 32;
constexpr int kReportBatchesInFlight = 2;

// Every statement the store runs, prepared on each session. Functions do the writes
// (migrations/002_functions.sql); reads are single statements. Times travel as microseconds.
const std::vector<PreparedStatement>& statements() {
  static const std::vector<PreparedStatement> kStatements = {
      {"ping", "SELECT 1"},
      {"claim_term", "SELECT claim_term($1::text)"},
      {"record_liveness", "SELECT record_liveness($1::bigint, $2::text, $3::bigint, $4::bigint, $5::bigint, $6::bigint)"},
      {"read_liveness", "SELECT holder, term, ts_us(last_tick), queue_depth, active_runs FROM liveness"},
      {"sync_dags",
       "SELECT out_version, out_changed FROM sync_dags($1::text[], $2::text[], $3::text[], $4::text[], "
       "$5::bigint[], $6::bigint[], $7::boolean[], $8::integer[], $9::text[])"},
      {"list_dags", "SELECT dag_id, schedule, paused, version, tenant FROM dags ORDER BY dag_id"},
      {"get_dag",
       "SELECT d.version, d.paused, v.spec_json FROM dags d LEFT JOIN dag_versions v "
       "ON v.dag_id = d.dag_id AND v.version = coalesce($2::integer, d.version) WHERE d.dag_id = $1::text"},
      {"set_paused", "SELECT set_paused($1::text, $2::boolean)"},
      {"scheduled_dags",
       "SELECT dag_id, version, schedule, schedule_timezone, ts_us(start_date), ts_us(end_date), catchup, "
       "max_active_runs, ts_us(last_scheduled_logical), ever_run, tenant FROM dags "
       "WHERE NOT paused AND schedule <> '' ORDER BY dag_id"},
      {"create_run",
       "SELECT create_run($1::bigint, $2::text, $3::text, $4::integer, $5::text, $6::bigint, $7::text, $8::bigint, "
       "$9::text)"},
      // Several runs (migrations/018_create_runs.sql): one row per run in the order given, its uid or
      // its refusal's SQLSTATE and message.
      {"create_runs",
       "SELECT out_index, uid, refused_sqlstate, refused_message FROM create_runs($1::bigint, $2::text[], $3::text[], "
       "$4::integer[], $5::text[], $6::bigint[], $7::text[], $8::bigint[], $9::text[]) ORDER BY out_index"},
      {"list_active_runs",
       "SELECT dag_id, run_id, dag_version, state, ts_us(queued_at) FROM runs "
       "WHERE state IN ('queued', 'running') ORDER BY queued_at, uid"},
      // The leader's periodic listing (SDK 3.3): keys only, in no order, off the partial index.
      {"list_active_run_keys", "SELECT dag_id, run_id FROM runs WHERE state IN ('queued', 'running')"},
      // One statement, so one snapshot of every run with all its instances: a row per run (seq NULL)
      // with the run's fields (in list_runs' columns from the third on: runFieldsAt), then a row per
      // instance with the instance's fields and its run's position, in no order (the store groups
      // them). A run that does not exist has no row. The run's fields are not repeated on each
      // instance's row, nor the rows sorted on the server: at 100,000 active runs of 10 tasks that
      // halved the server's time per 128-run chunk (4.5 → 2.0 ms), and a new leader reads every
      // active run (bench/README.md).
      {"load_runs",
       "WITH k AS (SELECT dag_id, run_id, ord "
       "FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS k(dag_id, run_id, ord)), "
       "r AS MATERIALIZED (SELECT k.ord, r.* FROM k JOIN runs r ON r.dag_id = k.dag_id AND r.run_id = k.run_id) "
       "SELECT r.ord, NULL::integer, r.dag_version, r.state, r.trigger, ts_us(r.logical_date), ts_us(r.queued_at), "
       "ts_us(r.started_at), ts_us(r.ended_at), r.conf, r.note, r.uid, r.tenant, "
       "NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL FROM r "
       "UNION ALL "
       "SELECT r.ord, ti.seq, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, "
       "ti.task_id, ti.state, ti.try_number, ti.max_tries, ts_us(ti.scheduled_at), ts_us(ti.queued_at), "
       "ts_us(ti.started_at), ts_us(ti.ended_at), ts_us(ti.last_heartbeat_at), ti.exit_code, ti.note, ti.execution_id "
       "FROM r JOIN task_instances ti ON ti.run_uid = r.uid"},
      // Some instances of one run, each by (run_uid, task_id), the primary key: one row per instance
      // found (the caller matches them by id), or one row with a NULL task when the run has none of
      // them; no row at all when the run does not exist. A function (migrations/009_task_instance_
      // lookups.sql) because a single join on `task_id = ANY($3)` let the planner, misled by the
      // statistics of a run just materialized, read the whole run for every call; the function's one
      // statement per id binds both key columns and is planned once per session.
      {"load_task_instances",
       "SELECT * FROM load_task_instances($1::text, $2::text, $3::text[])"},
      {"list_runs",
       "SELECT dag_id, run_id, dag_version, state, trigger, ts_us(logical_date), ts_us(queued_at), "
       "ts_us(started_at), ts_us(ended_at), conf, note, uid, tenant FROM runs "
       "WHERE ($1::text IS NULL OR dag_id = $1::text) AND ($2::text IS NULL OR state = $2::text) "
       "AND ($4::text IS NULL OR tenant = $4::text) "
       "AND ($5::bigint IS NULL OR logical_date >= us_ts($5::bigint)) "
       "AND ($6::bigint IS NULL OR logical_date <= us_ts($6::bigint)) "
       "ORDER BY logical_date DESC, uid DESC LIMIT $3::bigint"},
      {"find_runs", "SELECT dag_id FROM runs WHERE run_id = $1::text ORDER BY dag_id"},
      {"materialize_run",
       "SELECT materialize_run($1::bigint, $2::text, $3::text, $4::bigint, $5::text[], $6::integer[])"},
      {"set_run_state",
       "SELECT set_run_state($1::bigint, $2::text, $3::text, $4::text, $5::text, $6::bigint, $7::text)"},
      // The scheduler's task moves commit without waiting for their WAL flush (synchronous_commit off
      // for this one transaction; README "Durability"): nothing outside the store acts on a decision
      // before a write that does wait — an executor's claim (report_running) of a queued attempt, a
      // run's end (set_run_state), the next term — and WAL is flushed in order, so that write's flush
      // makes every decision before it durable too. Still fenced, guarded and atomic; a crash of the
      // server can only forget the last decisions no one has acted on yet, and the change feed's
      // reconnect makes the scheduler reload them (onResync).
      {"apply_transitions",
       "SELECT apply_transitions($1::bigint, $2::text, $3::text, $4::bigint, $5::text[], $6::text[], "
       "$7::integer[], $8::text[], $9::text[], $10::boolean[]), set_config('synchronous_commit', 'off', true)"},
      // Running runs with nothing in flight (BEHAVIOUR §4.2, §10 item 5), stalest first.
      {"list_orphans",
       "SELECT r.dag_id, r.run_id, ts_us(greatest(r.queued_at, r.started_at, a.last)) FROM runs r "
       "LEFT JOIN LATERAL (SELECT max(greatest(ti.started_at, ti.ended_at)) AS last FROM task_instances ti "
       "WHERE ti.run_uid = r.uid) a ON true "
       "WHERE r.state = 'running' AND NOT EXISTS (SELECT 1 FROM task_instances ti WHERE ti.run_uid = r.uid "
       "AND ti.state IN ('scheduled', 'queued', 'running', 'up_for_retry')) "
       "ORDER BY greatest(r.queued_at, r.started_at, a.last) ASC NULLS FIRST, r.queued_at, r.uid LIMIT $1::bigint"},
      {"reap_run", "SELECT reap_run($1::bigint, $2::text, $3::text, $4::bigint, $5::text)"},
      {"agent_lost",
       "SELECT r.dag_id, r.run_id, ti.task_id, ti.try_number, ts_us(ti.last_heartbeat_at) FROM task_instances ti "
       "JOIN runs r ON r.uid = ti.run_uid WHERE ti.state = 'running' AND ti.last_heartbeat_at IS NOT NULL "
       "ORDER BY ti.last_heartbeat_at LIMIT $1::bigint"},
      {"dispatch_lost",
       "SELECT r.dag_id, r.run_id, ti.task_id, ti.try_number, ts_us(ti.queued_at) FROM task_instances ti "
       "JOIN runs r ON r.uid = ti.run_uid WHERE ti.state = 'queued' AND ti.queued_at IS NOT NULL "
       "ORDER BY ti.queued_at LIMIT $1::bigint"},
      {"report_running", "SELECT report_running($1::text, $2::text, $3::text, $4::integer, $5::bigint, $6::text)"},
      {"report_heartbeat", "SELECT report_heartbeat($1::text, $2::text, $3::text, $4::integer, $5::bigint, $6::text)"},
      // Several reports in one transaction (report_batcher.h); a row per report, NULL when accepted.
      {"report_batch",
       "SELECT refused_sqlstate, refused_message FROM report_batch($1::boolean[], $2::text[], $3::text[], "
       "$4::text[], $5::integer[], $6::bigint[], $7::text[], $8::text[], $9::integer[], $10::text[])"},
      {"report_finished",
       "SELECT report_finished($1::text, $2::text, $3::text, $4::integer, $5::bigint, $6::text, $7::text, "
       "$8::integer, $9::text)"},
      // A person's commands (migrations/004_sdk3_operations.sql). The function runs once (it is in
      // FROM); one row per moved task in the run's order, or one row with a NULL task when none moved,
      // each carrying the run's state after the call.
      {"clear_tasks",
       "SELECT o.run_state, c.task_id FROM clear_tasks($1::text, $2::text, $3::text[], $4::integer[], $5::boolean, "
       "$6::text, $7::bigint) o LEFT JOIN LATERAL unnest(o.changed) WITH ORDINALITY AS c(task_id, ord) ON true "
       "ORDER BY c.ord"},
      {"mark_task",
       "SELECT o.run_state, c.task_id FROM mark_task($1::text, $2::text, $3::text, $4::text, $5::text, $6::bigint) o "
       "LEFT JOIN LATERAL unnest(o.changed) WITH ORDINALITY AS c(task_id, ord) ON true ORDER BY c.ord"},
      {"mark_run",
       "SELECT o.run_state, c.task_id FROM mark_run($1::text, $2::text, $3::text, $4::text, $5::bigint) o "
       "LEFT JOIN LATERAL unnest(o.changed) WITH ORDINALITY AS c(task_id, ord) ON true ORDER BY c.ord"},
      {"cancel_run",
       "SELECT o.run_state, c.task_id FROM cancel_run($1::text, $2::text, $3::text, $4::bigint) o "
       "LEFT JOIN LATERAL unnest(o.changed) WITH ORDINALITY AS c(task_id, ord) ON true ORDER BY c.ord"},
      // Several runs (migrations/016_cancel_runs.sql): one row per moved task, or one with a NULL task,
      // per run, runs in the order given; a refused run's row carries its SQLSTATE and message.
      {"clear_runs",
       "SELECT o.out_index, o.run_state, c.task_id, o.refused_sqlstate, o.refused_message "
       "FROM clear_runs($1::text[], $2::text[], $3::integer[], $4::text[], $5::integer[], $6::boolean[], $7::text[], "
       "$8::bigint[]) o "
       "LEFT JOIN LATERAL unnest(o.changed) WITH ORDINALITY AS c(task_id, ord) ON true ORDER BY o.out_index, c.ord"},
      {"cancel_runs",
       "SELECT o.out_index, o.run_state, c.task_id, o.refused_sqlstate, o.refused_message "
       "FROM cancel_runs($1::text[], $2::text[], $3::text, $4::bigint) o "
       "LEFT JOIN LATERAL unnest(o.changed) WITH ORDINALITY AS c(task_id, ord) ON true ORDER BY o.out_index, c.ord"},
      {"dag_has_active_run", "SELECT 1 FROM runs WHERE dag_id = $1::text AND state IN ('queued', 'running') LIMIT 1"},
      {"delete_dag", "SELECT delete_dag($1::text)"},
      // Finished runs a slice ($2 runs) per statement, each its own transaction: one DELETE of them all
      // can outlast statement_timeout_ms and then removes nothing, each time it is tried. The slice's
      // uids are read first (an InitPlan that stops at $2 rows) and deleted by primary key; written as
      // an ordered subquery joined to the DELETE, the planner read every finished run for each slice
      // (bench/README.md, "An operator's listing and deletion").
      // The DELETE repeats the slice's test, so a run a person reopened meanwhile is checked again and
      // kept — inside a CASE, which the planner cannot match to an index: written plainly, the test is
      // runs_finished's predicate, and with statistics from before the runs finished (the index "holds
      // one row") the DELETE reached its slice through that index, reading every finished run left to
      // keep 1,000 of them: ~0.6 s a slice at 100,000. By the primary key it reads the slice's runs only.
      {"delete_finished",
       "WITH d AS (DELETE FROM runs WHERE uid = ANY (ARRAY(SELECT uid FROM runs WHERE state IN ('success', 'failed') "
       "AND ended_at < us_ts($1::bigint) LIMIT $2::bigint)) "
       "AND CASE WHEN state IN ('success', 'failed') THEN ended_at < us_ts($1::bigint) ELSE false END "
       "RETURNING 1) SELECT count(*) FROM d"},
      {"delete_dag_finished_runs",
       "WITH d AS (DELETE FROM runs WHERE uid = ANY (ARRAY(SELECT uid FROM runs WHERE dag_id = $1::text "
       "AND state IN ('success', 'failed') LIMIT $2::bigint)) "
       "AND CASE WHEN state IN ('success', 'failed') THEN dag_id = $1::text ELSE false END "
       "RETURNING 1) SELECT count(*) FROM d"},
  };
  return kStatements;
}

// --- Reading rows ----------------------------------------------------------------------------------

// A row's fields through one field that moves along the row. `row[col]` makes a field that holds a copy
// of the whole result (two shared pointers, counted up and down atomically): over a new leader's load
// of 100,000 runs — 1,100,000 rows of 25 columns — that was a tenth of the reading threads' work.
class RowFields {
 public:
  explicit RowFields(const pqxx::row& row) : at_(row.begin()) {}
  const pqxx::field& operator[](int col) {
    at_ += col - col_;
    col_ = col;
    return at_;
  }

 private:
  pqxx::row::const_iterator at_;
  int col_ = 0;
};

// Each reads column `col` of a pqxx::row or a RowFields.
template <class Row>
std::optional<Timestamp> stampAt(Row& row, int col) {
  const pqxx::field& f = row[col];
  if (f.is_null()) return std::nullopt;
  return fromMicros(f.template as<std::int64_t>());
}

template <class Row>
std::string textAt(Row& row, int col) {
  const pqxx::field& f = row[col];
  return f.is_null() ? std::string() : std::string(f.c_str(), f.size());
}

template <class Row>
bool boolAt(Row& row, int col) {
  const pqxx::field& f = row[col];
  return !f.is_null() && f.template as<bool>();
}

// A task instance from the 11 columns load_runs and load_task_instances both select from `first`
// (task_id, state, try_number, max_tries, the five stamps, exit_code, note), and its claim.
template <class Row>
Result<TaskInstance> taskInstanceAt(Row& row, int first, int execution_col, const RunKey& run) {
  TaskInstance ti;
  ti.task_id = textAt(row, first);
  const auto state = parseTaskState(textAt(row, first + 1));
  if (!state) {
    return internalError("task \"" + ti.task_id + "\" of run \"" + run.run_id + "\" of dag \"" + run.dag_id +
                         "\" has a corrupt record");
  }
  ti.state = *state;
  ti.try_number = row[first + 2].template as<std::int32_t>();
  ti.max_tries = row[first + 3].template as<std::int32_t>();
  ti.scheduled_at = stampAt(row, first + 4);
  ti.queued_at = stampAt(row, first + 5);
  ti.started_at = stampAt(row, first + 6);
  ti.ended_at = stampAt(row, first + 7);
  ti.last_heartbeat_at = stampAt(row, first + 8);
  if (!row[first + 9].is_null()) ti.exit_code = row[first + 9].template as<int>();
  ti.note = textAt(row, first + 10);
  ti.execution_id = textAt(row, execution_col);
  return ti;
}

Status corrupt(const RunKey& key) {
  return internalError("run \"" + key.run_id + "\" of dag \"" + key.dag_id + "\" has a corrupt record");
}

/// The stored trigger: one of RunTrigger's names ("scheduled", "manual", "backfill"; the column's CHECK
/// admits no other), anything else read as manual.
RunTrigger triggerOf(const std::string& stored) { return parseRunTrigger(stored).value_or(RunTrigger::kManual); }

/// A stored tenant ('' never is, but read it as the default all the same).
std::string tenantOf(std::string stored) { return stored.empty() ? std::string("default") : stored; }

// A run's 11 fields from column 2 on (dag_version, state, trigger, logical_date, queued_at,
// started_at, ended_at, conf, note, uid, tenant), as list_runs and load_runs both select them.
template <class Row>
Result<RunRecord> runFieldsAt(Row& row, RunKey key) {
  RunRecord r;
  r.key = std::move(key);
  const auto state = parseDagRunState(textAt(row, 3));
  if (!state) return corrupt(r.key);
  r.dag_version = row[2].template as<std::int64_t>();
  r.state = *state;
  r.trigger = triggerOf(textAt(row, 4));
  r.logical_date = fromMicros(row[5].template as<std::int64_t>());
  r.queued_at = stampAt(row, 6);
  r.started_at = stampAt(row, 7);
  r.ended_at = stampAt(row, 8);
  r.conf_json = textAt(row, 9);
  r.note = textAt(row, 10);
  r.uid = row[11].template as<std::int64_t>();
  r.tenant = tenantOf(textAt(row, 12));
  return r;
}

// A list_runs row: the run's key (dag_id, run_id), then its fields.
Result<RunRecord> runFromRow(const pqxx::row& row) {
  RowFields fields(row);
  RunKey key{textAt(fields, 0), textAt(fields, 1)};
  return runFieldsAt(fields, std::move(key));
}

Status checkRunKey(const RunKey& run) {
  if (run.dag_id.empty()) return invalidArgument("a run key needs a dag id");
  if (run.run_id.empty()) return invalidArgument("a run key needs a run id");
  return Status::ok();
}

Status checkExecution(const ExecutionRef& e) {
  if (Status s = checkRunKey(e.attempt.run); !s) return s;
  if (e.attempt.task_id.empty()) return invalidArgument("an attempt needs a task id");
  if (e.execution_id.empty()) return invalidArgument("a report needs an execution id");
  return Status::ok();
}

SqlParams executionParams(const ExecutionRef& e, Timestamp at) {
  const AttemptRef& a = e.attempt;
  SqlParams p;
  p.text(a.run.dag_id).text(a.run.run_id).text(a.task_id).integer(a.try_number).stamp(at).text(e.execution_id);
  return p;
}

/// Runs one deleting statement of `store clean` or `dags delete` removes at most (with their instances
/// and history): ~10,000 rows, well within statement_timeout_ms.
constexpr std::int64_t kDeleteSlice = 1000;

/// Runs createRuns writes in one transaction (one create_runs call): what `dags backfill` sends a
/// call, so a caller's slice of 100 is one commit.
constexpr std::size_t kCreateRunsPerTransaction = 100;

std::int64_t limitOf(std::size_t limit) {
  return static_cast<std::int64_t>(std::min<std::size_t>(limit, static_cast<std::size_t>(INT64_MAX)));
}

}  // namespace

PostgresStore::PostgresStore(const Settings& settings, const PluginContext& context)
    : pool_(settings, context.logger(), statements()),
      reports_([this](const std::vector<const ExecutorReport*>& reports) { return writeReports(reports); },
               kMaxReportBatch, kReportBatchesInFlight) {
  pool_.start();
  std::unique_ptr<Session> session;
  try {
    session = pool_.openSession(settings.dsn);
    applied_at_start_ = migrateSchema(session->conn(), settings.schema, settings.channel());
  } catch (const pqxx::broken_connection& e) {
    throw UnavailableError("postgres at " + settings.redacted + " went away while migrating: " + primaryMessage(e.what()));
  } catch (const pqxx::sql_error& e) {
    throw std::runtime_error("migrating schema \"" + settings.schema + "\" at " + settings.redacted +
                             " failed: " + primaryMessage(e.what()));
  }
  for (const std::string& m : applied_at_start_) {
    pool_.logger()->info("migration applied schema={} migration={}", settings.schema, m);
  }
  pool_.logger()->info("store connected dsn={} schema={} channel={} pool_size={}", settings.redacted,
                       settings.schema, settings.channel(), settings.pool_size);
}

PostgresStore::~PostgresStore() { unsubscribe(); }

Result<pqxx::result> PostgresStore::call(const char* statement, SqlParams& params) {
  return pool_.run<pqxx::result>(statement, [&](pqxx::connection& c) {
    pqxx::nontransaction tx(c);
    return tx.exec_prepared(statement, params.bind());
  });
}

Status PostgresStore::ping() {
  SqlParams none;
  auto r = call("ping", none);
  return r ? Status::ok() : r.status();
}

// --- Term and liveness ----------------------------------------------------------------------------

Result<Term> PostgresStore::claimTerm(const std::string& holder) {
  SqlParams p;
  p.text(holder);
  auto r = call("claim_term", p);
  if (!r) return r.status();
  const Term term = (*r)[0][0].as<std::int64_t>();
  pool_.logger()->info("term claimed term={} holder={}", term, holder);
  return term;
}

Status PostgresStore::recordLiveness(Term term, const LivenessRecord& record) {
  SqlParams p;
  p.integer(term).text(record.holder).integer(record.term).stamp(record.last_tick).integer(record.queue_depth)
      .integer(record.active_runs);
  auto r = call("record_liveness", p);
  return r ? Status::ok() : r.status();
}

Result<std::optional<LivenessRecord>> PostgresStore::readLiveness() {
  SqlParams none;
  auto r = call("read_liveness", none);
  if (!r) return r.status();
  if (r->empty()) return std::optional<LivenessRecord>{};
  const pqxx::row row = (*r)[0];
  LivenessRecord rec;
  rec.holder = textAt(row, 0);
  rec.term = row[1].as<std::int64_t>();
  rec.last_tick = stampAt(row, 2);
  rec.queue_depth = row[3].as<std::int64_t>();
  rec.active_runs = row[4].as<std::int64_t>();
  return std::optional<LivenessRecord>(std::move(rec));
}

// --- Catalog ----------------------------------------------------------------------------------------

Result<std::vector<DagRegistration>> PostgresStore::syncDags(std::span<const DagDefinition> dags) {
  if (dags.empty()) return std::vector<DagRegistration>{};
  std::vector<std::string> ids, json, schedule, tz, tenants;
  std::vector<std::optional<Timestamp>> start, end;
  std::vector<bool> catchup;
  std::vector<std::int64_t> max_active;
  for (const DagDefinition& d : dags) {
    if (d.spec.dag_id.empty()) return invalidArgument("a DAG needs a dag_id");
    ids.push_back(d.spec.dag_id);
    json.push_back(d.spec_json);
    schedule.push_back(d.spec.schedule);
    tz.push_back(d.spec.schedule_timezone);
    start.push_back(d.spec.start_date);
    end.push_back(d.spec.end_date);
    catchup.push_back(d.spec.catchup);
    max_active.push_back(d.spec.max_active_runs);
    tenants.push_back(d.spec.tenant.empty() ? std::string("default") : d.spec.tenant);
  }
  SqlParams p;
  p.text(textArray(ids)).text(textArray(json)).text(textArray(schedule)).text(textArray(tz)).text(stampArray(start))
      .text(stampArray(end)).text(boolArray(catchup)).text(intArray(max_active)).text(textArray(tenants));
  auto r = call("sync_dags", p);
  if (!r) return r.status();
  if (r->size() != dags.size()) return internalError("sync_dags answered " + std::to_string(r->size()) + " rows");
  std::vector<DagRegistration> out;
  for (std::size_t i = 0; i < dags.size(); ++i) {
    DagRegistration reg;
    reg.dag_id = ids[i];
    reg.version = (*r)[static_cast<int>(i)][0].as<std::int64_t>();
    reg.changed = (*r)[static_cast<int>(i)][1].as<bool>();
    if (reg.changed) pool_.logger()->info("dag registered dag_id={} version={}", reg.dag_id, reg.version);
    out.push_back(std::move(reg));
  }
  return out;
}

Result<std::vector<DagSummary>> PostgresStore::listDags() {
  SqlParams none;
  auto r = call("list_dags", none);
  if (!r) return r.status();
  std::vector<DagSummary> out;
  out.reserve(r->size());
  for (const pqxx::row& row : *r) {
    out.push_back(DagSummary{textAt(row, 0), textAt(row, 1), boolAt(row, 2), row[3].as<std::int64_t>(),
                             tenantOf(textAt(row, 4))});
  }
  return out;
}

Result<StoredDag> PostgresStore::getDag(const std::string& dag_id, std::optional<std::int64_t> version) {
  SqlParams p;
  p.text(dag_id);
  if (version) p.integer(*version); else p.null();
  auto r = call("get_dag", p);
  if (!r) return r.status();
  if (r->empty()) return notFound("dag \"" + dag_id + "\" does not exist");
  const pqxx::row row = (*r)[0];
  if (row[2].is_null()) {
    return notFound("dag \"" + dag_id + "\" has no version " + std::to_string(version.value_or(0)));
  }
  StoredDag d;
  d.dag_id = dag_id;
  d.version = version.value_or(row[0].as<std::int64_t>());
  d.paused = boolAt(row, 1);
  d.spec_json = textAt(row, 2);
  return d;
}

Status PostgresStore::setPaused(const std::string& dag_id, bool paused) {
  SqlParams p;
  p.text(dag_id).boolean(paused);
  auto r = call("set_paused", p);
  if (!r) return r.status();
  pool_.logger()->info("dag {} dag_id={}", paused ? "paused" : "unpaused", dag_id);
  return Status::ok();
}

Result<std::vector<ScheduledDag>> PostgresStore::scheduledDags() {
  SqlParams none;
  auto r = call("scheduled_dags", none);
  if (!r) return r.status();
  std::vector<ScheduledDag> out;
  out.reserve(r->size());
  for (const pqxx::row& row : *r) {
    ScheduledDag d;
    d.dag_id = textAt(row, 0);
    d.version = row[1].as<std::int64_t>();
    d.schedule = textAt(row, 2);
    d.schedule_timezone = textAt(row, 3);
    d.start_date = stampAt(row, 4);
    d.end_date = stampAt(row, 5);
    d.catchup = boolAt(row, 6);
    d.max_active_runs = row[7].as<int>();
    d.last_logical = stampAt(row, 8);
    d.ever_run = boolAt(row, 9);
    d.tenant = tenantOf(textAt(row, 10));
    out.push_back(std::move(d));
  }
  return out;
}

// --- Runs ---------------------------------------------------------------------------------------------

Status PostgresStore::createRun(std::optional<Term> term, const NewRun& run) {
  if (Status s = checkRunKey(run.key); !s) return s;
  SqlParams p;
  if (term) p.integer(*term); else p.null();
  p.text(run.key.dag_id).text(run.key.run_id).integer(std::max<std::int64_t>(run.dag_version, 0))
      .text(std::string(toString(run.trigger))).stamp(run.logical_date).text(run.conf_json).stamp(run.queued_at)
      .text(run.tenant.empty() ? std::string("default") : run.tenant);
  auto r = call("create_run", p);
  if (!r) return r.status();
  pool_.logger()->debug("run created dag_id={} run_id={} uid={} trigger={} tenant={}", run.key.dag_id,
                        run.key.run_id, (*r)[0][0].as<std::int64_t>(), toString(run.trigger), run.tenant);
  return Status::ok();
}

std::vector<Status> PostgresStore::createRuns(std::optional<Term> term, std::span<const NewRun> runs) {
  // A slice per transaction, in the order given: each run of a DAG updates the DAG's row, and
  // thousands of updates of one row in one transaction leave as many versions of it for the next to
  // walk past (2,500 runs outlasted a 5 s statement_timeout_ms). A slice sees the runs the ones
  // before it committed, so each answer is still the one the order given makes.
  std::vector<Status> out(runs.size(), Status::ok());
  std::size_t created = 0;
  for (std::size_t first = 0; first < runs.size(); first += kCreateRunsPerTransaction) {
    const std::size_t n = std::min(kCreateRunsPerTransaction, runs.size() - first);
    created += createRunsInOneTransaction(term, runs.subspan(first, n), std::span(out).subspan(first, n));
  }
  if (!runs.empty()) pool_.logger()->debug("runs created count={} of={}", created, runs.size());
  return out;
}

std::size_t PostgresStore::createRunsInOneTransaction(std::optional<Term> term, std::span<const NewRun> runs,
                                                      std::span<Status> out) {
  std::vector<std::size_t> sent;  // the k-th run of the call is runs[sent[k]]
  std::vector<std::string> dags, ids, triggers, confs, tenants;
  std::vector<std::int64_t> versions, logicals, queued;
  for (std::size_t i = 0; i < runs.size(); ++i) {
    const NewRun& run = runs[i];
    if (Status s = checkRunKey(run.key); !s) {
      out[i] = s;
      continue;
    }
    sent.push_back(i);
    dags.push_back(run.key.dag_id);
    ids.push_back(run.key.run_id);
    versions.push_back(std::max<std::int64_t>(run.dag_version, 0));
    triggers.emplace_back(toString(run.trigger));
    logicals.push_back(toMicros(run.logical_date));
    confs.push_back(run.conf_json);
    queued.push_back(toMicros(run.queued_at));
    tenants.push_back(run.tenant.empty() ? std::string("default") : run.tenant);
  }
  if (sent.empty()) return 0;
  SqlParams p;
  if (term) p.integer(*term); else p.null();
  p.text(textArray(dags)).text(textArray(ids)).text(intArray(versions)).text(textArray(triggers))
      .text(intArray(logicals)).text(textArray(confs)).text(intArray(queued)).text(textArray(tenants));
  auto r = call("create_runs", p);
  if (!r) {
    for (std::size_t i : sent) out[i] = r.status();
    return 0;
  }
  std::vector<bool> answered(sent.size(), false);
  std::size_t created = 0;
  for (const pqxx::row& row : *r) {
    const auto index = row[0].as<std::int64_t>();
    if (index < 1 || static_cast<std::size_t>(index) > sent.size()) continue;
    const std::size_t k = static_cast<std::size_t>(index) - 1;
    answered[k] = true;
    if (row[2].is_null()) {
      ++created;
    } else {
      out[sent[k]] = statusFromSqlState(row[2].c_str(), row[3].is_null() ? "" : row[3].c_str());
    }
  }
  for (std::size_t k = 0; k < sent.size(); ++k) {
    if (!answered[k]) out[sent[k]] = internalError("create_runs answered no row for run \"" + ids[k] + "\"");
  }
  return created;
}

Result<std::vector<ActiveRun>> PostgresStore::listActiveRuns() {
  SqlParams none;
  auto r = call("list_active_runs", none);
  if (!r) return r.status();
  std::vector<ActiveRun> out;
  out.reserve(r->size());
  for (const pqxx::row& row : *r) {
    ActiveRun a;
    a.key = RunKey{textAt(row, 0), textAt(row, 1)};
    a.dag_version = row[2].as<std::int64_t>();
    const auto state = parseDagRunState(textAt(row, 3));
    if (!state) return corrupt(a.key);
    a.state = *state;
    a.queued_at = stampAt(row, 4);
    out.push_back(std::move(a));
  }
  return out;
}

Result<std::vector<RunKey>> PostgresStore::listActiveRunKeys() {
  SqlParams none;
  auto r = call("list_active_run_keys", none);
  if (!r) return r.status();
  std::vector<RunKey> out;
  out.reserve(r->size());
  for (const pqxx::row& row : *r) out.push_back(RunKey{textAt(row, 0), textAt(row, 1)});
  return out;
}

std::vector<Result<RunRecord>> PostgresStore::loadRuns(std::span<const RunKey> keys) {
  std::vector<Result<RunRecord>> out;
  if (keys.empty()) return out;
  std::vector<std::string> dags, runs;
  dags.reserve(keys.size());
  runs.reserve(keys.size());
  for (const RunKey& k : keys) {
    dags.push_back(k.dag_id);
    runs.push_back(k.run_id);
  }
  SqlParams p;
  p.text(textArray(dags)).text(textArray(runs));
  auto r = call("load_runs", p);
  out.reserve(keys.size());
  if (!r) {
    for (std::size_t i = 0; i < keys.size(); ++i) out.emplace_back(r.status());
    return out;
  }
  // A row per run (seq NULL) and a row per instance, each with the key's position (ord, from 1), in no
  // order: the runs first, then their instances, each run's put in task order (seq) at the end.
  std::vector<std::optional<Result<RunRecord>>> found(keys.size());
  auto position = [&](RowFields& row) -> std::optional<std::size_t> {
    const auto ord = row[0].as<std::int64_t>();
    if (ord < 1 || static_cast<std::size_t>(ord) > keys.size()) return std::nullopt;
    return static_cast<std::size_t>(ord - 1);
  };
  for (const pqxx::row& whole : *r) {
    RowFields row(whole);
    if (!row[1].is_null()) continue;
    const auto at = position(row);
    if (!at) continue;
    found[*at].emplace(runFieldsAt(row, keys[*at]));
  }
  std::vector<std::vector<std::pair<std::int32_t, TaskInstance>>> instances(keys.size());  // by seq, per run
  for (const pqxx::row& whole : *r) {
    RowFields row(whole);
    if (row[1].is_null()) continue;
    const auto at = position(row);
    if (!at || !found[*at] || !found[*at]->isOk()) continue;
    const auto seq = row[1].as<std::int32_t>();
    Result<TaskInstance> ti = taskInstanceAt(row, 13, 24, keys[*at]);
    if (!ti) {
      found[*at].emplace(ti.status());
      continue;
    }
    instances[*at].emplace_back(seq, std::move(ti).value());
  }
  for (std::size_t i = 0; i < keys.size(); ++i) {
    if (!found[i] || !found[i]->isOk()) continue;
    auto& by_seq = instances[i];
    std::sort(by_seq.begin(), by_seq.end(), [](const auto& x, const auto& y) { return x.first < y.first; });
    std::vector<TaskInstance>& tasks = (*found[i])->tasks;
    tasks.reserve(by_seq.size());
    for (auto& [seq, ti] : by_seq) tasks.push_back(std::move(ti));
  }
  for (std::size_t i = 0; i < keys.size(); ++i) {
    if (found[i]) {
      out.push_back(std::move(*found[i]));
    } else {
      out.emplace_back(notFound("run \"" + keys[i].run_id + "\" of dag \"" + keys[i].dag_id + "\" does not exist"));
    }
  }
  return out;
}

std::vector<Result<TaskInstance>> PostgresStore::loadTaskInstances(const RunKey& run,
                                                                  std::span<const std::string> task_ids) {
  std::vector<Result<TaskInstance>> out;
  if (task_ids.empty()) return out;
  SqlParams p;
  p.text(run.dag_id).text(run.run_id).text(textArray(std::vector<std::string>(task_ids.begin(), task_ids.end())));
  auto r = call("load_task_instances", p);
  out.reserve(task_ids.size());
  auto failAll = [&](const Status& why) {
    for (std::size_t i = 0; i < task_ids.size(); ++i) out.emplace_back(why);
    return out;
  };
  if (!r) return failAll(r.status());
  if (r->empty()) return failAll(notFound("run \"" + run.run_id + "\" of dag \"" + run.dag_id + "\" does not exist"));
  std::map<std::string, Result<TaskInstance>, std::less<>> found;
  for (const pqxx::row& row : *r) {
    if (row[0].is_null()) continue;  // the run has none of the tasks asked
    std::string id = textAt(row, 0);
    found.emplace(std::move(id), taskInstanceAt(row, 0, 11, run));
  }
  for (std::size_t i = 0; i < task_ids.size(); ++i) {
    if (auto it = found.find(task_ids[i]); it != found.end()) {
      out.push_back(it->second);
    } else {
      out.emplace_back(notFound("task \"" + task_ids[i] + "\" of run \"" + run.run_id + "\" of dag \"" +
                                run.dag_id + "\" does not exist"));
    }
  }
  return out;
}

Result<std::vector<RunRecord>> PostgresStore::listRuns(const RunFilter& filter) {
  if (filter.limit == 0) return std::vector<RunRecord>{};
  SqlParams p;
  p.optionalText(filter.dag_id);
  if (filter.state) p.text(std::string(toString(*filter.state))); else p.null();
  p.integer(limitOf(filter.limit));
  p.optionalText(filter.tenant);
  if (filter.logical_since) p.stamp(*filter.logical_since); else p.null();
  if (filter.logical_until) p.stamp(*filter.logical_until); else p.null();
  auto r = call("list_runs", p);
  if (!r) return r.status();
  std::vector<RunRecord> out;
  out.reserve(r->size());
  for (const pqxx::row& row : *r) {
    auto run = runFromRow(row);
    if (!run) return run.status();
    out.push_back(std::move(*run));
  }
  return out;
}

Result<std::vector<RunKey>> PostgresStore::findRuns(const std::string& run_id) {
  SqlParams p;
  p.text(run_id);
  auto r = call("find_runs", p);
  if (!r) return r.status();
  std::vector<RunKey> out;
  for (const pqxx::row& row : *r) out.push_back(RunKey{textAt(row, 0), run_id});
  return out;
}

Status PostgresStore::materializeRun(Term term, const RunKey& run, std::span<const NewTaskInstance> tasks,
                                     Timestamp at) {
  if (Status s = checkRunKey(run); !s) return s;
  std::vector<std::string> ids;
  std::vector<std::int64_t> max_tries;
  std::set<std::string_view> seen;
  for (const NewTaskInstance& t : tasks) {
    if (t.task_id.empty()) return invalidArgument("a task instance needs a task id");
    if (t.max_tries < 1) {
      return invalidArgument("task \"" + t.task_id + "\": max_tries must be at least 1, got " +
                             std::to_string(t.max_tries));
    }
    if (!seen.insert(t.task_id).second) return invalidArgument("task \"" + t.task_id + "\" is listed twice");
    ids.push_back(t.task_id);
    max_tries.push_back(t.max_tries);
  }
  SqlParams p;
  p.integer(term).text(run.dag_id).text(run.run_id).stamp(at).text(textArray(ids)).text(intArray(max_tries));
  auto r = call("materialize_run", p);
  if (!r) return r.status();
  pool_.logger()->debug("run materialized dag_id={} run_id={} tasks={}", run.dag_id, run.run_id, tasks.size());
  return Status::ok();
}

Status PostgresStore::setRunState(Term term, const RunKey& run, DagRunState from, DagRunState to, Timestamp at,
                                  const std::string& note) {
  if (Status s = checkRunKey(run); !s) return s;
  SqlParams p;
  p.integer(term).text(run.dag_id).text(run.run_id).text(std::string(toString(from))).text(std::string(toString(to)))
      .stamp(at).text(note);
  auto r = call("set_run_state", p);
  return r ? Status::ok() : r.status();
}

Result<std::vector<bool>> PostgresStore::applyTransitions(Term term, const RunKey& run,
                                                          std::span<const TaskTransitionWrite> writes,
                                                          Timestamp at) {
  if (Status s = checkRunKey(run); !s) return s;
  std::vector<std::string> tasks, from, to, notes;
  std::vector<std::int64_t> tries;
  std::vector<bool> exhaust;
  for (const TaskTransitionWrite& w : writes) {
    tasks.push_back(w.task_id);
    from.emplace_back(toString(w.from));
    tries.push_back(w.try_number);
    to.emplace_back(toString(w.to));
    notes.push_back(w.note);
    exhaust.push_back(w.exhaust_retries);
  }
  // An empty batch still goes to the server: its answer says whether the term and the run are current.
  SqlParams p;
  p.integer(term).text(run.dag_id).text(run.run_id).stamp(at).text(textArray(tasks)).text(textArray(from))
      .text(intArray(tries)).text(textArray(to)).text(textArray(notes)).text(boolArray(exhaust));
  auto r = call("apply_transitions", p);
  if (!r) return r.status();
  std::vector<bool> applied(writes.size(), false);
  const pqxx::field f = (*r)[0][0];
  if (f.is_null()) return applied;
  // A boolean array's text form: {t,f,...}.
  const std::string text = f.as<std::string>();
  std::size_t i = 0;
  for (char c : text) {
    if (c != 't' && c != 'f') continue;
    if (i >= applied.size()) return internalError("apply_transitions answered more results than writes");
    applied[i++] = c == 't';
  }
  if (i != applied.size()) return internalError("apply_transitions answered fewer results than writes");
  return applied;
}

// --- Reapers --------------------------------------------------------------------------------------------

Result<std::vector<OrphanCandidate>> PostgresStore::listOrphanCandidates(std::size_t limit) {
  if (limit == 0) return std::vector<OrphanCandidate>{};
  SqlParams p;
  p.integer(limitOf(limit));
  auto r = call("list_orphans", p);
  if (!r) return r.status();
  std::vector<OrphanCandidate> out;
  for (const pqxx::row& row : *r) out.push_back(OrphanCandidate{RunKey{textAt(row, 0), textAt(row, 1)}, stampAt(row, 2)});
  return out;
}

Status PostgresStore::reapRun(Term term, const RunKey& run, Timestamp at, const std::string& note) {
  if (Status s = checkRunKey(run); !s) return s;
  SqlParams p;
  p.integer(term).text(run.dag_id).text(run.run_id).stamp(at).text(note);
  auto r = call("reap_run", p);
  if (!r) return r.status();
  if (boolAt((*r)[0], 0)) pool_.logger()->info("run reaped dag_id={} run_id={}", run.dag_id, run.run_id);
  return Status::ok();
}

namespace {

struct ListedAttempt {
  AttemptRef attempt;
  std::optional<Timestamp> stamp;
};

std::vector<ListedAttempt> attemptsFrom(const pqxx::result& r) {
  std::vector<ListedAttempt> out;
  out.reserve(r.size());
  for (const pqxx::row& row : r) {
    out.push_back(ListedAttempt{AttemptRef{RunKey{textAt(row, 0), textAt(row, 1)}, textAt(row, 2),
                                           row[3].as<std::int32_t>()},
                                stampAt(row, 4)});
  }
  return out;
}

}  // namespace

Result<std::vector<AgentLostCandidate>> PostgresStore::listAgentLostCandidates(std::size_t limit) {
  if (limit == 0) return std::vector<AgentLostCandidate>{};
  SqlParams p;
  p.integer(limitOf(limit));
  auto r = call("agent_lost", p);
  if (!r) return r.status();
  std::vector<AgentLostCandidate> out;
  for (auto& a : attemptsFrom(*r)) out.push_back(AgentLostCandidate{std::move(a.attempt), a.stamp});
  return out;
}

Result<std::vector<DispatchLostCandidate>> PostgresStore::listDispatchLostCandidates(std::size_t limit) {
  if (limit == 0) return std::vector<DispatchLostCandidate>{};
  SqlParams p;
  p.integer(limitOf(limit));
  auto r = call("dispatch_lost", p);
  if (!r) return r.status();
  std::vector<DispatchLostCandidate> out;
  for (auto& a : attemptsFrom(*r)) out.push_back(DispatchLostCandidate{std::move(a.attempt), a.stamp});
  return out;
}

// --- Executor reports ----------------------------------------------------------------------------------

// Claims and finished reports go through reports_ (report_batcher.h): those that arrive together are
// written together, one commit and one turn of the notify lock for all.

Status PostgresStore::reportRunning(const ExecutionRef& execution, Timestamp at) {
  if (Status s = checkExecution(execution); !s) return s;
  return reports_.submit(ExecutorReport{execution, nullptr, at});
}

Status PostgresStore::reportHeartbeat(const ExecutionRef& execution, Timestamp at) {
  if (Status s = checkExecution(execution); !s) return s;
  SqlParams p = executionParams(execution, at);
  auto r = call("report_heartbeat", p);
  return r ? Status::ok() : r.status();
}

Status PostgresStore::reportFinished(const ExecutionRef& execution, const TaskOutcome& outcome, Timestamp at) {
  if (Status s = checkExecution(execution); !s) return s;
  return reports_.submit(ExecutorReport{execution, &outcome, at});
}

Status PostgresStore::writeReport(const ExecutorReport& report) {
  SqlParams p = executionParams(report.execution, report.at);
  if (report.outcome == nullptr) {
    auto r = call("report_running", p);
    return r ? Status::ok() : r.status();
  }
  p.text(report.outcome->success ? "success" : "failed");
  if (report.outcome->exit_code) p.integer(*report.outcome->exit_code); else p.null();
  p.text(report.outcome->message);
  auto r = call("report_finished", p);
  return r ? Status::ok() : r.status();
}

std::vector<Status> PostgresStore::writeReports(const std::vector<const ExecutorReport*>& reports) {
  // Alone, a report takes its own function: report_batch's block per report is a subtransaction.
  if (reports.size() == 1) return {writeReport(*reports[0])};
  std::vector<bool> finished;
  std::vector<std::string> dags, runs, tasks, executions, tos, messages;
  std::vector<std::int64_t> tries;
  std::vector<std::optional<Timestamp>> ats;
  std::vector<std::optional<std::int64_t>> exits;
  for (const ExecutorReport* r : reports) {
    const AttemptRef& a = r->execution.attempt;
    const TaskOutcome* o = r->outcome;
    finished.push_back(o != nullptr);
    dags.push_back(a.run.dag_id);
    runs.push_back(a.run.run_id);
    tasks.push_back(a.task_id);
    tries.push_back(a.try_number);
    ats.emplace_back(r->at);
    executions.push_back(r->execution.execution_id);
    tos.emplace_back(o == nullptr ? "" : o->success ? "success" : "failed");
    exits.push_back(o != nullptr && o->exit_code ? std::optional<std::int64_t>(*o->exit_code) : std::nullopt);
    messages.push_back(o == nullptr ? "" : o->message);
  }
  SqlParams p;
  p.text(boolArray(finished)).text(textArray(dags)).text(textArray(runs)).text(textArray(tasks))
      .text(intArray(tries)).text(stampArray(ats)).text(textArray(executions)).text(textArray(tos))
      .text(optionalIntArray(exits)).text(textArray(messages));
  auto r = call("report_batch", p);
  if (!r) return std::vector<Status>(reports.size(), r.status());
  if (r->size() != reports.size()) {
    return std::vector<Status>(reports.size(), internalError(fmt::format(
        "store-postgres: report_batch answered {} rows for {} reports", r->size(), reports.size())));
  }
  std::vector<Status> answers;
  answers.reserve(reports.size());
  for (const auto& row : *r) {
    answers.push_back(row[0].is_null() ? Status::ok() : statusFromSqlState(row[0].c_str(), row[1].c_str()));
  }
  return answers;
}

// --- A person's commands ----------------------------------------------------------------------------------

namespace {

/// The rows of an operator statement: (run_state, task_id), one per moved task in the run's order, or
/// one row with a NULL task when nothing moved.
Result<OperatorOutcome> outcomeFrom(const pqxx::result& r, const RunKey& run) {
  if (r.empty()) return internalError("an operator command on run \"" + run.run_id + "\" answered no row");
  OperatorOutcome out;
  const auto state = parseDagRunState(textAt(r[0], 0));
  if (!state) return corrupt(run);
  out.run_state = *state;
  for (const pqxx::row& row : r) {
    if (!row[1].is_null()) out.changed_tasks.push_back(textAt(row, 1));
  }
  return out;
}

// The rows of cancel_runs or clear_runs (one per run, out_index its place in `runs`, or one per task
// it moved) into one answer per run: its state and moved tasks, or its refusal. Returns how many
// runs were not refused.
std::size_t outcomesByRun(const pqxx::result& rows, std::span<const RunKey> runs, std::string_view function,
                          std::span<Result<OperatorOutcome>> answers) {
  std::vector<bool> answered(runs.size(), false);
  std::size_t accepted = 0;
  for (const pqxx::row& row : rows) {
    const auto index = row[0].as<std::int64_t>();
    if (index < 1 || static_cast<std::size_t>(index) > runs.size()) continue;
    const std::size_t k = static_cast<std::size_t>(index) - 1;
    Result<OperatorOutcome>& answer = answers[k];
    if (!answered[k]) {
      answered[k] = true;
      answer = OperatorOutcome{};
      if (!row[3].is_null()) {
        answer = statusFromSqlState(row[3].c_str(), row[4].is_null() ? "" : row[4].c_str());
        continue;
      }
      const auto state = parseDagRunState(textAt(row, 1));
      if (!state) {
        answer = corrupt(runs[k]);
        continue;
      }
      answer->run_state = *state;
      ++accepted;
    }
    if (answer && !row[2].is_null()) answer->changed_tasks.push_back(textAt(row, 2));
  }
  for (std::size_t k = 0; k < answered.size(); ++k) {
    if (!answered[k]) {
      answers[k] = internalError(std::string(function) + " answered no row for run \"" + runs[k].run_id + "\"");
    }
  }
  return accepted;
}

}  // namespace

// No argument checks beyond the targets: an empty id names nothing, which the functions answer as
// kNotFound, as for any other id that names nothing.
Result<OperatorOutcome> PostgresStore::clearTasks(const ClearRequest& request) {
  std::vector<std::string> ids;
  std::vector<std::int64_t> retries;
  for (const ClearTask& t : request.tasks) {
    ids.push_back(t.task_id);
    retries.push_back(t.retries);
  }
  SqlParams p;
  p.text(request.run.dag_id).text(request.run.run_id).text(textArray(ids)).text(intArray(retries))
      .boolean(request.failed_only).text(request.note).stamp(request.at);
  auto r = call("clear_tasks", p);
  if (!r) return r.status();
  auto out = outcomeFrom(*r, request.run);
  if (out) {
    pool_.logger()->info("tasks cleared dag_id={} run_id={} cleared={} note={}", request.run.dag_id,
                         request.run.run_id, out->changed_tasks.size(), request.note);
  }
  return out;
}

std::vector<Result<OperatorOutcome>> PostgresStore::clearRuns(std::span<const ClearRequest> requests) {
  if (requests.empty()) return {};
  // One clear_runs call (migrations/017_clear_runs.sql): each run's clear_tasks in one transaction,
  // each in a block of its own, so a refused run undoes only itself.
  std::vector<std::string> dags, runs, tasks, notes;
  std::vector<std::int64_t> counts, retries, ats;
  std::vector<bool> failed_only;
  std::vector<RunKey> keys;
  for (const ClearRequest& r : requests) {
    dags.push_back(r.run.dag_id);
    runs.push_back(r.run.run_id);
    keys.push_back(r.run);
    counts.push_back(static_cast<std::int64_t>(r.tasks.size()));
    for (const ClearTask& t : r.tasks) {
      tasks.push_back(t.task_id);
      retries.push_back(t.retries);
    }
    failed_only.push_back(r.failed_only);
    notes.push_back(r.note);
    ats.push_back(toMicros(r.at));
  }
  SqlParams p;
  p.text(textArray(dags)).text(textArray(runs)).text(intArray(counts)).text(textArray(tasks)).text(intArray(retries))
      .text(boolArray(failed_only)).text(textArray(notes)).text(intArray(ats));
  auto r = call("clear_runs", p);
  if (!r) return std::vector<Result<OperatorOutcome>>(requests.size(), Result<OperatorOutcome>(r.status()));
  std::vector<Result<OperatorOutcome>> answers(requests.size(), Result<OperatorOutcome>(OperatorOutcome{}));
  const std::size_t cleared = outcomesByRun(*r, keys, "clear_runs", answers);
  pool_.logger()->info("runs cleared count={} of={} note={}", cleared, requests.size(), requests.front().note);
  return answers;
}

Result<OperatorOutcome> PostgresStore::markTask(const MarkTaskRequest& request) {
  if (request.to != TaskState::kSuccess && request.to != TaskState::kFailed && request.to != TaskState::kSkipped) {
    return invalidArgument("a task can be marked success, failed or skipped, not " + std::string(toString(request.to)));
  }
  SqlParams p;
  p.text(request.run.dag_id).text(request.run.run_id).text(request.task_id).text(std::string(toString(request.to)))
      .text(request.note).stamp(request.at);
  auto r = call("mark_task", p);
  if (!r) return r.status();
  auto out = outcomeFrom(*r, request.run);
  if (out) {
    pool_.logger()->info("task marked dag_id={} run_id={} task_id={} to={} note={}", request.run.dag_id,
                         request.run.run_id, request.task_id, toString(request.to), request.note);
  }
  return out;
}

Result<OperatorOutcome> PostgresStore::markRun(const MarkRunRequest& request) {
  if (request.to != DagRunState::kSuccess && request.to != DagRunState::kFailed) {
    return invalidArgument("a run can be marked success or failed, not " + std::string(toString(request.to)));
  }
  SqlParams p;
  p.text(request.run.dag_id).text(request.run.run_id).text(std::string(toString(request.to))).text(request.note)
      .stamp(request.at);
  auto r = call("mark_run", p);
  if (!r) return r.status();
  auto out = outcomeFrom(*r, request.run);
  if (out) {
    pool_.logger()->info("run marked dag_id={} run_id={} to={} tasks={} note={}", request.run.dag_id,
                         request.run.run_id, toString(request.to), out->changed_tasks.size(), request.note);
  }
  return out;
}

Result<OperatorOutcome> PostgresStore::cancelRun(const CancelRunRequest& request) {
  SqlParams p;
  p.text(request.run.dag_id).text(request.run.run_id).text(request.note).stamp(request.at);
  auto r = call("cancel_run", p);
  if (!r) return r.status();
  auto out = outcomeFrom(*r, request.run);
  if (out) {
    pool_.logger()->info("run cancelled dag_id={} run_id={} tasks={} note={}", request.run.dag_id,
                         request.run.run_id, out->changed_tasks.size(), request.note);
  }
  return out;
}

std::vector<Result<OperatorOutcome>> PostgresStore::cancelRuns(std::span<const CancelRunRequest> requests) {
  if (requests.empty()) return {};
  // One call per note and time (a caller's slice has one of each); the runs of one call commit
  // together, each refused one alone undone.
  std::vector<Result<OperatorOutcome>> answers(requests.size(), Result<OperatorOutcome>(OperatorOutcome{}));
  std::size_t first = 0;
  std::size_t cancelled = 0;
  while (first < requests.size()) {
    std::size_t end = first + 1;
    while (end < requests.size() && requests[end].note == requests[first].note && requests[end].at == requests[first].at) {
      ++end;
    }
    std::vector<std::string> dags, runs;
    for (std::size_t i = first; i < end; ++i) {
      dags.push_back(requests[i].run.dag_id);
      runs.push_back(requests[i].run.run_id);
    }
    SqlParams p;
    p.text(textArray(dags)).text(textArray(runs)).text(requests[first].note).stamp(requests[first].at);
    auto r = call("cancel_runs", p);
    if (!r) {
      for (std::size_t i = first; i < end; ++i) answers[i] = r.status();
      first = end;
      continue;
    }
    std::vector<RunKey> runs_of_call;
    for (std::size_t i = first; i < end; ++i) runs_of_call.push_back(requests[i].run);
    cancelled += outcomesByRun(*r, runs_of_call, "cancel_runs", std::span(answers).subspan(first, end - first));
    first = end;
  }
  pool_.logger()->info("runs cancelled count={} of={} note={}", cancelled, requests.size(), requests.front().note);
  return answers;
}

Status PostgresStore::deleteDag(const std::string& dag_id) {
  // A DAG with no active run loses its finished runs a slice per statement first (store.h allows
  // it): delete_dag's one transaction over 100,000 runs outlasts statement_timeout_ms. delete_dag
  // then removes the DAG and what is left, or refuses when a run is active (then nothing was sliced,
  // unless a run became active meanwhile).
  SqlParams id;
  id.text(dag_id);
  auto active = call("dag_has_active_run", id);
  if (!active) return active.status();
  std::int64_t sliced = 0;
  if (active->empty()) {
    auto removed = deleteInSlices("delete_dag_finished_runs", [&](SqlParams& p) { p.text(dag_id); });
    if (!removed) return removed.status();
    sliced = *removed;
  }
  auto r = call("delete_dag", id);
  if (!r) return r.status();
  pool_.logger()->info("dag deleted dag_id={} finished_runs_removed_first={}", dag_id, sliced);
  return Status::ok();
}

Result<std::int64_t> PostgresStore::deleteInSlices(const char* statement,
                                                   const std::function<void(SqlParams&)>& params) {
  std::int64_t total = 0;
  for (;;) {
    SqlParams p;
    params(p);
    p.integer(kDeleteSlice);
    auto r = call(statement, p);
    if (!r) return r.status();
    const std::int64_t n = (*r)[0][0].as<std::int64_t>();
    total += n;
    if (n < kDeleteSlice) return total;
  }
}

// --- Change feed ------------------------------------------------------------------------------------------

Status PostgresStore::subscribe(ChangeSink& sink) { return subscribeTo(pool_.settings().channel(), sink); }

Status PostgresStore::subscribeRuns(ChangeSink& sink) { return subscribeTo(pool_.settings().runChannel(), sink); }

Status PostgresStore::subscribeTo(const std::string& channel, ChangeSink& sink) {
  std::lock_guard lock(feed_mu_);
  if (feed_) return invalidArgument("the store already has a change-feed subscriber; unsubscribe first");
  auto feed = std::make_unique<ChangeFeed>(pool_, channel, pool_.logger());
  if (Status s = feed->start(sink); !s) return s;
  feed_ = std::move(feed);
  return Status::ok();
}

void PostgresStore::unsubscribe() {
  std::unique_ptr<ChangeFeed> feed;
  {
    std::lock_guard lock(feed_mu_);
    feed = std::move(feed_);
  }
  if (feed) feed->stop();
}

// --- Maintenance ------------------------------------------------------------------------------------------

Result<std::optional<std::vector<std::string>>> PostgresStore::migrate() {
  const Settings& s = pool_.settings();
  std::vector<std::string> applied;
  try {
    // A session of its own: the migration's SET LOCAL and advisory lock stay out of the pool.
    auto session = pool_.openSession(s.dsn);
    applied = migrateSchema(session->conn(), s.schema, s.channel());
  } catch (const SchemaTooNew& e) {
    return invalidArgument(e.what());
  } catch (const pqxx::broken_connection& e) {
    return unavailable("postgres at " + s.redacted + ": " + primaryMessage(e.what()));
  } catch (const pqxx::transaction_rollback& e) {
    return unavailable("migrate: " + primaryMessage(e.what()));
  } catch (const pqxx::sql_error& e) {
    return statusFromSqlState(e.sqlstate(), "migrating schema \"" + s.schema + "\": " + primaryMessage(e.what()));
  } catch (const std::exception& e) {
    return internalError("migrating schema \"" + s.schema + "\": " + e.what());
  }
  for (const std::string& m : applied) pool_.logger()->info("migration applied schema={} migration={}", s.schema, m);
  std::vector<std::string> all = applied_at_start_;
  all.insert(all.end(), applied.begin(), applied.end());
  applied_at_start_.clear();  // reported once
  return std::optional<std::vector<std::string>>(std::move(all));
}

Result<std::optional<std::int64_t>> PostgresStore::deleteFinishedRuns(Timestamp before) {
  auto n = deleteInSlices("delete_finished", [&](SqlParams& p) { p.stamp(before); });
  if (!n) return n.status();
  pool_.logger()->info("finished runs deleted count={} ended_before_us={}", *n, toMicros(before));
  return std::optional<std::int64_t>(*n);
}

}  // namespace leoflow::plugins::store_postgres
