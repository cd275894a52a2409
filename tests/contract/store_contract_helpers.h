// What the two halves of the Store contract suite (store_contract.cpp and store_contract_operator.cpp)
// both build their tests from: the suite's clock (kT0, at), the assertions on Status and Result, the
// one-line printing of runs and instances that "nothing changed" checks compare, the Scenario that sets
// situations up through the Store's own methods, and the change-feed recorder. Kept in one place so
// the two files cannot drift apart in how they read a store.
//
// Test-only: everything is inline, in leoflow::contract::helpers; a test file says
// `using namespace helpers;` inside its anonymous namespace.
#pragma once

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <fmt/core.h>
#include <gtest/gtest.h>

#include <leoflow/store.h>

namespace leoflow::contract::helpers {

using S = TaskState;
using R = DagRunState;

// 2026-05-28T12:00:00Z; every time in the suite is a whole number of seconds from here.
inline const Timestamp kT0 =
    Timestamp{std::chrono::sys_days{std::chrono::year{2026} / std::chrono::May / 28}} + std::chrono::hours{12};

inline Timestamp at(int seconds) { return kT0 + std::chrono::seconds{seconds}; }

inline constexpr std::chrono::milliseconds kFeedTimeout{5000};

inline ::testing::AssertionResult ok(const Status& s) {
  if (s.isOk()) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << s.toString();
}

template <typename T>
::testing::AssertionResult ok(const Result<T>& r) {
  return ok(r.status());
}

inline ::testing::AssertionResult hasCode(const Status& s, StatusCode code) {
  if (s.code() == code) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "expected " << toString(code) << ", got " << s.toString();
}

template <typename T>
::testing::AssertionResult hasCode(const Result<T>& r, StatusCode code) {
  return hasCode(r.status(), code);
}

inline std::string str(const std::optional<Timestamp>& t) {
  if (!t) return "-";
  return fmt::format("{}", std::chrono::duration_cast<std::chrono::milliseconds>(*t - kT0).count());
}

inline std::string str(const TaskInstance& t) {
  return fmt::format("{}:{} try={}/{} sched={} queued={} start={} end={} beat={} exit={} exec='{}' note='{}'",
                     t.task_id, toString(t.state), t.try_number, t.max_tries, str(t.scheduled_at),
                     str(t.queued_at), str(t.started_at), str(t.ended_at), str(t.last_heartbeat_at),
                     t.exit_code ? std::to_string(*t.exit_code) : "-", t.execution_id, t.note);
}

/// Every field of a run, tasks sorted by id (their order in a loaded run is not part of the contract).
inline std::string str(const RunRecord& r) {
  std::string out = fmt::format(
      "{}/{} uid={} tenant={} v{} {} {} logical={} queued={} start={} end={} conf='{}' note='{}'", r.key.dag_id,
      r.key.run_id, r.uid, r.tenant, r.dag_version, toString(r.state), toString(r.trigger), str(r.logical_date),
      str(r.queued_at), str(r.started_at), str(r.ended_at), r.conf_json, r.note);
  std::vector<TaskInstance> tasks = r.tasks;
  std::sort(tasks.begin(), tasks.end(),
            [](const TaskInstance& a, const TaskInstance& b) { return a.task_id < b.task_id; });
  for (const TaskInstance& t : tasks) out += "\n  " + str(t);
  return out;
}

inline DagDefinition dagDef(const std::string& dag_id, const std::string& schedule = "", int revision = 1,
                     const std::string& tenant = "default") {
  DagDefinition d;
  d.spec.dag_id = dag_id;
  d.spec.schedule = schedule;
  d.spec.tenant = tenant;
  d.spec_json = fmt::format(R"({{"dag_id":"{}","schedule":"{}","revision":{},"tenant":"{}"}})", dag_id,
                            schedule, revision, tenant);
  return d;
}

/// Builds the situations the tests start from, through the Store's own methods only.
class Scenario {
 public:
  explicit Scenario(Store& store) : store_(store) {}

  Term claim(const std::string& holder = "replica-a") {
    auto r = store_.claimTerm(holder);
    EXPECT_TRUE(ok(r));
    term_ = r.isOk() ? *r : 0;
    return term_;
  }
  Term term() const { return term_; }

