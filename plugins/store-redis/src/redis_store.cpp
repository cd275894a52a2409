#include "redis_store.h"

#include <algorithm>
#include <cstdlib>
#include <iterator>
#include <limits>
#include <map>
#include <set>
#include <unordered_set>

#include "id_codec.h"
#include "records.h"

namespace leoflow::plugins::store_redis {
namespace {

// --- Reading replies ------------------------------------------------------------------------------

Status malformed(std::string_view what) {
  return internalError("unexpected reply from redis for " + std::string(what));
}

std::string elementText(const redisReply* e) {
  if (e == nullptr) return {};
  if (e->type == REDIS_REPLY_INTEGER) return std::to_string(e->integer);
  return std::string(replyText(e));  // nil reads as ""
}

/// Runs of the active-run index one orphan-listing script reads (a ZSCAN COUNT hint): at most
/// ~10 ms of Redis each on a 2-core VM, where one script over 100,000 runs took 700-760 ms.
constexpr std::size_t kOrphanScanPage = 1000;

/// Members of the active-run index one ZSCAN of the listing returns (a hint): at most ~13 ms of
/// Redis each on a 2-core VM (bench/README.md, "100,000 runs on the slow VM").
constexpr std::size_t kActiveScanPage = 5000;

/// Runs of the run index one script of listRuns or deleteFinishedRuns reads, whatever it finds:
/// at most ~18 ms of Redis on a 2-core VM, where a listing of 100,000 runs in one script held it for
/// 1.2-4.7 s and the leader's lease was lost (bench/README.md, "An operator's listing and deletion").
constexpr std::size_t kRunIndexPage = 1000;

/// Runs one script of deleteFinishedRuns or deleteDag removes at most: each is a dozen commands and
/// more (its instances leave the task indexes), ~9 ms of Redis for 250 runs of 10 tasks.
constexpr std::int64_t kRemoveSlice = 250;

/// A flat array reply as strings; `stride` checks that it holds whole records.
Result<std::vector<std::string>> flatArray(const ReplyPtr& reply, std::size_t stride, std::string_view what) {
  if (reply->type != REDIS_REPLY_ARRAY || (stride != 0 && reply->elements % stride != 0)) return malformed(what);
  std::vector<std::string> out;
  out.reserve(reply->elements);
  for (std::size_t i = 0; i < reply->elements; ++i) out.push_back(elementText(reply->element[i]));
  return out;
}

Result<std::int64_t> integerReply(const ReplyPtr& reply, std::string_view what) {
  if (reply->type != REDIS_REPLY_INTEGER) return malformed(what);
  return static_cast<std::int64_t>(reply->integer);
}

bool toInt(const std::string& s, std::int64_t& out) { return parseInt64(s, out); }

std::optional<Timestamp> micros(const std::string& s, bool& ok) {
  std::optional<Timestamp> t;
  if (!parseMicros(s, t)) ok = false;
  return t;
}

// --- Encoding arguments ---------------------------------------------------------------------------

std::string str(std::int64_t v) { return std::to_string(v); }

const char* boolArg(bool b) { return b ? "1" : "0"; }

Status checkRunKey(const RunKey& run) {
  if (run.dag_id.empty()) return invalidArgument("a run key needs a dag id");
  if (run.run_id.empty()) return invalidArgument("a run key needs a run id");
  return Status::ok();
}

/// A stored tenant: '' (stored before tenants were) reads as "default".
std::string tenantOf(std::string stored) { return stored.empty() ? std::string("default") : stored; }

/// The stored trigger name ("scheduled", "manual", "backfill"); anything else reads as manual.
RunTrigger triggerOf(const std::string& stored) { return parseRunTrigger(stored).value_or(RunTrigger::kManual); }

// Reads the 13 run fields shared by loadRuns and list_runs.lua (dag_id, run_id, dag_version,
// state, trigger, logical_date, queued_at, started_at, ended_at, conf, note, uid, tenant); a run
// stored before uids and tenants reads as uid 0 and tenant "default".
Result<RunRecord> runFromFields(const std::vector<std::string>& f, std::size_t at) {
  RunRecord r;
  bool ok = true;
  r.key = RunKey{f[at], f[at + 1]};
  const auto state = parseDagRunState(f[at + 3]);
  std::int64_t logical = 0;
  if (!toInt(f[at + 2], r.dag_version) || !state || !toInt(f[at + 5], logical)) ok = false;
  if (state) r.state = *state;
  r.trigger = triggerOf(f[at + 4]);
  r.logical_date = Timestamp(std::chrono::microseconds(logical));
  r.queued_at = micros(f[at + 6], ok);
  r.started_at = micros(f[at + 7], ok);
  r.ended_at = micros(f[at + 8], ok);
  r.conf_json = f[at + 9];
  r.note = f[at + 10];
  if (!f[at + 11].empty() && !toInt(f[at + 11], r.uid)) ok = false;
  r.tenant = tenantOf(f[at + 12]);
  if (!ok) return internalError("run \"" + r.key.run_id + "\" of dag \"" + r.key.dag_id + "\" has a corrupt record");
  return r;
}

constexpr std::size_t kRunFields = 13;

/// The run fields loadRuns reads with HMGET: runFromFields's 13, in its order.
const std::vector<std::string> kLoadedRunFields = {"dag_id",       "run_id",    "dag_version", "state",
                                                   "trigger",      "logical_date", "queued_at", "started_at",
                                                   "ended_at",     "conf",      "note",        "uid",
                                                   "tenant"};

/// One run of loadRuns's transaction: the HMGET of its hash (a nil dag_id: no such run), the
/// HGETALL of its instances {task_id, record, ...} and of its claims {task_id, execution id, ...}
/// (the claims of the current attempts: TaskInstance::execution_id).
Result<RunRecord> runFromReplies(const redisReply* fields, const redisReply* tis, const redisReply* claims,
                                 const RunKey& key) {
  auto isArray = [](const redisReply* r) { return r != nullptr && r->type == REDIS_REPLY_ARRAY; };
  for (const redisReply* r : {fields, tis, claims}) {
    if (r != nullptr && r->type == REDIS_REPLY_ERROR) return statusFromError(replyText(r));  // WRONGTYPE, say
  }
  if (isArray(fields) && fields->elements > 0 && fields->element[0]->type == REDIS_REPLY_NIL) {
    return notFound("run \"" + key.run_id + "\" of dag \"" + key.dag_id + "\" does not exist");
  }
  if (!isArray(fields) || fields->elements != kLoadedRunFields.size() || !isArray(tis) || tis->elements % 2 != 0 ||
      !isArray(claims) || claims->elements % 2 != 0) {
    return malformed("load_runs");
  }
  std::vector<std::string> f;
  f.reserve(kRunFields);
  for (std::size_t j = 0; j < fields->elements; ++j) f.push_back(elementText(fields->element[j]));
  auto run = runFromFields(f, 0);
  if (!run) return run.status();
  std::map<std::string_view, std::string_view> execution;
  for (std::size_t j = 0; j + 1 < claims->elements; j += 2) {
    execution.emplace(replyText(claims->element[j]), replyText(claims->element[j + 1]));
  }
  std::vector<TiRecord> records;
  records.reserve(tis->elements / 2);
  for (std::size_t j = 0; j + 1 < tis->elements; j += 2) {
    const std::string_view task_id = replyText(tis->element[j]);
    auto rec = decodeTiRecord(task_id, replyText(tis->element[j + 1]));
    if (!rec) {
      return internalError("task \"" + std::string(task_id) + "\" of run \"" + key.run_id + "\" of dag \"" +
                           key.dag_id + "\" has a corrupt record");
    }
    // The claim of the current attempt: an attempt that never started has none (a claim left
    // behind by an earlier attempt, in data written before new attempts dropped it, is not it).
    if (rec->ti.started_at) {
      if (auto e = execution.find(task_id); e != execution.end()) rec->ti.execution_id = e->second;
    }
    records.push_back(std::move(*rec));
  }
  // Materialization order, which is the DAG's task order.
  std::sort(records.begin(), records.end(), [](const TiRecord& a, const TiRecord& b) { return a.seq < b.seq; });
  run->tasks.reserve(records.size());
  for (TiRecord& r : records) run->tasks.push_back(std::move(r.ti));
  return run;
}

/// The reply of a person's command: {run state, moved task ids...}.
Result<OperatorOutcome> outcomeFrom(const ReplyPtr& reply, std::string_view what) {
  auto f = flatArray(reply, 0, what);
  if (!f) return f.status();
  if (f->empty()) return malformed(what);
  const auto state = parseDagRunState(f->front());
  if (!state) return malformed(what);
  OperatorOutcome out;
  out.run_state = *state;
  out.changed_tasks.assign(std::make_move_iterator(f->begin() + 1), std::make_move_iterator(f->end()));
  return out;
}

std::vector<std::string> executionArgs(const ExecutionRef& e, Timestamp at) {
  const AttemptRef& a = e.attempt;
  return {a.run.dag_id, a.run.run_id, a.task_id, str(a.try_number), toMicros(at), e.execution_id};
}

Status checkExecution(const ExecutionRef& e) {
  if (Status s = checkRunKey(e.attempt.run); !s) return s;
  if (e.attempt.task_id.empty()) return invalidArgument("an attempt needs a task id");
  if (e.execution_id.empty()) return invalidArgument("a report needs an execution id");
  return Status::ok();
}

}  // namespace

RedisStore::RedisStore(const Settings& settings, const PluginContext& context)
    : client_(settings, context.logger()) {
  client_.start();
  client_.logger()->info("store connected url={} key_prefix={} channel={}", settings.endpoint.redacted,
                         settings.key_prefix, client_.channel());
}

RedisStore::~RedisStore() { unsubscribe(); }

Status RedisStore::ping() {
  auto reply = client_.command({"PING"});
  return reply ? Status::ok() : reply.status();
}

// --- Term and liveness ----------------------------------------------------------------------------

Result<Term> RedisStore::claimTerm(const std::string& holder) {
  auto reply = client_.eval(lua::kClaimTerm, {holder});
  if (!reply) return reply.status();
  auto term = integerReply(*reply, "claim_term");
  if (!term) return term.status();
  client_.logger()->info("term claimed term={} holder={}", *term, holder);
  return Term{*term};
}

Status RedisStore::recordLiveness(Term term, const LivenessRecord& record) {
  auto reply = client_.eval(lua::kRecordLiveness,
                            {str(term), record.holder, str(record.term), toMicros(record.last_tick),
                             str(record.queue_depth), str(record.active_runs)});
  return reply ? Status::ok() : reply.status();
}

Result<std::optional<LivenessRecord>> RedisStore::readLiveness() {
  auto reply = client_.command(
      {"HMGET", client_.settings().key_prefix + ":liveness", "holder", "term", "last_tick", "queue_depth", "active_runs"});
  if (!reply) return reply.status();
  auto f = flatArray(*reply, 5, "readLiveness");
  if (!f) return f.status();
  const auto& v = *f;
  if ((*reply)->element[0]->type == REDIS_REPLY_NIL) return std::optional<LivenessRecord>{};
  LivenessRecord rec;
  bool ok = true;
  rec.holder = v[0];
  if (!toInt(v[1], rec.term) || !toInt(v[3], rec.queue_depth) || !toInt(v[4], rec.active_runs)) ok = false;
  rec.last_tick = micros(v[2], ok);
  if (!ok) return internalError("the liveness record is corrupt");
  return std::optional<LivenessRecord>(std::move(rec));
}

// --- Catalog ----------------------------------------------------------------------------------------

Result<std::vector<DagRegistration>> RedisStore::syncDags(std::span<const DagDefinition> dags) {
  std::vector<std::string> args{str(static_cast<std::int64_t>(dags.size()))};
  args.reserve(1 + dags.size() * 9);
  for (const DagDefinition& d : dags) {
    if (d.spec.dag_id.empty()) return invalidArgument("a DAG needs a dag_id");
    const DagSpec& s = d.spec;
    args.insert(args.end(), {s.dag_id, d.spec_json, s.schedule, s.schedule_timezone, toMicros(s.start_date),
                             toMicros(s.end_date), boolArg(s.catchup), str(s.max_active_runs), tenantOf(s.tenant)});
  }
  if (dags.empty()) return std::vector<DagRegistration>{};
  auto reply = client_.eval(lua::kSyncDags, args);
  if (!reply) return reply.status();
  auto f = flatArray(*reply, 2, "sync_dags");
  if (!f || f->size() != dags.size() * 2) return malformed("sync_dags");
  std::vector<DagRegistration> out;
  for (std::size_t i = 0; i < dags.size(); ++i) {
    DagRegistration r;
    r.dag_id = dags[i].spec.dag_id;
    if (!toInt((*f)[2 * i], r.version)) return malformed("sync_dags");
    r.changed = (*f)[2 * i + 1] == "1";
    if (r.changed) client_.logger()->info("dag registered dag_id={} version={}", r.dag_id, r.version);
    out.push_back(std::move(r));
  }
  return out;
}

Result<std::vector<DagSummary>> RedisStore::listDags() {
  auto reply = client_.eval(lua::kListDags, {});
  if (!reply) return reply.status();
  auto f = flatArray(*reply, 5, "list_dags");
  if (!f) return f.status();
  std::vector<DagSummary> out;
  for (std::size_t i = 0; i < f->size(); i += 5) {
    DagSummary d;
    d.dag_id = (*f)[i];
    d.schedule = (*f)[i + 1];
    d.paused = (*f)[i + 2] == "1";
    if (!toInt((*f)[i + 3], d.version)) return malformed("list_dags");
    d.tenant = tenantOf((*f)[i + 4]);
    out.push_back(std::move(d));
  }
  return out;
}

Result<StoredDag> RedisStore::getDag(const std::string& dag_id, std::optional<std::int64_t> version) {
  auto reply = client_.eval(lua::kGetDag, {dag_id, version ? str(*version) : std::string()});
  if (!reply) return reply.status();
  auto f = flatArray(*reply, 3, "get_dag");
  if (!f || f->size() != 3) return malformed("get_dag");
  StoredDag d;
  d.dag_id = dag_id;
  if (!toInt((*f)[0], d.version)) return malformed("get_dag");
  d.paused = (*f)[1] == "1";
  d.spec_json = std::move((*f)[2]);
  return d;
}

Status RedisStore::setPaused(const std::string& dag_id, bool paused) {
  auto reply = client_.eval(lua::kSetPaused, {dag_id, boolArg(paused)});
  if (!reply) return reply.status();
  client_.logger()->info("dag {} dag_id={}", paused ? "paused" : "unpaused", dag_id);
  return Status::ok();
}

Result<std::vector<ScheduledDag>> RedisStore::scheduledDags() {
  auto reply = client_.eval(lua::kScheduledDags, {});
  if (!reply) return reply.status();
  auto f = flatArray(*reply, 11, "scheduled_dags");
  if (!f) return f.status();
  std::vector<ScheduledDag> out;
  for (std::size_t i = 0; i < f->size(); i += 11) {
    const auto* v = &(*f)[i];
    ScheduledDag d;
    bool ok = true;
    std::int64_t max_active = 0;
    d.dag_id = v[0];
    if (!toInt(v[1], d.version) || !toInt(v[7], max_active)) ok = false;
    d.schedule = v[2];
    d.schedule_timezone = v[3];
    d.start_date = micros(v[4], ok);
    d.end_date = micros(v[5], ok);
    d.catchup = v[6] == "1";
    d.max_active_runs = static_cast<int>(max_active);
    d.last_logical = micros(v[8], ok);
    d.ever_run = v[9] == "1";
    d.tenant = tenantOf(v[10]);
    if (!ok) return internalError("dag \"" + d.dag_id + "\" has a corrupt record");
    out.push_back(std::move(d));
  }
  return out;
}

// --- Runs ---------------------------------------------------------------------------------------------

namespace {

// create_run.lua's arguments for one run.
std::vector<std::string> createRunArgs(std::optional<Term> term, const NewRun& run) {
  return {term ? str(*term) : std::string(), run.key.dag_id, run.key.run_id,
          str(std::max<std::int64_t>(run.dag_version, 0)), std::string(toString(run.trigger)),
          toMicros(run.logical_date), run.conf_json, toMicros(run.queued_at), tenantOf(run.tenant)};
}

}  // namespace

Status RedisStore::createRun(std::optional<Term> term, const NewRun& run) {
  if (Status s = checkRunKey(run.key); !s) return s;
  auto reply = client_.eval(lua::kCreateRun, createRunArgs(term, run));
  if (!reply) return reply.status();
  std::int64_t uid = 0;
  if ((*reply)->type == REDIS_REPLY_ARRAY && (*reply)->elements == 2 &&
      (*reply)->element[1]->type == REDIS_REPLY_INTEGER) {
    uid = (*reply)->element[1]->integer;
  }
  client_.logger()->debug("run created dag_id={} run_id={} trigger={} uid={}", run.key.dag_id, run.key.run_id,
                          toString(run.trigger), uid);
  return Status::ok();
}

std::vector<Status> RedisStore::createRuns(std::optional<Term> term, std::span<const NewRun> runs) {
  // create_run.lua once per run, pipelined as cancelRuns does: one round trip for the lot, each run
  // still one script, so a run sees those of the same call before it as committed.
  std::vector<Status> out(runs.size(), Status::ok());
  std::vector<std::vector<std::string>> calls;
  std::vector<std::size_t> sent;  // calls[k] creates runs[sent[k]]
  for (std::size_t i = 0; i < runs.size(); ++i) {
    if (Status s = checkRunKey(runs[i].key); !s) {
      out[i] = s;
      continue;
    }
    calls.push_back(createRunArgs(term, runs[i]));
    sent.push_back(i);
  }
  std::vector<Result<ReplyPtr>> replies = client_.evalMany(lua::kCreateRun, calls);
  std::size_t created = 0;
  for (std::size_t k = 0; k < sent.size(); ++k) {
    out[sent[k]] = k < replies.size() ? replies[k].status() : internalError("create_run: the pipeline answered a part");
    if (out[sent[k]].isOk()) ++created;
  }
  client_.logger()->debug("runs created count={} of={}", created, runs.size());
  return out;
}

Result<std::vector<ActiveRun>> RedisStore::listActiveRuns() {
  auto reply = client_.eval(lua::kListActiveRuns, {});
  if (!reply) return reply.status();
  auto f = flatArray(*reply, 5, "list_active_runs");
  if (!f) return f.status();
  std::vector<ActiveRun> out;
  out.reserve(f->size() / 5);
  for (std::size_t i = 0; i < f->size(); i += 5) {
    ActiveRun r;
    bool ok = true;
    r.key = RunKey{(*f)[i], (*f)[i + 1]};
    const auto state = parseDagRunState((*f)[i + 3]);
    if (!toInt((*f)[i + 2], r.dag_version) || !state) ok = false;
    if (state) r.state = *state;
    r.queued_at = micros((*f)[i + 4], ok);
    if (!ok) return internalError("run \"" + r.key.run_id + "\" of dag \"" + r.key.dag_id + "\" has a corrupt record");
    out.push_back(std::move(r));
  }
  return out;
}

Result<std::vector<RunKey>> RedisStore::listActiveRunKeys() {
  // The active-run index alone, a page per ZSCAN: one ZRANGE of 100,000 members held Redis from its
  // other clients for 15-80 ms on a 2-core VM. ZSCAN costs it more in all (it prints every score),
  // but in pieces its other clients wait between. It returns every run that stays in the index for
  // the whole walk at least once (the listing's promise: one missing would look ended), and a run
  // twice only if Redis rehashed the index meanwhile: those are dropped. Members are
  // `<enc(dag)>:<enc(run)>`, and enc() escapes ':' (lua/common.lua).
  const std::string index = client_.settings().key_prefix + ":runs:active";
  std::vector<RunKey> out;
  std::unordered_set<std::string> seen;
  std::string cursor = "0";
  do {
    auto reply = client_.command({"ZSCAN", index, cursor, "COUNT", std::to_string(kActiveScanPage)});
    if (!reply) return reply.status();
    const redisReply* r = reply->get();
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 || r->element[1]->type != REDIS_REPLY_ARRAY ||
        r->element[1]->elements % 2 != 0) {
      return malformed("listActiveRunKeys");
    }
    cursor = elementText(r->element[0]);
    const redisReply* page = r->element[1];
    for (std::size_t i = 0; i < page->elements; i += 2) {
      std::string ref = elementText(page->element[i]);
      auto key = parseRunRef(ref);
      if (!key) return internalError("the active-run index holds a malformed entry \"" + ref + "\"");
      if (seen.insert(std::move(ref)).second) out.push_back(std::move(*key));
    }
  } while (cursor != "0");
  return out;
}

