#include "host/run_state_json.h"

#include <limits>

#include "host/json_fields.h"

namespace leoflow::host {
namespace {

using nlohmann::json;

std::vector<TaskSpec> parseTasks(const json& tasks) {
  std::vector<TaskSpec> specs;
  if (tasks.is_null()) return specs;
  if (!tasks.is_array()) throw JsonFieldError("tasks: expected an array, got " + tasks.dump());
  specs.reserve(tasks.size());
  for (std::size_t i = 0; i < tasks.size(); ++i) {
    const std::string path = "tasks[" + std::to_string(i) + "]";
    const json& t = tasks[i];
    if (!t.is_object()) throw JsonFieldError(path + ": expected an object, got " + t.dump());
    TaskSpec spec;
    auto id = optionalString(member(t, "task_id"), path + ".task_id");
    if (!id || id->empty()) throw JsonFieldError(path + ".task_id: missing");
    spec.task_id = std::move(*id);
    const json& deps = member(t, "depends_on");
    if (!deps.is_null()) {
      if (!deps.is_array()) throw JsonFieldError(path + ".depends_on: expected an array, got " + deps.dump());
      for (std::size_t d = 0; d < deps.size(); ++d) {
        spec.depends_on.push_back(
            *optionalString(deps[d].is_null() ? json("") : deps[d],
                            path + ".depends_on[" + std::to_string(d) + "]"));
      }
    }
    const std::string rule = optionalString(member(t, "trigger_rule"), path + ".trigger_rule").value_or("");
    auto parsed = parseTriggerRule(rule);
    if (!parsed) {
      throw JsonFieldError(path + ".trigger_rule: unknown trigger rule " + quote(rule) + " (task " +
                           quote(spec.task_id) + ")");
    }
    spec.trigger_rule = *parsed;
    specs.push_back(std::move(spec));
  }
  return specs;
}

// Calls fn(index, value, path) for every entry of a per-task map whose key is a task; entries for
// ids that are not tasks are ignored like any unknown key.
template <typename Fn>
void forEachTaskEntry(const json& doc, const char* key, const planning::CompiledDag& dag, Fn fn) {
  const json& obj = requireObject(member(doc, key), key);
  for (auto it = obj.begin(); it != obj.end(); ++it) {
    auto index = dag.find(it.key());
    if (!index) continue;
    fn(*index, it.value(), std::string(key) + "." + it.key());
  }
}

std::int32_t toInt32(std::int64_t v, const std::string& path) {
  if (v < std::numeric_limits<std::int32_t>::min() || v > std::numeric_limits<std::int32_t>::max()) {
    throw JsonFieldError(path + ": out of range: " + std::to_string(v));
  }
  return static_cast<std::int32_t>(v);
}

// Try numbers start at 1 (§8.5): a try count or a retry budget below 1, or a negative delay, is an
// error naming the entry, not a plan computed from nonsense.
std::int32_t atLeast(std::int64_t v, std::int64_t min, const char* what, const std::string& path) {
  if (v < min) {
    throw JsonFieldError(path + ": expected " + what + " of at least " + std::to_string(min) + ", got " +
                         std::to_string(v));
  }
  return toInt32(v, path);
}

}  // namespace

planning::RunSnapshot PlanInput::snapshot() const {
  planning::RunSnapshot s;
  s.dag = &dag;
  s.states = states;
  s.tries = tries;
  s.max_tries = max_tries;
  s.ended_at = ended_at;
  s.retry_delay_seconds = retry_delay_seconds;
  s.now = now;
  return s;
}

PlanInput parseRunState(const json& doc) {
  if (!doc.is_object()) throw JsonFieldError("run state: expected a JSON object, got " + doc.dump());
  if (auto run_state = optionalString(member(doc, "state"), "state")) {
    if (!run_state->empty() && !parseDagRunState(*run_state)) {
      throw JsonFieldError("state: unknown run state " + quote(*run_state) +
                           " (expected queued, running, success or failed)");
    }
  }
  const std::vector<TaskSpec> specs = parseTasks(member(doc, "tasks"));
  auto compiled = planning::CompiledDag::compile(specs);
  if (!compiled) throw JsonFieldError(compiled.status().message());

  PlanInput in{std::move(compiled).value(), {}, {}, {}, {}, {}, {}};
  const std::size_t n = in.dag.size();
  in.states.assign(n, TaskState::kNone);
  in.tries.assign(n, 1);
  in.max_tries.assign(n, 1);
  in.ended_at.assign(n, std::nullopt);
  in.retry_delay_seconds.assign(n, 0);

  forEachTaskEntry(doc, "states", in.dag, [&](planning::TaskIndex i, const json& v, const std::string& path) {
    auto name = optionalString(v, path);
    if (!name) return;  // null: no state known, i.e. none
    auto st = parseTaskState(*name);
    if (!st) {
      throw JsonFieldError(path + ": unknown state " + quote(*name) +
                           " (expected none, scheduled, queued, running, success, failed, skipped, "
                           "upstream_failed or up_for_retry)");
    }
    in.states[i] = *st;
  });
  forEachTaskEntry(doc, "tries", in.dag, [&](planning::TaskIndex i, const json& v, const std::string& path) {
    if (auto t = optionalInt(v, path)) in.tries[i] = atLeast(*t, 1, "a try number (the first attempt is 1)", path);
  });
  forEachTaskEntry(doc, "max_tries", in.dag, [&](planning::TaskIndex i, const json& v, const std::string& path) {
    if (auto t = optionalInt(v, path)) in.max_tries[i] = atLeast(*t, 1, "a number of tries (1: no retry)", path);
  });
  forEachTaskEntry(doc, "ended_at", in.dag, [&](planning::TaskIndex i, const json& v, const std::string& path) {
    in.ended_at[i] = optionalTime(v, path);
  });
  forEachTaskEntry(doc, "retry_delay_seconds", in.dag,
                   [&](planning::TaskIndex i, const json& v, const std::string& path) {
                     if (auto d = optionalInt(v, path)) in.retry_delay_seconds[i] = atLeast(*d, 0, "a delay in seconds", path);
                   });
  in.now = optionalTime(member(doc, "now"), "now");
  return in;
}

nlohmann::ordered_json planToJson(const planning::CompiledDag& dag,
                                  const std::vector<planning::Transition>& plan,
                                  const planning::FinalizeDecision& finalize) {
  using ojson = nlohmann::ordered_json;
  ojson transitions = ojson::array();
  for (const auto& t : plan) {
    ojson entry = ojson::object();
    entry["task_id"] = dag.id(t.task);
    entry["to"] = std::string(toString(t.to));
    transitions.push_back(std::move(entry));
  }
  ojson fin = ojson::object();
  fin["done"] = finalize.done;
  fin["state"] = finalize.done ? ojson(std::string(toString(finalize.state))) : ojson(nullptr);
  ojson doc = ojson::object();
  doc["transitions"] = std::move(transitions);
  doc["finalize"] = std::move(fin);
  return doc;
}

}  // namespace leoflow::host
