#include "pod_manifest.h"

#include "names.h"

namespace leoflow::plugins::dispatcher_k8s {
namespace {

using nlohmann::json;

// sys.argv is ['-c', module, function]: imports from the image's working directory.
constexpr const char* kPythonBootstrap =
    "import importlib, sys\n"
    "sys.path.insert(0, '')\n"
    "result = getattr(importlib.import_module(sys.argv[1]), sys.argv[2])()\n"
    "if result is not None:\n"
    "    print(result)\n";

bool isIdentifier(std::string_view s) {
  if (s.empty()) return false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
    if (!(alpha || (c >= '0' && c <= '9' && i > 0))) return false;
  }
  return true;
}

bool isModuleFunction(std::string_view e) {
  const std::size_t colon = e.find(':');
  if (colon == std::string_view::npos || e.find(':', colon + 1) != std::string_view::npos) return false;
  if (!isIdentifier(e.substr(colon + 1))) return false;
  std::string_view module = e.substr(0, colon);
  for (;;) {
    const std::size_t dot = module.find('.');
    if (!isIdentifier(module.substr(0, dot))) return false;
    if (dot == std::string_view::npos) return true;
    module.remove_prefix(dot + 1);
  }
}

std::string annotation(const json& pod, const char* key) {
  const json& a = pod["metadata"].value("annotations", json::object());
  return a.contains(key) && a[key].is_string() ? a[key].get<std::string>() : std::string();
}

// Objects merge key by key (the generated value wins); anything else is replaced.
void mergeInto(json& base, const json& over) {
  if (!base.is_object() || !over.is_object()) {
    base = over;
    return;
  }
  for (const auto& [k, v] : over.items()) {
    if (base.contains(k)) {
      mergeInto(base[k], v);
    } else {
      base[k] = v;
    }
  }
}

// The generated pod onto the template: its container "task" (or its first) becomes the task's, its
// env and volumeMounts kept before the generated env (a name in both: the generated one); other
// containers (sidecars) stay.
json mergeTemplate(const json& tmpl, json pod) {
  json out = tmpl;
  out.erase("status");
  json& containers = pod["spec"]["containers"];
  json task = containers[0];
  pod["spec"].erase("containers");
  mergeInto(out, pod);
  json& list = out["spec"]["containers"];
  if (!list.is_array()) list = json::array();
  std::size_t at = list.size();
  for (std::size_t i = 0; i < list.size(); ++i) {
    if (list[i].value("name", "") == kContainerName) at = i;
  }
  if (at == list.size() && !list.empty()) at = 0;
  if (at == list.size()) list.push_back(json::object());
  json& c = list[at];
  json env = json::array();
  std::map<std::string, bool> generated;
  for (const auto& e : task["env"]) generated[e["name"].get<std::string>()] = true;
  if (c.contains("env") && c["env"].is_array()) {
    for (const auto& e : c["env"]) {
      if (!generated.count(e.value("name", ""))) env.push_back(e);
    }
  }
  for (const auto& e : task["env"]) env.push_back(e);
  task.erase("env");
  mergeInto(c, task);
  c["env"] = env;
  return out;
}

}  // namespace

std::string installationSelector(const Settings& settings) {
  return std::string(kLabelInstallation) + "=" + labelValue(settings.installation);
}

