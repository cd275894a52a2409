// The change-feed payloads the SQL functions send with pg_notify (migrations/002_functions.sql):
// "t:<dag>:<run>:<task>", "r:<dag>:<run>", "d:<dag>", each id percent-encoded ('%' → %25, ':' → %3A)
// so ':' separates them. A task moved by apply_transitions adds the term that wrote it,
// "t:<dag>:<run>:<task>:<term>" (store.h Change::leader_term; migrations/006_transition_writer.sql); an
// executor's claim or finished report names its execution, "x:<dag>:<run>:<task>:<execution>"
// (Change::execution_id; migrations/010_report_writer.sql).
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include <leoflow/store.h>

namespace leoflow::plugins::store_postgres {

/// nullopt for a malformed %XX sequence.
std::optional<std::string> decodeId(std::string_view encoded);

/// Parses one payload; nullopt for anything else.
std::optional<Change> parseChangeMessage(std::string_view message);

}  // namespace leoflow::plugins::store_postgres
