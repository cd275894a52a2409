#include "task_command.h"

#include <unistd.h>

#include <string_view>

#include "names.h"

namespace leoflow::plugins::dispatcher_local {
namespace {

// sys.argv is ['-c', module, function, work_dir]. '' (the working directory) is already first on
// sys.path; work_dir is added by absolute path so a task that changes directory still imports.
// An exception prints its traceback and exits 1; a non-None return value is printed to the log.
constexpr const char* kPythonBootstrap =
    "import importlib, sys\n"
    "sys.path.insert(1, sys.argv[3])\n"
    "result = getattr(importlib.import_module(sys.argv[1]), sys.argv[2])()\n"
    "if result is not None:\n"
    "    print(result)\n";

bool isIdentifier(std::string_view s) {
  if (s.empty()) return false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
    const bool digit = c >= '0' && c <= '9';
    if (!(alpha || (digit && i > 0))) return false;
  }
  return true;
}

}  // namespace

bool isModuleFunction(std::string_view entrypoint) {
  const std::size_t colon = entrypoint.find(':');
  if (colon == std::string_view::npos || entrypoint.find(':', colon + 1) != std::string_view::npos) return false;
  std::string_view module = entrypoint.substr(0, colon);
  if (!isIdentifier(entrypoint.substr(colon + 1))) return false;
  for (;;) {
    const std::size_t dot = module.find('.');
    if (!isIdentifier(module.substr(0, dot))) return false;
    if (dot == std::string_view::npos) return true;
    module.remove_prefix(dot + 1);
  }
}

Result<std::vector<std::string>> taskArgv(const TaskSpec& task, const Settings& settings) {
  if (task.type != kBashType && task.type != kPythonType) {
    return invalidArgument("dispatcher-local cannot run task \"" + task.task_id + "\" of type \"" + task.type +
                           "\": it runs bash and python tasks");
  }
  if (task.entrypoint.empty()) {
    return invalidArgument("task \"" + task.task_id + "\" (" + task.type + ") has no entrypoint to run");
  }
  if (task.type == kBashType) return std::vector<std::string>{"bash", "-c", task.entrypoint};
  if (isModuleFunction(task.entrypoint)) {
    const std::size_t colon = task.entrypoint.find(':');
    return std::vector<std::string>{settings.python, "-c", kPythonBootstrap, task.entrypoint.substr(0, colon),
                                    task.entrypoint.substr(colon + 1), settings.work_dir.string()};
  }
  // A relative script path is relative to work_dir, which is also the working directory; made
  // absolute so the traceback and `ps` name the file.
  std::filesystem::path script(task.entrypoint);
  if (script.is_relative()) script = settings.work_dir / script;
  return std::vector<std::string>{settings.python, script.lexically_normal().string()};
}

std::map<std::string, std::string> snapshotEnvironment() {
  std::map<std::string, std::string> env;
  for (char** e = ::environ; e != nullptr && *e != nullptr; ++e) {
    std::string_view entry(*e);
    const std::size_t eq = entry.find('=');
    if (eq == std::string_view::npos || eq == 0) continue;
    env.emplace(std::string(entry.substr(0, eq)), std::string(entry.substr(eq + 1)));
  }
  return env;
}

std::vector<std::string> taskEnvironment(const std::map<std::string, std::string>& parent,
                                         const DispatchRequest& request, const Settings& settings) {
  // What this task changes, a few entries; the scheduler's environment (dozens) is merged in below
  // without being copied: this runs for every attempt.
  std::map<std::string_view, std::string> own;
  for (const auto& [name, value] : request.task.env) own.insert_or_assign(name, value);
  const AttemptRef& a = request.attempt;
  own.insert_or_assign("LEOFLOW_DAG_ID", a.run.dag_id);
  own.insert_or_assign("LEOFLOW_RUN_ID", a.run.run_id);  // the user-facing run id (ARCHITECTURE §8.5)
  own.insert_or_assign("LEOFLOW_TASK_ID", a.task_id);
  own.insert_or_assign("LEOFLOW_TRY_NUMBER", std::to_string(a.try_number));  // from 1 (§8.5)
  own.insert_or_assign("LEOFLOW_LOGICAL_DATE", isoUtc(request.logical_date));
  own.insert_or_assign("LEOFLOW_WORK_DIR", settings.work_dir.string());
  own.insert_or_assign("LEOFLOW_TENANT", request.tenant.empty() ? std::string("default") : request.tenant);
  // LEOFLOW_CONF is the run's conf or nothing: the task's env cannot set it, and the scheduler's
  // never passes through (below).
  if (!request.conf_json.empty()) {
    own.insert_or_assign("LEOFLOW_CONF", request.conf_json);
  } else {
    own.erase("LEOFLOW_CONF");
  }
  // Python block-buffers a file; unbuffered, the log shows progress while the task runs (unless
  // the task or the scheduler says otherwise).
  if (request.task.type == kPythonType && parent.count("PYTHONUNBUFFERED") == 0) own.emplace("PYTHONUNBUFFERED", "1");

  std::vector<std::string> out;
  out.reserve(parent.size() + own.size());
  auto add = [&out](std::string_view name, std::string_view value) {
    std::string& entry = out.emplace_back();
    entry.reserve(name.size() + 1 + value.size());
    entry.append(name).push_back('=');
    entry.append(value);
  };
  // Both sorted by name: one merge, the task's value winning.
  auto mine = own.begin();
  for (const auto& [name, value] : parent) {
    for (; mine != own.end() && mine->first < name; ++mine) add(mine->first, mine->second);
    if (mine != own.end() && mine->first == name) {
      add(mine->first, mine->second);
      ++mine;
    } else if (name != "LEOFLOW_CONF") {
      add(name, value);
    }
  }
  for (; mine != own.end(); ++mine) add(mine->first, mine->second);
  return out;
}

}  // namespace leoflow::plugins::dispatcher_local
