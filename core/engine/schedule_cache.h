// Parsed schedules by (expression, zone): DAG schedules rarely change, so each is parsed once.
#pragma once

#include <map>
#include <string>
#include <utility>

#include <leoflow/status.h>

#include "schedule/cron.h"

namespace leoflow::engine {

class ScheduleCache {
 public:
  /// The parsed schedule, or the parse error (also cached: an expression does not get better).
  const Result<schedule::Schedule>& get(const std::string& expression, const std::string& timezone) {
    auto key = std::make_pair(expression, timezone);
    auto it = cache_.find(key);
    if (it == cache_.end()) it = cache_.emplace(key, Entry{schedule::Schedule::parse(expression, timezone)}).first;
    it->second.used = true;
    return it->second.schedule;
  }

  /// Forgets every expression not asked for since the previous sweep (the run creator sweeps after
  /// each pass over the scheduled DAGs, so only schedules no DAG has any more go).
  void sweepUnused() {
    std::erase_if(cache_, [](const auto& kv) { return !kv.second.used; });
    for (auto& [key, entry] : cache_) entry.used = false;
  }
  std::size_t size() const { return cache_.size(); }

 private:
  struct Entry {
    Result<schedule::Schedule> schedule;
    bool used = true;
  };
  std::map<std::pair<std::string, std::string>, Entry> cache_;
};

}  // namespace leoflow::engine