std::vector<Result<RunRecord>> RedisStore::loadRuns(std::span<const RunKey> keys) {
  // One MULTI/EXEC of three reads a run rather than a script: Redis runs a transaction as it runs a
  // script, alone, so each run is one consistent snapshot, and its native commands cost it a third
  // of what the same reads cost from Lua (a new leader reads every active run, and Redis, one
  // thread, was the takeover's bottleneck: issue 14 §3).
  std::vector<Result<RunRecord>> out;
  if (keys.empty()) return out;
  const std::string& prefix = client_.settings().key_prefix;
  std::vector<std::vector<std::string>> commands;
  commands.reserve(keys.size() * 3);
  for (const RunKey& k : keys) {
    // lua/common.lua runKey, tisKey and execKey.
    std::string run_key = prefix + ":run:" + encodeId(k.dag_id) + ":" + encodeId(k.run_id);
    std::vector<std::string> hmget{"HMGET", run_key};
    hmget.insert(hmget.end(), kLoadedRunFields.begin(), kLoadedRunFields.end());
    commands.push_back(std::move(hmget));
    commands.push_back({"HGETALL", run_key + ":tis"});
    commands.push_back({"HGETALL", run_key + ":exec"});
  }
  auto reply = client_.transaction(std::move(commands));
  out.reserve(keys.size());
  if (!reply) {
    for (std::size_t i = 0; i < keys.size(); ++i) out.emplace_back(reply.status());
    return out;
  }
  const redisReply* r = reply->get();
  for (std::size_t i = 0; i < keys.size(); ++i) {
    out.push_back(runFromReplies(r->element[3 * i], r->element[3 * i + 1], r->element[3 * i + 2], keys[i]));
  }
  return out;
}

