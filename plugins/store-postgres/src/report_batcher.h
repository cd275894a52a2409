// Group commit for executor reports: the reports that arrive while others are being written go to the
// server together, in one transaction (migrations/011_report_batches.sql, README.md "Executor reports").
//
// Why: each claim and finished report publishes a change message, and PostgreSQL lets one notifying
// transaction at a time through its commit and WAL flush. Written one by one, concurrent reports queue
// for that lock and the store advances one flush per report; written together, one flush per batch.
//
// How: whoever submits a report while fewer than `max_in_flight` batches are being written writes one
// itself, with every report waiting at that moment (up to `max_batch`); the others wait for the batch
// that takes theirs. A report submitted alone is written alone, at once: a chain's step waits for no one.
// submit() returns only when its own report has been answered, as a single write would.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <vector>

#include <leoflow/status.h>
#include <leoflow/domain.h>

namespace leoflow::plugins::store_postgres {

/// One executor report: a claim (no outcome) or a finished report. It refers to the caller's values,
/// which outlive it: submit() returns only once the report is answered.
struct ExecutorReport {
  const ExecutionRef& execution;
  const TaskOutcome* outcome;  // nullptr for a claim (report_running)
  Timestamp at;
};

class ReportBatcher {
 public:
  /// Writes `reports` (one or more, in submission order) and answers each, in the same order.
  using Writer = std::function<std::vector<Status>(const std::vector<const ExecutorReport*>& reports)>;

  ReportBatcher(Writer writer, std::size_t max_batch, int max_in_flight);

  /// Writes `report`, alone or with others submitted meanwhile; its own answer.
  Status submit(const ExecutorReport& report);

  /// Reports submitted and not yet taken by a batch.
  std::size_t waiting();

 private:
  struct Waiting {
    const ExecutorReport* report;
    Status answer = Status::ok();
    bool taken = false;     // in a batch being written
    bool answered = false;
  };

  Writer writer_;
  const std::size_t max_batch_;
  const int max_in_flight_;
  std::mutex mu_;
  std::condition_variable answered_;
  std::deque<Waiting*> queue_;  // submitted, not yet taken by a batch
  int in_flight_ = 0;
};

}  // namespace leoflow::plugins::store_postgres
