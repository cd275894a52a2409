#include "redis_url.h"

#include <charconv>
#include <stdexcept>
#include <string_view>
#include <utility>

namespace leoflow::plugins::store_redis {
namespace {

constexpr std::string_view kScheme = "redis://";
constexpr std::string_view kUnixScheme = "unix://";
constexpr std::string_view kExpected =
    "expected redis://[:password@]host:port/db or unix://[:password@]/path/to/redis.sock?db=N";

[[noreturn]] void fail(const std::string& url_for_message, const std::string& where,
                       const std::string& why) {
  throw std::invalid_argument(where + ": bad redis url \"" + url_for_message + "\": " + why + " (" +
                              std::string(kExpected) + ")");
}

int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Credentials may carry reserved characters percent-encoded, as in any URL.
bool percentDecode(std::string_view in, std::string& out) {
  out.clear();
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      out.push_back(in[i]);
      continue;
    }
    if (i + 2 >= in.size()) return false;
    const int hi = hexValue(in[i + 1]);
    const int lo = hexValue(in[i + 2]);
    if (hi < 0 || lo < 0) return false;
    out.push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return true;
}

// For a URL that did not even parse: hide whatever precedes the last '@', where credentials live.
std::string redactLoosely(const std::string& url) {
  const auto at = url.rfind('@');
  if (at == std::string::npos) return url;
  const auto scheme = url.find("://");
  const std::size_t from = scheme == std::string::npos ? 0 : scheme + 3;
  return url.substr(0, from) + "***" + url.substr(at);
}

bool parseInt(std::string_view s, int& value) {
  if (s.empty()) return false;
  const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  return ec == std::errc() && ptr == s.data() + s.size();
}

// The database number of either form (`/N` of redis://, `?db=N` of unix://); empty leaves 0.
void readDb(std::string_view text, const std::string& where, Endpoint& ep) {
  if (!text.empty() && !parseInt(text, ep.db)) {
    fail(ep.redacted, where, "bad database number \"" + std::string(text) + "\"");
  }
  if (ep.db < 0) fail(ep.redacted, where, "the database number must not be negative");
}

// The rest of a unix:// URL: /absolute/path/to/redis.sock, then ?db=N or nothing (as redis-py
// reads it: a path has no room for /db).
Endpoint parseUnixSocket(std::string_view rest, const std::string& where, Endpoint ep) {
  std::string_view path = rest;
  std::string_view query;
  if (const auto mark = rest.find('?'); mark != std::string_view::npos) {
    path = rest.substr(0, mark);
    query = rest.substr(mark + 1);
  }
  if (path.empty() || path.front() != '/') fail(ep.redacted, where, "the socket's path must be absolute");
  if (path.find('#') != std::string_view::npos) fail(ep.redacted, where, "a fragment is not supported");
  if (!query.empty()) {
    constexpr std::string_view kDb = "db=";
    if (query.substr(0, kDb.size()) != kDb) {
      fail(ep.redacted, where, "the only query parameter is db, \"" + std::string(query) + "\" is not supported");
    }
    // "db=" alone is a bad number, not the default.
    if (query.size() == kDb.size()) fail(ep.redacted, where, "bad database number \"\"");
    readDb(query.substr(kDb.size()), where, ep);
  }
  ep.socket_path = std::string(path);
  return ep;
}

}  // namespace

Endpoint parseRedisUrl(const std::string& url, const std::string& where) {
  Endpoint ep;
  std::string_view rest(url);
  const bool unix_socket = rest.substr(0, kUnixScheme.size()) == kUnixScheme;
  if (!unix_socket && rest.substr(0, kScheme.size()) != kScheme) {
    fail(redactLoosely(url), where, rest.find("://") == std::string_view::npos
                         ? "no scheme"
                         : "the scheme must be redis:// or unix:// (rediss:// is not supported)");
  }
  const std::string_view scheme = unix_socket ? kUnixScheme : kScheme;
  rest.remove_prefix(scheme.size());

  // Credentials end at the last '@' (a password may contain '@' when not encoded); in a unix://
  // URL, at the last '@' before the path.
  std::string_view userinfo;
  const std::string_view credentials_end = unix_socket ? rest.substr(0, rest.find('/')) : rest;
  if (const auto at = credentials_end.rfind('@'); at != std::string_view::npos) {
    userinfo = rest.substr(0, at);
    rest.remove_prefix(at + 1);
  }
  // The redacted form is built before anything can fail on the credentials, so a password never
  // reaches a message or a log line.
  if (userinfo.empty()) {
    ep.redacted = std::string(scheme) + std::string(rest);
  } else {
    const auto colon = userinfo.find(':');
    std::string_view user = colon == std::string_view::npos ? std::string_view{} : userinfo.substr(0, colon);
    // redis://secret@host: a lone credential is the password, as redis-cli -u reads it.
    std::string_view pass = colon == std::string_view::npos ? userinfo : userinfo.substr(colon + 1);
    ep.redacted = std::string(scheme) + std::string(user) + ":***@" + std::string(rest);
    if (!percentDecode(user, ep.username) || !percentDecode(pass, ep.password)) {
      fail(ep.redacted, where, "bad percent-encoding in the credentials");
    }
  }
  if (unix_socket) return parseUnixSocket(rest, where, std::move(ep));

  std::string_view hostport = rest;
  std::string_view db;
  if (const auto slash = rest.find('/'); slash != std::string_view::npos) {
    hostport = rest.substr(0, slash);
    db = rest.substr(slash + 1);
  }
  if (hostport.find_first_of("?#") != std::string_view::npos || db.find_first_of("?#") != std::string_view::npos) {
    fail(ep.redacted, where, "query parameters are not supported");
  }
  std::string_view host = hostport;
  if (!hostport.empty() && hostport.front() == '[') {
    const auto close = hostport.find(']');
    if (close == std::string_view::npos) fail(ep.redacted, where, "unclosed '[' in the host");
    host = hostport.substr(1, close - 1);
    std::string_view after = hostport.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':' || !parseInt(after.substr(1), ep.port)) {
        fail(ep.redacted, where, "bad port \"" + std::string(after) + "\"");
      }
    }
  } else if (const auto colon = hostport.rfind(':'); colon != std::string_view::npos) {
    host = hostport.substr(0, colon);
    const std::string_view port = hostport.substr(colon + 1);
    if (!parseInt(port, ep.port)) fail(ep.redacted, where, "bad port \"" + std::string(port) + "\"");
  }
  if (host.empty()) fail(ep.redacted, where, "no host");
  if (hostport.front() != '[' && host.find(':') != std::string_view::npos) {
    fail(ep.redacted, where, "bad host \"" + std::string(host) + "\" (an IPv6 address goes in brackets)");
  }
  if (ep.port <= 0 || ep.port > 65535) {
    fail(ep.redacted, where, "port " + std::to_string(ep.port) + " is out of range 1-65535");
  }
  ep.host = std::string(host);
  readDb(db, where, ep);
  return ep;
}

}  // namespace leoflow::plugins::store_redis