  void dag(const std::string& dag_id, const std::string& schedule = "", const std::string& tenant = "default") {
    if (!dags_.insert(dag_id).second) return;
    const std::vector<DagDefinition> defs{dagDef(dag_id, schedule, 1, tenant)};
    EXPECT_TRUE(ok(store_.syncDags(defs)));
  }
  /// Forgets that `dag_id` was registered (after deleteDag), so dag() registers it again.
  void forget(const std::string& dag_id) { dags_.erase(dag_id); }

  NewRun newRun(const std::string& dag_id, const std::string& run_id, int queued_s = 0,
                RunTrigger trigger = RunTrigger::kManual, Timestamp logical = kT0,
                const std::string& tenant = "default") {
    NewRun n;
    n.key = RunKey{dag_id, run_id};
    n.dag_version = 1;
    n.trigger = trigger;
    n.logical_date = logical;
    n.queued_at = at(queued_s);
    n.tenant = tenant;
    return n;
  }

  /// A queued run (a person's trigger: unfenced).
  RunKey run(const std::string& dag_id, const std::string& run_id, int queued_s = 0,
             RunTrigger trigger = RunTrigger::kManual, Timestamp logical = kT0,
             const std::string& tenant = "default") {
    dag(dag_id);
    const NewRun n = newRun(dag_id, run_id, queued_s, trigger, logical, tenant);
    EXPECT_TRUE(ok(store_.createRun(std::nullopt, n))) << run_id;
    return n.key;
  }

  /// A running run whose tasks are all `none` on try 1 (materialized at queued_s + 1); claims a term
  /// first if none was.
  RunKey started(const std::string& dag_id, const std::string& run_id, const std::vector<std::string>& tasks,
                 std::int32_t max_tries = 1, int queued_s = 0) {
    if (term_ == 0) claim();
    const RunKey key = run(dag_id, run_id, queued_s);
    std::vector<NewTaskInstance> instances;
    for (const std::string& t : tasks) instances.push_back(NewTaskInstance{t, max_tries});
    EXPECT_TRUE(ok(store_.materializeRun(term_, key, instances, at(queued_s + 1)))) << run_id;
    return key;
  }

  /// One guarded move; whether it was applied.
  bool move(const RunKey& key, const std::string& task, S from, S to, int at_s, std::int32_t try_number = 1,
            const std::string& note = "", bool exhaust = false) {
    const std::vector<TaskTransitionWrite> w{TaskTransitionWrite{task, from, try_number, to, note, exhaust}};
    auto r = store_.applyTransitions(term_, key, w, at(at_s));
    EXPECT_TRUE(ok(r));
    return r.isOk() && r->size() == 1 && (*r)[0];
  }

  /// Moves a task along `path` (its current state first), one second apart from `at_s`. queued →
  /// running is the claim of execution attempt(key, task, try) (ARCHITECTURE §8.13), as in life.
  void walk(const RunKey& key, const std::string& task, const std::vector<S>& path, int at_s,
            std::int32_t try_number = 1, const std::string& execution_id = "host-a/101/e1") {
    for (std::size_t i = 1; i < path.size(); ++i) {
      const int when = at_s + static_cast<int>(i) - 1;
      if (path[i - 1] == S::kQueued && path[i] == S::kRunning) {
        EXPECT_TRUE(ok(store_.reportRunning(attempt(key, task, try_number, execution_id), at(when))))
            << task << ": the claim";
        continue;
      }
      EXPECT_TRUE(move(key, task, path[i - 1], path[i], when, try_number))
          << task << ": " << toString(path[i - 1]) << " -> " << toString(path[i]);
    }
  }

  /// none → scheduled → queued → running (claimed) from at_s, then the executor's finished report at
  /// at_s + 3 with exit code 0 or 3.
  void runTo(const RunKey& key, const std::string& task, bool success, int at_s,
             const std::string& execution_id = "host-a/101/e1") {
    walk(key, task, {S::kNone, S::kScheduled, S::kQueued, S::kRunning}, at_s, 1, execution_id);
    const TaskOutcome outcome{success, success ? 0 : 3, success ? "" : "exit code 3"};
    EXPECT_TRUE(ok(store_.reportFinished(attempt(key, task, 1, execution_id), outcome, at(at_s + 3)))) << task;
  }

