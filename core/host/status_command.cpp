#include "host/status_command.h"

#include <optional>
#include <ostream>
#include <string>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "host/command_context.h"
#include "host/exit_codes.h"
#include "host/store_session.h"
#include "schedule/iso_time.h"

namespace leoflow::host {

namespace {

std::optional<LivenessRecord> readLivenessOrThrow(Store& store) {
  auto liveness = store.readLiveness();
  if (!liveness) failWith(liveness.status(), "reading the leader's record");
  return *liveness;
}

std::optional<double> tickAge(const std::optional<LivenessRecord>& r, const Clock& clock) {
  if (r && r->last_tick) return std::chrono::duration<double>(clock.now() - *r->last_tick).count();
  return std::nullopt;
}

nlohmann::ordered_json toJson(const std::optional<LivenessRecord>& r, const Clock& clock,
                              const std::optional<std::string>& http_listen) {
  using ojson = nlohmann::ordered_json;
  const std::optional<double> age = tickAge(r, clock);
  ojson doc = ojson::object();
  ojson leader = ojson::object();
  leader["holder"] = r ? ojson(r->holder) : ojson(nullptr);
  leader["term"] = r ? ojson(r->term) : ojson(nullptr);
  doc["leader"] = std::move(leader);
  doc["last_tick"] = r && r->last_tick ? ojson(schedule::formatIsoSeconds(*r->last_tick)) : ojson(nullptr);
  doc["last_tick_age_seconds"] = age ? ojson(*age) : ojson(nullptr);
  doc["queue_depth"] = r ? ojson(r->queue_depth) : ojson(nullptr);
  doc["active_runs"] = r ? ojson(r->active_runs) : ojson(nullptr);
  if (http_listen) doc["http"] = *http_listen;
  return doc;
}

}  // namespace

nlohmann::ordered_json statusJson(Store& store, const Clock& clock, const std::optional<std::string>& http_listen) {
  return toJson(readLivenessOrThrow(store), clock, http_listen);
}

int status(Store& store, const Clock& clock, bool json, std::ostream& out,
           const std::optional<std::string>& http_listen) {
  const std::optional<LivenessRecord> r = readLivenessOrThrow(store);
  if (json) {
    out << toJson(r, clock, http_listen).dump(2) << '\n';
    return kExitOk;
  }
  std::string http_line;
  if (http_listen) {
    const bool any_port = http_listen->ends_with(":0");
    http_line = fmt::format("http:        {}{}\n", *http_listen,
                            any_port ? " (a free port: the scheduler's log names it)" : "");
  }
  if (!r) {
    out << "no scheduler has led yet (start one: leoflow scheduler)\n" << http_line;
    return kExitOk;
  }
  const std::optional<double> age = tickAge(r, clock);
  out << fmt::format("leader:      {} (term {})\n", r->holder, r->term);
  out << fmt::format("last tick:   {}{}\n", r->last_tick ? schedule::formatIsoSeconds(*r->last_tick) : "never",
                     age ? fmt::format(" ({:.1f} s ago)", *age) : "");
  out << fmt::format("queue depth: {}\n", r->queue_depth);
  out << fmt::format("active runs: {}\n", r->active_runs);
  out << http_line;
  return kExitOk;
}

void addStatusCommand(CLI::App& app, CommandContext& ctx) {
  static bool json = false;
  CLI::App* cmd = app.add_subcommand("status", "Show the leader, its term, its last tick and queue depth");
  cmd->add_flag("--json", json, "Print JSON");
  cmd->callback([&ctx] {
    StoreSession session(ctx);
    // This replica's HTTP server, as its config names it (ARCHITECTURE §8.15).
    const auto& http = session.config().http;
    ctx.exit_code = status(session.store(), session.clock(), json, *ctx.out,
                           http ? std::optional<std::string>(http->listen) : std::nullopt);
  });
}

}  // namespace leoflow::host
