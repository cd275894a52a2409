#include "host/run_view.h"

#include <ostream>

#include <fmt/format.h>

#include "schedule/iso_time.h"

namespace leoflow::host {
namespace {

using ojson = nlohmann::ordered_json;

ojson timeJson(const std::optional<Timestamp>& t) {
  return t ? ojson(schedule::formatIsoSeconds(*t)) : ojson(nullptr);
}

}  // namespace

std::string timeOrDash(const std::optional<Timestamp>& t) { return t ? schedule::formatIsoSeconds(*t) : "-"; }

ojson runToJson(const RunRecord& run, bool with_tasks) {
  ojson j = ojson::object();
  j["run_id"] = run.key.run_id;
  j["dag_id"] = run.key.dag_id;
  j["dag_version"] = run.dag_version;
  j["state"] = std::string(toString(run.state));
  j["logical_date"] = schedule::formatIsoSeconds(run.logical_date);
  j["started_at"] = timeJson(run.started_at);
  j["ended_at"] = timeJson(run.ended_at);
  j["note"] = run.note;
  j["tenant"] = run.tenant;
  j["trigger"] = std::string(toString(run.trigger));
  j["uid"] = run.uid;
  if (with_tasks) {
    ojson tasks = ojson::array();
    for (const TaskInstance& t : run.tasks) {
      ojson tj = ojson::object();
      tj["task_id"] = t.task_id;
      tj["state"] = std::string(toString(t.state));
      tj["try_number"] = t.try_number;
      tj["max_tries"] = t.max_tries;
      tj["note"] = t.note;
      tj["started_at"] = timeJson(t.started_at);
      tj["ended_at"] = timeJson(t.ended_at);
      tasks.push_back(std::move(tj));
    }
    j["tasks"] = std::move(tasks);
  }
  return j;
}

void printRun(const RunRecord& run, std::ostream& out) {
  out << fmt::format("run {} of dag {}: {}\n", run.key.run_id, run.key.dag_id, toString(run.state));
  out << fmt::format("  dag version {}  tenant {}  {} run  uid {}\n", run.dag_version, run.tenant, toString(run.trigger),
                     run.uid);
  out << fmt::format("  logical date {}  started {}  ended {}\n", schedule::formatIsoSeconds(run.logical_date),
                     timeOrDash(run.started_at), timeOrDash(run.ended_at));
  if (!run.note.empty()) out << "  note: " << run.note << '\n';
  if (run.tasks.empty()) return;
  std::size_t width = 4;
  for (const TaskInstance& t : run.tasks) width = std::max(width, t.task_id.size());
  out << fmt::format("  {:<{}}  {:<15}  {:>5}  {:<20}  {:<20}  {}\n", "TASK", width, "STATE", "TRY", "STARTED", "ENDED",
                     "NOTE");
  for (const TaskInstance& t : run.tasks) {
    out << fmt::format("  {:<{}}  {:<15}  {:>5}  {:<20}  {:<20}  {}\n", t.task_id, width, toString(t.state),
                       fmt::format("{}/{}", t.try_number, t.max_tries), timeOrDash(t.started_at),
                       timeOrDash(t.ended_at), t.note);
  }
}

void printRuns(const std::vector<RunRecord>& runs, std::ostream& out) {
  if (runs.empty()) {
    out << "no runs\n";
    return;
  }
  std::size_t dag_w = 3, run_w = 6;
  for (const RunRecord& r : runs) {
    dag_w = std::max(dag_w, r.key.dag_id.size());
    run_w = std::max(run_w, r.key.run_id.size());
  }
  std::size_t tenant_w = 6;
  for (const RunRecord& r : runs) tenant_w = std::max(tenant_w, r.tenant.size());
  out << fmt::format("{:<{}}  {:<{}}  {:<8}  {:<{}}  {:<20}  {:<20}  {}\n", "DAG", dag_w, "RUN_ID", run_w, "STATE",
                     "TENANT", tenant_w, "LOGICAL_DATE", "STARTED", "ENDED");
  for (const RunRecord& r : runs) {
    out << fmt::format("{:<{}}  {:<{}}  {:<8}  {:<{}}  {:<20}  {:<20}  {}\n", r.key.dag_id, dag_w, r.key.run_id, run_w,
                       toString(r.state), r.tenant, tenant_w, schedule::formatIsoSeconds(r.logical_date),
                       timeOrDash(r.started_at), timeOrDash(r.ended_at));
  }
}

}  // namespace leoflow::host
