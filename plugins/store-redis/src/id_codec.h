// How ids appear inside keys and change-feed messages (README.md "Key layout").
//
// Ids may contain ':' (the key separator) and anything else, so every id is percent-encoded in a
// key: '%', ':' and control characters become %XX. The encoded form never contains ':', which makes
// "<dag>:<run>:<task>" splittable. lua/common.lua implements the same encoding (enc/dec).
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include <leoflow/store.h>

namespace leoflow::plugins::store_redis {

std::string encodeId(std::string_view id);
/// nullopt for a malformed %XX sequence.
std::optional<std::string> decodeId(std::string_view encoded);

/// Parses a run's reference inside keys and indexes, "<enc(dag)>:<enc(run)>" (lua/common.lua
/// runRef); nullopt for anything else.
std::optional<RunKey> parseRunRef(std::string_view ref);

/// The change-feed channel: "<prefix>:<db>:changes". Pub/sub spans databases in Redis, so the db
/// number keeps two stores on one server apart.
std::string changeChannel(const std::string& key_prefix, int db);

/// The channel of run changes only (Store::subscribeRuns): "<prefix>:<db>:changes:runs", where every
/// script publishes a run's change a second time (lua/common.lua publishRunMessage). It ends in
/// ":runs", so it is never another installation's change channel.
std::string runChangeChannel(const std::string& key_prefix, int db);

/// Parses "t:<dag>:<run>:<task>", "t:<dag>:<run>:<task>:<term>" (a transition, with the term that
/// wrote it: Change::leader_term), "x:<dag>:<run>:<task>:<execution>" (an executor's report, with
/// the execution that made it: Change::execution_id), "r:<dag>:<run>" or "d:<dag>"; nullopt for
/// anything else.
std::optional<Change> parseChangeMessage(std::string_view message);

}  // namespace leoflow::plugins::store_redis
