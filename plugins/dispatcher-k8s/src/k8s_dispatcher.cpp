#include "k8s_dispatcher.h"

#include <pthread.h>

#include <cctype>
#include <cstdio>

#include <fmt/format.h>

#include "log_store.h"
#include "names.h"

namespace leoflow::plugins::dispatcher_k8s {
namespace {

using nlohmann::json;

bool terminal(const std::string& phase) { return phase == "Succeeded" || phase == "Failed"; }

std::string credentialsHint(long status, const Connection& c) {
  return status == 401 ? "401 Unauthorized: " + unauthorizedCause(c)
                       : "403 Forbidden: the credentials lack RBAC rights (pods: create, get, list, watch, delete; "
                         "pods/log: get)";
}

/// The task's container status: the one named `task` (a template may add sidecars), else the first.
const json* taskContainerStatus(const json& statuses) {
  if (!statuses.is_array() || statuses.empty()) return nullptr;
  for (const auto& cs : statuses) {
    if (cs.is_object() && cs.value("name", "") == "task") return &cs;
  }
  return statuses[0].is_object() ? &statuses[0] : nullptr;
}

}  // namespace

K8sDispatcher::K8sDispatcher(Settings settings, std::shared_ptr<KubeClient> client, std::string ns,
                             const PluginContext& context)
    : settings_(std::move(settings)),
      client_(std::move(client)),
      ns_(std::move(ns)),
      context_(context),
      selector_(installationSelector(settings_)) {}

K8sDispatcher::~K8sDispatcher() { shutdown(); }

void K8sDispatcher::start() {
  const Status listed = listPods();
  if (!listed.isOk()) {
    if (listed.code() == StatusCode::kUnavailable) throw UnavailableError(listed.message());
    throw std::runtime_error(listed.message());
  }
  watcher_ = std::thread([this] {
    ::pthread_setname_np(::pthread_self(), "lf-k8s-watch");
    watchLoop();
  });
  ticker_ = std::thread([this] {
    ::pthread_setname_np(::pthread_self(), "lf-k8s-tick");
    tickLoop();
  });
}

void K8sDispatcher::sleepFor(std::chrono::milliseconds d) {
  std::unique_lock lock(sleep_mutex_);
  sleep_cv_.wait_for(lock, d, [this] { return shut_.load(); });
}

bool K8sDispatcher::live(const Pod& p) const { return !p.deleted && !terminal(p.phase) && !p.done; }

std::size_t K8sDispatcher::usedLocked() const {
  std::size_t used = inflight_.size();
  for (const auto& [name, p] : pods_) used += live(p) && !inflight_.count(name) ? 1 : 0;
  return used;
}

std::size_t K8sDispatcher::freeCapacity() const {
  if (shut_) return 0;
  std::lock_guard lock(mutex_);
  const std::size_t used = usedLocked();
  return used >= settings_.max_parallel ? 0 : settings_.max_parallel - used;
}

std::vector<AttemptRef> K8sDispatcher::heldAttempts() const {
  std::lock_guard lock(mutex_);
  std::vector<AttemptRef> out;
  for (const auto& [name, p] : pods_) {
    if (!p.done && !p.deleted) out.push_back(p.id.attempt);
  }
  return out;
}

Status K8sDispatcher::stop(const AttemptRef& attempt) {
  {
    std::lock_guard lock(mutex_);
    for (auto& [name, p] : pods_) {
      if (p.id.attempt == attempt && !p.deleted && !p.done) {
        p.done = true;  // nothing more is reported for a stopped attempt
        p.delete_wanted = true;
        p.delete_grace = settings_.termination_grace_s;
        p.stop_note = "stopped: the attempt is no longer current";
      }
    }
  }
  sleep_cv_.notify_all();
  return {};
}

void K8sDispatcher::shutdown() {
  if (shut_.exchange(true)) {
    if (watcher_.joinable()) watcher_.join();
    if (ticker_.joinable()) ticker_.join();
    return;
  }
  client_->cancel();
  sleep_cv_.notify_all();
  if (watcher_.joinable()) watcher_.join();
  if (ticker_.joinable()) ticker_.join();
}

Result<DispatchOutcome> K8sDispatcher::dispatch(const DispatchRequest& request) {
  if (shut_) return DispatchOutcome::kAtCapacity;
  auto manifest = buildPod(request, settings_, ns_);
  if (!manifest.isOk()) return manifest.status();
  const std::string name = (*manifest)["metadata"]["name"].get<std::string>();
  {
    std::lock_guard lock(mutex_);
    if (auto it = pods_.find(name); it != pods_.end() && !it->second.deleted) return DispatchOutcome::kAlreadyRunning;
    if (inflight_.count(name)) return DispatchOutcome::kAlreadyRunning;  // a concurrent dispatch of it
    if (usedLocked() >= settings_.max_parallel) return DispatchOutcome::kAtCapacity;
    inflight_.insert(name);
  }
  struct Release {
    K8sDispatcher* self;
    const std::string& name;
    ~Release() {
      std::lock_guard lock(self->mutex_);
      self->inflight_.erase(name);
    }
  } release{this, name};
  auto created = client_->call("POST", podsPath(ns_), manifest->dump());
  if (!created.isOk()) return created.status();
  if (created->status == 201 || created->status == 200) {
    const auto pod = json::parse(created->body, nullptr, false);
    std::lock_guard lock(mutex_);
    applyPod(pod, "CREATED");
    context_.logger()->info("created pod {}/{} for {}", ns_, name, describeAttempt(request.attempt));
    return DispatchOutcome::kStarted;
  }
  if (created->status == 409) {
    // The attempt's pod exists: created by an earlier dispatch, another replica or a previous
    // scheduler. Adopt it; the ticker claims it with its uid.
    auto got = client_->call("GET", podsPath(ns_, name));
    if (!got.isOk()) return got.status();
    if (got->status != 200) {
      return Status(unavailable(fmt::format("pod {}/{} exists (409) but reading it answered {}: {}", ns_, name,
                                            got->status, got->message())));
    }
    const auto pod = json::parse(got->body, nullptr, false);
    const auto id = identityOf(pod);
    if (!id || id->attempt != request.attempt || id->run_uid != request.run_uid) {
      return Status(internalError("pod " + ns_ + "/" + name + " exists but belongs to another attempt"));
    }
    std::lock_guard lock(mutex_);
    applyPod(pod, "GET");
    return DispatchOutcome::kAlreadyRunning;
  }
  if (created->status == 401 || created->status == 403) {
    return Status(unavailable("dispatcher-k8s: creating pod " + ns_ + "/" + name + ": " +
                              credentialsHint(created->status, client_->connection()) + " (" + client_->connection().origin + ")"));
  }
  if (created->status == 422 || created->status == 400) {
    return Status(invalidArgument(fmt::format("the API server refused pod {}/{} ({}): {}", ns_, name,
                                              created->status, created->message())));
  }
  return Status(unavailable(fmt::format("creating pod {}/{} answered {}: {}", ns_, name, created->status,
                                        created->message())));
}

void K8sDispatcher::applyPod(const json& pod, const std::string& type) {
  if (!pod.is_object() || !pod.contains("metadata")) return;
  const auto id = identityOf(pod);
  if (!id) return;
  const std::string name = pod["metadata"].value("name", "");
  auto it = pods_.find(name);
  if (it == pods_.end()) {
    if (type == "DELETED") return;
    it = pods_.emplace(name, Pod{}).first;
    it->second.first_seen = Clock::now();
  }
  Pod& p = it->second;
  const std::string uid = pod["metadata"].value("uid", "");
  if (!p.uid.empty() && !uid.empty() && uid != p.uid) {
    if (type == "DELETED") return;  // an older pod of the same name
    p = Pod{};                      // a new pod under the old name (the old one was deleted)
    p.first_seen = Clock::now();
  }
  p.id = *id;
  if (!uid.empty()) p.uid = uid;
  if (pod.contains("status") && pod["status"].is_object()) {
    const json& st = pod["status"];
    p.phase = st.value("phase", p.phase);
    const json* cs = st.contains("containerStatuses") ? taskContainerStatus(st["containerStatuses"]) : nullptr;
    if (cs) {
      const json& state = cs->value("state", json::object());
      for (const char* key : {"running", "terminated"}) {
        if (state.contains(key) && state[key].is_object() && state[key].contains("startedAt") &&
            state[key]["startedAt"].is_string()) {
          if (auto at = parseRfc3339(state[key]["startedAt"].get<std::string>())) p.started_at = at;
          break;
        }
      }
      if (state.contains("terminated")) {
        p.exit_code = state["terminated"].value("exitCode", 0);
        p.reason = state["terminated"].value("reason", "");
      } else if (state.contains("waiting")) {
        p.reason = state["waiting"].value("reason", "");
        if (state["waiting"].contains("message")) p.reason += ": " + state["waiting"].value("message", "");
      }
    } else if (st.contains("reason")) {
      p.reason = st.value("reason", "");
    }
  }
  if (p.phase == "Running" && !p.running_since) p.running_since = Clock::now();
  if (type == "DELETED") p.deleted = true;
}

Status K8sDispatcher::listPods() {
  auto r = client_->call("GET", podsPath(ns_) + "?labelSelector=" + urlEncode(selector_));
  if (!r.isOk()) return r.status();
  if (r->status == 401 || r->status == 403) {
    return invalidArgument("dispatcher-k8s: listing pods in namespace " + ns_ + ": " + credentialsHint(r->status, client_->connection()) +
                           " (" + client_->connection().origin + ")");
  }
  if (r->status != 200) {
    return unavailable(fmt::format("dispatcher-k8s: listing pods in namespace {} answered {}: {}", ns_, r->status,
                                   r->message()));
  }
  const auto list = json::parse(r->body, nullptr, false);
  if (!list.is_object()) return unavailable("dispatcher-k8s: the pod list is not JSON");
  std::lock_guard lock(mutex_);
  std::map<std::string, bool> seen;
  for (const auto& item : list.value("items", json::array())) {
    applyPod(item, "LIST");
    seen[item["metadata"].value("name", "")] = true;
  }
  for (auto& [name, p] : pods_) {
    if (!seen.count(name) && !p.uid.empty()) p.deleted = true;  // deleted while we were not watching
  }
  resource_version_ = list.value("metadata", json::object()).value("resourceVersion", "");
  return {};
}

void K8sDispatcher::watchLoop() {
  while (!shut_) {
    std::string rv;
    {
      std::lock_guard lock(mutex_);
      rv = resource_version_;
    }
    if (rv.empty()) {
      const Status s = listPods();
      if (!s.isOk()) {
        if (!shut_) context_.logger()->warn("{}", s.message());
        sleepFor(std::chrono::seconds(1));
        continue;
      }
      continue;
    }
    bool gone = false;
    const std::string path = podsPath(ns_) + "?watch=1&allowWatchBookmarks=true&resourceVersion=" + urlEncode(rv) +
                             "&labelSelector=" + urlEncode(selector_) +
                             "&timeoutSeconds=" + std::to_string(settings_.watch_timeout_s);
    auto r = client_->stream(
        path,
        [&](std::string_view line) {
          const auto ev = json::parse(line, nullptr, false);
          if (!ev.is_object()) return true;
          const std::string type = ev.value("type", "");
          const json& obj = ev.contains("object") ? ev["object"] : json();
          if (type == "ERROR" || (obj.is_object() && obj.value("kind", "") == "Status")) {
            if (obj.is_object() && obj.value("code", 0) == 410) gone = true;
            return false;
          }
          std::lock_guard lock(mutex_);
          if (type != "BOOKMARK") applyPod(obj, type);
          if (obj.is_object() && obj.contains("metadata")) {
            const std::string next = obj["metadata"].value("resourceVersion", "");
            if (!next.empty()) resource_version_ = next;
          }
          sleep_cv_.notify_all();
          return !shut_;
        },
        [this] { return shut_.load(); }, settings_.watch_timeout_s + 15);
    if (shut_) break;
    if (r.isOk() && *r == 410) gone = true;
    if (gone) {
      context_.logger()->info("watch of namespace {}: resourceVersion {} is gone (410); listing again", ns_, rv);
      std::lock_guard lock(mutex_);
      resource_version_.clear();
      continue;
    }
    if (!r.isOk() || *r != 200) {
      context_.logger()->warn("watch of namespace {} failed: {}", ns_,
                              r.isOk() ? "HTTP " + std::to_string(*r) : r.status().message());
      sleepFor(std::chrono::seconds(1));
    }
  }
}

void K8sDispatcher::tickLoop() {
  while (!shut_) {
    std::vector<std::string> names;
    {
      std::lock_guard lock(mutex_);
      for (const auto& [name, p] : pods_) names.push_back(name);
    }
    for (const std::string& name : names) {
      if (shut_) break;
      tickPod(name);
    }
    sleepFor(std::min<std::chrono::milliseconds>(std::chrono::milliseconds(100), context_.heartbeatInterval() / 4));
  }
}

std::string K8sDispatcher::fetchLogText(const std::string& name, const Pod& p, const TaskOutcome& outcome) {
  std::string text = formatLogHeader(p.id, ns_, name, p.uid);
  auto log = client_->call("GET", podsPath(ns_, name) + "/log?container=" + std::string(kContainerName), {}, 3);
  if (log.isOk() && log->status == 200) {
    text += log->body;
  } else {
    text += "leoflow: the pod's log could not be read: " +
            (log.isOk() ? fmt::format("HTTP {}: {}", log->status, log->message()) : log.status().message()) + "\n";
  }
  return text + formatLogFooter(p.uid, outcome, !text.empty() && text.back() != '\n');
}

void K8sDispatcher::deletePod(const std::string& name, int grace_s) {
  std::string path = podsPath(ns_, name);
  if (grace_s >= 0) path += "?gracePeriodSeconds=" + std::to_string(grace_s);
  auto r = client_->call("DELETE", path);
  if (!r.isOk()) {
    context_.logger()->warn("deleting pod {}/{}: {}", ns_, name, r.status().message());
    return;
  }
  std::lock_guard lock(mutex_);
  auto it = pods_.find(name);
  if (it == pods_.end()) return;
  if (r->status == 200 || r->status == 202 || r->status == 404) {
    it->second.delete_sent = true;
    if (r->status == 404) it->second.deleted = true;
  } else {
    context_.logger()->warn("deleting pod {}/{} answered {}: {}", ns_, name, r->status, r->message());
  }
}

void K8sDispatcher::tickPod(const std::string& name) {
  enum class Act { kNone, kClaim, kBeat, kFinish, kDelete, kForget };
  Act act = Act::kNone;
  Pod p;
  TaskOutcome outcome;
  bool delete_after = false;
  const auto now = Clock::now();
  {
    std::lock_guard lock(mutex_);
    auto it = pods_.find(name);
    if (it == pods_.end()) return;
    Pod& cur = it->second;
    if (cur.deleted && (cur.done || cur.refused || (!cur.claimed && cur.uid.empty()))) {
      pods_.erase(it);
      return;
    }
    if (cur.delete_wanted && !cur.delete_sent && !cur.deleted) {
      act = Act::kDelete;
    } else if (!cur.done && !cur.claimed && !cur.refused && !cur.uid.empty()) {
      act = Act::kClaim;
    } else if (!cur.done && cur.claimed) {
      if (terminal(cur.phase)) {
        act = Act::kFinish;
        outcome.success = cur.phase == "Succeeded";
        outcome.exit_code = cur.exit_code;
        outcome.message = outcome.success ? std::string()
                          : cur.exit_code ? fmt::format("exit code {}", *cur.exit_code) : std::string("pod failed");
        if (!outcome.success && !cur.reason.empty() && cur.reason != "Error") outcome.message += " (" + cur.reason + ")";
      } else if (cur.deleted) {
        act = Act::kFinish;
        outcome.message = "pod " + ns_ + "/" + name + " was deleted out of band";
      } else if (cur.phase != "Running" && now - cur.first_seen > std::chrono::seconds(settings_.pending_timeout_s)) {
        act = Act::kFinish;
        delete_after = true;
        outcome.message = fmt::format("pod {}/{} was Pending for more than {} s{}", ns_, name,
                                      settings_.pending_timeout_s, cur.reason.empty() ? "" : ": " + cur.reason);
      } else if (cur.id.execution_timeout_s > 0 && (cur.started_at || cur.running_since) &&
                 (cur.started_at ? std::chrono::system_clock::now() - *cur.started_at
                                 : std::chrono::duration_cast<std::chrono::system_clock::duration>(
                                       now - *cur.running_since)) >
                     std::chrono::seconds(cur.id.execution_timeout_s)) {
        act = Act::kFinish;
        delete_after = true;
        outcome.message = fmt::format("timed out after {} s", cur.id.execution_timeout_s);
      } else if (now - cur.last_beat >= context_.heartbeatInterval()) {
        act = Act::kBeat;
      }
    } else if (cur.done && cur.finished_at && !cur.deleted && !cur.delete_sent &&
               now - *cur.finished_at >= std::chrono::seconds(settings_.delete_finished_after_s)) {
      act = Act::kDelete;
    }
    p = cur;
  }
  const ExecutionRef exec{p.id.attempt, p.uid};
  switch (act) {
    case Act::kNone:
    case Act::kForget: return;
    case Act::kDelete: {
      if (!p.finished_at && !p.deleted) {
        TaskOutcome stopped{false, std::nullopt, p.stop_note.empty() ? "deleted" : p.stop_note};
        if (!p.uid.empty()) saveLog(settings_, p.id, fetchLogText(name, p, stopped));
      }
      deletePod(name, p.delete_grace);
      return;
    }
    case Act::kClaim: {
      const Status s = context_.events().running(exec);
      std::lock_guard lock(mutex_);
      auto it = pods_.find(name);
      if (it == pods_.end() || it->second.uid != p.uid) return;
      if (s.isOk()) {
        it->second.claimed = true;
        it->second.last_beat = Clock::now();
        context_.logger()->debug("claimed {} with pod {}", describeAttempt(p.id.attempt), p.uid);
      } else if (s.code() == StatusCode::kConflict || s.code() == StatusCode::kNotFound) {
        it->second.refused = true;
        it->second.done = true;
        it->second.delete_wanted = !it->second.deleted;
        it->second.delete_grace = settings_.termination_grace_s;
        it->second.stop_note = "the attempt is no longer current: " + s.message();
        context_.logger()->info("pod {}/{}: {} is no longer current ({}); deleting it", ns_, name,
                                describeAttempt(p.id.attempt), s.message());
      }
      return;
    }
    case Act::kBeat: {
      const Status s = context_.events().heartbeat(exec);
      std::lock_guard lock(mutex_);
      auto it = pods_.find(name);
      if (it == pods_.end() || it->second.uid != p.uid) return;
      if (s.isOk()) {
        it->second.last_beat = Clock::now();
      } else if (s.code() == StatusCode::kConflict) {
        it->second.done = true;
        it->second.delete_wanted = true;
        it->second.delete_grace = settings_.termination_grace_s;
        it->second.stop_note = "the attempt is no longer current: " + s.message();
        context_.logger()->info("pod {}/{}: {} is no longer current; deleting it", ns_, name,
                                describeAttempt(p.id.attempt));
      }
      return;
    }
    case Act::kFinish: {
      if (!p.deleted) saveLog(settings_, p.id, fetchLogText(name, p, outcome));
      if (delete_after) deletePod(name, settings_.termination_grace_s);
      const Status s = context_.events().finished(exec, outcome);
      std::lock_guard lock(mutex_);
      auto it = pods_.find(name);
      if (it == pods_.end() || it->second.uid != p.uid) return;
      if (s.isOk() || s.code() == StatusCode::kConflict || s.code() == StatusCode::kNotFound) {
        it->second.done = true;
        it->second.finished_at = Clock::now();
        context_.logger()->info("{} ended: {}", describeAttempt(p.id.attempt),
                                outcome.success ? std::string("success") : outcome.message);
      }
      return;
    }
  }
}

}  // namespace leoflow::plugins::dispatcher_k8s
