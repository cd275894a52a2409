// The API server's HTTPS client (libcurl): TLS always verified, a bearer token (fixed, a file
// re-read every minute, or an exec credential plugin) or a client certificate, a client-side rate
// limit (qps, burst), and retries with back-off on 429, 5xx and transport errors.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
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
  KubeClient(Connection connection, double qps, int burst, int timeout_s, std::shared_ptr<spdlog::logger> logger);
  ~KubeClient();
  KubeClient(const KubeClient&) = delete;
  KubeClient& operator=(const KubeClient&) = delete;

  /// One request, retried (up to `max_tries` in all) with back-off on 429, 5xx and transport
  /// errors; any other status is returned as is. Errors: kUnavailable (unreachable, still 429/5xx
  /// after the tries), kInvalidArgument (TLS: the server's certificate was refused, or bad client
  /// credentials files), always naming the server.
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
  std::chrono::steady_clock::time_point token_read_{};

  std::mutex bucket_mutex_;
  double tokens_;
  std::chrono::steady_clock::time_point refilled_;
};

/// "/api/v1/namespaces/<ns>/pods[/<name>]".
std::string podsPath(const std::string& ns, const std::string& name = {});
/// Percent-encodes a query value.
std::string urlEncode(std::string_view value);

}  // namespace leoflow::plugins::dispatcher_k8s
