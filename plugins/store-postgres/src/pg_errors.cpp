#include "pg_errors.h"

#include <stdexcept>

#include "dsn.h"

namespace leoflow::plugins::store_postgres {

std::string primaryMessage(const std::string& what) {
  std::string line = what.substr(0, what.find('\n'));
  for (const char* prefix : {"ERROR:  ", "FATAL:  ", "ERROR: ", "FATAL: "}) {
    if (line.rfind(prefix, 0) == 0) return line.substr(std::string(prefix).size());
  }
  return line;
}

Status statusFromSqlState(const std::string& sqlstate, const std::string& message) {
  if (sqlstate == "LF001") return fenced(message);
  if (sqlstate == "LF002") return notFound(message);
  if (sqlstate == "LF003") return conflict(message);
  if (sqlstate == "LF004") return alreadyExists(message);
  if (sqlstate == "LF005") return invalidArgument(message);
  const std::string cls = sqlstate.substr(0, 2);
  // 08 connection exception, 57 operator intervention (shutdown, statement timeout), 53 insufficient
  // resources, 40 transaction rollback (serialization failure, deadlock): transient.
  if (cls == "08" || cls == "57" || cls == "53" || cls == "40") return unavailable("postgres: " + message);
  return internalError("postgres: " + message + (sqlstate.empty() ? "" : " (SQLSTATE " + sqlstate + ")"));
}

bool isConfigurationRefusal(const std::string& connect_error) {
  for (const char* marker : {"password authentication failed", "no pg_hba.conf entry", "authentication failed",
                             "no password supplied", "does not exist", "invalid connection option",
                             "invalid URI", "invalid sslmode", "missing \"=\""}) {
    if (connect_error.find(marker) != std::string::npos) return true;
  }
  return false;
}

void throwConnectFailure(const std::string& error, const std::string& dsn, const std::string& redacted,
                         const std::string& where) {
  std::string why = scrubPassword(error, dsn);
  while (!why.empty() && (why.back() == '\n' || why.back() == ' ')) why.pop_back();
  for (auto& c : why) {
    if (c == '\n') c = ' ';
  }
  const std::string message = "postgres at " + redacted + " (" + where + "): " + why;
  if (isConfigurationRefusal(error)) throw std::runtime_error(message);
  throw UnavailableError(message);
}

}  // namespace leoflow::plugins::store_postgres
