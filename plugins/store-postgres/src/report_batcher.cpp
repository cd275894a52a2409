#include "report_batcher.h"

#include <exception>
#include <string>
#include <utility>

namespace leoflow::plugins::store_postgres {

ReportBatcher::ReportBatcher(Writer writer, std::size_t max_batch, int max_in_flight)
    : writer_(std::move(writer)), max_batch_(max_batch > 0 ? max_batch : 1),
      max_in_flight_(max_in_flight > 0 ? max_in_flight : 1) {}

Status ReportBatcher::submit(const ExecutorReport& report) {
  Waiting mine{&report};
  std::unique_lock lock(mu_);
  queue_.push_back(&mine);
  while (!mine.answered) {
    if (mine.taken || in_flight_ >= max_in_flight_) {
      answered_.wait(lock);  // ours is being written by another, or every writing slot is busy
      continue;
    }
    // Write a batch: whatever waits, oldest first, ours among it unless more than max_batch came before.
    std::vector<Waiting*> batch;
    while (!queue_.empty() && batch.size() < max_batch_) {
      batch.push_back(queue_.front());
      batch.back()->taken = true;
      queue_.pop_front();
    }
    ++in_flight_;
    lock.unlock();
    std::vector<const ExecutorReport*> reports;
    reports.reserve(batch.size());
    for (const Waiting* w : batch) reports.push_back(w->report);
    std::vector<Status> answers;
    try {
      answers = writer_(reports);
    } catch (const std::exception& e) {
      answers.assign(batch.size(), internalError(std::string("store-postgres: writing executor reports: ") + e.what()));
    }
    lock.lock();
    for (std::size_t i = 0; i < batch.size(); ++i) {
      batch[i]->answer = i < answers.size() ? std::move(answers[i])
                                            : internalError("store-postgres: a report batch answered too few reports");
      batch[i]->answered = true;
    }
    --in_flight_;
    answered_.notify_all();
  }
  return std::move(mine.answer);
}

std::size_t ReportBatcher::waiting() {
  std::lock_guard lock(mu_);
  return queue_.size();
}

}  // namespace leoflow::plugins::store_postgres
