#include "log_store.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "names.h"

namespace leoflow::plugins::dispatcher_k8s {

std::string formatLogHeader(const PodIdentity& id, const std::string& ns, const std::string& pod,
                            const std::string& uid) {
  return attempt_log::formatLogHeader({id.attempt, id.run_uid, id.tenant, "pod " + ns + "/" + pod, uid, id.command,
                                       std::nullopt});
}

std::string formatLogFooter(const std::string& uid, const TaskOutcome& outcome, bool after_partial_line) {
  return attempt_log::formatLogFooter(uid, outcome, std::chrono::system_clock::now(), after_partial_line);
}

bool saveLog(const Settings& settings, const PodIdentity& id, const std::string& text) {
  const std::filesystem::path path = attemptLogPath(settings.log_dir, id.attempt, id.run_uid);
  std::error_code ec;
  std::filesystem::create_directories(path.parent_path(), ec);
  if (ec) return false;
  const std::filesystem::path tmp = path.string() + fmt::format(".tmp{}", ::getpid());
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) return false;
    out << text;
    if (!out.flush()) return false;
  }
  std::filesystem::rename(tmp, path, ec);
  return !ec;
}

Result<LogChunk> K8sLogReader::read(const LogQuery& query) {
  std::string text;
  bool complete = false;
  const std::filesystem::path path = attemptLogPath(settings_.log_dir, query.attempt, query.run_uid);
  if (std::ifstream in{path, std::ios::binary}) {
    std::ostringstream s;
    s << in.rdbuf();
    text = s.str();
    complete = true;  // saved once the pod ended, footer included
  } else {
    const std::string name = podName(query.attempt, query.run_uid);
    auto pod = client_->call("GET", podsPath(ns_, name), {}, 3);
    if (!pod.isOk()) return pod.status();
    if (pod->status == 404) {
      return Status(notFound("no log for " + describeAttempt(query.attempt) + ": no pod " + ns_ + "/" + name +
                             " and no saved copy in " + settings_.log_dir.string()));
    }
    if (pod->status != 200) {
      return Status(unavailable(fmt::format("reading pod {}/{} answered {}: {}", ns_, name, pod->status, pod->message())));
    }
    const auto json = nlohmann::json::parse(pod->body, nullptr, false);
    auto log = client_->call("GET", podsPath(ns_, name) + "/log?container=" + std::string(kContainerName), {}, 3);
    if (!log.isOk()) return log.status();
    const auto id = identityOf(json);
    if (id) text = formatLogHeader(*id, ns_, name, json["metadata"].value("uid", ""));
    if (log->status == 200) {
      text += log->body;
    } else if (log->status != 400) {  // 400: the container has not started yet
      return Status(unavailable(fmt::format("reading the log of pod {}/{} answered {}: {}", ns_, name, log->status,
                                            log->message())));
    }
  }
  LogChunk chunk;
  if (query.offset < text.size()) {
    chunk.text = text.substr(query.offset, std::min<std::size_t>(query.max_bytes, text.size() - query.offset));
  }
  chunk.next_offset = query.offset + chunk.text.size();
  chunk.complete = complete && chunk.next_offset >= text.size();
  return chunk;
}

}  // namespace leoflow::plugins::dispatcher_k8s
