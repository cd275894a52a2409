#include "support/memory_store.h"

#include <algorithm>
#include <deque>
#include <stdexcept>
#include <thread>
#include <tuple>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include <fmt/core.h>

#include "planning/transitions.h"

namespace leoflow::testing {

// ---------------------------------------------------------------------------------------------------
// ManualClock

namespace {
constexpr Timestamp kDefaultClockStart{
    std::chrono::sys_days{std::chrono::year{2026} / std::chrono::January / 1}};
}  // namespace

ManualClock::ManualClock() : ManualClock(kDefaultClockStart) {}

ManualClock::ManualClock(Timestamp start) : micros_(start.time_since_epoch().count()) {}

Timestamp ManualClock::now() const { return Timestamp{std::chrono::microseconds{micros_.load()}}; }

void ManualClock::set(Timestamp t) { micros_.store(t.time_since_epoch().count()); }

void ManualClock::advance(std::chrono::microseconds d) { micros_.fetch_add(d.count()); }

// ---------------------------------------------------------------------------------------------------
// Method names

std::string_view toString(Method m) noexcept {
  switch (m) {
    case Method::kPing: return "ping";
    case Method::kClaimTerm: return "claimTerm";
    case Method::kRecordLiveness: return "recordLiveness";
    case Method::kReadLiveness: return "readLiveness";
    case Method::kSyncDags: return "syncDags";
    case Method::kListDags: return "listDags";
    case Method::kGetDag: return "getDag";
    case Method::kSetPaused: return "setPaused";
    case Method::kScheduledDags: return "scheduledDags";
    case Method::kCreateRun: return "createRun";
    case Method::kListActiveRuns: return "listActiveRuns";
    case Method::kLoadRuns: return "loadRuns";
    case Method::kListRuns: return "listRuns";
    case Method::kFindRuns: return "findRuns";
    case Method::kMaterializeRun: return "materializeRun";
    case Method::kSetRunState: return "setRunState";
    case Method::kApplyTransitions: return "applyTransitions";
    case Method::kListOrphanCandidates: return "listOrphanCandidates";
    case Method::kReapRun: return "reapRun";
    case Method::kListAgentLostCandidates: return "listAgentLostCandidates";
    case Method::kListDispatchLostCandidates: return "listDispatchLostCandidates";
    case Method::kReportRunning: return "reportRunning";
    case Method::kReportHeartbeat: return "reportHeartbeat";
    case Method::kReportFinished: return "reportFinished";
    case Method::kSubscribe: return "subscribe";
    case Method::kUnsubscribe: return "unsubscribe";
    case Method::kClearTasks: return "clearTasks";
    case Method::kMarkTask: return "markTask";
    case Method::kMarkRun: return "markRun";
    case Method::kCancelRun: return "cancelRun";
    case Method::kDeleteDag: return "deleteDag";
    case Method::kLoadTaskInstances: return "loadTaskInstances";
    case Method::kListActiveRunKeys: return "listActiveRunKeys";
    case Method::kCancelRuns: return "cancelRuns";
    case Method::kClearRuns: return "clearRuns";
    case Method::kCreateRuns: return "createRuns";
    case Method::kSubscribeRuns: return "subscribeRuns";
  }
  return "?";
}

// ---------------------------------------------------------------------------------------------------
// The change feed: a queue and one delivery thread per backend.

namespace {

class ChangeFeed {
 public:
  ChangeFeed() = default;
  ChangeFeed(const ChangeFeed&) = delete;
  ChangeFeed& operator=(const ChangeFeed&) = delete;

  ~ChangeFeed() {
    {
      std::lock_guard lock(mutex_);
      stop_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) {
      // The last handle can only be dropped from the delivery thread by a sink that owns a handle;
      // joining ourselves would throw, so let the thread finish on its own then.
      if (thread_.get_id() == std::this_thread::get_id()) {
        thread_.detach();
      } else {
        thread_.join();
      }
    }
  }

  /// One sink per owner (a MemoryStore handle): store.h allows one subscriber at a time.
  /// `runs_only`: the sink gets only kRun changes and resyncs (subscribeRuns).
  Status subscribe(const void* owner, ChangeSink* sink, bool runs_only = false) {
    std::lock_guard lock(mutex_);
    if (sinks_.count(owner) != 0) {
      return invalidArgument("already subscribed: unsubscribe() before subscribing another sink");
    }
    sinks_.emplace(owner, Subscriber{sink, runs_only});
    if (!thread_.joinable()) thread_ = std::thread([this] { deliverLoop(); });
    return {};
  }

  /// After this returns the owner's sink is never called again (store.h: the sink must only
  /// outlive the subscription), unless we are on the delivery thread itself, inside that sink.
  void unsubscribe(const void* owner) {
    std::unique_lock lock(mutex_);
    auto it = sinks_.find(owner);
    if (it == sinks_.end()) return;
    ChangeSink* sink = it->second.sink;
    sinks_.erase(it);
    if (thread_.get_id() == std::this_thread::get_id()) return;
    cv_.wait(lock, [&] { return delivering_ != sink; });
  }

  bool subscribed(const void* owner) const {
    std::lock_guard lock(mutex_);
    return sinks_.count(owner) != 0;
  }

  void publish(std::vector<Change> changes) {
    if (changes.empty()) return;
    {
      std::lock_guard lock(mutex_);
      if (sinks_.empty()) return;  // nobody listens: keep no backlog
      for (Change& c : changes) queue_.push_back(Item{false, std::move(c)});
    }
    cv_.notify_all();
  }

  void resync() {
    {
      std::lock_guard lock(mutex_);
      if (sinks_.empty()) return;
      queue_.push_back(Item{true, {}});
    }
    cv_.notify_all();
  }

  void drain() const {
    std::unique_lock lock(mutex_);
    if (thread_.joinable() && thread_.get_id() == std::this_thread::get_id()) return;
    cv_.wait(lock, [&] { return queue_.empty() && !busy_; });
  }

 private:
  struct Item {
    bool resync = false;
    Change change;
  };

  void deliverLoop() {
    std::unique_lock lock(mutex_);
    for (;;) {
      cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
      if (stop_) return;
      Item item = std::move(queue_.front());
      queue_.pop_front();
      busy_ = true;
      std::vector<const void*> owners;
      owners.reserve(sinks_.size());
      for (const auto& [owner, sink] : sinks_) owners.push_back(owner);
      for (const void* owner : owners) {
        // Re-checked under the lock for each sink: one may have unsubscribed meanwhile.
        auto it = sinks_.find(owner);
        if (it == sinks_.end()) continue;
        if (!item.resync && it->second.runs_only && item.change.kind != Change::Kind::kRun) continue;
        ChangeSink* sink = it->second.sink;
        delivering_ = sink;
        lock.unlock();
        try {
          if (item.resync) {
            sink->onResync();
          } else {
            sink->onChange(item.change);
          }
        } catch (...) {
          // A throwing sink must not end the feed for everyone else.
        }
        lock.lock();
        delivering_ = nullptr;
        cv_.notify_all();
      }
      busy_ = false;
      cv_.notify_all();
    }
  }

  mutable std::mutex mutex_;
  mutable std::condition_variable cv_;
  std::deque<Item> queue_;
  struct Subscriber {
    ChangeSink* sink = nullptr;
    bool runs_only = false;
  };
  std::map<const void*, Subscriber> sinks_;
  ChangeSink* delivering_ = nullptr;
  bool busy_ = false;
  bool stop_ = false;
  std::thread thread_;
};

/// A run with an index of its instances. Each instance's execution_id is the execution that claimed
/// its current attempt (ARCHITECTURE §8.13), empty before the claim.
struct RunEntry {
  RunRecord record;
  std::unordered_map<std::string, std::size_t> index;  ///< task_id → position in record.tasks

