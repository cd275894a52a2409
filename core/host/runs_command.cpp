#include "host/runs_command.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <mutex>
#include <optional>
#include <ostream>
#include <sstream>
#include <utility>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "host/command_context.h"
#include "host/dag_file.h"
#include "host/exit_codes.h"
#include "host/json_fields.h"
#include "host/operations.h"
#include "host/progress_line.h"
#include "host/run_view.h"
#include "host/store_session.h"
#include "schedule/iso_time.h"

namespace leoflow::host {
namespace {

std::string progressLine(const RunRecord& run, std::chrono::seconds elapsed) {
  std::size_t done = 0;
  std::map<TaskState, std::size_t> by_state;
  std::vector<std::string> running;
  for (const TaskInstance& t : run.tasks) {
    ++by_state[t.state];
    if (isTerminal(t.state)) ++done;
    if (t.state == TaskState::kRunning) running.push_back(t.task_id);
  }
  std::string line = fmt::format("[{:>4}s] {} {}: {}", elapsed.count(), run.key.dag_id, run.key.run_id,
                                 toString(run.state));
  if (!run.tasks.empty()) {
    line += fmt::format(", {}/{} tasks done", done, run.tasks.size());
    std::vector<std::string> parts;
    for (const auto& [state, n] : by_state) {
      if (isTerminal(state)) parts.push_back(fmt::format("{} {}", n, toString(state)));
    }
    if (!parts.empty()) line += fmt::format(" ({})", fmt::join(parts, ", "));
    if (!running.empty()) {
      if (running.size() > 5) {
        running.resize(5);
        running.push_back("…");
      }
      line += fmt::format(", running: {}", fmt::join(running, " "));
    }
  }
  return line;
}

// Wakes `runs trigger --wait` when its run changes state (and when the feed resumed after a gap):
// a large run's end is seen at once while its progress is read seldom (waitPollInterval). It
// listens from before the run exists (follow() names the run once it is created), so setting up the
// feed — for PostgreSQL a session of its own — does not take the cores from the run's first tasks.
class RunStateWatch final : public ChangeSink {
 public:
  void follow(RunKey key) {
    std::lock_guard lock(mutex_);
    key_ = std::move(key);
  }
  void onChange(const Change& change) override {
    if (change.kind != Change::Kind::kRun) return;
    bool ours = false;
    {
      std::lock_guard lock(mutex_);
      ours = key_ && change.run == *key_;
    }
    if (ours) wake();
  }
  void onResync() override { wake(); }
  /// Sleeps up to `pause`, less when the run changed meanwhile.
  void sleepFor(std::chrono::milliseconds pause) {
    std::unique_lock lock(mutex_);
    cv_.wait_for(lock, pause, [&] { return changed_; });
    changed_ = false;
  }

