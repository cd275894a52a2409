// `leoflow dags validate | sync | list | show | pause | unpause | delete | backfill` (docs/architecture.md §5, §6, §8.6,
// §8.14).
#pragma once

#include <chrono>
#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

#include <leoflow/context.h>
#include <leoflow/store.h>

namespace CLI {
class App;
}

namespace leoflow::host {

struct CommandContext;

/// Checks DAG files and folders without a store: 0 when all are valid, 2 listing every error.
int dagsValidate(const std::vector<std::string>& paths, std::ostream& out, std::ostream& err);
/// Registers DAG files all-or-nothing: any invalid file → nothing registered, exit 2.
/// `missing_inline_runner`: the config file's name when it configures no [inline_runner]; each
/// inline http_api task then gets a warning on `err` (the sync still succeeds).
/// `inline_max_timeout_s`: the inline runner's max_timeout_s, when known; each inline http_api task
/// whose timeout exceeds it gets a warning (it would fail at its first attempt).
int dagsSync(Store& store, const std::vector<std::string>& paths, std::ostream& out, std::ostream& err,
             const std::optional<std::string>& missing_inline_runner = std::nullopt,
             std::optional<int> inline_max_timeout_s = std::nullopt);
/// `now`: for each DAG's next_slot.
int dagsList(Store& store, bool json, std::ostream& out, Timestamp now);

/// How `dags show` prints a DAG.
enum class DagShowFormat { kText, kJson, kDot };

/// `dags show DAG`: the DAG's current version and its tasks (docs/architecture.md §8.14). kJson is
/// the `dags list` object plus `"tasks":[{"task_id","type","depends_on","trigger_rule"}]`; kDot is a
/// Graphviz digraph with one edge per dependency. An unknown DAG is exit 2.
int dagsShow(Store& store, const std::string& dag_id, DagShowFormat format, std::ostream& out, Timestamp now);

/// `"id"` for a Graphviz DOT file: quotes and backslashes escaped, control characters spelled out.
std::string dotQuote(const std::string& id);

/// `dags backfill DAG --from T --to T [--wait]`: creates the runs (their ids on stdout, a summary on
/// stderr); with `wait`, follows them: exit 0 when all succeeded, 1 when any failed.
int dagsBackfill(Store& store, const Clock& clock, const std::string& dag_id, Timestamp from, Timestamp to, bool wait,
                 std::ostream& out, std::ostream& err,
                 std::chrono::milliseconds poll_interval = std::chrono::milliseconds(200));

int dagsSetPaused(Store& store, const std::string& dag_id, bool paused, std::ostream& out);

void addDagsCommand(CLI::App& app, CommandContext& ctx);

}  // namespace leoflow::host
