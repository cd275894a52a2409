#include "host/dags_command.h"

#include <algorithm>
#include <chrono>
#include <map>
#include <ostream>
#include <thread>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "host/command_context.h"
#include "host/dag_file.h"
#include "host/exit_codes.h"
#include "host/operations.h"
#include "host/progress_line.h"
#include "host/runs_command.h"
#include "host/store_session.h"
#include "text/quoted.h"

namespace leoflow::host {
namespace {

// Prints warnings and errors; true when there were no errors.
bool report(const DagLoad& load, std::ostream& err) {
  for (const std::string& w : load.warnings) err << "warning: " << w << '\n';
  for (const std::string& e : load.errors) err << "error: " << e << '\n';
  return load.errors.empty();
}


// inline-http's max_timeout_s as the config sets it (its default, 300, when absent); nullopt for
// another runner or none, whose limits the host does not know.
std::optional<int> inlineMaxTimeout(const HostConfig& config) {
  if (!config.inline_runner || config.inline_runner->plugin != "inline-http") return std::nullopt;
  auto it = config.inline_runner->config->entries.find("max_timeout_s");
  if (it == config.inline_runner->config->entries.end()) return 300;
  if (it->second.value) {
    if (const auto* v = std::get_if<std::int64_t>(&*it->second.value)) return static_cast<int>(*v);
  }
  return std::nullopt;  // ill-typed: the plugin's own check says so when the scheduler starts
}

}  // namespace

int dagsValidate(const std::vector<std::string>& paths, std::ostream& out, std::ostream& err) {
  const DagLoad load = loadDagFiles(paths);
  const bool ok = report(load, err);
  for (const ParsedDag& d : load.dags) {
    out << fmt::format("ok {}: dag {} ({} task{}{})\n", d.file, d.spec.dag_id, d.spec.tasks.size(),
                       d.spec.tasks.size() == 1 ? "" : "s",
                       d.spec.schedule.empty() ? ", manual" : ", schedule " + d.spec.schedule);
  }
  if (!ok) {
    err << fmt::format("{} error{} in {} path{}; nothing is valid until all are fixed\n", load.errors.size(),
                       load.errors.size() == 1 ? "" : "s", paths.size(), paths.size() == 1 ? "" : "s");
    return kExitBadInput;
  }
  return kExitOk;
}

int dagsSync(Store& store, const std::vector<std::string>& paths, std::ostream& out, std::ostream& err,
             const std::optional<std::string>& missing_inline_runner, std::optional<int> inline_max_timeout_s) {
  DagLoad load = loadDagFiles(paths);
  if (inline_max_timeout_s) {
    // An inline task whose timeout is above the runner's limit fails at its first attempt; say so now,
    // while the author is looking (the timeout rule is inline-http's: docs in its README).
    for (const ParsedDag& d : load.dags) {
      for (const TaskSpec& t : d.spec.tasks) {
        if (t.type != "http_api" || t.execution_mode != ExecutionMode::kInline) continue;
        const int request = t.http_request ? t.http_request->timeout_seconds : 0;
        const int task = t.execution_timeout_seconds;
        const int timeout = request > 0 && task > 0 ? std::min(request, task) : (request > 0 ? request : (task > 0 ? task : 60));
        if (timeout <= *inline_max_timeout_s) continue;
        load.warnings.push_back(fmt::format(
            "{}: task \"{}\": its timeout ({} s) exceeds the inline runner's max_timeout_s ({} s): it will fail; "
            "declare \"execution_mode\": \"pod\" to run it as a pod",
            d.file, t.task_id, timeout, *inline_max_timeout_s));
      }
    }
  }
  if (missing_inline_runner) {
    // BEHAVIOUR §2.4: without an InlineRunner, inline http_api tasks go to the dispatchers, which
    // may not run them. Registering is still right: the config may gain one.
    for (const ParsedDag& d : load.dags) {
      for (const TaskSpec& t : d.spec.tasks) {
        if (t.type != "http_api" || t.execution_mode != ExecutionMode::kInline) continue;
        load.warnings.push_back(fmt::format(
            "{}: task \"{}\": an inline http_api task, but {} configures no [inline_runner]: it will be handed to "
            "a dispatcher, which may not run http_api tasks",
            d.file, t.task_id, *missing_inline_runner));
      }
    }
  }
  if (!report(load, err)) {
    // §8.6: sync is all-or-nothing per call.
    err << fmt::format("nothing registered: {} error{}\n", load.errors.size(), load.errors.size() == 1 ? "" : "s");
    return kExitBadInput;
  }
  std::vector<DagDefinition> defs;
  defs.reserve(load.dags.size());
  for (const ParsedDag& d : load.dags) defs.push_back({d.spec, d.canonical_json});
  auto registered = store.syncDags(defs);
  if (!registered) failWith(registered.status(), "registering dags");
  for (const DagRegistration& r : *registered) {
    out << fmt::format("dag {}: version {} ({})\n", r.dag_id, r.version, r.changed ? "registered" : "unchanged");
  }
  return kExitOk;
}

int dagsList(Store& store, bool json, std::ostream& out, Timestamp now) {
  auto dags = store.listDags();
  if (!dags) failWith(dags.status(), "listing dags");
  if (json) {
    out << listDagsJson(store, now).dump(2) << '\n';
    return kExitOk;
  }
  if (dags->empty()) {
    out << "no dags registered (leoflow dags sync PATH)\n";
    return kExitOk;
  }
  std::size_t w = 6, sw = 8, tw = 6;
  for (const DagSummary& d : *dags) {
    w = std::max(w, d.dag_id.size());
    sw = std::max(sw, d.schedule.size());
    tw = std::max(tw, d.tenant.size());
  }
  out << fmt::format("{:<{}}  {:<{}}  {:<6}  {:<7}  {}\n", "DAG_ID", w, "SCHEDULE", sw, "PAUSED", "VERSION", "TENANT");
  for (const DagSummary& d : *dags) {
    out << fmt::format("{:<{}}  {:<{}}  {:<6}  {:<7}  {}\n", d.dag_id, w, d.schedule.empty() ? "-" : d.schedule, sw,
                       d.paused ? "yes" : "no", d.version, d.tenant);
  }
  return kExitOk;
}

std::string dotQuote(const std::string& id) {
  // A DOT quoted ID takes the escapes text::quoted writes (\" and \\, \n for a line break).
  return text::quoted(id);
}

int dagsShow(Store& store, const std::string& dag_id, DagShowFormat format, std::ostream& out, Timestamp now) {
  // The JSON is the API's object (it reads the DAG itself); text and DOT need only the spec.
  if (format == DagShowFormat::kJson) {
    out << showDagJson(store, dag_id, now).dump(2) << '\n';
    return kExitOk;
  }
  const LoadedDag dag = loadDag(store, dag_id);
  const DagSpec* spec = dag.spec.get();
  const DagSummary summary{dag.stored.dag_id, spec->schedule, dag.stored.paused, dag.stored.version, spec->tenant};

  switch (format) {
    case DagShowFormat::kJson:
      break;  // answered above
    case DagShowFormat::kDot: {
      out << "digraph " << dotQuote(summary.dag_id) << " {\n";
      // Every task is a node, also one with no edges; then one edge per dependency.
      for (const TaskSpec& t : spec->tasks) out << "  " << dotQuote(t.task_id) << ";\n";
      for (const TaskSpec& t : spec->tasks) {
        for (const std::string& up : t.depends_on) {
          out << "  " << dotQuote(up) << " -> " << dotQuote(t.task_id) << ";\n";
        }
      }
      out << "}\n";
      break;
    }
    case DagShowFormat::kText: {
      out << fmt::format("dag {}: version {}, {}, {}, tenant {}\n", summary.dag_id, summary.version,
                         summary.schedule.empty() ? "manual" : "schedule " + summary.schedule,
                         summary.paused ? "paused" : "not paused", summary.tenant);
      std::size_t w = 4, tw = 4, rw = 12;
      for (const TaskSpec& t : spec->tasks) {
        w = std::max(w, t.task_id.size());
        tw = std::max(tw, t.type.size());
        rw = std::max(rw, toString(t.trigger_rule).size());
      }
      out << fmt::format("  {:<{}}  {:<{}}  {:<{}}  {}\n", "TASK", w, "TYPE", tw, "TRIGGER_RULE", rw, "DEPENDS_ON");
      for (const TaskSpec& t : spec->tasks) {
        out << fmt::format("  {:<{}}  {:<{}}  {:<{}}  {}\n", t.task_id, w, t.type, tw, toString(t.trigger_rule), rw,
                           t.depends_on.empty() ? "-" : fmt::format("{}", fmt::join(t.depends_on, ", ")));
      }
      break;
    }
  }
  return kExitOk;
}

int dagsBackfill(Store& store, const Clock& clock, const std::string& dag_id, Timestamp from, Timestamp to, bool wait,
                 std::ostream& out, std::ostream& err, std::chrono::milliseconds poll_interval) {
  const BackfillResult result =
      backfill(store, clock.now(), dag_id, from, to, progressEverySecond(err, [&dag_id](std::size_t done, std::size_t of) {
                 return fmt::format("{} of {} slots of dag {} backfilled\n", done, of, dag_id);
               }));
  for (const RunKey& k : result.created) out << k.run_id << '\n';
  out << std::flush;
  err << fmt::format("{} backfill run{} created", result.created.size(), result.created.size() == 1 ? "" : "s");
  if (!result.already_taken.empty()) {
    err << fmt::format("; {} slot{} already held by a run, skipped", result.already_taken.size(),
                       result.already_taken.size() == 1 ? "" : "s");
  }
  err << '\n' << std::flush;
  if (!wait || result.created.empty()) return kExitOk;
  // Follow the runs until every one ended; a line whenever the counts change.
  std::string last;
  for (;;) {
    std::map<DagRunState, int> counts;
    std::vector<std::string> failed;
    auto loaded = store.loadRuns(result.created);
    for (std::size_t i = 0; i < loaded.size(); ++i) {
      if (!loaded[i]) {
        if (loaded[i].status().code() == StatusCode::kUnavailable) continue;
        failWith(loaded[i].status(), "following run " + result.created[i].run_id);
      }
      ++counts[loaded[i]->state];
      if (loaded[i]->state == DagRunState::kFailed) failed.push_back(result.created[i].run_id);
    }
    const int ended = counts[DagRunState::kSuccess] + counts[DagRunState::kFailed];
    const std::string line = fmt::format("{} of {} runs ended ({} success, {} failed), {} running, {} queued", ended,
                                         result.created.size(), counts[DagRunState::kSuccess],
                                         counts[DagRunState::kFailed], counts[DagRunState::kRunning],
                                         counts[DagRunState::kQueued]);
    if (line != last) {
      err << line << '\n' << std::flush;
      last = line;
    }
    if (ended == static_cast<int>(result.created.size())) {
      if (failed.empty()) return kExitOk;
      err << fmt::format("failed: {}\n", fmt::join(failed, ", "));
      return kExitFailed;
    }
    std::this_thread::sleep_for(poll_interval);
  }
}

int dagsSetPaused(Store& store, const std::string& dag_id, bool paused, std::ostream& out) {
  setPaused(store, dag_id, paused);
  out << fmt::format("dag {} {}\n", dag_id, paused ? "paused" : "unpaused");
  return kExitOk;
}

void addDagsCommand(CLI::App& app, CommandContext& ctx) {
  CLI::App* dags =
      app.add_subcommand("dags", "DAG files and registered DAGs: validate, sync, list, show, pause, unpause, delete, backfill");
  dags->require_subcommand(1);

  static std::vector<std::string> paths;  // CLI11 binds to storage that outlives parsing
  CLI::App* validate = dags->add_subcommand("validate", "Check DAG files and folders (no store needed)");
  validate->add_option("paths", paths, "DAG files or folders of *.json files")->required();
  validate->callback([&ctx] { ctx.exit_code = dagsValidate(paths, *ctx.out, *ctx.err); });

  CLI::App* sync = dags->add_subcommand("sync", "Register DAG files (a new version when one changed); all or nothing");
  sync->add_option("paths", paths, "DAG files or folders of *.json files")->required();
  sync->callback([&ctx] {
    StoreSession session(ctx);
    std::optional<std::string> missing_inline_runner;
    if (!session.config().inline_runner) missing_inline_runner = session.config().path;
    ctx.exit_code = dagsSync(session.store(), paths, *ctx.out, *ctx.err, missing_inline_runner,
                             inlineMaxTimeout(session.config()));
  });

  static bool json = false;
  CLI::App* list = dags->add_subcommand("list", "List registered DAGs");
  list->add_flag("--json", json,
                 "Print a JSON array of {dag_id, schedule, paused, version, tenant, next_slot, last_run_state}");
  list->callback([&ctx] {
    StoreSession session(ctx);
    ctx.exit_code = dagsList(session.store(), json, *ctx.out, session.clock().now());
  });

  static std::string dag_id;
  static bool show_json = false;
  static bool show_dot = false;
  CLI::App* show = dags->add_subcommand("show", "Show a registered DAG and its tasks");
  show->add_option("dag", dag_id, "DAG id")->required();
  show->add_flag("--json", show_json,
                 "Print JSON: the dags list object plus tasks [{task_id, type, depends_on, trigger_rule}]");
  show->add_flag("--dot", show_dot, "Print the task graph as Graphviz DOT (leoflow dags show D --dot | dot -Tsvg)");
  show->callback([&ctx] {
    // A usage error needs no config and no store (docs/architecture.md §8.6, exit 2).
    if (show_json && show_dot) throw badInput("dags show: --json and --dot cannot be used together; pick one");
    const DagShowFormat format =
        show_json ? DagShowFormat::kJson : (show_dot ? DagShowFormat::kDot : DagShowFormat::kText);
    StoreSession session(ctx);
    ctx.exit_code = dagsShow(session.store(), dag_id, format, *ctx.out, session.clock().now());
  });

  for (const bool pause : {true, false}) {
    CLI::App* cmd = dags->add_subcommand(pause ? "pause" : "unpause",
                                         pause ? "Stop creating scheduled runs of a DAG" : "Resume a paused DAG");
    cmd->add_option("dag", dag_id, "DAG id")->required();
    cmd->callback([&ctx, pause] {
      StoreSession session(ctx);
      ctx.exit_code = dagsSetPaused(session.store(), dag_id, pause, *ctx.out);
    });
  }

  static bool force = false;
  static std::string actor;
  CLI::App* del = dags->add_subcommand(
      "delete", "Remove a DAG with its versions, runs and task instances (its files stay; dags sync adds it again)");
  del->add_option("dag", dag_id, "DAG id")->required();
  del->add_flag("--force", force, "Cancel its active runs first (without it, active runs refuse the delete)");
  del->add_option("--actor", actor, "Who does this, named in the cancelled runs' notes (default $USER@host)")
      ->type_name("NAME");
  del->callback([&ctx] {
    StoreSession session(ctx);
    const SliceProgress progress = progressEverySecond(*ctx.err, [](std::size_t done, std::size_t of) {
      return fmt::format("cancelled {} of {} active runs of dag {}\n", done, of, dag_id);
    });
    const auto cancelled = deleteDag(session.store(), session.clock().now(), dag_id, force,
                                     actor.empty() ? defaultActor() : actor, progress);
    if (!cancelled.empty()) {
      // The first ids, not a line of 100,000.
      constexpr std::size_t kNamed = 20;
      const auto named = static_cast<std::ptrdiff_t>(std::min(cancelled.size(), kNamed));
      *ctx.out << fmt::format("cancelled {} active run{}: {}{}\n", cancelled.size(), cancelled.size() == 1 ? "" : "s",
                              fmt::join(cancelled.begin(), cancelled.begin() + named, ", "),
                              cancelled.size() > kNamed ? fmt::format(" and {} more", cancelled.size() - kNamed) : "");
    }
    *ctx.out << fmt::format("dag {} deleted\n", dag_id);
    ctx.exit_code = kExitOk;
  });

  static std::string from_text, to_text;
  static bool wait = false;
  CLI::App* bf = dags->add_subcommand(
      "backfill", "Create one run per schedule slot in [--from, --to] (run ids backfill__<logical date>)");
  bf->add_option("dag", dag_id, "DAG id")->required();
  bf->add_option("--from", from_text, "First logical date, ISO 8601")->required()->type_name("TIME");
  bf->add_option("--to", to_text, "Last logical date (inclusive), ISO 8601")->required()->type_name("TIME");
  bf->add_flag("--wait", wait, "Show progress until every backfill run ended: exit 1 if any failed");
  bf->callback([&ctx] {
    const Timestamp from = parseTimeFlag("--from", from_text);
    const Timestamp to = parseTimeFlag("--to", to_text);
    StoreSession session(ctx);
    ctx.exit_code = dagsBackfill(session.store(), session.clock(), dag_id, from, to, wait, *ctx.out, *ctx.err);
  });
}

}  // namespace leoflow::host