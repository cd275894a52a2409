// The Dispatcher contract: each test states one rule of dispatcher.h (or ARCHITECTURE §8.7, §8.8
// behind it) as a user of the scheduler would notice it being broken — a task run twice, a retry
// that never runs, a scheduler that hangs on a full executor or on its way out, an attempt reaped
// as lost while it runs.
#include "contract/dispatcher_contract.h"

#include <stdlib.h>

#include <algorithm>
#include <atomic>
#include <future>
#include <latch>
#include <set>
#include <stdexcept>
#include <thread>
#include <vector>

#include "support/seeding_dispatcher.h"

namespace leoflow::contract {

using leoflow::testing::describe;
using leoflow::testing::TaskReport;
using K = leoflow::testing::TaskReportKind;
using std::chrono::milliseconds;

namespace {

/// The reports, one a line, for failure messages.
std::string listed(const std::vector<TaskReport>& reports) {
  std::string text;
  for (const TaskReport& r : reports) text += "\n  " + describe(r);
  return text.empty() ? " (none)" : text;
}

}  // namespace

void PrintTo(const DispatcherHarness& harness, std::ostream* os) { *os << harness.name; }

// ---------------------------------------------------------------------------------------------------
// StoreTaskEvents

namespace {

Timestamp wallNow() {
  return std::chrono::time_point_cast<std::chrono::microseconds>(std::chrono::system_clock::now());
}

}  // namespace

Status StoreTaskEvents::running(const ExecutionRef& execution) {
  return answered(K::kRunning, execution, {}, store_.reportRunning(execution, wallNow()));
}

Status StoreTaskEvents::heartbeat(const ExecutionRef& execution) {
  return answered(K::kHeartbeat, execution, {}, store_.reportHeartbeat(execution, wallNow()));
}

Status StoreTaskEvents::finished(const ExecutionRef& execution, const TaskOutcome& outcome) {
  return answered(K::kFinished, execution, outcome, store_.reportFinished(execution, outcome, wallNow()));
}

// Recorded after the store answered: whoever waits for a report finds the store already changed.
Status StoreTaskEvents::answered(K kind, const ExecutionRef& execution, const TaskOutcome& outcome, Status answer) {
  if (!answer.isOk()) {
    std::lock_guard lock(mutex_);
    refusals_.emplace_back(execution.attempt, std::string(toString(kind)) + " " + describe(execution.attempt) +
                                                  " (execution " + execution.execution_id + "): " + answer.toString());
  }
  switch (kind) {  // the recorder accepts everything: its own answer means nothing
    case K::kRunning:
      (void)recorded_->running(execution);
      break;
    case K::kHeartbeat:
      (void)recorded_->heartbeat(execution);
      break;
    case K::kFinished:
      (void)recorded_->finished(execution, outcome);
      break;
  }
  return answer;
}

void StoreTaskEvents::seedQueued(const AttemptRef& attempt) { store_.seedQueuedAttempt(attempt, wallNow()); }

std::vector<std::string> StoreTaskEvents::refusals(const std::optional<AttemptRef>& about) const {
  std::lock_guard lock(mutex_);
  std::vector<std::string> out;
  for (const auto& [attempt, text] : refusals_) {
    if (!about || attempt == *about) out.push_back(text);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------
// The fixture

void DispatcherContract::SetUp() {
  const DispatcherHarness& h = harness();
  ASSERT_TRUE(h.create) << "the harness gives no create";
  ASSERT_TRUE(h.capacity_config) << "the harness gives no capacity_config";
  ASSERT_TRUE(h.succeeding_task && h.failing_task && h.timed_task && h.long_task)
      << "the harness must build succeeding, failing, timed and long tasks";
  ASSERT_GT(h.heartbeat_interval.count(), 0);
  const char* base = std::getenv("TMPDIR");
  std::string pattern = std::string(base != nullptr && *base != '\0' ? base : "/tmp") + "/leoflow-dc-XXXXXX";
  ASSERT_NE(::mkdtemp(pattern.data()), nullptr) << "mkdtemp " << pattern;
  scratch_ = pattern;
}

void DispatcherContract::TearDown() {
  if (dispatcher_) {
    dispatcher_->shutdown();
    dispatcher_.reset();
  }
  // A refusal is a rule of store.h the dispatcher broke (a beat before its claim, a report for an
  // execution that never claimed the attempt), whatever the test looked at.
  for (const std::string& refused : store_events_.refusals()) ADD_FAILURE() << "the store refused " << refused;
  if (!scratch_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(scratch_, ec);
  }
}

Dispatcher& DispatcherContract::make(ConfigOverrides overrides) {
  if (dispatcher_) throw std::logic_error("one dispatcher per test");
  auto created = harness().create(store_events_, scratch_, std::move(overrides));
  if (!created) throw std::runtime_error("the harness's create returned no dispatcher");
  dispatcher_ = std::make_unique<leoflow::testing::SeedingDispatcher>(
      std::move(created), [this](const AttemptRef& a) { store_events_.seedQueued(a); });
  return *dispatcher_;
}

Dispatcher& DispatcherContract::makeWithCapacity(std::size_t n) { return make(harness().capacity_config(n)); }

DispatchRequest DispatcherContract::requestFor(const AttemptRef& attempt, TaskSpec task) {
  DispatchRequest request;
  request.attempt = attempt;
  request.task = std::move(task);
  request.task.task_id = attempt.task_id;
  request.logical_date = Timestamp{std::chrono::sys_days{std::chrono::year{2026} / std::chrono::May / 28}};
  request.conf_json = R"({"source":"contract"})";
  return request;
}

::testing::AssertionResult DispatcherContract::moreBeats(const AttemptRef& running, int n) const {
  const int seen = events_.count(K::kHeartbeat, running);
  const milliseconds wait = harness().report_timeout + 4 * n * harness().heartbeat_interval;
  if (events_.waitFor(K::kHeartbeat, running, seen + n, wait)) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << describe(running) << " did not heartbeat " << n << " more times; reports:"
                                       << listed(events_.reportsFor(running));
}

::testing::AssertionResult DispatcherContract::wellFormed(const AttemptRef& attempt) const {
  const std::vector<TaskReport> reports = events_.reportsFor(attempt);
  if (reports.empty() || reports.front().kind != K::kRunning) {
    return ::testing::AssertionFailure() << "the first report must be running; got" << listed(reports);
  }
  if (reports.back().kind != K::kFinished) {
    return ::testing::AssertionFailure() << "the last report must be finished; got" << listed(reports);
  }
  for (std::size_t i = 1; i + 1 < reports.size(); ++i) {
    if (reports[i].kind != K::kHeartbeat) {
      return ::testing::AssertionFailure() << "only heartbeats between running and finished; got" << listed(reports);
    }
  }
  if (const auto refused = store_events_.refusals(attempt); !refused.empty()) {
    auto failure = ::testing::AssertionFailure() << "the store refused:";
    for (const std::string& r : refused) failure << "\n  " << r;
    return failure;
  }
  return ::testing::AssertionSuccess();
}

// A binary may link the suites and instantiate only some of them.
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(DispatcherContract);

namespace {

using namespace std::chrono_literals;
using std::chrono::steady_clock;

std::string_view toString(DispatchOutcome outcome) {
  switch (outcome) {
    case DispatchOutcome::kStarted: return "kStarted";
    case DispatchOutcome::kAlreadyRunning: return "kAlreadyRunning";
    case DispatchOutcome::kAtCapacity: return "kAtCapacity";
  }
  return "?";
}

// The run every attempt of the suite belongs to; a run id as the host makes them (§8.5), with the
// characters (':', '.') a backend must encode for its own names.
const RunKey kRun{"contract", "manual__2026-05-28T12:00:00.000000Z"};

AttemptRef attemptOf(const std::string& task_id, int try_number = 1, const RunKey& run = kRun) {
  return AttemptRef{run, task_id, try_number};
}

::testing::AssertionResult started(const Result<DispatchOutcome>& r) {
  if (!r.isOk()) return ::testing::AssertionFailure() << "error: " << r.status().toString();
  if (*r != DispatchOutcome::kStarted) {
    return ::testing::AssertionFailure() << "answered " << toString(*r) << ", not kStarted";
  }
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult answered(const Result<DispatchOutcome>& r, DispatchOutcome expected) {
  if (!r.isOk()) return ::testing::AssertionFailure() << "error: " << r.status().toString();
  if (*r != expected) {
    return ::testing::AssertionFailure() << "answered " << toString(*r) << ", expected " << toString(expected);
  }
  return ::testing::AssertionSuccess();
}

/// Polls `condition` until it holds or `timeout` passes (for state that is not reported, like
/// freeCapacity()).
bool eventually(const std::function<bool()>& condition, milliseconds timeout) {
  const auto deadline = steady_clock::now() + timeout;
  while (!condition()) {
    if (steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(10ms);
  }
  return true;
}

// ---------------------------------------------------------------------------------------------------
// What the store is told (ARCHITECTURE §8.7: reports are facts about one attempt)

TEST_P(DispatcherContract, ASucceedingTaskReportsRunningThenFinishedSuccessForExactlyThatAttempt) {
  Dispatcher& d = makeWithCapacity(4);
  // A retry (try 3): a dispatcher that reports try 1, or another task, updates the wrong attempt.
  const AttemptRef a = attemptOf("extract", 3);
  ASSERT_TRUE(started(d.dispatch(requestFor(a, harness().succeeding_task()))));
  const auto finished = events_.waitFinished(a, harness().report_timeout);
  ASSERT_TRUE(finished.has_value()) << "no finished report; reports:" << listed(events_.reports());
  EXPECT_TRUE(finished->outcome.success) << describe(*finished);
  if (finished->outcome.exit_code) {
    EXPECT_EQ(*finished->outcome.exit_code, 0) << describe(*finished);
  }
  EXPECT_TRUE(wellFormed(a));
  EXPECT_EQ(store_events_.store().task(a.run, a.task_id)->state, TaskState::kSuccess);
  // Nothing more once it ended: a late heartbeat would be refused by the store, a second finished
  // could overwrite the next try's state. A witness started after the end beats twice: by then
  // whatever was still due about `a` has come.
  const std::size_t reports_at_end = events_.reportsFor(a).size();
  const AttemptRef witness = attemptOf("witness");
  ASSERT_TRUE(started(d.dispatch(requestFor(witness, harness().long_task()))));
  ASSERT_TRUE(moreBeats(witness, 2));
  EXPECT_EQ(events_.reportsFor(a).size(), reports_at_end) << listed(events_.reportsFor(a));
  for (const TaskReport& r : events_.reports()) {
    EXPECT_TRUE(r.attempt == a || r.attempt == witness) << "a report about an attempt nobody dispatched: "
                                                        << describe(r);
  }
}

TEST_P(DispatcherContract, AFailingTaskReportsFailureWithItsExitCode) {
  Dispatcher& d = makeWithCapacity(4);
  const AttemptRef a = attemptOf("load");
  // 42: no executor's default, so a hard-wired code (1, 127, 137) cannot pass for it.
  ASSERT_TRUE(started(d.dispatch(requestFor(a, harness().failing_task(42)))));
  const auto finished = events_.waitFinished(a, harness().report_timeout);
  ASSERT_TRUE(finished.has_value()) << "no finished report; reports:" << listed(events_.reports());
  EXPECT_FALSE(finished->outcome.success) << describe(*finished);
  EXPECT_EQ(finished->outcome.exit_code, std::optional<int>{42}) << describe(*finished);
  // The message becomes the task's note: the user reads why it failed there.
  EXPECT_NE(finished->outcome.message.find("42"), std::string::npos) << describe(*finished);
  EXPECT_TRUE(wellFormed(a));
}

TEST_P(DispatcherContract, EachTryAndEachRunOfATaskIsAnAttemptOfItsOwn) {
  // Idempotence is per (run, task, try): a retry, or the same task in the next run, must start,
  // not be taken for a re-dispatch of the first. A retry is handed over once the try before it has
  // ended, as the engine does (the store's task moves on to the new try then).
  Dispatcher& d = makeWithCapacity(4);
  const std::vector<AttemptRef> attempts{attemptOf("transform", 1), attemptOf("transform", 2),
                                         attemptOf("transform", 1, RunKey{kRun.dag_id, kRun.run_id + "_next"})};
  for (const AttemptRef& a : attempts) {
    EXPECT_TRUE(started(d.dispatch(requestFor(a, harness().succeeding_task())))) << describe(a);
    const auto finished = events_.waitFinished(a, harness().report_timeout);
    ASSERT_TRUE(finished.has_value()) << describe(a) << " never finished; reports:" << listed(events_.reports());
    EXPECT_TRUE(finished->outcome.success) << describe(*finished);
    EXPECT_TRUE(wellFormed(a)) << describe(a);
  }
}

// ---------------------------------------------------------------------------------------------------
// Idempotent dispatch (dispatcher.h; ARCHITECTURE §8.8: a new leader hands every queued attempt over
// again)

TEST_P(DispatcherContract, DispatchingARunningAttemptAgainDoesNotStartItTwice) {
  Dispatcher& d = makeWithCapacity(4);
  const AttemptRef a = attemptOf("report");
  const DispatchRequest request = requestFor(a, harness().long_task());
  ASSERT_TRUE(started(d.dispatch(request)));
  // At once (a retried hand-over), and after it is reported running (a new leader's re-dispatch).
  EXPECT_TRUE(answered(d.dispatch(request), DispatchOutcome::kAlreadyRunning)) << "right after the first";
  ASSERT_TRUE(events_.waitFor(K::kRunning, a, 1, harness().report_timeout)) << listed(events_.reports());
  EXPECT_TRUE(answered(d.dispatch(request), DispatchOutcome::kAlreadyRunning)) << "while it runs";
  ASSERT_TRUE(moreBeats(a, 2));  // a second start would have claimed by now
  EXPECT_EQ(events_.count(K::kRunning, a), 1) << listed(events_.reportsFor(a));
  EXPECT_EQ(events_.count(K::kFinished, a), 0) << "the long task is still running";
  EXPECT_EQ(d.freeCapacity(), 3u) << "one attempt holds one slot";
}

TEST_P(DispatcherContract, ConcurrentDispatchesOfOneAttemptStartItOnce) {
  // The host's dispatch pool and a new leader's re-dispatch can race on one attempt.
  constexpr int kRacers = 6;
  Dispatcher& d = makeWithCapacity(8);
  const AttemptRef a = attemptOf("race");
  const DispatchRequest request = requestFor(a, harness().long_task());
  std::vector<Result<DispatchOutcome>> results(kRacers, Result<DispatchOutcome>{internalError("not run")});
  {
    std::latch go(kRacers);
    std::vector<std::thread> racers;
    for (int i = 0; i < kRacers; ++i) {
      racers.emplace_back([&, i] {
        go.arrive_and_wait();
        results[static_cast<std::size_t>(i)] = d.dispatch(request);
      });
    }
    for (std::thread& t : racers) t.join();
  }
  int started_count = 0;
  for (const auto& r : results) {
    ASSERT_TRUE(r.isOk()) << r.status().toString();
    if (*r == DispatchOutcome::kStarted) {
      ++started_count;
    } else {
      EXPECT_EQ(*r, DispatchOutcome::kAlreadyRunning);
    }
  }
  EXPECT_EQ(started_count, 1) << "exactly one dispatch hands the attempt over";
  ASSERT_TRUE(events_.waitFor(K::kRunning, a, 1, harness().report_timeout)) << listed(events_.reports());
  ASSERT_TRUE(moreBeats(a, 2));  // a second start would have claimed by now
  EXPECT_EQ(events_.count(K::kRunning, a), 1) << listed(events_.reportsFor(a));
  EXPECT_EQ(d.freeCapacity(), 7u) << "one attempt holds one slot";
}

// ---------------------------------------------------------------------------------------------------
// Capacity and backpressure (ARCHITECTURE §8.8)

TEST_P(DispatcherContract, FreeCapacityDropsWhileAttemptsRunAndComesBackWhenTheyEnd) {
  Dispatcher& d = makeWithCapacity(4);
  EXPECT_EQ(d.freeCapacity(), 4u) << "idle, with room for 4";
  ASSERT_TRUE(started(d.dispatch(requestFor(attemptOf("hold1"), harness().long_task()))));
  EXPECT_EQ(d.freeCapacity(), 3u) << "the host reads it right after a hand-over";
  ASSERT_TRUE(started(d.dispatch(requestFor(attemptOf("hold2"), harness().long_task()))));
  EXPECT_EQ(d.freeCapacity(), 2u);

  const AttemptRef brief = attemptOf("brief");
  ASSERT_TRUE(started(d.dispatch(requestFor(brief, harness().timed_task(2s)))));
  EXPECT_EQ(d.freeCapacity(), 1u);
  const auto finished = events_.waitFinished(brief, 2s + harness().report_timeout);
  ASSERT_TRUE(finished.has_value()) << listed(events_.reports());
  EXPECT_TRUE(finished->outcome.success) << describe(*finished);
  EXPECT_TRUE(eventually([&] { return d.freeCapacity() == 2; }, 5s))
      << "the slot of the ended attempt comes back; free=" << d.freeCapacity();
  EXPECT_EQ(events_.count(K::kFinished, attemptOf("hold1")), 0);

  // The room that came back is real: another attempt starts in it.
  const AttemptRef next = attemptOf("next");
  ASSERT_TRUE(started(d.dispatch(requestFor(next, harness().succeeding_task()))));
  EXPECT_TRUE(events_.waitFinished(next, harness().report_timeout).has_value()) << listed(events_.reports());
}

TEST_P(DispatcherContract, AtCapacityDispatchAnswersAtCapacityWithoutWaiting) {
  Dispatcher& d = makeWithCapacity(2);
  ASSERT_TRUE(started(d.dispatch(requestFor(attemptOf("busy1"), harness().long_task()))));
  ASSERT_TRUE(started(d.dispatch(requestFor(attemptOf("busy2"), harness().long_task()))));
  EXPECT_EQ(d.freeCapacity(), 0u);

  // The running attempts never end by themselves: a dispatch that waits for room hangs here.
  const AttemptRef refused = attemptOf("refused");
  auto third = std::async(std::launch::async,
                          [&] { return d.dispatch(requestFor(refused, harness().succeeding_task())); });
  const bool answered_in_time = third.wait_for(2s) == std::future_status::ready;
  if (!answered_in_time) d.shutdown();  // lets the blocked call return, so the test can end
  ASSERT_TRUE(answered_in_time) << "dispatch() blocked at capacity instead of answering kAtCapacity";
  EXPECT_TRUE(answered(third.get(), DispatchOutcome::kAtCapacity));

  ASSERT_TRUE(moreBeats(attemptOf("busy1"), 2));
  EXPECT_TRUE(events_.reportsFor(refused).empty())
      << "an attempt refused for capacity returns to scheduled: it must not run" << listed(events_.reportsFor(refused));
  EXPECT_EQ(d.freeCapacity(), 0u);
}

// ---------------------------------------------------------------------------------------------------
// Task types (dispatcher.h: kInvalidArgument means the task can never run here)

TEST_P(DispatcherContract, ItListsTheTypesOfTheTasksItRuns) {
  // The host routes tasks by type to the dispatcher that lists it: a type missing from the list
  // is never sent here.
  Dispatcher& d = makeWithCapacity(2);
  const std::vector<std::string> types = d.taskTypes();
  if (types.empty()) GTEST_SKIP() << "takes every type";
  const std::set<std::string> listed_types(types.begin(), types.end());
  for (const TaskSpec& task : {harness().succeeding_task(), harness().failing_task(1), harness().long_task()}) {
    EXPECT_EQ(listed_types.count(task.type), 1u) << "runs type \"" << task.type << "\" without listing it";
  }
}

TEST_P(DispatcherContract, ATaskTypeItDoesNotTakeIsRefusedAsInvalid) {
  Dispatcher& d = makeWithCapacity(2);
  const std::vector<std::string> types = d.taskTypes();
  if (types.empty()) GTEST_SKIP() << "takes every type";
  if (!harness().foreign_task) GTEST_SKIP() << "the harness builds no task of a foreign type";
  const TaskSpec foreign = harness().foreign_task();
  ASSERT_EQ(std::count(types.begin(), types.end(), foreign.type), 0)
      << "the harness's foreign type \"" << foreign.type << "\" is one the dispatcher takes";

  const AttemptRef a = attemptOf("foreign");
  const auto r = d.dispatch(requestFor(a, foreign));
  ASSERT_FALSE(r.isOk()) << "a task of type \"" << foreign.type << "\" was accepted";
  // Not kUnavailable or kInternal: those are retried with back-off, this can never succeed.
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << r.status().toString();
  EXPECT_EQ(d.freeCapacity(), 2u) << "a refused task holds no slot";
  // A task dispatched after it runs to its end: by then anything started for the refused one would
  // have claimed.
  const AttemptRef after = attemptOf("after_foreign");
  ASSERT_TRUE(started(d.dispatch(requestFor(after, harness().succeeding_task()))));
  ASSERT_TRUE(events_.waitFinished(after, harness().report_timeout).has_value()) << listed(events_.reports());
  EXPECT_TRUE(events_.reportsFor(a).empty()) << listed(events_.reportsFor(a));
}

// ---------------------------------------------------------------------------------------------------
// Threads (dispatcher.h: the host's dispatch pool calls dispatch() from several workers at once)

TEST_P(DispatcherContract, ConcurrentDispatchesFromSeveralThreadsAllRunToTheirEnd) {
  constexpr int kThreads = 4;
  constexpr int kPerThread = 4;
  constexpr std::size_t kAll = kThreads * kPerThread;
  Dispatcher& d = makeWithCapacity(kAll);
  std::vector<AttemptRef> attempts;
  for (int t = 0; t < kThreads; ++t) {
    for (int i = 0; i < kPerThread; ++i) {
      attempts.push_back(attemptOf("fan_" + std::to_string(t) + "_" + std::to_string(i)));
    }
  }
  std::vector<Result<DispatchOutcome>> results(kAll, Result<DispatchOutcome>{internalError("not run")});
  {
    std::latch go(kThreads);
    std::vector<std::thread> workers;
    for (int t = 0; t < kThreads; ++t) {
      workers.emplace_back([&, t] {
        go.arrive_and_wait();
        for (int i = 0; i < kPerThread; ++i) {
          const auto k = static_cast<std::size_t>(t * kPerThread + i);
          results[k] = d.dispatch(requestFor(attempts[k], harness().succeeding_task()));
        }
      });
    }
    for (std::thread& w : workers) w.join();
  }
  for (std::size_t k = 0; k < kAll; ++k) EXPECT_TRUE(started(results[k])) << describe(attempts[k]);
  for (const AttemptRef& a : attempts) {
    const auto finished = events_.waitFinished(a, harness().report_timeout);
    ASSERT_TRUE(finished.has_value()) << describe(a) << " never finished";
    EXPECT_TRUE(finished->outcome.success) << describe(*finished);
    EXPECT_TRUE(wellFormed(a)) << describe(a);
  }
  EXPECT_EQ(events_.countAll(K::kRunning), static_cast<int>(kAll));
  EXPECT_EQ(events_.countAll(K::kFinished), static_cast<int>(kAll));
  EXPECT_TRUE(eventually([&] { return d.freeCapacity() == kAll; }, 5s)) << "free=" << d.freeCapacity();
}

// ---------------------------------------------------------------------------------------------------
// Heartbeats (ARCHITECTURE §8.8: the agent-lost reaper fails an attempt silent for six intervals)

TEST_P(DispatcherContract, ARunningAttemptHeartbeatsAtTheLentInterval) {
  const milliseconds interval = harness().heartbeat_interval;
  constexpr int kBeats = 8;
  Dispatcher& d = makeWithCapacity(2);
  const AttemptRef a = attemptOf("sensor");
  ASSERT_TRUE(started(d.dispatch(requestFor(a, harness().long_task()))));
  ASSERT_TRUE(events_.waitFor(K::kHeartbeat, a, kBeats, harness().report_timeout + kBeats * interval))
      << "fewer than " << kBeats << " heartbeats; reports:" << listed(events_.reportsFor(a));

  std::vector<TaskReport> reports = events_.reportsFor(a);
  ASSERT_EQ(reports.front().kind, K::kRunning) << "running stamps the first heartbeat; beats come after it";
  // Running and the beats after it, up to the kBeats-th.
  reports.resize(kBeats + 1);
  std::vector<milliseconds> gaps;
  for (std::size_t i = 1; i < reports.size(); ++i) {
    ASSERT_EQ(reports[i].kind, K::kHeartbeat) << listed(reports);
    gaps.push_back(std::chrono::duration_cast<milliseconds>(reports[i].at - reports[i - 1].at));
  }
  std::vector<milliseconds> sorted = gaps;
  std::sort(sorted.begin(), sorted.end());
  const milliseconds median = sorted[sorted.size() / 2];
  std::string seen;
  for (milliseconds g : gaps) seen += " " + std::to_string(g.count());
  // Paced by the lent interval: not the dispatcher's own default, not a flood of store writes. The
  // bounds are wide (a sanitized build on a loaded 2-core machine stretches gaps; a default of 1 s or
  // more, or a busy loop, is still far outside them).
  EXPECT_GE(median, interval / 2) << "gaps (ms):" << seen;
  EXPECT_LE(median, interval * 2) << "gaps (ms):" << seen;
  // No silence anywhere near the reaper's six intervals, even on a loaded machine.
  EXPECT_LT(sorted.back(), 4 * interval) << "gaps (ms):" << seen;
}

// ---------------------------------------------------------------------------------------------------
// Shutdown (ARCHITECTURE §8.11: the scheduler exits within 10 s of SIGTERM)

TEST_P(DispatcherContract, ShutdownReturnsPromptlyWhileAttemptsRun) {
  Dispatcher& d = makeWithCapacity(4);
  const std::vector<AttemptRef> attempts{attemptOf("stay1"), attemptOf("stay2")};
  for (const AttemptRef& a : attempts) ASSERT_TRUE(started(d.dispatch(requestFor(a, harness().long_task()))));
  for (const AttemptRef& a : attempts) {
    ASSERT_TRUE(events_.waitFor(K::kRunning, a, 1, harness().report_timeout)) << listed(events_.reports());
  }
  const auto before = steady_clock::now();
  d.shutdown();
  EXPECT_LT(steady_clock::now() - before, 5s) << "shutdown waited for running attempts";
  const auto again = steady_clock::now();
  d.shutdown();  // the host's drain and the destructor may both call it
  EXPECT_LT(steady_clock::now() - again, 5s);
}

TEST_P(DispatcherContract, NothingStartsAfterShutdown) {
  Dispatcher& d = makeWithCapacity(4);
  d.shutdown();
  EXPECT_EQ(d.freeCapacity(), 0u) << "the host must move no more tasks to queued for it";
  const AttemptRef late = attemptOf("late");
  const auto r = d.dispatch(requestFor(late, harness().succeeding_task()));
  // kAtCapacity returns the task to scheduled, an error is retried later; kStarted or
  // kAlreadyRunning would leave it queued for an executor that is gone.
  if (r.isOk()) {
    EXPECT_NE(*r, DispatchOutcome::kStarted);
    EXPECT_NE(*r, DispatchOutcome::kAlreadyRunning);
  }
  // Destroyed, the dispatcher reports nothing more: whatever it was going to say has been said.
  dispatcher_.reset();
  EXPECT_TRUE(events_.reportsFor(late).empty()) << listed(events_.reportsFor(late));
}

// ---------------------------------------------------------------------------------------------------
// reconcile() (dispatcher.h: called by the leader every tick)

TEST_P(DispatcherContract, ReconcileAnswersOkAtAnyTimeAndDisturbsNoAttempt) {
  Dispatcher& d = makeWithCapacity(8);
  EXPECT_TRUE(d.reconcile().isOk()) << "on a fresh dispatcher";

  const AttemptRef long_running = attemptOf("long");
  ASSERT_TRUE(started(d.dispatch(requestFor(long_running, harness().long_task()))));
  // The leader's tick runs beside the dispatch pool.
  std::atomic<bool> stop{false};
  std::atomic<int> calls{0};
  std::vector<std::string> failures;
  std::thread ticker([&] {
    while (!stop.load()) {
      const Status s = d.reconcile();
      ++calls;
      if (!s.isOk() && failures.size() < 5) failures.push_back(s.toString());
      std::this_thread::sleep_for(5ms);
    }
  });
  std::vector<AttemptRef> brief;
  for (int i = 0; i < 4; ++i) {
    brief.push_back(attemptOf("tick_" + std::to_string(i)));
    EXPECT_TRUE(started(d.dispatch(requestFor(brief.back(), harness().succeeding_task()))));
  }
  for (const AttemptRef& a : brief) {
    EXPECT_TRUE(events_.waitFinished(a, harness().report_timeout).has_value())
        << describe(a) << listed(events_.reports());
  }
  stop = true;
  ticker.join();
  EXPECT_GT(calls.load(), 0);
  EXPECT_TRUE(failures.empty()) << failures.front();
  for (const AttemptRef& a : brief) EXPECT_TRUE(wellFormed(a)) << describe(a);
  EXPECT_EQ(events_.count(K::kRunning, long_running), 1) << listed(events_.reportsFor(long_running));
  EXPECT_EQ(events_.count(K::kFinished, long_running), 0) << "reconcile must not end an attempt that runs";

  d.shutdown();
  EXPECT_TRUE(d.reconcile().isOk()) << "after shutdown";
}

}  // namespace
}  // namespace leoflow::contract
