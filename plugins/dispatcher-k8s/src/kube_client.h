// The API server's HTTPS client (libcurl): TLS always verified, a bearer token (fixed, a file
// re-read every minute, or an exec credential plugin's, reused until shortly before its
// status.expirationTimestamp) or a client certificate, a client-side rate limit (qps, burst), and
// retries with back-off on 429, 5xx and transport errors.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include <spdlog/logger.h>

#include <leoflow/status.h>

#include "kubeconfig.h"

namespace leoflow::plugins::dispatcher_k8s {

struct HttpResult {
  long status = 0;
  std::string body;
  /// The message of a Kubernetes Status body, else the body's start.
  std::string message() const;
};

class KubeClient {
 public:
  using WallClock = std::function<std::chrono::system_clock::time_point()>;
  /// How long a token from a tokenFile, or from an exec plugin that names no expiry, is reused.
  static constexpr std::chrono::seconds kTokenReuse{60};
  /// An exec plugin's token is fetched again this long before its expirationTimestamp (at most
  /// half its remaining lifetime).
  static constexpr std::chrono::seconds kExpiryMargin{30};

  /// `now` (tests): the wall clock the token's reuse and expiry are measured with.
  KubeClient(Connection connection, double qps, int burst, int timeout_s, std::shared_ptr<spdlog::logger> logger,
             WallClock now = {});
  ~KubeClient();
  KubeClient(const KubeClient&) = delete;
  KubeClient& operator=(const KubeClient&) = delete;

  /// One request, retried (up to `max_tries` in all) with back-off on 429, 5xx and transport
  /// errors; any other status is returned as is; a 401 with a token from a file or an exec plugin
  /// fetches the token again once. Errors: kUnavailable (unreachable, still 429/5xx after the
  /// tries), kInvalidArgument (TLS: the server's certificate was refused; the client certificate
  /// or key could not be used; the server refused the handshake for the client certificate — none
  /// sent, or one it does not trust), always naming the server.
  Result<HttpResult> call(const std::string& method, const std::string& path, const std::string& body = {},
                          int max_tries = 6);
  /// A streaming GET (a watch): `on_line` gets every line of the body as it arrives and returns
  /// false to stop; `stopped` is polled to abort. Returns the HTTP status once the stream ends.
  Result<long> stream(const std::string& path, const std::function<bool(std::string_view)>& on_line,
                      const std::function<bool()>& stopped, int timeout_s);

  const Connection& connection() const { return connection_; }
  /// Refuses further requests and aborts streams (shutdown).
  void cancel() { cancelled_ = true; }

 private:
  struct Once;
  Result<HttpResult> once(const std::string& method, const std::string& path, const std::string& body,
                          const std::function<bool(std::string_view)>* on_line, const std::function<bool()>* stopped,
                          int timeout_s);
  std::string bearer(bool refresh);
  void throttle();

  const Connection connection_;
  const double qps_;
  const int burst_;
  const int timeout_s_;
  std::shared_ptr<spdlog::logger> logger_;
  std::atomic<bool> cancelled_{false};

  std::mutex token_mutex_;
  std::string token_;
  std::chrono::system_clock::time_point token_until_{};  ///< reused before this
  WallClock now_;

  std::mutex bucket_mutex_;
  double tokens_;
  std::chrono::steady_clock::time_point refilled_;
};

/// "/api/v1/namespaces/<ns>/pods[/<name>]".
std::string podsPath(const std::string& ns, const std::string& name = {});
/// Percent-encodes a query value.
std::string urlEncode(std::string_view value);

/// RFC 3339 (`2026-01-02T03:04:05Z`, fractional seconds and `+hh:mm`/`-hh:mm` offsets allowed) as
/// a UTC time point; nullopt when it does not parse.
std::optional<std::chrono::system_clock::time_point> parseRfc3339(const std::string& text);

/// Why a 401 may have come, from the credentials `c` sends: none at all, a client certificate the
/// server does not trust, a token.
std::string unauthorizedCause(const Connection& c);

}  // namespace leoflow::plugins::dispatcher_k8s
