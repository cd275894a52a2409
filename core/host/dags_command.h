// `leoflow dags validate | sync | list | show | pause | unpause` (docs/architecture.md §5, §6, §8.6,
// §8.14).
#pragma once

#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

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
int dagsSync(Store& store, const std::vector<std::string>& paths, std::ostream& out, std::ostream& err,
             const std::optional<std::string>& missing_inline_runner = std::nullopt);
int dagsList(Store& store, bool json, std::ostream& out);

/// How `dags show` prints a DAG.
enum class DagShowFormat { kText, kJson, kDot };

/// `dags show DAG`: the DAG's current version and its tasks (docs/architecture.md §8.14). kJson is
/// the `dags list` object plus `"tasks":[{"task_id","type","depends_on","trigger_rule"}]`; kDot is a
/// Graphviz digraph with one edge per dependency. An unknown DAG is exit 2.
int dagsShow(Store& store, const std::string& dag_id, DagShowFormat format, std::ostream& out);

/// `"id"` for a Graphviz DOT file: quotes and backslashes escaped, control characters spelled out.
std::string dotQuote(const std::string& id);

int dagsSetPaused(Store& store, const std::string& dag_id, bool paused, std::ostream& out);

void addDagsCommand(CLI::App& app, CommandContext& ctx);

}  // namespace leoflow::host
