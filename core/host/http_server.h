// The HTTP server of `leoflow scheduler` (ARCHITECTURE §8.15): /healthz, /status and /api/v1 on
// the [http] listen address, served by its own threads, off the scheduling loop.
//
// Bounded: request bodies up to 1 MiB (413 beyond), a fixed number of worker threads and a bounded
// queue of accepted connections (past it, new connections wait in the kernel's backlog), and read,
// write and keep-alive timeouts so a slow client cannot hold a worker for long.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>

#include <spdlog/logger.h>

#include "host/config.h"
#include "host/http_api.h"

namespace leoflow::host {

struct HttpServerLimits {
  std::size_t max_body_bytes = 1 << 20;  ///< 1 MiB; larger bodies get 413
  std::size_t worker_threads = 8;        ///< connections served at once
  std::size_t queued_connections = 64;   ///< accepted connections waiting for a worker
  std::chrono::seconds read_timeout{5};
  std::chrono::seconds write_timeout{5};
  std::chrono::seconds keep_alive_timeout{2};
  std::size_t keep_alive_max_requests = 100;
};

/// Refuses a listen address that is not loopback when no token is configured: throws
/// CommandError (exit 2) naming the config file, line and the two ways out.
void checkHttpSettings(const HttpSettings& settings);

class HttpServer {
 public:
  /// `deps.token` is taken from `settings.token`.
  HttpServer(HttpSettings settings, HttpApiDeps deps, std::shared_ptr<spdlog::logger> log,
             HttpServerLimits limits = {});
  ~HttpServer();  ///< stops
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  /// Checks the settings (checkHttpSettings), binds and starts serving on its own threads; returns
  /// once requests are accepted. Throws CommandError (exit 2) when the address cannot be bound.
  void start();
  /// Closes the listening socket and returns at once; idle keep-alive connections end within the
  /// keep-alive timeout. Thread-safe; for the shutdown signal, so stop() later has little to wait for.
  void stopAccepting();
  /// Stops accepting, lets the requests in hand finish, joins the threads. Idempotent.
  void stop();

  /// The bound port (the free one picked for port 0); 0 before start().
  int port() const noexcept { return port_; }
  /// "host:port" as bound ("[::1]:port" for IPv6).
  std::string address() const;

 private:
  struct Impl;
  HttpSettings settings_;
  HttpServerLimits limits_;
  std::shared_ptr<spdlog::logger> log_;
  std::unique_ptr<Impl> impl_;
  int port_ = 0;
};

}  // namespace leoflow::host