std::vector<Result<TaskInstance>> RedisStore::loadTaskInstances(const RunKey& run,
                                                               std::span<const std::string> task_ids) {
  std::vector<Result<TaskInstance>> out;
  if (task_ids.empty()) return out;
  std::vector<std::string> args;
  args.reserve(task_ids.size() + 2);
  args.push_back(run.dag_id);
  args.push_back(run.run_id);
  args.insert(args.end(), task_ids.begin(), task_ids.end());
  auto reply = client_.eval(lua::kLoadTaskInstances, args);
  out.reserve(task_ids.size());
  auto failAll = [&](const Status& why) {
    for (std::size_t i = 0; i < task_ids.size(); ++i) out.emplace_back(why);
    return out;
  };
  if (!reply) return failAll(reply.status());
  const redisReply* r = reply->get();
  if (r->type != REDIS_REPLY_ARRAY || r->elements == 0 || r->element[0]->type != REDIS_REPLY_INTEGER) {
    return failAll(malformed("load_task_instances"));
  }
  if (r->element[0]->integer == 0) {
    return failAll(notFound("run \"" + run.run_id + "\" of dag \"" + run.dag_id + "\" does not exist"));
  }
  // {1, {record or '' per id}, {execution id or '' per id}}
  if (r->elements != 3 || r->element[1]->type != REDIS_REPLY_ARRAY || r->element[2]->type != REDIS_REPLY_ARRAY ||
      r->element[1]->elements != task_ids.size() || r->element[2]->elements != task_ids.size()) {
    return failAll(malformed("load_task_instances"));
  }
  for (std::size_t i = 0; i < task_ids.size(); ++i) {
    const std::string_view record = replyText(r->element[1]->element[i]);
    if (record.empty()) {
      out.emplace_back(notFound("task \"" + task_ids[i] + "\" of run \"" + run.run_id + "\" of dag \"" +
                                run.dag_id + "\" does not exist"));
      continue;
    }
    auto rec = decodeTiRecord(task_ids[i], record);
    if (!rec) {
      out.emplace_back(internalError("task \"" + task_ids[i] + "\" of run \"" + run.run_id + "\" of dag \"" +
                                     run.dag_id + "\" has a corrupt record"));
      continue;
    }
    // As loadRuns: only an attempt that started has a claim.
    if (rec->ti.started_at) rec->ti.execution_id = std::string(replyText(r->element[2]->element[i]));
    out.emplace_back(std::move(rec->ti));
  }
  return out;
}

