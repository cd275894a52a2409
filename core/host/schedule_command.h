// `leoflow schedule next|due`: cron slots from the command line (ARCHITECTURE §5, §8.4).
#pragma once

#include <iosfwd>
#include <optional>
#include <string>

#include <leoflow/domain.h>

namespace CLI {
class App;
}

namespace leoflow::host {

struct CommandContext;

/// The arguments of `leoflow schedule next`.
struct ScheduleNextArgs {
  std::string expression;            ///< the schedule, as in a DAG file
  std::optional<std::string> after;  ///< ISO-8601 time; absent = now
  int count = 1;                     ///< how many slots to print (1 to 100000)
  std::string tz;                    ///< default zone; a CRON_TZ=/TZ= prefix wins
};

/// Prints the `count` slots strictly after `args.after` (else `now`), one ISO-8601 UTC time a line, to
/// `out`; returns the exit code (2 with a message on `err` for bad input, a never-firing expression or
/// a schedule without cron slots).
int runScheduleNext(const ScheduleNextArgs& args, std::ostream& out, std::ostream& err, Timestamp now);

/// Reads a due-slots query JSON from `in`, prints `{"slots":[...]}` to `out`; returns the exit code.
/// `now` is used when the query has none.
int runScheduleDue(std::istream& in, std::ostream& out, std::ostream& err, Timestamp now);

void addScheduleCommand(CLI::App& app, CommandContext& ctx);

}  // namespace leoflow::host
