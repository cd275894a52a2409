// `leoflow status`: who leads, with which term, when it last ticked (ARCHITECTURE §5, §8.6, §8.7).
#pragma once

#include <iosfwd>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include <leoflow/context.h>
#include <leoflow/store.h>

namespace CLI {
class App;
}

namespace leoflow::host {

struct CommandContext;

/// The `status --json` object: {leader: {holder, term}, last_tick, last_tick_age_seconds, queue_depth,
/// active_runs}, plus "http": the listen address when given (the replica's [http] section). Throws
/// CommandError when the store cannot be read. Shared with the HTTP server's `GET /status`.
nlohmann::ordered_json statusJson(Store& store, const Clock& clock,
                                  const std::optional<std::string>& http_listen = std::nullopt);

/// `leoflow status [--json]`; `http_listen` is this replica's [http] listen address, when configured.
int status(Store& store, const Clock& clock, bool json, std::ostream& out,
           const std::optional<std::string>& http_listen = std::nullopt);

void addStatusCommand(CLI::App& app, CommandContext& ctx);

}  // namespace leoflow::host