Result<std::vector<RunRecord>> RedisStore::listRuns(const RunFilter& filter) {
  if (filter.limit == 0) return std::vector<RunRecord>{};
  if (filter.logical_since && filter.logical_until && *filter.logical_since > *filter.logical_until) {
    return std::vector<RunRecord>{};
  }
  // A page of the index per script (lua/list_runs.lua): a filter that matches few of many runs
  // reads them all, and in one script that held Redis for seconds (100,000 runs: 1.2-4.7 s).
  std::vector<RunRecord> out;
  std::string upper = toMicros(filter.logical_until);
  std::string skip = "0";
  for (;;) {
    const std::size_t wanted = filter.limit - out.size();
    auto reply = client_.eval(lua::kListRuns, {filter.dag_id ? "1" : "0", filter.dag_id.value_or(""),
                                               filter.state ? std::string(toString(*filter.state)) : std::string(),
                                               str(static_cast<std::int64_t>(std::min<std::size_t>(
                                                   wanted, std::numeric_limits<std::int64_t>::max()))),
                                               filter.tenant ? "1" : "0", filter.tenant.value_or(""),
                                               toMicros(filter.logical_since), upper, skip,
                                               str(static_cast<std::int64_t>(kRunIndexPage))});
    if (!reply) return reply.status();
    auto f = flatArray(*reply, 0, "list_runs");
    if (!f) return f.status();
    if (f->size() < 3 || (f->size() - 3) % kRunFields != 0) return malformed("list_runs");
    for (std::size_t i = 3; i < f->size(); i += kRunFields) {
      auto run = runFromFields(*f, i);
      if (!run) return run.status();
      out.push_back(std::move(*run));
    }
    if ((*f)[0] == "1" || out.size() >= filter.limit) break;
    upper = std::move((*f)[1]);
    skip = std::move((*f)[2]);
  }
  return out;
}

