// The `url` config key: redis://[[user]:password@]host[:port][/db], or for a server on this host
// unix://[[user]:password@]/path/to/redis.sock[?db=N] (its unix socket: no TCP stack on the way).
#pragma once

#include <string>

namespace leoflow::plugins::store_redis {

/// Where a Redis server is and how to log in to it.
struct Endpoint {
  std::string host;
  int port = 6379;
  std::string socket_path;  ///< unix://: the server's unix socket (host and port unused)
  int db = 0;
  std::string username;  ///< empty = the default user (AUTH password)
  std::string password;  ///< empty = no AUTH
  /// The URL with the password replaced by "***": safe for messages and logs.
  std::string redacted;
};

/// Parses a redis:// or unix:// URL. Throws std::invalid_argument naming `where` (e.g. `key "url" in
/// [store.config]`) and saying what is expected.
Endpoint parseRedisUrl(const std::string& url, const std::string& where);

}  // namespace leoflow::plugins::store_redis