 private:
  void wake() {
    {
      std::lock_guard lock(mutex_);
      changed_ = true;
    }
    cv_.notify_one();
  }
  std::mutex mutex_;
  std::condition_variable cv_;
  std::optional<RunKey> key_;  // none yet: the run is being created
  bool changed_ = false;
};

// Ends the subscription before the watch it delivers to goes away.
struct Subscription {
  Store& store;
  bool active = false;
  ~Subscription() {
    if (active) store.unsubscribe();
  }
};

// Follows the run `key` (of `dag`, read before the trigger) until it ends; `watch` is subscribed to
// the change feed when `feed_active`.
int waitForRun(Store& store, const RunKey& key, const LoadedDag& dag, RunStateWatch& watch, bool feed_active,
               const TriggerOptions& o, std::ostream& err) {
  const auto start = std::chrono::steady_clock::now();
  std::string last_line;
  bool hinted = false;
  watch.follow(key);
  // The run's DAG version does not change: decoded once, from the DAG the trigger read when the run
  // was made of that version (not read again while the run's first tasks start).
  std::optional<TaskOrder> order;
  for (;;) {
    const auto read_from = std::chrono::steady_clock::now();
    const auto elapsed = read_from - start;
    auto loaded = store.loadRuns(std::span<const RunKey>(&key, 1));
    if (!loaded.empty() && loaded[0]) {
      RunRecord run = std::move(loaded[0]).value();
      if (!order && run.dag_version == dag.stored.version) order = TaskOrder::of(*dag.spec, dag.stored.version);
      if (!order || order->version() != run.dag_version || !order->known()) {
        order = TaskOrder::of(store, key.dag_id, run.dag_version);
      }
      order->apply(run);
      const std::string line = progressLine(run, std::chrono::duration_cast<std::chrono::seconds>(elapsed));
      // A line when something changed, not every poll: the counter alone does not count.
      const std::string change = line.substr(line.find(']'));
      if (change != last_line) {
        err << line << '\n' << std::flush;
        last_line = change;
      }
      if (run.state == DagRunState::kSuccess) return kExitOk;
      if (run.state == DagRunState::kFailed) {
        for (const TaskInstance& t : run.tasks) {
          if (t.state == TaskState::kFailed || t.state == TaskState::kUpstreamFailed) {
            err << fmt::format("  {} {}{}\n", t.task_id, toString(t.state), t.note.empty() ? "" : ": " + t.note);
          }
        }
        return kExitFailed;
      }
      if (!hinted && run.state == DagRunState::kQueued && elapsed > std::chrono::seconds(5)) {
        err << "  (still queued: is a scheduler running? leoflow status)\n" << std::flush;
        hinted = true;
      }
    } else if (!loaded.empty() && loaded[0].status().code() != StatusCode::kUnavailable) {
      failWith(loaded[0].status(), "following run " + key.run_id);
    }
    if (o.timeout && elapsed >= *o.timeout) {
      err << fmt::format("timed out after {} s; the run goes on (leoflow runs show {})\n",
                         std::chrono::duration_cast<std::chrono::seconds>(*o.timeout).count(), key.run_id);
      return kExitTimedOut;
    }
    const auto read_took = std::chrono::steady_clock::now() - read_from;
    auto pause = waitPollInterval(feed_active ? o.progress_interval : o.poll_interval,
                                  std::chrono::duration_cast<std::chrono::microseconds>(read_took), feed_active);
    if (o.timeout) {  // no later than the timeout
      const auto left = *o.timeout - std::chrono::duration_cast<std::chrono::milliseconds>(
                                         std::chrono::steady_clock::now() - start);
      pause = std::max(std::min(pause, left), std::chrono::milliseconds(1));
    }
    watch.sleepFor(pause);  // without a feed nothing wakes it: the whole pause
  }
}

}  // namespace

std::chrono::milliseconds waitPollInterval(std::chrono::milliseconds base, std::chrono::microseconds last_read,
                                           bool end_is_heard) {
  // With the change feed the run's end wakes the wait, so the reads are for the progress line only.
  const auto max_pause = std::chrono::milliseconds(end_is_heard ? 10000 : 2000);
  const int read_share = end_is_heard ? 100 : 20;  // read at most 1/100 (1/20) of the time
  const auto scaled = std::chrono::duration_cast<std::chrono::milliseconds>(last_read * read_share);
  return std::max(base, std::min(scaled, max_pause));
}

std::chrono::milliseconds parseTimeout(const std::string& text, bool wait) {
  constexpr double kMaxSeconds = 1e9;
  char* end = nullptr;
  errno = 0;
  const double seconds = std::strtod(text.c_str(), &end);
  const bool number = !text.empty() && end == text.c_str() + text.size() && errno == 0 && std::isfinite(seconds);
  if (!number || seconds <= 0 || seconds > kMaxSeconds) {
    std::string shown = text.size() > 40 ? text.substr(0, 40) + "..." : text;
    throw badInput("--timeout: expected a positive number of seconds (at most 1000000000), got \"" + shown + "\"");
  }
  if (!wait) throw badInput("--timeout " + text + " needs --wait: it bounds how long --wait follows the run");
  return std::max(std::chrono::milliseconds(1), std::chrono::milliseconds(static_cast<std::int64_t>(seconds * 1000)));
}

bool isValidRunId(const std::string& id) {
  if (id.empty() || id.size() > 250) return false;
  return std::all_of(id.begin(), id.end(), [](unsigned char c) { return c > 0x20 && c != 0x7f && c != '/'; });
}

Timestamp parseTimeFlag(const std::string& flag, const std::string& text) {
  if (auto t = schedule::parseIsoTime(text)) return *t;
  std::string shown = text.size() > 60 ? text.substr(0, 60) + "..." : text;
  throw badInput(flag + ": expected an ISO-8601 time with a zone (2026-01-01T00:00:00Z), got " + quote(shown));
}

Timestamp parseLogicalDate(const std::string& text) { return parseTimeFlag("--logical-date", text); }

void checkManualRunId(const std::string& run_id) {
  if (!isValidRunId(run_id)) {
    throw badInput("bad run id " + quote(run_id) + ": use 1-250 printable characters, no spaces or '/'");
  }
  static constexpr std::pair<const char*, const char*> kReserved[] = {{"scheduled__", "the scheduler's runs"},
                                                                      {"backfill__", "dags backfill's runs"}};
  for (const auto& [prefix, whose] : kReserved) {
    if (run_id.starts_with(prefix)) {
      throw badInput(fmt::format("bad run id {}: the prefix {} is reserved for {}; choose another id "
                                 "(or leave --run-id out for manual__<now>)",
                                 quote(run_id), prefix, whose));
    }
  }
}

std::string resolveConf(const std::string& conf) {
  if (conf.empty()) return {};
  std::string text = conf;
  std::string what = "--conf";
  if (conf.front() == '@') {
    const std::string path = conf.substr(1);
    if (path.empty()) throw badInput("--conf @: no file named after the @ (--conf @conf.json)");
    what = "--conf " + conf;
    std::ifstream in(path, std::ios::binary);
    if (!in) throw badInput(fmt::format("{}: cannot read {}: {}", what, path, std::strerror(errno)));
    std::ostringstream buf;
    buf << in.rdbuf();
    if (in.bad()) throw badInput(fmt::format("{}: cannot read {}", what, path));
    text = buf.str();
  }
  nlohmann::json parsed;
  try {
    parsed = parseJsonText(text, what);
  } catch (const JsonFieldError& e) {
    throw badInput(e.what());
  }
  if (!parsed.is_object()) {
    std::string shown = parsed.dump();
    if (shown.size() > 60) shown = shown.substr(0, 60) + "...";
    throw badInput(fmt::format("{} must be a JSON object, got {}", what, shown));
  }
  return parsed.dump();
}

int runsTrigger(Store& store, const Clock& clock, const TriggerOptions& o, std::ostream& out, std::ostream& err) {
  const std::string conf = resolveConf(o.conf_json);
  const LoadedDag dag = loadDag(store, o.dag_id);
  // Listening before the run exists: the feed's set-up is done before the run's tasks start.
  RunStateWatch watch;
  Subscription feed{store};
  // Run changes only: a follower has no use for every task's change (store.h subscribeRuns).
  if (o.wait) feed.active = store.subscribeRuns(watch).isOk();  // without a feed: polling alone
  const RunKey key = triggerRun(store, clock.now(), {o.dag_id, o.run_id, conf, o.logical_date}, dag);
  out << key.run_id << '\n' << std::flush;
  if (dag.stored.paused) err << "note: dag " << o.dag_id << " is paused; the run waits until it is unpaused\n";
  if (!o.wait) return kExitOk;
  return waitForRun(store, key, dag, watch, feed.active, o, err);
}

int runsShow(Store& store, const std::string& run_id, const std::optional<std::string>& dag_id, bool json,
             std::ostream& out) {
  const RunRecord run = loadRun(store, resolveRun(store, run_id, dag_id));
  if (json) {
    out << runToJson(run, true).dump(2) << '\n';
  } else {
    printRun(run, out);
  }
  return kExitOk;
}

int runsList(Store& store, const RunQuery& query, bool json, std::ostream& out) {
  const std::vector<RunRecord> runs = queryRuns(store, query);
  if (json) {
    nlohmann::ordered_json a = nlohmann::ordered_json::array();
    for (const RunRecord& r : runs) a.push_back(runToJson(r, false));
    out << a.dump(2) << '\n';
  } else {
    printRuns(runs, out);
  }
  return kExitOk;
}

namespace {

// What a person's command changed, for the terminal: the moved tasks and the run's state now.
void printOutcome(const std::string& verb, const RunKey& key, const OperatorOutcome& o, std::ostream& out) {
  if (o.changed_tasks.empty()) {
    out << fmt::format("run {} of dag {}: nothing to {}; the run is {}\n", key.run_id, key.dag_id, verb,
                       toString(o.run_state));
    return;
  }
  out << fmt::format("run {} of dag {}: {} {} task{} ({}); the run is {}\n", key.run_id, key.dag_id, verb,
                     o.changed_tasks.size(), o.changed_tasks.size() == 1 ? "" : "s", fmt::join(o.changed_tasks, ", "),
                     toString(o.run_state));
}

void printRunJson(Store& store, const RunKey& key, std::ostream& out) {
  out << runToJson(loadRun(store, key), true).dump(2) << '\n';
}

}  // namespace

void addRunsCommand(CLI::App& app, CommandContext& ctx) {
  CLI::App* runs = app.add_subcommand("runs", "Dag runs: trigger, show, list, clear, mark, cancel");
  runs->require_subcommand(1);

  // CLI11 binds options to storage that must outlive parsing.
  static TriggerOptions trigger;
  static std::string timeout_text;
  CLI::App* t = runs->add_subcommand("trigger", "Start a manual run of a DAG; prints its run id");
  t->add_option("dag", trigger.dag_id, "DAG id")->required();
  t->add_option("--run-id", trigger.run_id,
                "Run id (default manual__<now>); must not exist for the DAG nor start with scheduled__ or backfill__");
  t->add_option("--conf", trigger.conf_json, "The run's conf, a JSON object; @FILE reads it from FILE")
      ->type_name("JSON|@FILE");
  static std::string logical_date_text;
  t->add_option("--logical-date", logical_date_text,
                "The run's logical date, ISO 8601 with a zone (default: now)")
      ->type_name("TIME");
  t->add_flag("--wait", trigger.wait, "Show progress until the run ends: exit 0 success, 1 failed, 124 timeout");
  t->add_option("--timeout", timeout_text, "With --wait: give up after S seconds (the run goes on)")
      ->type_name("SECONDS");
  t->callback([&ctx, t] {
    // Usage errors first: they need no config and no store (§8.6, exit 2).
    trigger.timeout = std::nullopt;
    if (t->count("--timeout") > 0) trigger.timeout = parseTimeout(timeout_text, trigger.wait);
    if (t->count("--run-id") > 0 && trigger.run_id.empty()) {
      throw badInput("--run-id: the run id is empty; give one, or leave --run-id out for manual__<now>");
    }
    if (t->count("--run-id") > 0) checkManualRunId(trigger.run_id);
    trigger.logical_date = std::nullopt;
    if (t->count("--logical-date") > 0) trigger.logical_date = parseLogicalDate(logical_date_text);
    StoreSession session(ctx);
    ctx.exit_code = runsTrigger(session.store(), session.clock(), trigger, *ctx.out, *ctx.err);
  });

  static std::string run_id;
  static std::string dag;
  static std::string state;
  static bool json = false;
  CLI::App* show = runs->add_subcommand("show", "Show a run and its tasks");
  show->add_option("run_id", run_id, "Run id")->required();
  show->add_option("--dag", dag, "DAG id (needed when the run id exists in several DAGs)");
  show->add_flag("--json", json, "Print JSON");
  show->callback([&ctx] {
    StoreSession session(ctx);
    ctx.exit_code = runsShow(session.store(), run_id, dag.empty() ? std::nullopt : std::optional(dag), json, *ctx.out);
  });

  static RunQuery query;
  static std::string since_text;
  static std::size_t limit = 100;
  CLI::App* list = runs->add_subcommand("list", "List runs, newest logical date first");
  list->add_option("--dag", dag, "Only this DAG's runs");
  list->add_option("--state", state, "Only runs in this state (queued, running, success, failed)");
  static std::string tenant;
  list->add_option("--tenant", tenant, "Only this tenant's runs");
  list->add_option("--since", since_text, "Only runs whose logical date is at or after TIME (ISO 8601)")
      ->type_name("TIME");
  list->add_option("--limit", limit, "At most N runs (default 100)")->type_name("N")->check(CLI::Range(1, 100000));
  list->add_flag("--json", json, "Print a JSON array");
  list->callback([&ctx, list] {
    query = RunQuery{};
    if (!dag.empty()) query.dag_id = dag;
    if (!state.empty()) query.state = state;
    if (!tenant.empty()) query.tenant = tenant;
    if (list->count("--since") > 0) query.since = parseTimeFlag("--since", since_text);
    query.limit = limit;
    StoreSession session(ctx);
    ctx.exit_code = runsList(session.store(), query, json, *ctx.out);
  });

  // --- A person's commands (docs/architecture.md §8.14) ---
  static std::string actor;
  auto addActor = [](CLI::App* cmd) {
    cmd->add_option("--actor", actor, "Who does this, named in the notes (default $USER@host)")->type_name("NAME");
  };
  auto actorOrDefault = [] { return actor.empty() ? defaultActor() : actor; };

  static std::vector<std::string> task_ids;
  static bool downstream = false, failed_only = false;
  static std::string from_text, to_text;
  CLI::App* clear = runs->add_subcommand(
      "clear", "Run tasks of a run again: RUN_ID, or every run of --dag with a logical date in [--from, --to]");
  clear->add_option("run_id", run_id, "Run id (or use --dag with --from and --to)");
  clear->add_option("--dag", dag, "DAG id (needed when the run id exists in several DAGs, and for a range)");
  clear->add_option("--task", task_ids, "Only this task (repeatable; default every task)")->type_name("TASK");
  clear->add_flag("--downstream", downstream, "Also every task downstream of the --task ones, transitively");
  clear->add_flag("--failed-only", failed_only, "Only failed and upstream_failed tasks (after --downstream)");
  clear->add_option("--from", from_text, "Range start: logical date, ISO 8601")->type_name("TIME");
  clear->add_option("--to", to_text, "Range end (inclusive): logical date, ISO 8601")->type_name("TIME");
  clear->add_flag("--json", json, "Print the cleared run(s) as JSON");
  addActor(clear);
  clear->callback([&ctx, clear, actorOrDefault] {
    const bool range = clear->count("--from") > 0 || clear->count("--to") > 0;
    if (range && !run_id.empty()) throw badInput("runs clear: give a RUN_ID or --from/--to, not both");
    if (!range && run_id.empty()) throw badInput("runs clear: give a RUN_ID, or --dag D --from T --to T");
    if (range && (clear->count("--from") == 0 || clear->count("--to") == 0 || dag.empty())) {
      throw badInput("runs clear: a range needs --dag, --from and --to");
    }
    if (downstream && task_ids.empty()) throw badInput("--downstream needs --task: downstream of which tasks?");
    const ClearOptions options{task_ids, downstream, failed_only, actorOrDefault()};
    StoreSession session(ctx);
    Store& store = session.store();
    const Timestamp now = session.clock().now();
    if (range) {
      const SliceProgress progress = progressEverySecond(*ctx.err, [](std::size_t done, std::size_t of) {
        return fmt::format("cleared {} of {} runs of dag {}\n", done, of, dag);
      });
      const auto cleared = clearRange(store, now, dag, parseTimeFlag("--from", from_text), parseTimeFlag("--to", to_text),
                                      options, progress);
      if (json) {
        std::vector<RunKey> keys;
        keys.reserve(cleared.size());
        for (const ClearedRun& c : cleared) keys.push_back(c.run);
        nlohmann::ordered_json a = nlohmann::ordered_json::array();
        for (const RunRecord& r : loadRunsOrdered(store, keys)) a.push_back(runToJson(r, true));
        *ctx.out << a.dump(2) << '\n';
      } else {
        if (cleared.empty()) *ctx.out << "no started run of dag " << dag << " has a logical date in that range\n";
        for (const ClearedRun& c : cleared) printOutcome("cleared", c.run, c.outcome, *ctx.out);
      }
    } else {
      const RunKey key = resolveRun(store, run_id, dag.empty() ? std::nullopt : std::optional(dag));
      const OperatorOutcome o = clearRun(store, now, key, options);
      json ? printRunJson(store, key, *ctx.out) : printOutcome("cleared", key, o, *ctx.out);
    }
    ctx.exit_code = kExitOk;
  });

  static std::string mark_state;
  CLI::App* mark = runs->add_subcommand("mark", "Mark a run success or failed, with every unfinished task");
  mark->add_option("run_id", run_id, "Run id")->required();
  mark->add_option("--state", mark_state, "success or failed")->required();
  mark->add_option("--dag", dag, "DAG id (needed when the run id exists in several DAGs)");
  mark->add_flag("--json", json, "Print the run as JSON");
  addActor(mark);
  mark->callback([&ctx, actorOrDefault] {
    if (mark_state != "success" && mark_state != "failed") {
      throw badInput("--state: a run is marked success or failed, not " + quote(mark_state));
    }
    StoreSession session(ctx);
    Store& store = session.store();
    const RunKey key = resolveRun(store, run_id, dag.empty() ? std::nullopt : std::optional(dag));
    const OperatorOutcome o = markRun(store, session.clock().now(), key, mark_state, actorOrDefault());
    json ? printRunJson(store, key, *ctx.out) : printOutcome("marked " + mark_state, key, o, *ctx.out);
    ctx.exit_code = kExitOk;
  });

  CLI::App* cancel = runs->add_subcommand(
      "cancel", "Cancel a run: running tasks are stopped and failed, tasks not started skipped, the run failed");
  cancel->add_option("run_id", run_id, "Run id")->required();
  cancel->add_option("--dag", dag, "DAG id (needed when the run id exists in several DAGs)");
  cancel->add_flag("--json", json, "Print the run as JSON");
  addActor(cancel);
  cancel->callback([&ctx, actorOrDefault] {
    StoreSession session(ctx);
    Store& store = session.store();
    const RunKey key = resolveRun(store, run_id, dag.empty() ? std::nullopt : std::optional(dag));
    const OperatorOutcome o = cancelRun(store, session.clock().now(), key, actorOrDefault());
    json ? printRunJson(store, key, *ctx.out) : printOutcome("cancelled", key, o, *ctx.out);
    ctx.exit_code = kExitOk;
  });
}

}  // namespace leoflow::host
