// How PostgreSQL's failures become the SDK's Status codes and start-up errors.
#pragma once

#include <exception>
#include <string>

#include <leoflow/status.h>

namespace leoflow::plugins::store_postgres {

/// The first line of a server message without its "ERROR:  " prefix and CONTEXT lines.
std::string primaryMessage(const std::string& what);

/// A failed statement as a Status. The functions' own SQLSTATEs (migrations/002_functions.sql) name
/// the code: LF001 fenced, LF002 not found, LF003 conflict, LF004 already exists, LF005 invalid.
/// A lost or shutting-down server, a statement timeout, a deadlock or serialization failure is
/// kUnavailable (retrying later helps); anything else is kInternal.
Status statusFromSqlState(const std::string& sqlstate, const std::string& message);

/// True when a failed connection attempt was refused for who we are (SQLSTATE class 28: a wrong
/// password, no pg_hba.conf entry, an unknown role) or where we asked to go (an unknown database):
/// configuration errors, which retrying never mends.
bool isConfigurationRefusal(const std::string& connect_error);

/// Throws the start-up error create() reports for a failed connection: std::runtime_error for a
/// configuration refusal (exit 2), UnavailableError for an unreachable server (exit 3). The message
/// names the redacted DSN and the config key, never the password.
[[noreturn]] void throwConnectFailure(const std::string& error, const std::string& dsn, const std::string& redacted,
                                      const std::string& where);

}  // namespace leoflow::plugins::store_postgres
