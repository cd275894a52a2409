// How runs look on the command line: the JSON of ARCHITECTURE §5/§8.6 and a human table.
#pragma once

#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <leoflow/domain.h>

namespace leoflow::host {

/// `{"run_id","dag_id","dag_version","state","logical_date","started_at","ended_at","note","tenant",
/// "trigger","uid"}` (docs/architecture.md §8.14: `note` is "" when there is none) plus, when `with_tasks`,
/// `"tasks":[{"task_id","state","try_number","max_tries","note","started_at","ended_at"}]`.
nlohmann::ordered_json runToJson(const RunRecord& run, bool with_tasks);

/// A run and its tasks as a table for people.
void printRun(const RunRecord& run, std::ostream& out);

/// Runs as a table for people.
void printRuns(const std::vector<RunRecord>& runs, std::ostream& out);

/// `2026-01-01T00:00:00Z`, or "-" when absent.
std::string timeOrDash(const std::optional<Timestamp>& t);

}  // namespace leoflow::host