Result<json> buildPod(const DispatchRequest& request, const Settings& settings, const std::string& ns) {
  const TaskSpec& task = request.task;
  const AttemptRef& a = request.attempt;
  if (task.type != "bash" && task.type != "python") {
    return Status(invalidArgument("dispatcher-k8s cannot run task \"" + task.task_id + "\" of type \"" + task.type +
                                  "\": it runs bash and python tasks"));
  }
  if (task.entrypoint.empty()) {
    return Status(invalidArgument("task \"" + task.task_id + "\" (" + task.type + ") has no entrypoint to run"));
  }
  const std::string image = !task.image.empty() ? task.image : settings.image;
  if (image.empty()) {
    return Status(invalidArgument("task \"" + task.task_id +
                                  "\" names no image and [dispatcher.config] has no \"image\" key"));
  }
  json command = json::array();
  if (task.type == "bash") {
    command = {"bash", "-c", task.entrypoint};
  } else if (isModuleFunction(task.entrypoint)) {
    const std::size_t colon = task.entrypoint.find(':');
    command = {"python3", "-c", kPythonBootstrap, task.entrypoint.substr(0, colon), task.entrypoint.substr(colon + 1)};
  } else {
    command = {"python3", task.entrypoint};  // a script path inside the image
  }

  std::map<std::string, std::string> env(task.env.begin(), task.env.end());
  env["LEOFLOW_DAG_ID"] = a.run.dag_id;
  env["LEOFLOW_RUN_ID"] = a.run.run_id;
  env["LEOFLOW_TASK_ID"] = a.task_id;
  env["LEOFLOW_TRY_NUMBER"] = std::to_string(a.try_number);
  env["LEOFLOW_LOGICAL_DATE"] = isoUtc(request.logical_date);
  env["LEOFLOW_TENANT"] = request.tenant.empty() ? std::string("default") : request.tenant;
  env["LEOFLOW_RUN_UID"] = std::to_string(request.run_uid);
  if (!request.conf_json.empty()) {
    env["LEOFLOW_CONF"] = request.conf_json;
  } else {
    env.erase("LEOFLOW_CONF");
  }
  if (task.type == "python") env.emplace("PYTHONUNBUFFERED", "1");
  json env_list = json::array();
  for (const auto& [k, v] : env) env_list.push_back({{"name", k}, {"value", v}});

  const std::string tenant = request.tenant.empty() ? std::string("default") : request.tenant;
  const std::string name = podName(a, request.run_uid);
  json container = {{"name", kContainerName}, {"image", image}, {"command", command}, {"env", env_list}};
  if (!task.execution.image_pull_policy.empty()) container["imagePullPolicy"] = task.execution.image_pull_policy;
  json resources = json::object();
  if (!task.resources.requests.empty()) resources["requests"] = task.resources.requests;
  if (!task.resources.limits.empty()) resources["limits"] = task.resources.limits;
  if (!resources.empty()) container["resources"] = resources;

  json spec = {{"restartPolicy", "Never"},
               {"terminationGracePeriodSeconds", settings.termination_grace_s},
               {"containers", json::array({container})}};
  if (task.execution_timeout_seconds > 0) {
    spec["activeDeadlineSeconds"] =
        static_cast<std::int64_t>(task.execution_timeout_seconds) + settings.pending_timeout_s + settings.termination_grace_s;
  }
  if (!task.execution.node_selector.empty()) spec["nodeSelector"] = task.execution.node_selector;
  if (!task.execution.service_account.empty()) spec["serviceAccountName"] = task.execution.service_account;
  if (!task.execution.tolerations.empty()) {
    json tols = json::array();
    for (const Toleration& t : task.execution.tolerations) {
      json j = json::object();
      if (!t.key.empty()) j["key"] = t.key;
      if (!t.op.empty()) j["operator"] = t.op;
      if (!t.value.empty()) j["value"] = t.value;
      if (!t.effect.empty()) j["effect"] = t.effect;
      if (t.toleration_seconds) j["tolerationSeconds"] = *t.toleration_seconds;
      tols.push_back(j);
    }
    spec["tolerations"] = tols;
  }
  json labels = {{kLabelInstallation, labelValue(settings.installation)},
                 {"leoflow.io/dag", labelValue(a.run.dag_id)},
                 {"leoflow.io/run", labelValue(a.run.run_id)},
                 {"leoflow.io/run-uid", std::to_string(request.run_uid)},
                 {"leoflow.io/task", labelValue(a.task_id)},
                 {"leoflow.io/try", std::to_string(a.try_number)},
                 {"leoflow.io/tenant", labelValue(tenant)}};
  json annotations = {{"leoflow.io/dag-id", a.run.dag_id},
                      {"leoflow.io/run-id", a.run.run_id},
                      {"leoflow.io/run-uid", std::to_string(request.run_uid)},
                      {"leoflow.io/task-id", a.task_id},
                      {"leoflow.io/try-number", std::to_string(a.try_number)},
                      {"leoflow.io/tenant", tenant},
                      {"leoflow.io/installation", settings.installation},
                      {"leoflow.io/execution-timeout-s", std::to_string(task.execution_timeout_seconds)}};
  json pod{{"apiVersion", "v1"},
           {"kind", "Pod"},
           {"metadata", {{"name", name}, {"namespace", ns}, {"labels", labels}, {"annotations", annotations}}},
           {"spec", spec}};
  if (settings.pod_template.is_object()) return mergeTemplate(settings.pod_template, std::move(pod));
  return pod;
}

std::optional<PodIdentity> identityOf(const json& pod) {
  if (!pod.is_object() || !pod.contains("metadata") || !pod["metadata"].is_object()) return std::nullopt;
  PodIdentity id;
  id.attempt.run.dag_id = annotation(pod, "leoflow.io/dag-id");
  id.attempt.run.run_id = annotation(pod, "leoflow.io/run-id");
  id.attempt.task_id = annotation(pod, "leoflow.io/task-id");
  id.tenant = annotation(pod, "leoflow.io/tenant");
  try {
    id.attempt.try_number = std::stoi(annotation(pod, "leoflow.io/try-number"));
    id.run_uid = std::stoll(annotation(pod, "leoflow.io/run-uid"));
    const std::string t = annotation(pod, "leoflow.io/execution-timeout-s");
    id.execution_timeout_s = t.empty() ? 0 : std::stoi(t);
  } catch (const std::exception&) {
    return std::nullopt;
  }
  if (id.attempt.run.dag_id.empty() || id.attempt.task_id.empty()) return std::nullopt;
  try {
    std::string cmd;
    for (const auto& w : pod.at("spec").at("containers").at(0).at("command")) {
      if (!cmd.empty()) cmd += ' ';
      cmd += w.get<std::string>();
    }
    id.command = cmd;
  } catch (const std::exception&) {
  }
  return id;
}

}  // namespace leoflow::plugins::dispatcher_k8s
