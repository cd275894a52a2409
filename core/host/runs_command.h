// `leoflow runs trigger | show | list | clear | mark | cancel` (docs/architecture.md §5, §8.5, §8.6, §8.14).
#pragma once

#include <chrono>
#include <iosfwd>
#include <optional>
#include <string>

#include <leoflow/context.h>
#include <leoflow/store.h>

#include "host/operations.h"

namespace CLI {
class App;
}

namespace leoflow::host {

struct CommandContext;

struct TriggerOptions {
  std::string dag_id;
  std::string run_id;     ///< empty: manual__<now with microseconds>
  std::string conf_json;  ///< empty: no conf; `@path`: the JSON object in that file
  std::optional<Timestamp> logical_date;  ///< absent: the trigger time (docs/architecture.md §8.14)
  bool wait = false;
  std::optional<std::chrono::milliseconds> timeout;  ///< with wait; absent = until the run ends
  std::chrono::milliseconds poll_interval{100};  ///< with wait, without a change feed: how often the run is read
  /// With wait and a change feed (which tells the run's end at once): how often its progress is read.
  std::chrono::milliseconds progress_interval{1000};
};

/// Creates a manual run and prints its id on stdout; with `wait`, shows progress on stderr until
/// the run ends: exit 0 on success, 1 on failure, 124 on timeout (the run goes on).
int runsTrigger(Store& store, const Clock& clock, const TriggerOptions& options, std::ostream& out, std::ostream& err);
int runsShow(Store& store, const std::string& run_id, const std::optional<std::string>& dag_id, bool json,
             std::ostream& out);
int runsList(Store& store, const RunQuery& query, bool json, std::ostream& out);

/// How long `runs trigger --wait` sleeps before it reads the run again: `base` (TriggerOptions::
/// poll_interval), or 20 times what the last read took (`last_read`) when that is longer, at most
/// 2 s. When `end_is_heard` (`base` is then TriggerOptions::progress_interval), the store's change
/// feed wakes the wait as soon as the run changes state, so the reads only refresh the progress
/// line: 100 times the last read, at most 10 s. A read returns the whole run (at 20,000 tasks ~250
/// ms of PostgreSQL's CPU and ~70 ms of this process's, taken from the scheduler being waited on), so
/// a large run is read at most 1 % of the time (5 % without a feed), and seldom.
std::chrono::milliseconds waitPollInterval(std::chrono::milliseconds base, std::chrono::microseconds last_read,
                                           bool end_is_heard = false);

/// `runs trigger --timeout S`: S seconds, a positive number (fractions allowed) of at most 10^9, and
/// only with `wait`. Throws CommandError (exit 2) naming the option and the value otherwise.
std::chrono::milliseconds parseTimeout(const std::string& text, bool wait);

/// A time flag (`--since`, `--from`, `--to`): an ISO-8601 time with a zone. Throws CommandError
/// (exit 2) naming the flag and the value otherwise.
Timestamp parseTimeFlag(const std::string& flag, const std::string& text);

/// `runs trigger --logical-date T`: an ISO-8601 time with a zone, as `schedule next --after` takes.
/// Throws CommandError (exit 2) naming the flag and the value otherwise.
Timestamp parseLogicalDate(const std::string& text);

/// Refuses (CommandError, exit 2) a run id a person may not choose: one that is not isValidRunId,
/// or one starting with `scheduled__` or `backfill__`, the prefixes of the scheduler's and
/// backfill's runs (docs/architecture.md §8.14).
void checkManualRunId(const std::string& run_id);

/// `--conf` as given: JSON text, or `@path` to read it from a file. Returns the object as compact
/// JSON; anything else — an unreadable file, malformed JSON, not an object — is exit 2 naming the
/// file (or --conf).
std::string resolveConf(const std::string& conf);

/// A run id a person may choose: 1-250 printable characters, no whitespace and no '/'.
bool isValidRunId(const std::string& run_id);

void addRunsCommand(CLI::App& app, CommandContext& ctx);

}  // namespace leoflow::host
