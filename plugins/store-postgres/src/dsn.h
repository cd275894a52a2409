// Connection strings: libpq takes a URI (postgresql://user:secret@host:port/db?k=v) or key=value
// pairs (host=... password=...). The plugin adds its own parameters to either form, and never shows
// a password: every DSN in a log line or an error goes through redactDsn first.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace leoflow::plugins::store_postgres {

/// True for the URI form (postgresql:// or postgres://).
bool isUriDsn(const std::string& dsn);

/// The DSN with each parameter added unless the DSN already sets it (the operator's value wins).
/// Values must be plain (letters, digits, `-`, `_`, `.`).
std::string withDefaultParams(const std::string& dsn, const std::vector<std::pair<std::string, std::string>>& params);

/// The DSN with its password replaced by "***" (the URI's user:password@ and any password=...).
std::string redactDsn(const std::string& dsn);

/// `text` with every occurrence of the DSN's password replaced by "***" (for messages that may quote
/// the connection string back, as libpq does for a malformed one).
std::string scrubPassword(const std::string& text, const std::string& dsn);

}  // namespace leoflow::plugins::store_postgres
