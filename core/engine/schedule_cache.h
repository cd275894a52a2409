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
    if (it == cache_.end()) it = cache_.emplace(key, schedule::Schedule::parse(expression, timezone)).first;
    return it->second;
  }

 private:
  std::map<std::pair<std::string, std::string>, Result<schedule::Schedule>> cache_;
};

}  // namespace leoflow::engine