  void reindex() {
    index.clear();
    for (std::size_t i = 0; i < record.tasks.size(); ++i) index[record.tasks[i].task_id] = i;
  }
  TaskInstance* find(const std::string& task_id) {
    auto it = index.find(task_id);
    return it == index.end() ? nullptr : &record.tasks[it->second];
  }
};

struct DagEntry {
  bool paused = false;  // a new DAG starts unpaused (BEHAVIOUR §8: is_paused defaults to false)
  std::vector<DagDefinition> versions;  ///< versions[i] is version i + 1
};

}  // namespace

class MemoryBackend {
 public:
  std::mutex mutex;
  Term term = 0;
  bool claimed = false;
  std::string holder;
  std::optional<LivenessRecord> liveness;
  std::map<std::string, DagEntry> dags;
  std::map<RunKey, RunEntry> runs;
  /// The last run uid issued. Never lowered, not by deleteDag either: a uid is never reissued.
  std::int64_t last_uid = 0;
  // Declared last so it is destroyed first: its thread stops before the data goes.
  ChangeFeed feed;
};

// ---------------------------------------------------------------------------------------------------
// Rules shared by the Store methods.

namespace {

using planning::canTransition;
using planning::canTransitionDagRun;

std::string describe(const RunKey& k) { return k.dag_id + "/" + k.run_id; }

std::string describe(const AttemptRef& a) {
  return fmt::format("{}/{} try {}", describe(a.run), a.task_id, a.try_number);
}

Change runChange(const RunKey& key, Term leader_term = 0) {
  Change c;
  c.kind = Change::Kind::kRun;
  c.run = key;
  c.leader_term = leader_term;
  return c;
}

Change taskChange(const RunKey& key, const std::string& task_id) {
  Change c;
  c.kind = Change::Kind::kTask;
  c.run = key;
  c.task_id = task_id;
  return c;
}

Change dagChange(const std::string& dag_id) {
  Change c;
  c.kind = Change::Kind::kDag;
  c.dag_id = dag_id;
  return c;
}

/// ARCHITECTURE §8.7: only the claimed current term may decide. A term above the current one was
/// never issued by claimTerm, so it is no more trustworthy than a stale one.
Status checkTerm(const MemoryBackend& b, Term term) {
  if (!b.claimed) return fenced(fmt::format("term {} refused: no term has been claimed yet", term));
  if (term < b.term) {
    return fenced(fmt::format("term {} refused: the current term is {} (held by {})", term, b.term,
                              b.holder));
  }
  if (term > b.term) {
    return fenced(fmt::format("term {} refused: it was never claimed (the current term is {})", term,
                              b.term));
  }
  return {};
}

/// A move out of up_for_retry into a live state starts the next attempt. store.h names only
/// up_for_retry → none; the table (§8.2) also allows → scheduled and → queued, and those must not
/// re-run the finished attempt under its old try number either, or that attempt's late reports
/// would land on the new one (BEHAVIOUR §10 item 3).
bool startsNextAttempt(TaskState from, TaskState to) {
  return from == TaskState::kUpForRetry &&
         (to == TaskState::kNone || to == TaskState::kScheduled || to == TaskState::kQueued);
}

/// BEHAVIOUR §10 items 1 and 6: nothing of the previous attempt may be mistaken for the new one.
void clearAttempt(TaskInstance& ti) {
  ti.scheduled_at.reset();
  ti.queued_at.reset();
  ti.started_at.reset();
  ti.ended_at.reset();
  ti.last_heartbeat_at.reset();
  ti.exit_code.reset();
  ti.note.clear();
  ti.execution_id.clear();  // a new attempt has no claim yet
}

void stampEntry(TaskInstance& ti, TaskState to, Timestamp at) {
  switch (to) {
    case TaskState::kScheduled: ti.scheduled_at = at; break;
    case TaskState::kQueued: ti.queued_at = at; break;
    case TaskState::kRunning:
      ti.started_at = at;
      ti.last_heartbeat_at = at;  // §8.8: the first heartbeat, so agent-lost can find it
      break;
    case TaskState::kSuccess:
    case TaskState::kFailed:
    case TaskState::kSkipped:
    case TaskState::kUpstreamFailed: ti.ended_at = at; break;
    case TaskState::kNone:
    case TaskState::kUpForRetry: break;
  }
}

/// The guarded move of store.h's TaskTransitionWrite; false leaves the row untouched.
bool applyWrite(TaskInstance& ti, const TaskTransitionWrite& w, Timestamp at) {
  if (ti.state != w.from || ti.try_number != w.try_number) return false;
  if (!canTransition(w.from, w.to)) return false;  // §8.2: every write is checked against the table
  if (startsNextAttempt(w.from, w.to)) {
    ++ti.try_number;
    clearAttempt(ti);
  }
  if (w.from == TaskState::kQueued && w.to == TaskState::kScheduled) ti.queued_at.reset();
  stampEntry(ti, w.to, at);
  if (w.to == TaskState::kFailed && w.exhaust_retries) ti.max_tries = ti.try_number;
  if (!w.note.empty()) ti.note = w.note;
  ti.state = w.to;
  return true;
}

/// BEHAVIOUR §4.2 with §10 item 5: a run waiting on a retry delay is not orphaned.
bool keepsRunAlive(TaskState s) {
  return s == TaskState::kScheduled || s == TaskState::kQueued || s == TaskState::kRunning ||
         s == TaskState::kUpForRetry;
}

void raise(std::optional<Timestamp>& latest, const std::optional<Timestamp>& t) {
  if (t && (!latest || *t > *latest)) latest = t;
}

/// Orders optional stamps with "never" first: the least active sorts oldest.
bool olderStamp(const std::optional<Timestamp>& a, const std::optional<Timestamp>& b) {
  if (!a) return b.has_value();
  if (!b) return false;
  return *a < *b;
}

ActiveRun toActive(const RunRecord& r) {
  return ActiveRun{r.key, r.dag_version, r.state, r.queued_at};
}

bool isActive(DagRunState s) { return s == DagRunState::kQueued || s == DagRunState::kRunning; }

std::vector<ActiveRun> collectActive(const MemoryBackend& b) {
  std::vector<ActiveRun> out;
  for (const auto& [key, entry] : b.runs) {
    if (isActive(entry.record.state)) out.push_back(toActive(entry.record));
  }
  std::stable_sort(out.begin(), out.end(), [](const ActiveRun& x, const ActiveRun& y) {
    if (x.queued_at != y.queued_at) return olderStamp(x.queued_at, y.queued_at);
    return x.key < y.key;
  });
  return out;
}

/// Finds the instance an executor reports about; kConflict when the attempt is not the current one.
Status findAttempt(MemoryBackend& b, const AttemptRef& a, TaskInstance*& out) {
  auto it = b.runs.find(a.run);
  if (it == b.runs.end()) return notFound(fmt::format("run {} does not exist", describe(a.run)));
  TaskInstance* ti = it->second.find(a.task_id);
  if (ti == nullptr) {
    return notFound(fmt::format("run {} has no task {}", describe(a.run), a.task_id));
  }
  if (ti->try_number != a.try_number) {
    return conflict(fmt::format("attempt {} is not current (the task is on try {})", describe(a),
                                ti->try_number));
  }
  out = ti;
  return {};
}

// The attempt of an execution's report after its claim: current, running, and claimed by this very
// execution (ARCHITECTURE §8.13); `what` names the report for the message.
Status claimedAttempt(MemoryBackend& b, const ExecutionRef& e, TaskInstance*& out, const char* what) {
  if (Status s = findAttempt(b, e.attempt, out); !s.isOk()) return s;
  if (out->state == TaskState::kQueued) {
    return conflict(fmt::format("attempt {} is queued: no execution claimed it, so no {} is accepted",
                                describe(e.attempt), what));
  }
  if (out->state != TaskState::kRunning) {
    return conflict(fmt::format("attempt {} is {}, it has ended", describe(e.attempt), toString(out->state)));
  }
  if (out->execution_id != e.execution_id) {
    return conflict(fmt::format("attempt {} is claimed by execution {}, not {}", describe(e.attempt),
                                out->execution_id, e.execution_id));
  }
  return {};
}

}  // namespace

// ---------------------------------------------------------------------------------------------------
// MemoryStore: construction and hooks

MemoryStore::MemoryStore() : MemoryStore(std::make_shared<MemoryBackend>()) {}

MemoryStore::MemoryStore(std::shared_ptr<MemoryBackend> backend) : backend_(std::move(backend)) {
  if (!backend_) throw std::invalid_argument("MemoryStore needs a backend");
}

MemoryStore::~MemoryStore() {
  backend_->feed.unsubscribe(this);
  unblock();
}

std::unique_ptr<MemoryStore> MemoryStore::openHandle() const {
  return std::make_unique<MemoryStore>(backend_);
}

Status MemoryStore::enter(Method m) {
  const auto i = static_cast<std::size_t>(m);
  std::unique_lock lock(hooks_mutex_);
  ++calls_[i];
  if (blocked_[i]) {
    ++waiting_[i];
    hooks_cv_.notify_all();
    hooks_cv_.wait(lock, [&] { return !blocked_[i]; });
    --waiting_[i];
  }
  Fault& fault = faults_[i];
  if (fault.kind == Fault::Kind::kNone) return {};
  const Fault fired = fault;
  if (fault.remaining != kForever && --fault.remaining <= 0) fault = Fault{};
  lock.unlock();
  if (fired.kind == Fault::Kind::kThrow) {
    throw std::runtime_error(fmt::format("injected exception in MemoryStore::{}", toString(m)));
  }
  return fired.status;
}

void MemoryStore::failNext(Method m, Status status, int times) {
  if (status.isOk()) throw std::invalid_argument("failNext needs a failing Status");
  std::lock_guard lock(hooks_mutex_);
  faults_[static_cast<std::size_t>(m)] = Fault{Fault::Kind::kStatus, std::move(status), times};
}

void MemoryStore::failAlways(Method m, Status status) { failNext(m, std::move(status), kForever); }

void MemoryStore::throwOn(Method m, int times) {
  std::lock_guard lock(hooks_mutex_);
  faults_[static_cast<std::size_t>(m)] = Fault{Fault::Kind::kThrow, {}, times};
}

void MemoryStore::blockOn(Method m) {
  std::lock_guard lock(hooks_mutex_);
  blocked_[static_cast<std::size_t>(m)] = true;
}

void MemoryStore::unblock() {
  {
    std::lock_guard lock(hooks_mutex_);
    blocked_.fill(false);
  }
  hooks_cv_.notify_all();
}

bool MemoryStore::waitUntilBlocked(Method m, std::chrono::milliseconds timeout, int callers) const {
  std::unique_lock lock(hooks_mutex_);
  return hooks_cv_.wait_for(lock, timeout,
                            [&] { return waiting_[static_cast<std::size_t>(m)] >= callers; });
}

void MemoryStore::failLoadOf(const RunKey& run, Status status) {
  if (status.isOk()) throw std::invalid_argument("failLoadOf needs a failing Status");
  std::lock_guard lock(hooks_mutex_);
  load_faults_[run] = std::move(status);
}

void MemoryStore::clearFault(Method m) {
  std::lock_guard lock(hooks_mutex_);
  faults_[static_cast<std::size_t>(m)] = Fault{};
}

void MemoryStore::clearFailures() {
  {
    std::lock_guard lock(hooks_mutex_);
    faults_.fill(Fault{});
    load_faults_.clear();
  }
  unblock();
}

int MemoryStore::calls(Method m) const {
  std::lock_guard lock(hooks_mutex_);
  return calls_[static_cast<std::size_t>(m)];
}

void MemoryStore::resetCalls() {
  std::lock_guard lock(hooks_mutex_);
  calls_.fill(0);
}

std::optional<Status> MemoryStore::loadFaultFor(const RunKey& key) const {
  std::lock_guard lock(hooks_mutex_);
  auto it = load_faults_.find(key);
  if (it == load_faults_.end()) return std::nullopt;
  return it->second;
}

// ---------------------------------------------------------------------------------------------------
// Term and liveness

Status MemoryStore::ping() { return enter(Method::kPing); }

Result<Term> MemoryStore::claimTerm(const std::string& holder) {
  if (Status s = enter(Method::kClaimTerm); !s.isOk()) return s;
  std::lock_guard lock(backend_->mutex);
  backend_->term += 1;
  backend_->claimed = true;
  backend_->holder = holder;
  return backend_->term;
}

Status MemoryStore::recordLiveness(Term term, const LivenessRecord& record) {
  if (Status s = enter(Method::kRecordLiveness); !s.isOk()) return s;
  std::lock_guard lock(backend_->mutex);
  if (Status s = checkTerm(*backend_, term); !s.isOk()) return s;
  backend_->liveness = record;
  return {};
}

Result<std::optional<LivenessRecord>> MemoryStore::readLiveness() {
  if (Status s = enter(Method::kReadLiveness); !s.isOk()) return s;
  std::lock_guard lock(backend_->mutex);
  return backend_->liveness;
}

// ---------------------------------------------------------------------------------------------------
// Catalog

Result<std::vector<DagRegistration>> MemoryStore::syncDags(std::span<const DagDefinition> dags) {
  if (Status s = enter(Method::kSyncDags); !s.isOk()) return s;
  // Validate the whole batch before touching anything: all or nothing (§8.6).
  std::unordered_set<std::string> seen;
  for (const DagDefinition& d : dags) {
    if (d.spec.dag_id.empty()) return invalidArgument("a DAG without a dag_id cannot be registered");
    if (!seen.insert(d.spec.dag_id).second) {
      return invalidArgument(fmt::format("DAG {} appears twice in one sync", d.spec.dag_id));
    }
  }
  std::lock_guard lock(backend_->mutex);
  std::vector<DagRegistration> out;
  std::vector<Change> changes;
  out.reserve(dags.size());
  for (const DagDefinition& d : dags) {
    DagEntry& entry = backend_->dags[d.spec.dag_id];
    const bool changed = entry.versions.empty() || entry.versions.back().spec_json != d.spec_json;
    if (changed) {
      entry.versions.push_back(d);
      changes.push_back(dagChange(d.spec.dag_id));
    }
    out.push_back(DagRegistration{d.spec.dag_id, static_cast<std::int64_t>(entry.versions.size()),
                                  changed});
  }
  backend_->feed.publish(std::move(changes));
  return out;
}

Result<std::vector<DagSummary>> MemoryStore::listDags() {
  if (Status s = enter(Method::kListDags); !s.isOk()) return s;
  std::lock_guard lock(backend_->mutex);
  std::vector<DagSummary> out;
  for (const auto& [id, entry] : backend_->dags) {
    const DagSpec& spec = entry.versions.back().spec;
    out.push_back(DagSummary{id, spec.schedule, entry.paused,
                             static_cast<std::int64_t>(entry.versions.size()), spec.tenant});
  }
  return out;
}

Result<StoredDag> MemoryStore::getDag(const std::string& dag_id,
                                      std::optional<std::int64_t> version) {
  if (Status s = enter(Method::kGetDag); !s.isOk()) return s;
  std::lock_guard lock(backend_->mutex);
  auto it = backend_->dags.find(dag_id);
  if (it == backend_->dags.end()) return notFound(fmt::format("DAG {} does not exist", dag_id));
  const DagEntry& entry = it->second;
  const auto count = static_cast<std::int64_t>(entry.versions.size());
  const std::int64_t v = version.value_or(count);
  if (v < 1 || v > count) {
    return notFound(fmt::format("DAG {} has no version {} (it has 1 to {})", dag_id, v, count));
  }
  return StoredDag{dag_id, v, entry.paused, entry.versions[static_cast<std::size_t>(v - 1)].spec_json};
}

Status MemoryStore::setPaused(const std::string& dag_id, bool paused) {
  if (Status s = enter(Method::kSetPaused); !s.isOk()) return s;
  std::lock_guard lock(backend_->mutex);
  auto it = backend_->dags.find(dag_id);
  if (it == backend_->dags.end()) return notFound(fmt::format("DAG {} does not exist", dag_id));
  if (it->second.paused != paused) {
    it->second.paused = paused;
    backend_->feed.publish({dagChange(dag_id)});  // an unpause should wake the run creator
  }
  return {};
}

Result<std::vector<ScheduledDag>> MemoryStore::scheduledDags() {
  if (Status s = enter(Method::kScheduledDags); !s.isOk()) return s;
  std::lock_guard lock(backend_->mutex);
  // BEHAVIOUR §10 item 26: only scheduled runs move the schedule; any run counts as "ever run".
  std::map<std::string, std::optional<Timestamp>> last_logical;
  std::unordered_set<std::string> ever_run;
  for (const auto& [key, entry] : backend_->runs) {
    ever_run.insert(key.dag_id);
    if (entry.record.trigger == RunTrigger::kScheduled) {
      raise(last_logical[key.dag_id], entry.record.logical_date);
    }
  }
  std::vector<ScheduledDag> out;
  for (const auto& [id, entry] : backend_->dags) {
    const DagSpec& spec = entry.versions.back().spec;
    if (entry.paused || spec.schedule.empty()) continue;
    ScheduledDag d;
    d.dag_id = id;
    d.version = static_cast<std::int64_t>(entry.versions.size());
    d.schedule = spec.schedule;
    d.schedule_timezone = spec.schedule_timezone;
    d.start_date = spec.start_date;
    d.end_date = spec.end_date;
    d.catchup = spec.catchup;
    d.max_active_runs = spec.max_active_runs;
    d.tenant = spec.tenant;
    if (auto lit = last_logical.find(id); lit != last_logical.end()) d.last_logical = lit->second;
    d.ever_run = ever_run.count(id) != 0;
    out.push_back(std::move(d));
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------
// Runs

Status MemoryStore::createRun(std::optional<Term> term, const NewRun& run) {
  if (Status s = enter(Method::kCreateRun); !s.isOk()) return s;
  std::lock_guard lock(backend_->mutex);
  if (term) {
    if (Status s = checkTerm(*backend_, *term); !s.isOk()) return s;
  }
  if (run.key.dag_id.empty() || run.key.run_id.empty()) {
    return invalidArgument("a run needs a dag_id and a run_id");
  }
  auto dag = backend_->dags.find(run.key.dag_id);
  if (dag == backend_->dags.end()) {
    return notFound(fmt::format("DAG {} does not exist", run.key.dag_id));
  }
  const auto versions = static_cast<std::int64_t>(dag->second.versions.size());
  if (run.dag_version < 1 || run.dag_version > versions) {
    return notFound(fmt::format("DAG {} has no version {}", run.key.dag_id, run.dag_version));
  }
  if (backend_->runs.count(run.key) != 0) {
    return alreadyExists(fmt::format("run {} already exists", describe(run.key)));
  }
  // SDK 3.0: a scheduled or backfill run may not take a logical date some run of the DAG already
  // holds (a backfill or `--logical-date` run holds its slot); a manual run is not checked.
  if (run.trigger != RunTrigger::kManual) {
    for (auto it = backend_->runs.lower_bound(RunKey{run.key.dag_id, ""});
         it != backend_->runs.end() && it->first.dag_id == run.key.dag_id; ++it) {
      if (it->second.record.logical_date == run.logical_date) {
        return alreadyExists(fmt::format("run {} already holds the logical date of run {}",
                                         describe(it->first), describe(run.key)));
      }
    }
  }
  RunEntry entry;
  entry.record.key = run.key;
  entry.record.dag_version = run.dag_version;
  entry.record.state = DagRunState::kQueued;
  entry.record.trigger = run.trigger;
  entry.record.logical_date = run.logical_date;
  entry.record.queued_at = run.queued_at;
  entry.record.conf_json = run.conf_json;
  entry.record.uid = ++backend_->last_uid;
  entry.record.tenant = run.tenant;
  backend_->runs.emplace(run.key, std::move(entry));
  backend_->feed.publish({runChange(run.key)});
  return {};
}

Result<std::vector<ActiveRun>> MemoryStore::listActiveRuns() {
  if (Status s = enter(Method::kListActiveRuns); !s.isOk()) return s;
  std::lock_guard lock(backend_->mutex);
  return collectActive(*backend_);
}

Result<std::vector<RunKey>> MemoryStore::listActiveRunKeys() {
  if (Status s = enter(Method::kListActiveRunKeys); !s.isOk()) return s;
  std::lock_guard lock(backend_->mutex);
  std::vector<RunKey> keys;
  for (ActiveRun& a : collectActive(*backend_)) keys.push_back(std::move(a.key));
  return keys;
}

std::vector<Result<RunRecord>> MemoryStore::loadRuns(std::span<const RunKey> keys) {
  std::vector<Result<RunRecord>> out;
  out.reserve(keys.size());
  if (Status s = enter(Method::kLoadRuns); !s.isOk()) {
    for (std::size_t i = 0; i < keys.size(); ++i) out.emplace_back(s);
    return out;
  }
  // Read the per-run faults first: hooks_mutex_ is never taken under the data mutex.
  std::vector<std::optional<Status>> faults;
  faults.reserve(keys.size());
  for (const RunKey& key : keys) faults.push_back(loadFaultFor(key));
  std::lock_guard lock(backend_->mutex);
  for (std::size_t i = 0; i < keys.size(); ++i) {
    if (faults[i]) {
      out.emplace_back(*faults[i]);
      continue;
    }
    auto it = backend_->runs.find(keys[i]);
    if (it == backend_->runs.end()) {
      out.emplace_back(notFound(fmt::format("run {} does not exist", describe(keys[i]))));
    } else {
      out.emplace_back(it->second.record);
    }
  }
  return out;
}

std::vector<Result<TaskInstance>> MemoryStore::loadTaskInstances(const RunKey& run,
                                                                std::span<const std::string> task_ids) {
  std::vector<Result<TaskInstance>> out;
  out.reserve(task_ids.size());
  Status s = enter(Method::kLoadTaskInstances);
  if (s.isOk()) {
    // A run whose loads fail (setLoadFault) fails here too: both read the run.
    if (auto fault = loadFaultFor(run)) s = *fault;
  }
  if (!s.isOk()) {
    for (std::size_t i = 0; i < task_ids.size(); ++i) out.emplace_back(s);
    return out;
  }
  std::lock_guard lock(backend_->mutex);
  auto it = backend_->runs.find(run);
  for (const std::string& id : task_ids) {
    const TaskInstance* found = nullptr;
    if (it != backend_->runs.end()) {
      for (const TaskInstance& ti : it->second.record.tasks) {
        if (ti.task_id == id) found = &ti;
      }
    }
    if (found != nullptr) {
      out.emplace_back(*found);
    } else {
      out.emplace_back(notFound(fmt::format("task {} of run {} does not exist", id, describe(run))));
    }
  }
  return out;
}

Result<std::vector<RunRecord>> MemoryStore::listRuns(const RunFilter& filter) {
  if (Status s = enter(Method::kListRuns); !s.isOk()) return s;
  std::lock_guard lock(backend_->mutex);
  std::vector<RunRecord> out;
  for (const auto& [key, entry] : backend_->runs) {
    if (filter.dag_id && key.dag_id != *filter.dag_id) continue;
    if (filter.state && entry.record.state != *filter.state) continue;
    if (filter.tenant && entry.record.tenant != *filter.tenant) continue;
    if (filter.logical_since && entry.record.logical_date < *filter.logical_since) continue;
    if (filter.logical_until && entry.record.logical_date > *filter.logical_until) continue;
    RunRecord r = entry.record;
    r.tasks.clear();
    out.push_back(std::move(r));
  }
  std::stable_sort(out.begin(), out.end(), [](const RunRecord& x, const RunRecord& y) {
    return std::tie(y.logical_date, y.key) < std::tie(x.logical_date, x.key);  // newest first
  });
  if (out.size() > filter.limit) out.resize(filter.limit);
  return out;
}

Result<std::vector<RunKey>> MemoryStore::findRuns(const std::string& run_id) {
  if (Status s = enter(Method::kFindRuns); !s.isOk()) return s;
  std::lock_guard lock(backend_->mutex);
  std::vector<RunKey> out;
  for (const auto& [key, entry] : backend_->runs) {
    if (key.run_id == run_id) out.push_back(key);
  }
  return out;
}

Status MemoryStore::materializeRun(Term term, const RunKey& run,
                                   std::span<const NewTaskInstance> tasks, Timestamp at) {
  if (Status s = enter(Method::kMaterializeRun); !s.isOk()) return s;
  std::lock_guard lock(backend_->mutex);
  if (Status s = checkTerm(*backend_, term); !s.isOk()) return s;
  auto it = backend_->runs.find(run);
  if (it == backend_->runs.end()) return notFound(fmt::format("run {} does not exist", describe(run)));
  RunEntry& entry = it->second;
  // BEHAVIOUR §10 items 15-16: materialization happens once, all at once, from queued only.
  if (entry.record.state != DagRunState::kQueued) {
    return conflict(fmt::format("run {} is {}, not queued", describe(run),
                                toString(entry.record.state)));
  }
  if (!entry.record.tasks.empty()) {
    return conflict(fmt::format("run {} already has {} task instances", describe(run),
                                entry.record.tasks.size()));
  }
  std::unordered_set<std::string> seen;
  for (const NewTaskInstance& t : tasks) {
    if (t.task_id.empty()) return invalidArgument("a task instance needs a task_id");
    if (!seen.insert(t.task_id).second) {
      return invalidArgument(fmt::format("task {} appears twice in run {}", t.task_id, describe(run)));
    }
  }
  entry.record.tasks.reserve(tasks.size());
  for (const NewTaskInstance& t : tasks) {
    TaskInstance ti;
    ti.task_id = t.task_id;
    ti.state = TaskState::kNone;
    ti.try_number = 1;  // §8.5: the first attempt is try 1
    ti.max_tries = t.max_tries;
    entry.record.tasks.push_back(std::move(ti));
  }
  entry.reindex();
  entry.record.state = DagRunState::kRunning;
  entry.record.started_at = at;
  backend_->feed.publish({runChange(run, term)});  // the leader's own start (Change::leader_term)
  return {};
}

Status MemoryStore::setRunState(Term term, const RunKey& run, DagRunState from, DagRunState to,
                                Timestamp at, const std::string& note) {
  if (Status s = enter(Method::kSetRunState); !s.isOk()) return s;
  std::lock_guard lock(backend_->mutex);
  if (Status s = checkTerm(*backend_, term); !s.isOk()) return s;
  auto it = backend_->runs.find(run);
  if (it == backend_->runs.end()) return notFound(fmt::format("run {} does not exist", describe(run)));
  if (!canTransitionDagRun(from, to)) {
    return invalidArgument(fmt::format("a run cannot move from {} to {} (ARCHITECTURE §8.2)",
                                       toString(from), toString(to)));
  }
  RunRecord& r = it->second.record;
  if (r.state != from) {
    return conflict(fmt::format("run {} is {}, not {}", describe(run), toString(r.state),
                                toString(from)));
  }
  r.state = to;
  if (to == DagRunState::kRunning) r.started_at = at;
  if (isTerminal(to)) r.ended_at = at;
  if (!note.empty()) r.note = note;
  backend_->feed.publish({runChange(run, term)});  // the leader's own move (Change::leader_term)
  return {};
}

Result<std::vector<bool>> MemoryStore::applyTransitions(Term term, const RunKey& run,
                                                        std::span<const TaskTransitionWrite> writes,
                                                        Timestamp at) {
  if (Status s = enter(Method::kApplyTransitions); !s.isOk()) return s;
  std::lock_guard lock(backend_->mutex);
  if (Status s = checkTerm(*backend_, term); !s.isOk()) return s;
  auto it = backend_->runs.find(run);
  if (it == backend_->runs.end()) return notFound(fmt::format("run {} does not exist", describe(run)));
  RunEntry& entry = it->second;
  // One lock for the whole batch: readers see all of it or none of it. Writes apply in order, so a
  // later write in the batch sees the earlier ones (failed → up_for_retry → none in one call).
  std::vector<bool> applied;
  std::vector<Change> changes;
  applied.reserve(writes.size());
  for (const TaskTransitionWrite& w : writes) {
    TaskInstance* ti = entry.find(w.task_id);
    const bool ok = ti != nullptr && applyWrite(*ti, w, at);
    applied.push_back(ok);
    if (ok) {
      changes.push_back(taskChange(run, w.task_id));
      changes.back().leader_term = term;  // the decision's writer (store.h Change::leader_term)
    }
  }
  backend_->feed.publish(std::move(changes));
  return applied;
}

// ---------------------------------------------------------------------------------------------------
// Reapers

Result<std::vector<OrphanCandidate>> MemoryStore::listOrphanCandidates(std::size_t limit) {
  if (Status s = enter(Method::kListOrphanCandidates); !s.isOk()) return s;
  std::lock_guard lock(backend_->mutex);
  struct Row {
    OrphanCandidate candidate;
    std::optional<Timestamp> queued_at;
  };
  std::vector<Row> rows;
  for (const auto& [key, entry] : backend_->runs) {
    const RunRecord& r = entry.record;
    if (r.state != DagRunState::kRunning) continue;
    if (std::any_of(r.tasks.begin(), r.tasks.end(),
                    [](const TaskInstance& t) { return keepsRunAlive(t.state); })) {
      continue;
    }
    std::optional<Timestamp> last;
    raise(last, r.queued_at);
    raise(last, r.started_at);
    for (const TaskInstance& t : r.tasks) {
      raise(last, t.started_at);
      raise(last, t.ended_at);
    }
    rows.push_back(Row{OrphanCandidate{key, last}, r.queued_at});
  }
  // Stalest first, so a limit keeps the runs the reaper is likeliest to reap.
  std::stable_sort(rows.begin(), rows.end(), [](const Row& x, const Row& y) {
    if (x.candidate.last_activity != y.candidate.last_activity) {
      return olderStamp(x.candidate.last_activity, y.candidate.last_activity);
    }
    if (x.queued_at != y.queued_at) return olderStamp(x.queued_at, y.queued_at);
    return x.candidate.run < y.candidate.run;
  });
  std::vector<OrphanCandidate> out;
  for (std::size_t i = 0; i < rows.size() && i < limit; ++i) out.push_back(rows[i].candidate);
  return out;
}

Status MemoryStore::reapRun(Term term, const RunKey& run, Timestamp at, const std::string& note) {
  if (Status s = enter(Method::kReapRun); !s.isOk()) return s;
  std::lock_guard lock(backend_->mutex);
  if (Status s = checkTerm(*backend_, term); !s.isOk()) return s;
  auto it = backend_->runs.find(run);
  if (it == backend_->runs.end()) return notFound(fmt::format("run {} does not exist", describe(run)));
  RunRecord& r = it->second.record;
  // BEHAVIOUR §4.2: a run no longer running was finalized by someone else; that is success.
  if (r.state != DagRunState::kRunning) return {};
  r.state = DagRunState::kFailed;
  r.ended_at = at;
  r.note = note;
  std::vector<Change> changes{runChange(run)};
  for (TaskInstance& t : r.tasks) {
    if (isTerminal(t.state)) continue;  // settled tasks keep their outcome
    t.state = TaskState::kFailed;
    t.ended_at = at;
    t.note = note;
    changes.push_back(taskChange(run, t.task_id));
  }
  backend_->feed.publish(std::move(changes));
  return {};
}

Result<std::vector<AgentLostCandidate>> MemoryStore::listAgentLostCandidates(std::size_t limit) {
  if (Status s = enter(Method::kListAgentLostCandidates); !s.isOk()) return s;
  std::lock_guard lock(backend_->mutex);
  std::vector<AgentLostCandidate> out;
  for (const auto& [key, entry] : backend_->runs) {
    for (const TaskInstance& t : entry.record.tasks) {
      if (t.state == TaskState::kRunning && t.last_heartbeat_at) {
        out.push_back(AgentLostCandidate{AttemptRef{key, t.task_id, t.try_number}, t.last_heartbeat_at});
      }
    }
  }
  std::stable_sort(out.begin(), out.end(), [](const AgentLostCandidate& x, const AgentLostCandidate& y) {
    return std::tie(x.last_heartbeat, x.attempt) < std::tie(y.last_heartbeat, y.attempt);
  });
  if (out.size() > limit) out.resize(limit);
  return out;
}

Result<std::vector<DispatchLostCandidate>> MemoryStore::listDispatchLostCandidates(std::size_t limit) {
  if (Status s = enter(Method::kListDispatchLostCandidates); !s.isOk()) return s;
  std::lock_guard lock(backend_->mutex);
  std::vector<DispatchLostCandidate> out;
  for (const auto& [key, entry] : backend_->runs) {
    for (const TaskInstance& t : entry.record.tasks) {
      if (t.state == TaskState::kQueued && t.queued_at) {
        out.push_back(DispatchLostCandidate{AttemptRef{key, t.task_id, t.try_number}, t.queued_at});
      }
    }
  }
  std::stable_sort(out.begin(), out.end(),
                   [](const DispatchLostCandidate& x, const DispatchLostCandidate& y) {
                     return std::tie(x.queued_at, x.attempt) < std::tie(y.queued_at, y.attempt);
                   });
  if (out.size() > limit) out.resize(limit);
  return out;
}

// ---------------------------------------------------------------------------------------------------
// Executor reports: guarded by the attempt, never by the term (ARCHITECTURE §8.7).

Status MemoryStore::reportRunning(const ExecutionRef& execution, Timestamp at) {
  if (Status s = enter(Method::kReportRunning); !s.isOk()) return s;
  if (execution.execution_id.empty()) return invalidArgument("a claim needs an execution id");
  const AttemptRef& attempt = execution.attempt;
  std::lock_guard lock(backend_->mutex);
  TaskInstance* ti = nullptr;
  if (Status s = findAttempt(*backend_, attempt, ti); !s.isOk()) return s;
  if (ti->state == TaskState::kRunning && ti->execution_id == execution.execution_id) {
    return {};  // the same execution again (a retry after a lost reply, an adopter): nothing changes
  }
  if (ti->state != TaskState::kQueued) {
    if (ti->state == TaskState::kRunning) {
      return conflict(fmt::format("attempt {} is claimed by execution {}, not {}", describe(attempt),
                                  ti->execution_id, execution.execution_id));
    }
    return conflict(fmt::format("attempt {} is {}, not queued", describe(attempt), toString(ti->state)));
  }
  ti->state = TaskState::kRunning;
  ti->execution_id = execution.execution_id;
  stampEntry(*ti, TaskState::kRunning, at);
  Change change = taskChange(attempt.run, attempt.task_id);
  change.execution_id = execution.execution_id;  // the report's writer (store.h Change::execution_id)
  backend_->feed.publish({std::move(change)});
  return {};
}

Status MemoryStore::reportHeartbeat(const ExecutionRef& execution, Timestamp at) {
  if (Status s = enter(Method::kReportHeartbeat); !s.isOk()) return s;
  std::lock_guard lock(backend_->mutex);
  TaskInstance* ti = nullptr;
  if (Status s = claimedAttempt(*backend_, execution, ti, "heartbeat"); !s.isOk()) return s;
  ti->last_heartbeat_at = at;
  return {};
}

Status MemoryStore::reportFinished(const ExecutionRef& execution, const TaskOutcome& outcome,
                                   Timestamp at) {
  if (Status s = enter(Method::kReportFinished); !s.isOk()) return s;
  const AttemptRef& attempt = execution.attempt;
  std::lock_guard lock(backend_->mutex);
  TaskInstance* ti = nullptr;
  // BEHAVIOUR §10 item 3: a finished (or reaped) attempt is never resurrected.
  if (Status s = claimedAttempt(*backend_, execution, ti, "finished report"); !s.isOk()) return s;
  const TaskState to = outcome.success ? TaskState::kSuccess : TaskState::kFailed;
  ti->state = to;
  stampEntry(*ti, to, at);
  ti->exit_code = outcome.exit_code;
  if (!outcome.message.empty()) ti->note = outcome.message;  // as the real stores: an empty one keeps it
  Change change = taskChange(attempt.run, attempt.task_id);
  change.execution_id = execution.execution_id;
  backend_->feed.publish({std::move(change)});
  return {};
}

// ---------------------------------------------------------------------------------------------------
// A person's commands (SDK 3.0): unfenced, each one atomic under the backend's mutex, each with its
// own move table (store.h "A person's commands").

namespace {

bool isUnfinished(TaskState s) {
  return s == TaskState::kNone || s == TaskState::kScheduled || s == TaskState::kQueued ||
         s == TaskState::kRunning || s == TaskState::kUpForRetry;
}

/// The kRun change plus one kTask change per moved instance.
std::vector<Change> operatorChanges(const RunKey& key, const std::vector<std::string>& moved) {
  std::vector<Change> changes{runChange(key)};
  for (const std::string& task_id : moved) changes.push_back(taskChange(key, task_id));
  return changes;
}

/// A finished run returns to running so the planner finalizes it again.
void reopenRun(RunRecord& r) {
  if (!isTerminal(r.state)) return;
  r.state = DagRunState::kRunning;
  r.ended_at.reset();
}

}  // namespace

Result<OperatorOutcome> MemoryStore::clearTasks(const ClearRequest& request) {
  if (Status s = enter(Method::kClearTasks); !s.isOk()) return s;
  std::lock_guard lock(backend_->mutex);
  auto it = backend_->runs.find(request.run);
  if (it == backend_->runs.end()) {
    return notFound(fmt::format("run {} does not exist", describe(request.run)));
  }
  RunEntry& entry = it->second;
  RunRecord& r = entry.record;
  if (r.state == DagRunState::kQueued) {
    return conflict(fmt::format("run {} is queued: it has no task instances to clear yet",
                                describe(request.run)));
  }
  // Check every listed task before touching any: all or nothing.
  std::unordered_map<std::string, std::int32_t> retries;
  for (const ClearTask& t : request.tasks) {
    if (entry.find(t.task_id) == nullptr) {
      return notFound(fmt::format("run {} has no task {}", describe(request.run), t.task_id));
    }
    retries[t.task_id] = t.retries;
  }
  OperatorOutcome outcome;
  for (TaskInstance& ti : r.tasks) {  // the run's order
    auto listed = retries.find(ti.task_id);
    if (listed == retries.end()) continue;
    if (ti.state == TaskState::kNone) continue;
    if (request.failed_only && ti.state != TaskState::kFailed &&
        ti.state != TaskState::kUpstreamFailed) {
      continue;
    }
    if (ti.started_at) {  // it started: the next run of it is a new attempt
      const std::int32_t old_try = ti.try_number;
      ti.try_number = old_try + 1;
      ti.max_tries = old_try + listed->second + 1;
    }
    clearAttempt(ti);
    ti.state = TaskState::kNone;
    ti.note = request.note;
    outcome.changed_tasks.push_back(ti.task_id);
  }
  if (!outcome.changed_tasks.empty()) {
    r.state = DagRunState::kRunning;
    r.ended_at.reset();
    r.started_at = request.at;
    backend_->feed.publish(operatorChanges(request.run, outcome.changed_tasks));
  }
  outcome.run_state = r.state;
  return outcome;
}

Result<OperatorOutcome> MemoryStore::markTask(const MarkTaskRequest& request) {
  if (Status s = enter(Method::kMarkTask); !s.isOk()) return s;
  if (request.to != TaskState::kSuccess && request.to != TaskState::kFailed &&
      request.to != TaskState::kSkipped) {
    return invalidArgument(fmt::format("a task can be marked success, failed or skipped, not {}",
                                       toString(request.to)));
  }
  std::lock_guard lock(backend_->mutex);
  auto it = backend_->runs.find(request.run);
  if (it == backend_->runs.end()) {
    return notFound(fmt::format("run {} does not exist", describe(request.run)));
  }
  RunEntry& entry = it->second;
  RunRecord& r = entry.record;
  if (r.state == DagRunState::kQueued) {
    return conflict(fmt::format("run {} is queued: it has no task instances yet", describe(request.run)));
  }
  TaskInstance* ti = entry.find(request.task_id);
  if (ti == nullptr) {
    return notFound(fmt::format("run {} has no task {}", describe(request.run), request.task_id));
  }
  if (ti->state == request.to) {
    return conflict(fmt::format("task {} of run {} is already {}", request.task_id, describe(request.run),
                                toString(request.to)));
  }
  ti->state = request.to;
  ti->ended_at = request.at;
  if (request.to == TaskState::kFailed) ti->max_tries = ti->try_number;
  ti->note = request.note;
  reopenRun(r);
  OperatorOutcome outcome{{request.task_id}, r.state};
  backend_->feed.publish(operatorChanges(request.run, outcome.changed_tasks));
  return outcome;
}

Result<OperatorOutcome> MemoryStore::markRun(const MarkRunRequest& request) {
  if (Status s = enter(Method::kMarkRun); !s.isOk()) return s;
  if (!isTerminal(request.to)) {
    return invalidArgument(fmt::format("a run can be marked success or failed, not {}", toString(request.to)));
  }
  std::lock_guard lock(backend_->mutex);
  auto it = backend_->runs.find(request.run);
  if (it == backend_->runs.end()) {
    return notFound(fmt::format("run {} does not exist", describe(request.run)));
  }
  RunRecord& r = it->second.record;
  if (r.state == request.to) {
    return conflict(fmt::format("run {} is already {}", describe(request.run), toString(request.to)));
  }
  const TaskState to = request.to == DagRunState::kSuccess ? TaskState::kSuccess : TaskState::kFailed;
  OperatorOutcome outcome;
  for (TaskInstance& ti : r.tasks) {
    if (!isUnfinished(ti.state)) continue;
    ti.state = to;
    ti.ended_at = request.at;
    if (to == TaskState::kFailed) ti.max_tries = ti.try_number;
    ti.note = request.note;
    outcome.changed_tasks.push_back(ti.task_id);
  }
  r.state = request.to;
  if (!r.started_at) r.started_at = request.at;
  r.ended_at = request.at;
  r.note = request.note;
  outcome.run_state = r.state;
  backend_->feed.publish(operatorChanges(request.run, outcome.changed_tasks));
  return outcome;
}

std::vector<Status> MemoryStore::createRuns(std::optional<Term> term, std::span<const NewRun> runs) {
  if (Status s = enter(Method::kCreateRuns); !s.isOk()) return std::vector<Status>(runs.size(), s);
  return Store::createRuns(term, runs);
}

std::vector<Result<OperatorOutcome>> MemoryStore::clearRuns(std::span<const ClearRequest> requests) {
  if (Status s = enter(Method::kClearRuns); !s.isOk()) {
    return std::vector<Result<OperatorOutcome>>(requests.size(), Result<OperatorOutcome>(s));
  }
  return Store::clearRuns(requests);
}

std::vector<Result<OperatorOutcome>> MemoryStore::cancelRuns(std::span<const CancelRunRequest> requests) {
  if (Status s = enter(Method::kCancelRuns); !s.isOk()) {
    return std::vector<Result<OperatorOutcome>>(requests.size(), Result<OperatorOutcome>(s));
  }
  return Store::cancelRuns(requests);
}

Result<OperatorOutcome> MemoryStore::cancelRun(const CancelRunRequest& request) {
  if (Status s = enter(Method::kCancelRun); !s.isOk()) return s;
  std::lock_guard lock(backend_->mutex);
  auto it = backend_->runs.find(request.run);
  if (it == backend_->runs.end()) {
    return notFound(fmt::format("run {} does not exist", describe(request.run)));
  }
  RunRecord& r = it->second.record;
  if (isTerminal(r.state)) {
    return conflict(fmt::format("run {} already finished ({})", describe(request.run), toString(r.state)));
  }
  OperatorOutcome outcome;
  for (TaskInstance& ti : r.tasks) {
    if (ti.state == TaskState::kQueued || ti.state == TaskState::kRunning) {
      ti.state = TaskState::kFailed;
      ti.max_tries = ti.try_number;
    } else if (ti.state == TaskState::kNone || ti.state == TaskState::kScheduled ||
               ti.state == TaskState::kUpForRetry) {
      ti.state = TaskState::kSkipped;
    } else {
      continue;  // finished instances keep their outcome
    }
    // Skipped stamps ended_at too, as every entry into skipped does.
    ti.ended_at = request.at;
    ti.note = request.note;
    outcome.changed_tasks.push_back(ti.task_id);
  }
  r.state = DagRunState::kFailed;
  r.ended_at = request.at;
  r.note = request.note;
  outcome.run_state = r.state;
  backend_->feed.publish(operatorChanges(request.run, outcome.changed_tasks));
  return outcome;
}

Status MemoryStore::deleteDag(const std::string& dag_id) {
  if (Status s = enter(Method::kDeleteDag); !s.isOk()) return s;
  std::lock_guard lock(backend_->mutex);
  auto dag = backend_->dags.find(dag_id);
  if (dag == backend_->dags.end()) return notFound(fmt::format("DAG {} does not exist", dag_id));
  const auto first = backend_->runs.lower_bound(RunKey{dag_id, ""});
  auto last = first;
  for (; last != backend_->runs.end() && last->first.dag_id == dag_id; ++last) {
    if (isActive(last->second.record.state)) {
      return conflict(fmt::format("DAG {} has a {} run {}: finish or cancel it first", dag_id,
                                  toString(last->second.record.state), describe(last->first)));
    }
  }
  backend_->runs.erase(first, last);
  backend_->dags.erase(dag);  // last_uid stays: the uids of the deleted runs are never reissued
  backend_->feed.publish({dagChange(dag_id)});
  return {};
}

// ---------------------------------------------------------------------------------------------------
// Change feed

Status MemoryStore::subscribe(ChangeSink& sink) {
  if (Status s = enter(Method::kSubscribe); !s.isOk()) return s;
  return backend_->feed.subscribe(this, &sink);
}

Status MemoryStore::subscribeRuns(ChangeSink& sink) {
  if (Status s = enter(Method::kSubscribeRuns); !s.isOk()) return s;
  return backend_->feed.subscribe(this, &sink, true);
}

void MemoryStore::unsubscribe() {
  {
    std::lock_guard lock(hooks_mutex_);
    ++calls_[static_cast<std::size_t>(Method::kUnsubscribe)];
  }
  backend_->feed.unsubscribe(this);
}

Result<std::optional<std::int64_t>> MemoryStore::deleteFinishedRuns(Timestamp before) {
  std::lock_guard lock(backend_->mutex);
  std::int64_t deleted = 0;
  for (auto it = backend_->runs.begin(); it != backend_->runs.end();) {
    const RunRecord& r = it->second.record;
    if (isTerminal(r.state) && r.ended_at && *r.ended_at < before) {
      it = backend_->runs.erase(it);
      ++deleted;
    } else {
      ++it;
    }
  }
  return std::optional<std::int64_t>(deleted);
}

void MemoryStore::drainChanges() const { backend_->feed.drain(); }

void MemoryStore::interruptFeed() { backend_->feed.resync(); }

// ---------------------------------------------------------------------------------------------------
// Inspection and seeding

std::optional<RunRecord> MemoryStore::run(const RunKey& key) const {
  std::lock_guard lock(backend_->mutex);
  auto it = backend_->runs.find(key);
  if (it == backend_->runs.end()) return std::nullopt;
  return it->second.record;
}

std::optional<TaskInstance> MemoryStore::task(const RunKey& key, const std::string& task_id) const {
  std::lock_guard lock(backend_->mutex);
  auto it = backend_->runs.find(key);
  if (it == backend_->runs.end()) return std::nullopt;
  const TaskInstance* ti = it->second.find(task_id);
  if (ti == nullptr) return std::nullopt;
  return *ti;
}

std::vector<RunRecord> MemoryStore::runs() const {
  std::lock_guard lock(backend_->mutex);
  std::vector<RunRecord> out;
  out.reserve(backend_->runs.size());
  for (const auto& [key, entry] : backend_->runs) out.push_back(entry.record);
  return out;
}

std::vector<ActiveRun> MemoryStore::activeRuns() const {
  std::lock_guard lock(backend_->mutex);
  return collectActive(*backend_);
}

std::vector<StoredDag> MemoryStore::dagVersions(const std::string& dag_id) const {
  std::lock_guard lock(backend_->mutex);
  std::vector<StoredDag> out;
  auto it = backend_->dags.find(dag_id);
  if (it == backend_->dags.end()) return out;
  for (std::size_t i = 0; i < it->second.versions.size(); ++i) {
    out.push_back(StoredDag{dag_id, static_cast<std::int64_t>(i + 1), it->second.paused,
                            it->second.versions[i].spec_json});
  }
  return out;
}

Term MemoryStore::currentTerm() const {
  std::lock_guard lock(backend_->mutex);
  return backend_->term;
}

std::string MemoryStore::termHolder() const {
  std::lock_guard lock(backend_->mutex);
  return backend_->holder;
}

std::optional<LivenessRecord> MemoryStore::liveness() const {
  std::lock_guard lock(backend_->mutex);
  return backend_->liveness;
}

bool MemoryStore::subscribed() const { return backend_->feed.subscribed(this); }

void MemoryStore::putRun(RunRecord record) {
  std::lock_guard lock(backend_->mutex);
  RunEntry entry;
  const RunKey key = record.key;
  if (record.uid == 0) {
    // Keep the uid of the run it replaces; a new run gets the next one.
    auto old = backend_->runs.find(key);
    record.uid = old != backend_->runs.end() ? old->second.record.uid : ++backend_->last_uid;
  }
  backend_->last_uid = std::max(backend_->last_uid, record.uid);
  entry.record = std::move(record);
  entry.reindex();
  backend_->runs.insert_or_assign(key, std::move(entry));
}

bool MemoryStore::putTask(const RunKey& key, TaskInstance instance) {
  std::lock_guard lock(backend_->mutex);
  auto it = backend_->runs.find(key);
  if (it == backend_->runs.end()) return false;
  RunEntry& entry = it->second;
  if (TaskInstance* ti = entry.find(instance.task_id)) {
    *ti = std::move(instance);
  } else {
    entry.record.tasks.push_back(std::move(instance));
    entry.reindex();
  }
  return true;
}

void MemoryStore::seedQueuedAttempt(const AttemptRef& attempt, Timestamp now) {
  std::lock_guard lock(backend_->mutex);
  auto it = backend_->runs.find(attempt.run);
  if (it == backend_->runs.end()) {
    RunEntry entry;
    entry.record.key = attempt.run;
    entry.record.dag_version = 1;
    entry.record.state = DagRunState::kRunning;
    entry.record.logical_date = now;
    entry.record.queued_at = now;
    entry.record.started_at = now;
    entry.record.uid = ++backend_->last_uid;
    entry.reindex();
    it = backend_->runs.insert_or_assign(attempt.run, std::move(entry)).first;
  }
  RunEntry& entry = it->second;
  TaskInstance instance;
  instance.task_id = attempt.task_id;
  instance.state = TaskState::kQueued;
  instance.try_number = attempt.try_number;
  instance.max_tries = attempt.try_number;
  instance.scheduled_at = now;
  instance.queued_at = now;
  if (TaskInstance* ti = entry.find(attempt.task_id)) {
    if (ti->try_number >= attempt.try_number) return;  // this attempt, or a later try: as the store has it
    *ti = std::move(instance);
  } else {
    entry.record.tasks.push_back(std::move(instance));
    entry.reindex();
  }
}

// ---------------------------------------------------------------------------------------------------
// LeaseBoard and MemoryLeader

LeaseBoard::LeaseBoard(const Clock& clock, std::chrono::milliseconds lease)
    : clock_(&clock), lease_(lease) {
  if (lease <= std::chrono::milliseconds{0}) throw std::invalid_argument("a lease must be positive");
}

bool LeaseBoard::heldBy(const std::string& replica, Timestamp now) const {
  return !holder_.empty() && holder_ == replica && now < expires_at_;
}

std::optional<std::string> LeaseBoard::holder() const {
  std::lock_guard lock(mutex_);
  if (holder_.empty() || clock_->now() >= expires_at_) return std::nullopt;
  return holder_;
}

void LeaseBoard::revoke() {
  std::lock_guard lock(mutex_);
  holder_.clear();
}

bool LeaseBoard::acquire(const std::string& replica) {
  std::lock_guard lock(mutex_);
  const Timestamp now = clock_->now();
  if (holder_.empty() || now >= expires_at_ || holder_ == replica) {
    holder_ = replica;
    expires_at_ = now + lease_;
    return true;
  }
  return false;
}

bool LeaseBoard::renew(const std::string& replica) {
  std::lock_guard lock(mutex_);
  const Timestamp now = clock_->now();
  if (heldBy(replica, now)) {
    expires_at_ = now + lease_;
    return true;
  }
  if (holder_ == replica) holder_.clear();  // expired: gone, as a Redis key past its TTL
  return false;
}

void LeaseBoard::release(const std::string& replica) {
  std::lock_guard lock(mutex_);
  if (holder_ == replica) holder_.clear();
}

MemoryLeader::MemoryLeader(std::shared_ptr<LeaseBoard> board, std::string replica_id,
                           std::chrono::milliseconds check_interval)
    : board_(std::move(board)), replica_id_(std::move(replica_id)), check_interval_(check_interval) {
  if (!board_) throw std::invalid_argument("MemoryLeader needs a LeaseBoard");
  if (replica_id_.empty()) throw std::invalid_argument("MemoryLeader needs a replica id");
  if (check_interval_ <= std::chrono::milliseconds{0}) {
    check_interval_ = std::max(std::chrono::milliseconds{1}, board_->lease() / 3);
  }
}

Status MemoryLeader::enter(LeaderMethod m) {
  const auto i = static_cast<std::size_t>(m);
  std::unique_lock lock(hooks_mutex_);
  ++calls_[i];
  if (fault_remaining_[i] == 0) return {};
  if (fault_remaining_[i] > 0) --fault_remaining_[i];
  const bool throws = fault_throws_[i];
  const Status status = fault_status_[i].value_or(Status{});
  lock.unlock();
  if (throws) throw std::runtime_error("injected exception in MemoryLeader");
  return status;
}

Result<bool> MemoryLeader::tryAcquire() {
  if (Status s = enter(LeaderMethod::kTryAcquire); !s.isOk()) return s;
  return board_->acquire(replica_id_);
}

Result<bool> MemoryLeader::check() {
  if (Status s = enter(LeaderMethod::kCheck); !s.isOk()) return s;
  return board_->renew(replica_id_);
}

Status MemoryLeader::release() {
  if (Status s = enter(LeaderMethod::kRelease); !s.isOk()) return s;
  board_->release(replica_id_);
  return {};
}

void MemoryLeader::failNext(LeaderMethod m, Status status, int times) {
  if (status.isOk()) throw std::invalid_argument("failNext needs a failing Status");
  std::lock_guard lock(hooks_mutex_);
  const auto i = static_cast<std::size_t>(m);
  fault_status_[i] = std::move(status);
  fault_throws_[i] = false;
  fault_remaining_[i] = times;
}

void MemoryLeader::failAlways(LeaderMethod m, Status status) {
  failNext(m, std::move(status), kForever);
}

void MemoryLeader::throwOn(LeaderMethod m, int times) {
  std::lock_guard lock(hooks_mutex_);
  const auto i = static_cast<std::size_t>(m);
  fault_status_[i].reset();
  fault_throws_[i] = true;
  fault_remaining_[i] = times;
}

void MemoryLeader::clearFailures() {
  std::lock_guard lock(hooks_mutex_);
  fault_status_.fill(std::nullopt);
  fault_throws_.fill(false);
  fault_remaining_.fill(0);
}

int MemoryLeader::calls(LeaderMethod m) const {
  std::lock_guard lock(hooks_mutex_);
  return calls_[static_cast<std::size_t>(m)];
}

}  // namespace leoflow::testing
