// The routes of the scheduler's HTTP server (ARCHITECTURE §8.15), without the sockets: /healthz,
// /status, the JSON API under /api/v1 and the web page (GET /, its files under /web/, built into the
// binary from core/host/web/). HttpServer (host/http_server.h) feeds it requests taken
// off the wire; tests may drive it either way.
//
// Reads come from the Store, actions are the person's commands of host/operations.h (the same
// implementation the CLI uses), in the name of the actor "api". Every error is `{"error": "..."}`:
// 400 malformed, 401 no or wrong token, 403 a write without a configured token, 404 unknown,
// 405 a known path with another method, 409 the state forbids it, 503 the store is unreachable.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <leoflow/context.h>
#include <leoflow/store.h>

#include "engine/engine.h"
#include "host/operations.h"

namespace leoflow::host {

/// The actor named in notes for writes made through the API.
inline constexpr const char* kApiActor = "api";

struct HttpRequest {
  std::string method;         ///< "GET", "POST", ...
  std::string target;         ///< the request target as sent: path (percent-encoded) and query
  std::string authorization;  ///< the Authorization header; empty when absent
  std::string body;
  std::string if_none_match;  ///< the If-None-Match header (the page's files answer 304); empty when absent
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  ///< besides Content-Type
};

struct HttpApiDeps {
  Store* store = nullptr;
  const Clock* clock = nullptr;
  /// This replica's health (engine::Engine::health()); unset: always healthy.
  std::function<engine::Health()> health;
  /// Whether this replica leads (engine::Engine::leading()); unset: a follower.
  std::function<bool()> leading;
  /// Reads attempts' logs (Backends::readLog); unset: log requests answer 503.
  LogReadFn read_log;
  /// The bearer token /api/v1 requires; empty: none, and writes are refused (403).
  std::string token;
  /// Shown as "http" in GET /status (the address the server is bound to); empty: left out.
  std::string listen;
};

class HttpApi {
 public:
  explicit HttpApi(HttpApiDeps deps);

  /// Answers one request. Never throws.
  HttpResponse handle(const HttpRequest& request) const;

  /// Sets the address shown by GET /status (once the server knows its port). Not thread-safe:
  /// call before serving.
  void setListen(std::string listen) { deps_.listen = std::move(listen); }

 private:
  HttpResponse healthz() const;
  HttpResponse status() const;
  HttpResponse page(const HttpRequest& request, const std::string& path) const;
  HttpResponse api(const HttpRequest& request, const std::vector<std::string>& segments,
                   const std::multimap<std::string, std::string>& query) const;

  HttpApiDeps deps_;
};

/// Percent-decodes one path segment or query component (`plus_is_space` for queries); nullopt
/// for a malformed escape.
std::optional<std::string> percentDecode(std::string_view text, bool plus_is_space);

/// Percent-encodes a path segment: everything but unreserved characters (RFC 3986).
std::string percentEncode(std::string_view text);

/// Compares two strings in time that depends only on their lengths, not on where they differ.
bool constantTimeEquals(std::string_view a, std::string_view b);

}  // namespace leoflow::host
