#include "host/tasks_command.h"

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <map>
#include <ostream>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "host/backends.h"
#include "host/command_context.h"
#include "host/exit_codes.h"
#include "host/json_fields.h"
#include "host/run_view.h"
#include "host/runs_command.h"
#include "host/store_session.h"
#include "schedule/iso_time.h"

extern char** environ;

namespace leoflow::host {
namespace {

// The environment of a `tasks test` process: ours, the task's env, and the LEOFLOW_* variables a
// dispatcher sets (docs/operating.md), for a run that exists nowhere but here.
std::vector<std::string> testEnvironment(const DagSpec& dag, const TaskSpec& task, const std::string& run_id,
                                         Timestamp logical_date) {
  std::map<std::string, std::string> env;
  for (char** e = ::environ; e != nullptr && *e != nullptr; ++e) {
    std::string entry(*e);
    const auto eq = entry.find('=');
    if (eq != std::string::npos && eq > 0) env.emplace(entry.substr(0, eq), entry.substr(eq + 1));
  }
  for (const auto& [k, v] : task.env) env[k] = v;
  env["LEOFLOW_DAG_ID"] = dag.dag_id;
  env["LEOFLOW_RUN_ID"] = run_id;
  env["LEOFLOW_TASK_ID"] = task.task_id;
  env["LEOFLOW_TRY_NUMBER"] = "1";
  env["LEOFLOW_LOGICAL_DATE"] = schedule::formatIsoSeconds(logical_date);
  env["LEOFLOW_TENANT"] = dag.tenant;
  env.erase("LEOFLOW_CONF");
  if (task.type == "python") env.emplace("PYTHONUNBUFFERED", "1");
  std::vector<std::string> out;
  for (const auto& [k, v] : env) out.push_back(k + "=" + v);
  return out;
}

}  // namespace

int tasksLogs(Store& store, const LogReadFn& read, const LogsOptions& o, std::ostream& out) {
  TaskLogRequest request = o.request;
  for (;;) {
    const TaskLog log = readTaskLog(store, read, request);
    out << log.chunk.text << std::flush;
    request.offset = log.chunk.next_offset;
    // Following a log pins its try: a retry's log is another command (--try N).
    request.try_number = log.attempt.try_number;
    if (!o.follow || log.chunk.complete) return kExitOk;
    if (log.chunk.text.empty()) std::this_thread::sleep_for(o.poll_interval);
  }
}

int tasksTest(Store& store, const Clock& clock, const std::string& dag_id, const std::string& task_id,
              std::ostream& err) {
  const std::shared_ptr<const DagSpec> loaded = loadDagSpec(store, dag_id);
  const DagSpec& dag = *loaded;
  const TaskSpec* task = nullptr;
  for (const TaskSpec& t : dag.tasks) {
    if (t.task_id == task_id) task = &t;
  }
  if (task == nullptr) throw notFound(fmt::format("dag {} has no task {}", quote(dag_id), quote(task_id)));
  std::vector<std::string> argv;
  if (task->type == "bash") {
    argv = {"bash", "-c", task->entrypoint};
  } else if (task->type == "python") {
    argv = {"python3", task->entrypoint};
  } else {
    throw badInput(fmt::format("task {} is of type {}; tasks test runs bash and python tasks here (an http_api task "
                               "runs in the scheduler's inline runner)",
                               quote(task_id), task->type));
  }
  const Timestamp now = clock.now();
  const std::string run_id = "test__" + schedule::formatIsoMicros(now);
  const std::vector<std::string> env = testEnvironment(dag, *task, run_id, now);
  std::vector<char*> c_argv, c_env;
  for (const std::string& a : argv) c_argv.push_back(const_cast<char*>(a.c_str()));
  c_argv.push_back(nullptr);
  for (const std::string& e : env) c_env.push_back(const_cast<char*>(e.c_str()));
  c_env.push_back(nullptr);

  err << fmt::format("testing task {} of dag {} (run {}, nothing is written to the store)\n", task_id, dag_id, run_id)
      << std::flush;
  pid_t pid = 0;
  const int rc = posix_spawnp(&pid, c_argv[0], nullptr, nullptr, c_argv.data(), c_env.data());
  if (rc != 0) throw CommandError(kExitFailed, fmt::format("cannot start {}: {}", argv[0], std::strerror(rc)));
  const auto started = std::chrono::steady_clock::now();
  const auto timeout = std::chrono::seconds(task->execution_timeout_seconds);
  int status = 0;
  bool timed_out = false;
  for (;;) {
    const pid_t w = waitpid(pid, &status, task->execution_timeout_seconds > 0 ? WNOHANG : 0);
    if (w == pid) break;
    if (w < 0 && errno != EINTR) throw CommandError(kExitFailed, std::string("waiting for the task: ") + std::strerror(errno));
    if (task->execution_timeout_seconds > 0 && std::chrono::steady_clock::now() - started > timeout && !timed_out) {
      timed_out = true;
      kill(pid, SIGKILL);
    }
    if (w == 0) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  if (timed_out) {
    err << fmt::format("task {} failed: timed out after {} s\n", task_id, task->execution_timeout_seconds);
    return kExitFailed;
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
    err << fmt::format("task {} succeeded in {:.2f} s\n", task_id, seconds);
    return kExitOk;
  }
  err << fmt::format("task {} failed: {} after {:.2f} s\n", task_id,
                     WIFEXITED(status) ? fmt::format("exit code {}", WEXITSTATUS(status))
                                       : fmt::format("killed by signal {}", WTERMSIG(status)),
                     seconds);
  return kExitFailed;
}

void addTasksCommand(CLI::App& app, CommandContext& ctx) {
  CLI::App* tasks = app.add_subcommand("tasks", "One task of a run: mark, logs, test");
  tasks->require_subcommand(1);

  static std::string run_id, task_id, dag, state, actor;
  static bool json = false;
  CLI::App* mark = tasks->add_subcommand("mark", "Mark a task of a run success, failed or skipped (keeps its try)");
  mark->add_option("run_id", run_id, "Run id")->required();
  mark->add_option("task", task_id, "Task id")->required();
  mark->add_option("--state", state, "success, failed or skipped")->required();
  mark->add_option("--dag", dag, "DAG id (needed when the run id exists in several DAGs)");
  mark->add_option("--actor", actor, "Who does this, named in the note (default $USER@host)")->type_name("NAME");
  mark->add_flag("--json", json, "Print the run as JSON");
  mark->callback([&ctx] {
    if (state != "success" && state != "failed" && state != "skipped") {
      throw badInput("--state: a task is marked success, failed or skipped, not " + quote(state));
    }
    StoreSession session(ctx);
    Store& store = session.store();
    const RunKey key = resolveRun(store, run_id, dag.empty() ? std::nullopt : std::optional(dag));
    const OperatorOutcome o =
        markTask(store, session.clock().now(), key, task_id, state, actor.empty() ? defaultActor() : actor);
    if (json) {
      *ctx.out << runToJson(loadRun(store, key), true).dump(2) << '\n';
    } else {
      *ctx.out << fmt::format("task {} of run {} marked {}; the run is {}\n", task_id, key.run_id, state,
                              toString(o.run_state));
    }
    ctx.exit_code = kExitOk;
  });

  static LogsOptions logs;
  static std::int32_t try_number = 0;
  CLI::App* l = tasks->add_subcommand("logs", "Print a task attempt's log (the current try unless --try)");
  l->add_option("run_id", run_id, "Run id")->required();
  l->add_option("task", task_id, "Task id")->required();
  l->add_option("--try", try_number, "Which try (from 1)")->check(CLI::Range(1, 1'000'000));
  l->add_option("--dag", dag, "DAG id (needed when the run id exists in several DAGs)");
  l->add_flag("--follow,-f", logs.follow, "Keep printing until the attempt ends");
  l->callback([&ctx, l] {
    StoreSession session(ctx, Backends::Scope::kLogs);
    Backends* backends = &session.backends();
    Store& store = backends->store();
    logs.request.run = resolveRun(store, run_id, dag.empty() ? std::nullopt : std::optional(dag));
    logs.request.task_id = task_id;
    logs.request.try_number = l->count("--try") > 0 ? std::optional(try_number) : std::nullopt;
    logs.request.offset = 0;
    ctx.exit_code = tasksLogs(store, [&](const LogQuery& q) { return backends->readLog(q); }, logs, *ctx.out);
  });

  static std::string test_dag;
  CLI::App* t = tasks->add_subcommand(
      "test", "Run one task of a DAG here and now in the foreground; nothing is written to the store");
  t->add_option("dag", test_dag, "DAG id")->required();
  t->add_option("task", task_id, "Task id")->required();
  t->callback([&ctx] {
    StoreSession session(ctx);
    ctx.exit_code = tasksTest(session.store(), session.clock(), test_dag, task_id, *ctx.err);
  });
}

}  // namespace leoflow::host