Result<std::vector<RunKey>> RedisStore::findRuns(const std::string& run_id) {
  auto reply = client_.command({"SMEMBERS", client_.settings().key_prefix + ":runid:" + encodeId(run_id)});
  if (!reply) return reply.status();
  auto f = flatArray(*reply, 0, "findRuns");
  if (!f) return f.status();
  std::sort(f->begin(), f->end());
  std::vector<RunKey> out;
  out.reserve(f->size());
  for (std::string& dag : *f) out.push_back(RunKey{std::move(dag), run_id});
  return out;
}

Status RedisStore::materializeRun(Term term, const RunKey& run, std::span<const NewTaskInstance> tasks,
                                  Timestamp at) {
  if (Status s = checkRunKey(run); !s) return s;
  std::vector<std::string> args{str(term), run.dag_id, run.run_id, toMicros(at)};
  args.reserve(4 + tasks.size() * 2);
  std::set<std::string_view> seen;
  for (const NewTaskInstance& t : tasks) {
    if (t.task_id.empty()) return invalidArgument("a task instance needs a task id");
    if (t.max_tries < 1) {
      return invalidArgument("task \"" + t.task_id + "\": max_tries must be at least 1, got " + str(t.max_tries));
    }
    if (!seen.insert(t.task_id).second) return invalidArgument("task \"" + t.task_id + "\" is listed twice");
    args.push_back(t.task_id);
    args.push_back(str(t.max_tries));
  }
  auto reply = client_.eval(lua::kMaterializeRun, args);
  if (!reply) return reply.status();
  client_.logger()->debug("run materialized dag_id={} run_id={} tasks={}", run.dag_id, run.run_id, tasks.size());
  return Status::ok();
}

Status RedisStore::setRunState(Term term, const RunKey& run, DagRunState from, DagRunState to, Timestamp at,
                               const std::string& note) {
  if (Status s = checkRunKey(run); !s) return s;
  auto reply = client_.eval(lua::kSetRunState, {str(term), run.dag_id, run.run_id, std::string(toString(from)),
                                                std::string(toString(to)), toMicros(at), note});
  return reply ? Status::ok() : reply.status();
}

