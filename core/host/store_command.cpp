#include "host/store_command.h"

#include <cmath>
#include <ostream>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "host/command_context.h"
#include "host/exit_codes.h"
#include "host/store_session.h"
#include "schedule/iso_time.h"

namespace leoflow::host {

int storeMigrate(Store& store, const std::string& plugin, std::ostream& out) {
  auto applied = store.migrate();
  if (!applied) failWith(applied.status(), "migrating the store");
  if (!applied->has_value()) {
    out << fmt::format("{} keeps no schema migrations: nothing to do\n", plugin);
    return kExitOk;
  }
  if ((*applied)->empty()) {
    out << "up to date\n";
    return kExitOk;
  }
  for (const std::string& m : **applied) out << "applied " << m << '\n';
  return kExitOk;
}

int storeClean(Store& store, const std::string& plugin, const Clock& clock, double older_than_days,
               std::ostream& out) {
  if (!std::isfinite(older_than_days) || older_than_days < 0 || older_than_days > 365.0 * 1000) {
    throw badInput(fmt::format("--older-than: expected a number of days from 0 to 365000, got {}", older_than_days));
  }
  const auto age = std::chrono::duration_cast<std::chrono::microseconds>(
      std::chrono::duration<double, std::ratio<86400>>(older_than_days));
  const Timestamp before = clock.now() - age;
  auto deleted = store.deleteFinishedRuns(before);
  if (!deleted) failWith(deleted.status(), "deleting finished runs");
  if (!deleted->has_value()) throw badInput(plugin + " cannot delete finished runs");
  out << fmt::format("deleted {} finished run{} that ended before {}\n", **deleted, **deleted == 1 ? "" : "s",
                     schedule::formatIsoSeconds(before));
  return kExitOk;
}

void addStoreCommand(CLI::App& app, CommandContext& ctx) {
  CLI::App* store = app.add_subcommand("store", "The store's upkeep: migrate its schema, clean old runs");
  store->require_subcommand(1);

  CLI::App* migrate = store->add_subcommand(
      "migrate", "Apply the store's schema migrations that are missing (the scheduler also does at start)");
  migrate->callback([&ctx] {
    StoreSession session(ctx);
    ctx.exit_code = storeMigrate(session.store(), session.config().store.plugin, *ctx.out);
  });

  static double days = -1;
  CLI::App* clean = store->add_subcommand(
      "clean", "Delete finished runs (and their task instances and history) that ended long enough ago");
  clean->add_option("--older-than", days, "Age in days (fractions allowed) past which a finished run goes")
      ->required();
  clean->callback([&ctx] {
    StoreSession session(ctx);
    ctx.exit_code = storeClean(session.store(), session.config().store.plugin, session.clock(), days, *ctx.out);
  });
}

}  // namespace leoflow::host
