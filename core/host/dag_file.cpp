#include "host/dag_file.h"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "planning/compiled_dag.h"
#include "schedule/cron.h"
#include "schedule/iso_time.h"
#include "text/quoted.h"

namespace leoflow::host {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;


bool isValidTenant(const std::string& t) {
  if (t.empty() || t.size() > 63) return false;
  return std::all_of(t.begin(), t.end(), [](char ch) { return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-'; });
}

const std::set<std::string> kTaskTypes = {"bash", "python", "http_api"};
const std::set<std::string> kPullPolicies = {"Always", "IfNotPresent", "Never"};

const std::set<std::string> kDagKeys = {"dag_id",  "schedule",        "schedule_timezone", "start_date", "end_date",
                                        "catchup", "max_active_runs", "default_args",      "tasks",
                                        "tenant"};
const std::set<std::string> kTaskKeys = {"task_id",        "type",       "depends_on",
                                         "trigger_rule",   "retries",    "retry_delay_seconds",
                                         "execution_timeout_seconds", "execution_mode", "entrypoint",
                                         "env",            "http_request", "image",
                                         "resources",      "execution"};

// Collects the problems of one document, each prefixed with the file and, inside a task, the task.
class Checker {
 public:
  Checker(const std::string& file, DagLoad& load) : file_(file), load_(load) {}

  void error(const std::string& where, const std::string& message) {
    load_.errors.push_back(file_ + ": " + where + message);
    ++errors_;
  }
  void warn(const std::string& where, const std::string& message) {
    load_.warnings.push_back(file_ + ": " + where + message);
  }
  int errors() const { return errors_; }

  // Typed readers: a wrong type is an error naming the key; absent/null gives nullopt.
  std::optional<std::string> str(const json& obj, const char* key, const std::string& where) {
    auto it = obj.find(key);
    if (it == obj.end() || it->is_null()) return std::nullopt;
    if (!it->is_string()) {
      error(where, std::string(key) + " must be a string, got " + it->dump());
      return std::nullopt;
    }
    return it->get<std::string>();
  }
  std::optional<std::int64_t> count(const json& obj, const char* key, const std::string& where) {
    auto it = obj.find(key);
    if (it == obj.end() || it->is_null()) return std::nullopt;
    if (!it->is_number_integer() && !(it->is_number_float() && it->get<double>() == static_cast<double>(
                                                                   static_cast<std::int64_t>(it->get<double>())))) {
      error(where, std::string(key) + " must be a whole number, got " + it->dump());
      return std::nullopt;
    }
    const auto v = it->is_number_integer() ? it->get<std::int64_t>() : static_cast<std::int64_t>(it->get<double>());
    if (v < 0) {
      error(where, std::string(key) + " must not be negative, got " + std::to_string(v));
      return std::nullopt;
    }
    if (v > 1'000'000'000) {
      error(where, std::string(key) + " is out of range: " + std::to_string(v));
      return std::nullopt;
    }
    return v;
  }
  std::optional<bool> boolean(const json& obj, const char* key, const std::string& where) {
    auto it = obj.find(key);
    if (it == obj.end() || it->is_null()) return std::nullopt;
    if (!it->is_boolean()) {
      error(where, std::string(key) + " must be true or false, got " + it->dump());
      return std::nullopt;
    }
    return it->get<bool>();
  }
  std::optional<Timestamp> time(const json& obj, const char* key, const std::string& where) {
    auto text = str(obj, key, where);
    if (!text) return std::nullopt;
    if (auto t = schedule::parseIsoTime(*text)) return t;
    // A bare date means midnight UTC, as Airflow users write start dates.
    if (auto t = schedule::parseIsoTime(*text + "T00:00:00Z"); t && text->size() == 10) return t;
    error(where, std::string(key) + " must be an ISO-8601 time such as 2026-01-01T00:00:00Z, got " + text::quoted(*text));
    return std::nullopt;
  }
  std::map<std::string, std::string> stringMap(const json& obj, const char* key, const std::string& where) {
    std::map<std::string, std::string> out;
    auto it = obj.find(key);
    if (it == obj.end() || it->is_null()) return out;
    if (!it->is_object()) {
      error(where, std::string(key) + " must be an object of strings, got " + it->dump());
      return out;
    }
    for (auto e = it->begin(); e != it->end(); ++e) {
      if (e.value().is_string()) {
        out[e.key()] = e.value().get<std::string>();
      } else if (e.value().is_number() || e.value().is_boolean()) {
        out[e.key()] = e.value().dump();  // Kubernetes quantities are often written as numbers
      } else {
        error(where, std::string(key) + "." + e.key() + " must be a string, got " + e.value().dump());
      }
    }
    return out;
  }
  void unknownKeys(const json& obj, const std::set<std::string>& known, const std::string& where) {
    for (auto e = obj.begin(); e != obj.end(); ++e) {
      if (known.count(e.key()) == 0) warn(where, "unknown key " + text::quoted(e.key()) + " ignored");
    }
  }

 private:
  const std::string& file_;
  DagLoad& load_;
  int errors_ = 0;
};

std::optional<HttpRequestSpec> parseHttpRequest(Checker& c, const json& t, const std::string& where) {
  auto it = t.find("http_request");
  if (it == t.end() || it->is_null()) return std::nullopt;
  if (!it->is_object()) {
    c.error(where, "http_request must be an object, got " + it->dump());
    return std::nullopt;
  }
  const json& r = *it;
  HttpRequestSpec h;
  h.method = c.str(r, "method", where + "http_request: ").value_or("GET");
  std::transform(h.method.begin(), h.method.end(), h.method.begin(), [](unsigned char ch) { return std::toupper(ch); });
  static const std::set<std::string> kMethods = {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"};
  if (kMethods.count(h.method) == 0) c.error(where, "http_request.method " + text::quoted(h.method) + " is not an HTTP method");
  h.url = c.str(r, "url", where + "http_request: ").value_or("");
  if (h.url.rfind("http://", 0) != 0 && h.url.rfind("https://", 0) != 0) {
    c.error(where, "http_request.url must be an http:// or https:// URL, got " + text::quoted(h.url));
  }
  h.headers = c.stringMap(r, "headers", where + "http_request: ");
  if (auto b = r.find("body"); b != r.end() && !b->is_null()) h.body_json = b->dump();
  h.timeout_seconds = static_cast<int>(c.count(r, "timeout_seconds", where + "http_request: ").value_or(0));
  if (auto codes = r.find("success_status_codes"); codes != r.end() && !codes->is_null()) {
    if (!codes->is_array()) {
      c.error(where, "http_request.success_status_codes must be an array of status codes");
    } else {
      for (const json& code : *codes) {
        if (!code.is_number_integer() || code.get<int>() < 100 || code.get<int>() > 599) {
          c.error(where, "http_request.success_status_codes: " + code.dump() + " is not an HTTP status code");
        } else {
          h.success_status_codes.push_back(code.get<int>());
        }
      }
    }
  }
  return h;
}

void parseExecution(Checker& c, const json& t, const std::string& where, TaskSpec& spec) {
  auto it = t.find("execution");
  if (it == t.end() || it->is_null()) return;
  if (!it->is_object()) {
    c.error(where, "execution must be an object, got " + it->dump());
    return;
  }
  const json& e = *it;
  const std::string ew = where + "execution: ";
  spec.execution.node_selector = c.stringMap(e, "node_selector", ew);
  spec.execution.service_account = c.str(e, "service_account", ew).value_or("");
  spec.execution.image_pull_policy = c.str(e, "image_pull_policy", ew).value_or("");
  if (!spec.execution.image_pull_policy.empty() && kPullPolicies.count(spec.execution.image_pull_policy) == 0) {
    c.error(where, "execution.image_pull_policy must be Always, IfNotPresent or Never, got " +
                       text::quoted(spec.execution.image_pull_policy));
  }
  if (auto tol = e.find("tolerations"); tol != e.end() && !tol->is_null()) {
    if (!tol->is_array()) {
      c.error(where, "execution.tolerations must be an array");
      return;
    }
    for (const json& x : *tol) {
      if (!x.is_object()) {
        c.error(where, "execution.tolerations entries must be objects, got " + x.dump());
        continue;
      }
      Toleration tt;
      tt.key = c.str(x, "key", ew).value_or("");
      tt.op = c.str(x, "operator", ew).value_or("");
      tt.value = c.str(x, "value", ew).value_or("");
      tt.effect = c.str(x, "effect", ew).value_or("");
      if (!tt.op.empty() && tt.op != "Equal" && tt.op != "Exists") {
        c.error(where, "execution.tolerations operator must be Equal or Exists, got " + text::quoted(tt.op));
      }
      for (const char* k : {"toleration_seconds", "tolerationSeconds"}) {
        if (auto s = x.find(k); s != x.end() && !s->is_null()) {
          if (s->is_number_integer()) {
            tt.toleration_seconds = s->get<std::int64_t>();
          } else {
            c.error(where, std::string("execution.tolerations ") + k + " must be an integer");
          }
        }
      }
      spec.execution.tolerations.push_back(std::move(tt));
    }
  }
}

struct Defaults {
  std::optional<std::int64_t> retries, retry_delay_seconds, execution_timeout_seconds;
};

TaskSpec parseTask(Checker& c, const json& t, std::size_t index, const Defaults& defaults) {
  TaskSpec spec;
  if (!t.is_object()) {
    c.error("", "tasks[" + std::to_string(index) + "] must be an object, got " + t.dump());
    return spec;
  }
  spec.task_id = c.str(t, "task_id", "tasks[" + std::to_string(index) + "]: ").value_or("");
  const std::string where =
      spec.task_id.empty() ? "tasks[" + std::to_string(index) + "]: " : "task " + text::quoted(spec.task_id) + ": ";
  if (spec.task_id.empty()) {
    c.error(where, "task_id is missing");
  } else if (!isValidId(spec.task_id)) {
    c.error(where, "task_id must use only letters, digits, '_', '.' and '-' (at most 250)");
  }
  c.unknownKeys(t, kTaskKeys, where);

  spec.type = c.str(t, "type", where).value_or("");
  if (spec.type.empty()) {
    c.error(where, "type is missing (bash, python or http_api)");
  } else if (kTaskTypes.count(spec.type) == 0) {
    c.error(where, "unknown type " + text::quoted(spec.type) + " (expected bash, python or http_api)");
  }
  if (auto deps = t.find("depends_on"); deps != t.end() && !deps->is_null()) {
    if (!deps->is_array()) {
      c.error(where, "depends_on must be an array of task ids, got " + deps->dump());
    } else {
      for (const json& d : *deps) {
        if (d.is_string()) {
          spec.depends_on.push_back(d.get<std::string>());
        } else {
          c.error(where, "depends_on entries must be task ids, got " + d.dump());
        }
      }
    }
  }
  const std::string rule = c.str(t, "trigger_rule", where).value_or("");
  if (auto parsed = parseTriggerRule(rule)) {
    spec.trigger_rule = *parsed;
  } else {
    c.error(where, "unknown trigger rule " + text::quoted(rule));
  }
  spec.retries = static_cast<int>(c.count(t, "retries", where).value_or(defaults.retries.value_or(0)));
  spec.retry_delay_seconds =
      static_cast<int>(c.count(t, "retry_delay_seconds", where).value_or(defaults.retry_delay_seconds.value_or(0)));
  spec.execution_timeout_seconds = static_cast<int>(
      c.count(t, "execution_timeout_seconds", where).value_or(defaults.execution_timeout_seconds.value_or(0)));

  // BEHAVIOUR §2.4: http_api runs inline by default, every other type in a pod (or process).
  const std::string mode = c.str(t, "execution_mode", where).value_or(spec.type == "http_api" ? "inline" : "pod");
  if (mode == "inline") {
    spec.execution_mode = ExecutionMode::kInline;
    if (!spec.type.empty() && spec.type != "http_api") {
      c.error(where, "execution_mode \"inline\" is only for http_api tasks");
    }
  } else if (mode == "pod") {
    spec.execution_mode = ExecutionMode::kPod;
  } else {
    c.error(where, "execution_mode must be \"inline\" or \"pod\", got " + text::quoted(mode));
  }
  spec.entrypoint = c.str(t, "entrypoint", where).value_or("");
  if ((spec.type == "bash" || spec.type == "python") && spec.entrypoint.empty()) {
    c.error(where, "entrypoint is missing (a " + spec.type + " task runs its entrypoint)");
  }
  spec.env = c.stringMap(t, "env", where);
  spec.http_request = parseHttpRequest(c, t, where);
  if (spec.type == "http_api" && !spec.http_request) c.error(where, "http_request is missing (an http_api task calls it)");
  spec.image = c.str(t, "image", where).value_or("");
  if (auto res = t.find("resources"); res != t.end() && !res->is_null()) {
    if (!res->is_object()) {
      c.error(where, "resources must be an object with requests and limits");
    } else {
      spec.resources.requests = c.stringMap(*res, "requests", where + "resources: ");
      spec.resources.limits = c.stringMap(*res, "limits", where + "resources: ");
    }
  }
  parseExecution(c, t, where, spec);
  return spec;
}

json toJson(const DagSpec& d) {
  json tasks = json::array();
  for (const TaskSpec& t : d.tasks) {
    json task = {
        {"task_id", t.task_id},
        {"type", t.type},
        {"depends_on", t.depends_on},
        {"trigger_rule", std::string(toString(t.trigger_rule))},
        {"retries", t.retries},
        {"retry_delay_seconds", t.retry_delay_seconds},
        {"execution_timeout_seconds", t.execution_timeout_seconds},
        {"execution_mode", std::string(toString(t.execution_mode))},
        {"entrypoint", t.entrypoint},
        {"env", t.env},
        {"image", t.image},
        {"resources", {{"requests", t.resources.requests}, {"limits", t.resources.limits}}},
    };
    json tolerations = json::array();
    for (const Toleration& x : t.execution.tolerations) {
      json tj = {{"key", x.key}, {"operator", x.op}, {"value", x.value}, {"effect", x.effect}};
      if (x.toleration_seconds) tj["toleration_seconds"] = *x.toleration_seconds;
      tolerations.push_back(std::move(tj));
    }
    task["execution"] = {{"node_selector", t.execution.node_selector},
                         {"tolerations", std::move(tolerations)},
                         {"service_account", t.execution.service_account},
                         {"image_pull_policy", t.execution.image_pull_policy}};
    if (t.http_request) {
      const HttpRequestSpec& h = *t.http_request;
      json hr = {{"method", h.method},
                 {"url", h.url},
                 {"headers", h.headers},
                 {"timeout_seconds", h.timeout_seconds},
                 {"success_status_codes", h.success_status_codes}};
      hr["body"] = h.body_json.empty() ? json(nullptr) : json::parse(h.body_json);
      task["http_request"] = std::move(hr);
    }
    tasks.push_back(std::move(task));
  }
  json doc = {{"dag_id", d.dag_id},
              {"schedule", d.schedule.empty() ? json(nullptr) : json(d.schedule)},
              {"schedule_timezone", d.schedule_timezone},
              {"catchup", d.catchup},
              {"max_active_runs", d.max_active_runs},
              {"tasks", std::move(tasks)}};
  doc["start_date"] = d.start_date ? json(schedule::formatIsoMicros(*d.start_date)) : json(nullptr);
  doc["end_date"] = d.end_date ? json(schedule::formatIsoMicros(*d.end_date)) : json(nullptr);
  // Only a tenant other than the default is written, so DAGs registered before tenants existed
  // keep their canonical JSON (and their version) when synced again.
  if (d.tenant != "default") doc["tenant"] = d.tenant;
  return doc;
}

// `canonical`: also write the spec's canonical JSON (not for a stored one: that is its text already).
std::optional<ParsedDag> parseDagDocument(const json& doc, const std::string& file, DagLoad& load, bool canonical) {
  Checker c(file, load);
  if (!doc.is_object()) {
    c.error("", "a DAG file holds one JSON object, got " + std::string(doc.type_name()));
    return std::nullopt;
  }
  DagSpec d;
  d.dag_id = c.str(doc, "dag_id", "").value_or("");
  if (d.dag_id.empty()) {
    c.error("", "dag_id is missing");
  } else if (!isValidId(d.dag_id)) {
    c.error("", "dag_id " + text::quoted(d.dag_id) + " must use only letters, digits, '_', '.' and '-' (at most 250)");
  }
  c.unknownKeys(doc, kDagKeys, "");
  d.schedule = c.str(doc, "schedule", "").value_or("");
  d.schedule_timezone = c.str(doc, "schedule_timezone", "").value_or("");
  // The zone is its own field: a bad one is reported under its name, and the schedule is then
  // judged on its own (a CRON_TZ= prefix in it wins anyway, §8.4).
  bool zone_ok = true;
  if (!d.schedule_timezone.empty()) {
    if (auto zone = schedule::Schedule::parse("", d.schedule_timezone); !zone) {
      c.error("", "schedule_timezone " + text::quoted(d.schedule_timezone) + ": " + zone.status().message());
      zone_ok = false;
    }
  }
  if (auto parsed = schedule::Schedule::parse(d.schedule, zone_ok ? d.schedule_timezone : ""); !parsed) {
    c.error("", "bad schedule " + text::quoted(d.schedule) + ": " + parsed.status().message());
  }
  d.start_date = c.time(doc, "start_date", "");
  d.end_date = c.time(doc, "end_date", "");
  if (d.start_date && d.end_date && *d.end_date < *d.start_date) {
    c.error("", "end_date " + schedule::formatIsoSeconds(*d.end_date) + " is before start_date " +
                    schedule::formatIsoSeconds(*d.start_date));
  }
  d.catchup = c.boolean(doc, "catchup", "").value_or(false);  // Airflow 3's default (§8.5)
  d.max_active_runs = static_cast<int>(c.count(doc, "max_active_runs", "").value_or(16));
  d.tenant = c.str(doc, "tenant", "").value_or("default");
  if (!isValidTenant(d.tenant)) {
    c.error("", "tenant " + text::quoted(d.tenant) + " must be 1-63 of a-z, 0-9 and '-'");
  }

  Defaults defaults;
  if (auto da = doc.find("default_args"); da != doc.end() && !da->is_null()) {
    if (!da->is_object()) {
      c.error("", "default_args must be an object, got " + da->dump());
    } else {
      defaults.retries = c.count(*da, "retries", "default_args: ");
      defaults.retry_delay_seconds = c.count(*da, "retry_delay_seconds", "default_args: ");
      defaults.execution_timeout_seconds = c.count(*da, "execution_timeout_seconds", "default_args: ");
    }
  }
  auto tasks = doc.find("tasks");
  if (tasks == doc.end() || tasks->is_null()) {
    c.error("", "tasks is missing");
  } else if (!tasks->is_array()) {
    c.error("", "tasks must be an array, got " + tasks->dump());
  } else {
    std::set<std::string> seen;
    d.tasks.reserve(tasks->size());  // grown once: a 20,000-task DAG's tasks are ~10 MB
    for (std::size_t i = 0; i < tasks->size(); ++i) {
      TaskSpec t = parseTask(c, (*tasks)[i], i, defaults);
      if (!t.task_id.empty() && !seen.insert(t.task_id).second) {
        c.error("task " + text::quoted(t.task_id) + ": ", "duplicate task id");
        continue;
      }
      d.tasks.push_back(std::move(t));
    }
    // Dependencies and cycles, each named by its task.
    std::set<std::string> ids;
    for (const TaskSpec& t : d.tasks) ids.insert(t.task_id);
    bool dangling = false;
    for (const TaskSpec& t : d.tasks) {
      for (const std::string& dep : t.depends_on) {
        if (ids.count(dep) == 0) {
          c.error("task " + text::quoted(t.task_id) + ": ", "depends on unknown task " + text::quoted(dep));
          dangling = true;
        }
      }
    }
    if (!dangling && c.errors() == 0) {
      auto compiled = planning::CompiledDag::compile(d.tasks);
      if (!compiled) {
        std::string m = compiled.status().message();
        if (m.rfind("tasks: ", 0) == 0) m = m.substr(7);
        c.error("", m);
      }
    }
  }
  if (c.errors() > 0) return std::nullopt;
  ParsedDag parsed{std::move(d), "", file};
  if (canonical) parsed.canonical_json = canonicalDagJson(parsed.spec);
  return parsed;
}

}  // namespace

bool isValidId(const std::string& id) {
  if (id.empty() || id.size() > 250) return false;
  return std::all_of(id.begin(), id.end(), [](unsigned char ch) {
    return std::isalnum(ch) != 0 || ch == '_' || ch == '.' || ch == '-';
  });
}

namespace {

// Finds keys given twice in one object while nlohmann parses (it keeps the last one silently), and
// says where: "tasks[1].http_request". Used as the parser's callback.
class DuplicateKeys {
 public:
  bool operator()(int /*depth*/, json::parse_event_t event, json& parsed) {
    switch (event) {
      case json::parse_event_t::object_start:
      case json::parse_event_t::array_start: {
        std::string path = elementPath();
        frames_.push_back({event == json::parse_event_t::object_start, std::move(path), {}, {}, 0});
        break;
      }
      case json::parse_event_t::object_end:
      case json::parse_event_t::array_end:
        if (!frames_.empty()) frames_.pop_back();
        break;
      case json::parse_event_t::key: {
        Frame& f = frames_.back();
        f.key = parsed.get<std::string>();
        if (!f.keys.insert(f.key).second) {
          found_.push_back("duplicate key " + text::quoted(f.key) + (f.path.empty() ? "" : " in " + f.path) +
                           " (a key may appear once in an object)");
        }
        break;
      }
      case json::parse_event_t::value:
        elementPath();  // a scalar in an array takes its index
        break;
    }
    return true;
  }
  const std::vector<std::string>& found() const { return found_; }

 private:
  struct Frame {
    bool object;
    std::string path;  // of this object or array; "" for the document
    std::set<std::string> keys;
    std::string key;     // objects: the key whose value comes next
    std::size_t count;   // arrays: elements seen
  };
  // The path of the element that starts now (advancing its array's index).
  std::string elementPath() {
    if (frames_.empty()) return "";
    Frame& f = frames_.back();
    if (f.object) return f.path.empty() ? f.key : f.path + "." + f.key;
    return f.path + "[" + std::to_string(f.count++) + "]";
  }

  std::vector<Frame> frames_;
  std::vector<std::string> found_;
};

// Parses a DAG document. `from_file`: a file people write — its keys are checked for duplicates
// (canonical JSON has none) and its canonical JSON is written (a stored DAG's text is that already).
std::optional<ParsedDag> parseDag(const std::string& text, const std::string& file, DagLoad& load, bool from_file) {
  json doc;
  DuplicateKeys duplicates;
  try {
    if (from_file) {
      doc = json::parse(text, [&duplicates](int depth, json::parse_event_t event, json& parsed) {
        return duplicates(depth, event, parsed);
      });
    } else {
      doc = json::parse(text);
    }
  } catch (const json::parse_error& e) {
    std::string reason = e.what();
    if (auto pos = reason.find("] "); pos != std::string::npos) reason = reason.substr(pos + 2);
    load.errors.push_back(file + ": malformed JSON: " + reason);
    return std::nullopt;
  }
  for (const std::string& d : duplicates.found()) load.errors.push_back(file + ": " + d);
  auto parsed = parseDagDocument(doc, file, load, /*canonical=*/from_file);
  if (!duplicates.found().empty()) return std::nullopt;
  return parsed;
}

}  // namespace

std::optional<ParsedDag> parseDagText(const std::string& text, const std::string& file, DagLoad& load) {
  return parseDag(text, file, load, true);
}

DagLoad loadDagFiles(const std::vector<std::string>& paths) {
  DagLoad load;
  std::vector<std::string> files;
  // A file named twice, or inside a folder given and by its own name, is read once (the first
  // time it comes up); the same file through a symbolic link too.
  std::set<fs::path> seen;
  auto addFile = [&](const std::string& f) {
    std::error_code ec;
    fs::path key = fs::weakly_canonical(f, ec);
    if (ec) key = fs::absolute(f, ec).lexically_normal();
    if (seen.insert(key).second) files.push_back(f);
  };
  for (const std::string& p : paths) {
    std::error_code ec;
    if (fs::is_directory(p, ec)) {
      std::vector<std::string> found;
      for (auto it = fs::recursive_directory_iterator(p, ec); !ec && it != fs::recursive_directory_iterator();
           it.increment(ec)) {
        if (it->is_regular_file() && it->path().extension() == ".json") found.push_back(it->path().string());
      }
      if (ec) load.errors.push_back(p + ": cannot read folder: " + ec.message());
      std::sort(found.begin(), found.end());
      if (found.empty() && !ec) load.warnings.push_back(p + ": no *.json DAG files in this folder");
      for (const std::string& f : found) addFile(f);
    } else if (fs::exists(p, ec)) {
      addFile(p);
    } else {
      load.errors.push_back(p + ": no such file or folder");
    }
  }
  std::map<std::string, std::string> defined_in;
  for (const std::string& f : files) {
    std::ifstream in(f);
    if (!in) {
      load.errors.push_back(f + ": cannot be read");
      continue;
    }
    std::stringstream text;
    text << in.rdbuf();
    auto parsed = parseDagText(text.str(), f, load);
    if (!parsed) continue;
    auto [it, inserted] = defined_in.emplace(parsed->spec.dag_id, f);
    if (!inserted) {
      load.errors.push_back(f + ": dag " + text::quoted(parsed->spec.dag_id) + " is also defined in " + it->second);
      continue;
    }
    load.dags.push_back(std::move(*parsed));
  }
  return load;
}

std::string canonicalDagJson(const DagSpec& spec) { return toJson(spec).dump(); }

Result<DagSpec> decodeCanonicalDag(const std::string& json_text) {
  DagLoad load;
  auto parsed = parseDag(json_text, "stored dag", load, false);
  if (!parsed) {
    std::string why;
    for (const std::string& e : load.errors) why += (why.empty() ? "" : "; ") + e;
    return invalidArgument(why);
  }
  return std::move(parsed->spec);
}

}  // namespace leoflow::host