Result<std::vector<bool>> RedisStore::applyTransitions(Term term, const RunKey& run,
                                                       std::span<const TaskTransitionWrite> writes, Timestamp at) {
  if (Status s = checkRunKey(run); !s) return s;
  std::vector<std::string> args{str(term), run.dag_id, run.run_id, toMicros(at)};
  args.reserve(4 + writes.size() * 6);
  for (const TaskTransitionWrite& w : writes) {
    args.insert(args.end(), {w.task_id, std::string(toString(w.from)), str(w.try_number), std::string(toString(w.to)),
                             w.note, boolArg(w.exhaust_retries)});
  }
  // An empty batch still goes to Redis: its answer says whether the term and the run are current.
  auto reply = client_.eval(lua::kApplyTransitions, args);
  if (!reply) return reply.status();
  if ((*reply)->type != REDIS_REPLY_ARRAY || (*reply)->elements != writes.size()) {
    return malformed("apply_transitions");
  }
  std::vector<bool> applied(writes.size());
  for (std::size_t i = 0; i < writes.size(); ++i) {
    applied[i] = (*reply)->element[i]->type == REDIS_REPLY_INTEGER && (*reply)->element[i]->integer == 1;
  }
  return applied;
}

// --- Reapers --------------------------------------------------------------------------------------------

Result<std::vector<OrphanCandidate>> RedisStore::listOrphanCandidates(std::size_t limit) {
  if (limit == 0) return std::vector<OrphanCandidate>{};
  // The active-run index a page per script (lua/list_orphan_candidates.lua), so Redis serves its
  // other clients between pages; the pages' candidates are few (runs with nothing in flight) and
  // sorted here. ZSCAN returns every run that stays in the index for the whole walk at least once,
  // a run twice only if Redis rehashed the index meanwhile.
  struct Found {
    OrphanCandidate candidate;
    double queued_score = 0;
    std::string ref;
  };
  std::vector<Found> found;
  std::set<std::string> seen;
  std::string cursor = "0";
  do {
    auto reply = client_.eval(lua::kListOrphanCandidates, {cursor, str(static_cast<std::int64_t>(kOrphanScanPage))});
    if (!reply) return reply.status();
    auto f = flatArray(*reply, 0, "list_orphan_candidates");
    if (!f || f->empty() || (f->size() - 1) % 5 != 0) return malformed("list_orphan_candidates");
    cursor = (*f)[0];
    for (std::size_t i = 1; i < f->size(); i += 5) {
      if (!seen.insert((*f)[i + 4]).second) continue;
      bool ok = true;
      Found c{OrphanCandidate{RunKey{(*f)[i], (*f)[i + 1]}, micros((*f)[i + 2], ok)}, 0, (*f)[i + 4]};
      char* end = nullptr;
      c.queued_score = std::strtod((*f)[i + 3].c_str(), &end);
      if (!ok || end == (*f)[i + 3].c_str()) return malformed("list_orphan_candidates");
      found.push_back(std::move(c));
    }
  } while (cursor != "0");
  // Stalest first (no activity at all first), then the index's own order: queued_at, then the ref.
  auto order = [](const Found& a, const Found& b) {
    const auto& x = a.candidate.last_activity;
    const auto& y = b.candidate.last_activity;
    if (x != y) return !x || (y && *x < *y);
    if (a.queued_score != b.queued_score) return a.queued_score < b.queued_score;
    return a.ref < b.ref;
  };
  const std::size_t n = std::min(limit, found.size());
  std::partial_sort(found.begin(), found.begin() + static_cast<std::ptrdiff_t>(n), found.end(), order);
  std::vector<OrphanCandidate> out;
  out.reserve(n);
  for (std::size_t i = 0; i < n; ++i) out.push_back(std::move(found[i].candidate));
  return out;
}

Status RedisStore::reapRun(Term term, const RunKey& run, Timestamp at, const std::string& note) {
  if (Status s = checkRunKey(run); !s) return s;
  auto reply = client_.eval(lua::kReapRun, {str(term), run.dag_id, run.run_id, toMicros(at), note});
  if (!reply) return reply.status();
  if ((*reply)->type == REDIS_REPLY_INTEGER && (*reply)->integer == 1) {
    client_.logger()->info("run reaped dag_id={} run_id={}", run.dag_id, run.run_id);
  }
  return Status::ok();
}

namespace {

struct IndexedAttempt {
  AttemptRef attempt;
  std::optional<Timestamp> stamp;
};

Result<std::vector<IndexedAttempt>> listTaskIndex(RedisClient& client, const char* which, std::size_t limit) {
  if (limit == 0) return std::vector<IndexedAttempt>{};
  auto reply = client.eval(lua::kListTaskIndex, {which, str(static_cast<std::int64_t>(limit))});
  if (!reply) return reply.status();
  auto f = flatArray(*reply, 5, "list_task_index");
  if (!f) return f.status();
  std::vector<IndexedAttempt> out;
  for (std::size_t i = 0; i < f->size(); i += 5) {
    IndexedAttempt a;
    bool ok = true;
    std::int64_t try_number = 0;
    a.attempt.run = RunKey{(*f)[i], (*f)[i + 1]};
    a.attempt.task_id = (*f)[i + 2];
    if (!toInt((*f)[i + 3], try_number)) ok = false;
    a.attempt.try_number = static_cast<std::int32_t>(try_number);
    a.stamp = micros((*f)[i + 4], ok);
    if (!ok) return malformed("list_task_index");
    out.push_back(std::move(a));
  }
  return out;
}

}  // namespace

Result<std::vector<AgentLostCandidate>> RedisStore::listAgentLostCandidates(std::size_t limit) {
  auto rows = listTaskIndex(client_, "running", limit);
  if (!rows) return rows.status();
  std::vector<AgentLostCandidate> out;
  out.reserve(rows->size());
  for (auto& r : *rows) out.push_back(AgentLostCandidate{std::move(r.attempt), r.stamp});
  return out;
}

Result<std::vector<DispatchLostCandidate>> RedisStore::listDispatchLostCandidates(std::size_t limit) {
  auto rows = listTaskIndex(client_, "queued", limit);
  if (!rows) return rows.status();
  std::vector<DispatchLostCandidate> out;
  out.reserve(rows->size());
  for (auto& r : *rows) out.push_back(DispatchLostCandidate{std::move(r.attempt), r.stamp});
  return out;
}

