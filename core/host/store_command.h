// `leoflow store migrate` and `leoflow store clean`: the store's own upkeep (Store::migrate and
// Store::deleteFinishedRuns, SDK 1.1).
#pragma once

#include <iosfwd>
#include <string>

#include <leoflow/context.h>
#include <leoflow/store.h>

namespace CLI {
class App;
}

namespace leoflow::host {

struct CommandContext;

/// Applies what is missing; prints each migration applied, "up to date", or that the store keeps
/// none. Exit 0.
int storeMigrate(Store& store, const std::string& plugin, std::ostream& out);

/// Deletes finished runs that ended more than `older_than_days` ago, with their instances and history.
/// A negative or non-finite age is bad input (exit 2); a store that cannot clean says so (exit 2).
int storeClean(Store& store, const std::string& plugin, const Clock& clock, double older_than_days,
               std::ostream& out);

void addStoreCommand(CLI::App& app, CommandContext& ctx);

}  // namespace leoflow::host
