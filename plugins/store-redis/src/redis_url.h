// The `url` config key: redis://[[user]:password@]host[:port][/db].
#pragma once

#include <string>

namespace leoflow::plugins::store_redis {

/// Where a Redis server is and how to log in to it.
struct Endpoint {
  std::string host;
  int port = 6379;
  int db = 0;
  std::string username;  ///< empty = the default user (AUTH password)
  std::string password;  ///< empty = no AUTH
  /// The URL with the password replaced by "***": safe for messages and logs.
  std::string redacted;
};

/// Parses a redis:// URL. Throws std::invalid_argument naming `where` (e.g. `key "url" in
/// [store.config]`) and saying what is expected.
Endpoint parseRedisUrl(const std::string& url, const std::string& where);

}  // namespace leoflow::plugins::store_redis