// --- Executor reports ----------------------------------------------------------------------------------

Status RedisStore::reportRunning(const ExecutionRef& execution, Timestamp at) {
  if (Status s = checkExecution(execution); !s) return s;
  auto reply = client_.eval(lua::kReportRunning, executionArgs(execution, at));
  return reply ? Status::ok() : reply.status();
}

Status RedisStore::reportHeartbeat(const ExecutionRef& execution, Timestamp at) {
  if (Status s = checkExecution(execution); !s) return s;
  auto reply = client_.eval(lua::kReportHeartbeat, executionArgs(execution, at));
  return reply ? Status::ok() : reply.status();
}

Status RedisStore::reportFinished(const ExecutionRef& execution, const TaskOutcome& outcome, Timestamp at) {
  if (Status s = checkExecution(execution); !s) return s;
  auto args = executionArgs(execution, at);
  args.insert(args.end(), {outcome.success ? "success" : "failed",
                           outcome.exit_code ? str(*outcome.exit_code) : std::string(), outcome.message});
  auto reply = client_.eval(lua::kReportFinished, args);
  return reply ? Status::ok() : reply.status();
}

// --- A person's commands ---------------------------------------------------------------------------------

namespace {

// clear_tasks.lua's arguments for one request; a negative retries is refused before any call.
Result<std::vector<std::string>> clearTasksArgs(const ClearRequest& request) {
  std::vector<std::string> args{request.run.dag_id, request.run.run_id, boolArg(request.failed_only), request.note,
                                toMicros(request.at)};
  args.reserve(5 + request.tasks.size() * 2);
  for (const ClearTask& t : request.tasks) {
    if (t.retries < 0) {
      return invalidArgument("task \"" + t.task_id + "\": retries must not be negative, got " + str(t.retries));
    }
    args.push_back(t.task_id);
    args.push_back(str(t.retries));
  }
  return args;
}

// The replies of a pipelined operator script (evalMany), the k-th answering out[sent[k]]: each
// run's outcome, or its refusal. Returns how many runs the script did not refuse.
std::size_t answerEach(const std::vector<Result<ReplyPtr>>& replies, const std::vector<std::size_t>& sent,
                       std::string_view script, std::vector<Result<OperatorOutcome>>& out) {
  std::size_t done = 0;
  for (std::size_t k = 0; k < sent.size(); ++k) {
    Result<OperatorOutcome>& o = out[sent[k]];
    if (k >= replies.size()) {
      o = internalError(std::string(script) + ": the pipeline answered " + std::to_string(replies.size()) + " of " +
                        std::to_string(sent.size()) + " calls");
      continue;
    }
    o = replies[k] ? outcomeFrom(*replies[k], script) : Result<OperatorOutcome>(replies[k].status());
    if (o) ++done;
  }
  return done;
}

}  // namespace

Result<OperatorOutcome> RedisStore::clearTasks(const ClearRequest& request) {
  if (Status s = checkRunKey(request.run); !s) return s;
  auto args = clearTasksArgs(request);
  if (!args) return args.status();
  auto reply = client_.eval(lua::kClearTasks, *args);
  if (!reply) return reply.status();
  auto out = outcomeFrom(*reply, "clear_tasks");
  if (out && !out->changed_tasks.empty()) {
    client_.logger()->info("tasks cleared dag_id={} run_id={} count={}", request.run.dag_id, request.run.run_id,
                           out->changed_tasks.size());
  }
  return out;
}

std::vector<Result<OperatorOutcome>> RedisStore::clearRuns(std::span<const ClearRequest> requests) {
  // clear_tasks.lua once per run, pipelined as cancelRuns does: one round trip for the lot, each
  // run's clear still one script. A request the store refuses outright is answered without a call.
  std::vector<Result<OperatorOutcome>> out(requests.size(), Result<OperatorOutcome>(OperatorOutcome{}));
  std::vector<std::vector<std::string>> calls;
  std::vector<std::size_t> sent;  // calls[k] clears requests[sent[k]]
  for (std::size_t i = 0; i < requests.size(); ++i) {
    if (Status s = checkRunKey(requests[i].run); !s) {
      out[i] = s;
      continue;
    }
    auto args = clearTasksArgs(requests[i]);
    if (!args) {
      out[i] = args.status();
      continue;
    }
    calls.push_back(std::move(args).value());
    sent.push_back(i);
  }
  const std::size_t done = answerEach(client_.evalMany(lua::kClearTasks, calls), sent, "clear_tasks", out);
  client_.logger()->info("runs cleared count={} of={}", done, requests.size());
  return out;
}

Result<OperatorOutcome> RedisStore::markTask(const MarkTaskRequest& request) {
  if (Status s = checkRunKey(request.run); !s) return s;
  if (request.to != TaskState::kSuccess && request.to != TaskState::kFailed && request.to != TaskState::kSkipped) {
    return invalidArgument("a task can be marked success, failed or skipped, not " + std::string(toString(request.to)));
  }
  auto reply = client_.eval(lua::kMarkTask, {request.run.dag_id, request.run.run_id, request.task_id,
                                             std::string(toString(request.to)), request.note, toMicros(request.at)});
  if (!reply) return reply.status();
  auto out = outcomeFrom(*reply, "mark_task");
  if (out) {
    client_.logger()->info("task marked dag_id={} run_id={} task_id={} state={}", request.run.dag_id,
                           request.run.run_id, request.task_id, toString(request.to));
  }
  return out;
}

