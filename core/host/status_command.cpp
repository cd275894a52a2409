#include "host/status_command.h"

#include <ostream>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "host/command_context.h"
#include "host/exit_codes.h"
#include "host/store_session.h"
#include "schedule/iso_time.h"

namespace leoflow::host {

int status(Store& store, const Clock& clock, bool json, std::ostream& out) {
  auto liveness = store.readLiveness();
  if (!liveness) failWith(liveness.status(), "reading the leader's record");
  const std::optional<LivenessRecord>& r = *liveness;
  std::optional<double> age;
  if (r && r->last_tick) age = std::chrono::duration<double>(clock.now() - *r->last_tick).count();
  if (json) {
    using ojson = nlohmann::ordered_json;
    ojson doc = ojson::object();
    ojson leader = ojson::object();
    leader["holder"] = r ? ojson(r->holder) : ojson(nullptr);
    leader["term"] = r ? ojson(r->term) : ojson(nullptr);
    doc["leader"] = std::move(leader);
    doc["last_tick"] = r && r->last_tick ? ojson(schedule::formatIsoSeconds(*r->last_tick)) : ojson(nullptr);
    doc["last_tick_age_seconds"] = age ? ojson(*age) : ojson(nullptr);
    doc["queue_depth"] = r ? ojson(r->queue_depth) : ojson(nullptr);
    doc["active_runs"] = r ? ojson(r->active_runs) : ojson(nullptr);
    out << doc.dump(2) << '\n';
    return kExitOk;
  }
  if (!r) {
    out << "no scheduler has led yet (start one: leoflow scheduler)\n";
    return kExitOk;
  }
  out << fmt::format("leader:      {} (term {})\n", r->holder, r->term);
  out << fmt::format("last tick:   {}{}\n", r->last_tick ? schedule::formatIsoSeconds(*r->last_tick) : "never",
                     age ? fmt::format(" ({:.1f} s ago)", *age) : "");
  out << fmt::format("queue depth: {}\n", r->queue_depth);
  out << fmt::format("active runs: {}\n", r->active_runs);
  return kExitOk;
}

void addStatusCommand(CLI::App& app, CommandContext& ctx) {
  static bool json = false;
  CLI::App* cmd = app.add_subcommand("status", "Show the leader, its term, its last tick and queue depth");
  cmd->add_flag("--json", json, "Print JSON");
  cmd->callback([&ctx] {
    StoreSession session(ctx);
    ctx.exit_code = status(session.store(), session.clock(), json, *ctx.out);
  });
}

}  // namespace leoflow::host