  RunRecord load(const RunKey& key) {
    const std::vector<RunKey> keys{key};
    auto results = store_.loadRuns(keys);
    EXPECT_EQ(results.size(), 1u);
    if (results.size() != 1 || !results[0].isOk()) {
      ADD_FAILURE() << "cannot load " << key.dag_id << "/" << key.run_id << ": "
                    << (results.empty() ? "no result" : results[0].status().toString());
      return RunRecord{};
    }
    return results[0].value();
  }

  bool exists(const RunKey& key) {
    const std::vector<RunKey> keys{key};
    auto results = store_.loadRuns(keys);
    return results.size() == 1 && results[0].isOk();
  }

  TaskInstance task(const RunKey& key, const std::string& task_id) {
    const RunRecord r = load(key);
    for (const TaskInstance& t : r.tasks) {
      if (t.task_id == task_id) return t;
    }
    ADD_FAILURE() << "run " << key.run_id << " has no task " << task_id;
    return TaskInstance{};
  }

  /// An execution of an attempt (ARCHITECTURE §8.13); the same id unless told otherwise.
  ExecutionRef attempt(const RunKey& key, const std::string& task, std::int32_t try_number = 1,
                       const std::string& execution_id = "host-a/101/e1") {
    return ExecutionRef{AttemptRef{key, task, try_number}, execution_id};
  }

 private:
  Store& store_;
  Term term_ = 0;
  std::set<std::string> dags_;
};

/// Collects change-feed messages for the test thread to wait on.
class RecordingSink final : public ChangeSink {
 public:
  void onChange(const Change& change) override {
    {
      std::lock_guard lock(mutex_);
      changes_.push_back(change);
    }
    cv_.notify_all();
  }
  void onResync() override {
    {
      std::lock_guard lock(mutex_);
      ++resyncs_;
    }
    cv_.notify_all();
  }

  bool waitFor(const std::function<bool(const Change&)>& wanted, std::chrono::milliseconds timeout = kFeedTimeout) {
    std::unique_lock lock(mutex_);
    return cv_.wait_for(lock, timeout, [&] { return std::any_of(changes_.begin(), changes_.end(), wanted); });
  }
  /// Waits until `n` changes matching `wanted` arrived.
  bool waitForCount(const std::function<bool(const Change&)>& wanted, std::size_t n,
                    std::chrono::milliseconds timeout = kFeedTimeout) {
    std::unique_lock lock(mutex_);
    return cv_.wait_for(lock, timeout, [&] {
      return static_cast<std::size_t>(std::count_if(changes_.begin(), changes_.end(), wanted)) >= n;
    });
  }
  bool saw(const std::function<bool(const Change&)>& wanted) const {
    std::lock_guard lock(mutex_);
    return std::any_of(changes_.begin(), changes_.end(), wanted);
  }
  void clear() {
    std::lock_guard lock(mutex_);
    changes_.clear();
  }

 private:
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  std::vector<Change> changes_;
  int resyncs_ = 0;
};

/// Unsubscribes before the sink it was given goes away.
class Subscription {
 public:
  /// `runs_only`: subscribeRuns() instead of subscribe().
  Subscription(Store& store, ChangeSink& sink, bool runs_only = false) : store_(store) {
    status_ = runs_only ? store_.subscribeRuns(sink) : store_.subscribe(sink);
  }
  ~Subscription() { store_.unsubscribe(); }
  Subscription(const Subscription&) = delete;
  Subscription& operator=(const Subscription&) = delete;
  const Status& status() const { return status_; }

 private:
  Store& store_;
  Status status_;
};

inline std::function<bool(const Change&)> isRun(const RunKey& key) {
  return [key](const Change& c) { return c.kind == Change::Kind::kRun && c.run == key; };
}
inline std::function<bool(const Change&)> isTask(const RunKey& key, const std::string& task) {
  return [key, task](const Change& c) {
    return c.kind == Change::Kind::kTask && c.run == key && c.task_id == task;
  };
}
inline std::function<bool(const Change&)> isDag(const std::string& dag_id) {
  return [dag_id](const Change& c) { return c.kind == Change::Kind::kDag && c.dag_id == dag_id; };
}

using Ids = std::vector<std::string>;

}  // namespace leoflow::contract::helpers