Result<OperatorOutcome> RedisStore::markRun(const MarkRunRequest& request) {
  if (Status s = checkRunKey(request.run); !s) return s;
  if (request.to != DagRunState::kSuccess && request.to != DagRunState::kFailed) {
    return invalidArgument("a run can be marked success or failed, not " + std::string(toString(request.to)));
  }
  auto reply = client_.eval(lua::kMarkRun, {request.run.dag_id, request.run.run_id, std::string(toString(request.to)),
                                            request.note, toMicros(request.at)});
  if (!reply) return reply.status();
  auto out = outcomeFrom(*reply, "mark_run");
  if (out) {
    client_.logger()->info("run marked dag_id={} run_id={} state={}", request.run.dag_id, request.run.run_id,
                           toString(request.to));
  }
  return out;
}

Result<OperatorOutcome> RedisStore::cancelRun(const CancelRunRequest& request) {
  if (Status s = checkRunKey(request.run); !s) return s;
  auto reply = client_.eval(lua::kCancelRun, {request.run.dag_id, request.run.run_id, request.note,
                                              toMicros(request.at)});
  if (!reply) return reply.status();
  auto out = outcomeFrom(*reply, "cancel_run");
  if (out) client_.logger()->info("run cancelled dag_id={} run_id={}", request.run.dag_id, request.run.run_id);
  return out;
}

std::vector<Result<OperatorOutcome>> RedisStore::cancelRuns(std::span<const CancelRunRequest> requests) {
  // cancel_run.lua once per run, pipelined: one round trip for the lot, each run's cancel still one
  // script (all or nothing on its own). A key the store cannot hold is answered without a call.
  std::vector<Result<OperatorOutcome>> out(requests.size(), Result<OperatorOutcome>(OperatorOutcome{}));
  std::vector<std::vector<std::string>> calls;
  std::vector<std::size_t> sent;  // calls[k] cancels requests[sent[k]]
  for (std::size_t i = 0; i < requests.size(); ++i) {
    const CancelRunRequest& r = requests[i];
    if (Status s = checkRunKey(r.run); !s) {
      out[i] = s;
      continue;
    }
    calls.push_back({r.run.dag_id, r.run.run_id, r.note, toMicros(r.at)});
    sent.push_back(i);
  }
  const std::size_t done = answerEach(client_.evalMany(lua::kCancelRun, calls), sent, "cancel_run", out);
  client_.logger()->info("runs cancelled count={} of={}", done, requests.size());
  return out;
}

Status RedisStore::deleteDag(const std::string& dag_id) {
  // The DAG's runs in slices (lua/delete_dag_runs.lua): first a read of them all that refuses as
  // the last step would, then the finished ones removed; the last step (lua/delete_dag.lua)
  // removes the DAG with whatever came or finished meanwhile, or refuses if a run became active.
  std::int64_t removed = 0;
  for (const bool check : {true, false}) {
    std::string start = "0";
    for (;;) {
      const std::int64_t slice = check ? static_cast<std::int64_t>(kRunIndexPage) : kRemoveSlice;
      auto reply = client_.eval(lua::kDeleteDagRuns, {dag_id, check ? "check" : "remove", start, str(slice)});
      if (!reply) return reply.status();
      auto f = flatArray(*reply, 3, "delete_dag_runs");
      if (!f) return f.status();
      std::int64_t next = 0;
      std::int64_t slice_removed = 0;
      if (f->size() != 3 || !toInt((*f)[1], next) || !toInt((*f)[2], slice_removed)) {
        return malformed("delete_dag_runs");
      }
      removed += slice_removed;
      if ((*f)[0] == "1") break;
      start = str(next);
    }
  }
  auto reply = client_.eval(lua::kDeleteDag, {dag_id});
  if (!reply) return reply.status();
  auto runs = integerReply(*reply, "delete_dag");
  if (!runs) return runs.status();
  client_.logger()->info("dag deleted dag_id={} runs={}", dag_id, removed + *runs);
  return Status::ok();
}

// --- Change feed ------------------------------------------------------------------------------------------

Status RedisStore::subscribe(ChangeSink& sink) { return subscribeTo(client_.channel(), sink); }

Status RedisStore::subscribeRuns(ChangeSink& sink) {
  return subscribeTo(runChangeChannel(client_.settings().key_prefix, client_.settings().endpoint.db), sink);
}

Status RedisStore::subscribeTo(const std::string& channel, ChangeSink& sink) {
  std::lock_guard lock(feed_mu_);
  if (feed_) return invalidArgument("the store already has a change-feed subscriber; unsubscribe first");
  auto feed = std::make_unique<ChangeFeed>(client_.settings(), channel, client_.logger());
  if (Status s = feed->start(sink); !s) return s;
  feed_ = std::move(feed);
  return Status::ok();
}

void RedisStore::unsubscribe() {
  std::unique_ptr<ChangeFeed> feed;
  {
    std::lock_guard lock(feed_mu_);
    feed = std::move(feed_);
  }
  if (feed) feed->stop();
}

// --- Maintenance ------------------------------------------------------------------------------------------

Result<std::optional<std::int64_t>> RedisStore::deleteFinishedRuns(Timestamp before) {
  // In slices that each read a bounded part of the run index from where the last ended, so no
  // single script holds Redis for long (lua/delete_finished_runs.lua).
  std::int64_t total = 0;
  std::string score;
  std::string skip = "0";
  for (;;) {
    auto reply = client_.eval(lua::kDeleteFinishedRuns, {toMicros(before), str(kRemoveSlice), score, skip,
                                                         str(static_cast<std::int64_t>(kRunIndexPage))});
    if (!reply) return reply.status();
    auto f = flatArray(*reply, 4, "delete_finished_runs");
    if (!f) return f.status();
    std::int64_t deleted = 0;
    if (f->size() != 4 || !toInt((*f)[1], deleted)) return malformed("delete_finished_runs");
    total += deleted;
    if ((*f)[0] == "1") break;
    score = std::move((*f)[2]);
    skip = std::move((*f)[3]);
  }
  client_.logger()->info("finished runs deleted count={}", total);
  return std::optional<std::int64_t>(total);
}

}  // namespace leoflow::plugins::store_redis
