// ReportBatcher (plugins/store-postgres/src/report_batcher.h) with a writer of the test's own: which
// reports go together, and that every caller gets its own report's answer. No server needed.
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "report_batcher.h"

namespace leoflow::plugins::store_postgres {
namespace {

using namespace std::chrono_literals;

ExecutionRef execution(const std::string& task) { return ExecutionRef{AttemptRef{RunKey{"d", "r"}, task, 1}, task}; }

/// A writer that records each batch's task ids and answers each report with a Status naming its task
/// (kConflict for tasks named "refused*"); while `hold` is set it keeps the batch until released.
class RecordingWriter {
 public:
  std::vector<Status> operator()(const std::vector<const ExecutorReport*>& reports) {
    std::vector<std::string> ids;
    for (const auto* r : reports) ids.push_back(r->execution.attempt.task_id);
    std::unique_lock lock(mu_);
    batches_.push_back(ids);
    changed_.notify_all();
    changed_.wait(lock, [&] { return !hold_; });
    std::vector<Status> answers;
    for (const auto& id : ids) {
      answers.push_back(id.rfind("refused", 0) == 0 ? conflict("refused " + id) : Status::ok());
    }
    return answers;
  }
  void hold(bool on) {
    std::lock_guard lock(mu_);
    hold_ = on;
    changed_.notify_all();
  }
  bool waitForBatches(std::size_t n) {
    std::unique_lock lock(mu_);
    return changed_.wait_for(lock, 10s, [&] { return batches_.size() >= n; });
  }
  std::vector<std::vector<std::string>> batches() {
    std::lock_guard lock(mu_);
    return batches_;
  }

 private:
  std::mutex mu_;
  std::condition_variable changed_;
  bool hold_ = false;
  std::vector<std::vector<std::string>> batches_;
};

/// Submits a claim of `task` on its own thread; its answer lands in `answer`.
std::thread submitter(ReportBatcher& batcher, std::string task, Status& answer) {
  return std::thread([&batcher, task = std::move(task), &answer] {
    const ExecutionRef e = execution(task);
    answer = batcher.submit(ExecutorReport{e, nullptr, Timestamp{}});
  });
}

/// Waits until `n` reports wait behind the batches in flight.
void waitUntilWaiting(ReportBatcher& batcher, std::size_t n) {
  const auto until = std::chrono::steady_clock::now() + 10s;
  while (batcher.waiting() < n && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(1ms);
  ASSERT_EQ(batcher.waiting(), n);
}

TEST(ReportBatcher, AReportAloneIsWrittenAtOnceAndAlone) {
  RecordingWriter w;
  ReportBatcher batcher([&](const auto& r) { return w(r); }, 32, 2);
  const ExecutionRef e = execution("a");
  EXPECT_TRUE(batcher.submit(ExecutorReport{e, nullptr, Timestamp{}}).isOk());
  EXPECT_THAT(w.batches(), ::testing::ElementsAre(std::vector<std::string>{"a"}));
}

TEST(ReportBatcher, ReportsArrivingWhileOthersAreWrittenGoTogetherEachWithItsOwnAnswer) {
  RecordingWriter w;
  ReportBatcher batcher([&](const auto& r) { return w(r); }, 32, 1);
  w.hold(true);
  Status first, a, refused, b;
  std::thread t0 = submitter(batcher, "first", first);
  ASSERT_TRUE(w.waitForBatches(1));
  std::thread t1 = submitter(batcher, "a", a);
  waitUntilWaiting(batcher, 1);
  std::thread t2 = submitter(batcher, "refused-b", refused);
  waitUntilWaiting(batcher, 2);
  std::thread t3 = submitter(batcher, "b", b);
  waitUntilWaiting(batcher, 3);
  w.hold(false);
  for (auto* t : {&t0, &t1, &t2, &t3}) t->join();
  EXPECT_THAT(w.batches(), ::testing::ElementsAre(std::vector<std::string>{"first"},
                                                  std::vector<std::string>{"a", "refused-b", "b"}));
  EXPECT_TRUE(first.isOk());
  EXPECT_TRUE(a.isOk());
  EXPECT_EQ(refused.code(), StatusCode::kConflict);
  EXPECT_EQ(refused.message(), "refused refused-b");
  EXPECT_TRUE(b.isOk());
}

TEST(ReportBatcher, ABatchHoldsAtMostMaxBatchReportsOldestFirst) {
  RecordingWriter w;
  ReportBatcher batcher([&](const auto& r) { return w(r); }, 2, 1);
  w.hold(true);
  std::vector<Status> answers(5);
  std::vector<std::thread> threads;
  threads.push_back(submitter(batcher, "r0", answers[0]));
  ASSERT_TRUE(w.waitForBatches(1));
  for (int i = 1; i < 5; ++i) {
    threads.push_back(submitter(batcher, "r" + std::to_string(i), answers[i]));
    waitUntilWaiting(batcher, i);
  }
  w.hold(false);
  for (auto& t : threads) t.join();
  EXPECT_THAT(w.batches(), ::testing::ElementsAre(std::vector<std::string>{"r0"}, std::vector<std::string>{"r1", "r2"},
                                                  std::vector<std::string>{"r3", "r4"}));
  for (const auto& s : answers) EXPECT_TRUE(s.isOk());
}

TEST(ReportBatcher, TwoBatchesMayBeInFlightAtOnce) {
  RecordingWriter w;
  ReportBatcher batcher([&](const auto& r) { return w(r); }, 32, 2);
  w.hold(true);
  Status a, b;
  std::thread ta = submitter(batcher, "a", a);
  ASSERT_TRUE(w.waitForBatches(1));
  std::thread tb = submitter(batcher, "b", b);
  EXPECT_TRUE(w.waitForBatches(2)) << "the second report did not wait for the first's batch";
  w.hold(false);
  ta.join();
  tb.join();
  EXPECT_TRUE(a.isOk() && b.isOk());
}

TEST(ReportBatcher, AWriterThatThrowsFailsItsBatchAndTheNextReportIsWritten) {
  int calls = 0;
  ReportBatcher batcher(
      [&](const std::vector<const ExecutorReport*>& reports) -> std::vector<Status> {
        if (++calls == 1) throw std::runtime_error("connection lost");
        return std::vector<Status>(reports.size(), Status::ok());
      },
      32, 1);
  const ExecutionRef e = execution("a");
  const Status failed = batcher.submit(ExecutorReport{e, nullptr, Timestamp{}});
  EXPECT_EQ(failed.code(), StatusCode::kInternal);
  EXPECT_THAT(failed.message(), ::testing::HasSubstr("connection lost"));
  EXPECT_TRUE(batcher.submit(ExecutorReport{e, nullptr, Timestamp{}}).isOk());
}

}  // namespace
}  // namespace leoflow::plugins::store_postgres
