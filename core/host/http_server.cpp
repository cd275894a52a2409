#include "host/http_server.h"

#include <pthread.h>

#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include <httplib.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "host/exit_codes.h"
#include "text/quoted.h"

namespace leoflow::host {
namespace {

// httplib's own pool queues accepted connections without bound. This one runs a fixed number of
// workers and holds at most `max_queued` connections; past that, enqueue() — called on the
// accepting thread — waits, so further connections stay in the kernel's listen backlog.
class BoundedPool final : public httplib::TaskQueue {
 public:
  BoundedPool(std::size_t threads, std::size_t max_queued) : max_queued_(std::max<std::size_t>(1, max_queued)) {
    for (std::size_t i = 0; i < std::max<std::size_t>(1, threads); ++i) {
      workers_.emplace_back([this] {
        ::pthread_setname_np(::pthread_self(), "lf-http");
        work();
      });
    }
  }
  ~BoundedPool() override { shutdown(); }

  void enqueue(std::function<void()> fn) override {
    std::unique_lock lock(mutex_);
    not_full_.wait(lock, [this] { return jobs_.size() < max_queued_ || shutdown_; });
    jobs_.push_back(std::move(fn));
    not_empty_.notify_one();
  }

  /// Lets the workers finish every connection already accepted, then joins them.
  void shutdown() override {
    {
      std::lock_guard lock(mutex_);
      if (shutdown_) return;
      shutdown_ = true;
    }
    not_empty_.notify_all();
    not_full_.notify_all();
    for (std::thread& t : workers_) t.join();
  }

 private:
  void work() {
    while (true) {
      std::function<void()> job;
      {
        std::unique_lock lock(mutex_);
        not_empty_.wait(lock, [this] { return !jobs_.empty() || shutdown_; });
        if (jobs_.empty()) return;  // shut down and drained
        job = std::move(jobs_.front());
        jobs_.pop_front();
      }
      not_full_.notify_one();
      job();  // process_and_close_socket: closes the connection whatever happens
    }
  }

  const std::size_t max_queued_;
  std::mutex mutex_;
  std::condition_variable not_empty_, not_full_;
  std::deque<std::function<void()>> jobs_;
  std::vector<std::thread> workers_;
  bool shutdown_ = false;
};

std::string hostPort(const std::string& host, int port) {
  return (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

std::string where(const HttpSettings& s) {
  if (s.file.empty()) return "[http]";
  return s.file + (s.line > 0 ? ":" + std::to_string(s.line) : std::string()) + ": [http]";
}

}  // namespace

struct HttpServer::Impl {
  explicit Impl(HttpApiDeps deps) : api(std::move(deps)) {}
  HttpApi api;
  httplib::Server server;
  std::thread thread;
  bool started = false;
  std::atomic<bool> finished{false};
};

namespace {

// httplib answers an Accept-Encoding that names br with Brotli at its highest quality: ~1 MB/s of the
// scheduler's CPU (a 20,000-task run's 3.5 MB took 5.6 s, for every refresh of a browser's page on
// it). gzip, which it uses otherwise, took 10 ms for 62 KB against Brotli's 21 KB. So br is taken off
// the list before httplib reads it (browsers name gzip too).
void withoutBrotli(httplib::Request& req) {
  auto it = req.headers.find("Accept-Encoding");
  if (it == req.headers.end() || it->second.find("br") == std::string::npos) return;
  std::string kept;
  std::string_view rest = it->second;
  while (!rest.empty()) {
    const std::size_t comma = rest.find(',');
    std::string_view token = rest.substr(0, comma);
    rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
    const std::size_t start = token.find_first_not_of(' ');
    if (start == std::string_view::npos) continue;
    token.remove_prefix(start);
    const std::string_view coding = token.substr(0, token.find_first_of(" ;"));
    if (coding == "br") continue;
    if (!kept.empty()) kept += ", ";
    kept += token;
  }
  it->second = kept;
}

// Sets up the listening socket (its accepted connections inherit it): SO_REUSEADDR only, not
// httplib's default SO_REUSEPORT, which would let a second replica on the same host bind the same
// port and silently share the connections; and TCP_NODELAY. Without it each answer after the first
// on a kept-alive connection (headers and body are two writes) waited ~40 ms for the client's
// delayed ACK — a page refresh of 200 DAGs' runs took seconds.
void configureListeningSocket(int fd) {
  int yes = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &yes, sizeof(yes));
}

}  // namespace

void checkHttpSettings(const HttpSettings& s) {
  if (s.token.empty() && !isLoopbackHost(s.host)) {
    throw CommandError(kExitBadInput,
                       where(s) + " listen = " + text::quoted(s.listen) +
                           " is not a loopback address and no token is configured: anyone who can reach it "
                           "could read the API. Set token (token = \"${LEOFLOW_API_TOKEN}\") or listen on "
                           "127.0.0.1");
  }
}

HttpServer::HttpServer(HttpSettings settings, HttpApiDeps deps, std::shared_ptr<spdlog::logger> log,
                       HttpServerLimits limits)
    : settings_(std::move(settings)), limits_(limits), log_(std::move(log)) {
  deps.token = settings_.token;
  impl_ = std::make_unique<Impl>(std::move(deps));
}

HttpServer::~HttpServer() { stop(); }

std::string HttpServer::address() const { return hostPort(settings_.host, port_); }

void HttpServer::start() {
  checkHttpSettings(settings_);
  if (impl_->started) return;
  httplib::Server& server = impl_->server;

  const std::size_t threads = limits_.worker_threads, queued = limits_.queued_connections;
  server.new_task_queue = [threads, queued] { return new BoundedPool(threads, queued); };
  server.set_socket_options([](socket_t sock) { configureListeningSocket(sock); });
  server.set_payload_max_length(limits_.max_body_bytes);
  server.set_read_timeout(limits_.read_timeout);
  server.set_write_timeout(limits_.write_timeout);
  server.set_keep_alive_timeout(static_cast<time_t>(limits_.keep_alive_timeout.count()));
  server.set_keep_alive_max_count(limits_.keep_alive_max_requests);

  const HttpApi& api = impl_->api;
  const auto handler = [&api](const httplib::Request& req, httplib::Response& res) {
    HttpRequest request{req.method, req.target, req.get_header_value("Authorization"), req.body,
                        req.get_header_value("If-None-Match")};
    HttpResponse answer = api.handle(request);
    res.status = answer.status;
    for (auto& [name, value] : answer.headers) res.set_header(name, value);
    res.set_content(std::move(answer.body), answer.content_type.c_str());
  };
  // Every path goes to HttpApi, which does its own routing on the raw target (percent-decoding
  // each segment); httplib reads the body (bounded) first.
  server.Get(".*", handler);
  server.Post(".*", handler);
  server.Patch(".*", handler);
  server.Put(".*", handler);
  server.Delete(".*", handler);
  server.Options(".*", handler);

  // A request with neither Content-Length nor Transfer-Encoding has no body (RFC 9112 §6.3), but
  // httplib 0.11 refuses such a POST as malformed (`curl -X POST .../cancel`): answer it here,
  // before httplib tries to read a body, with an empty one.
  server.set_pre_routing_handler([handler](const httplib::Request& req, httplib::Response& res) {
    // httplib's own Request object, not a const one: only this header is changed.
    withoutBrotli(const_cast<httplib::Request&>(req));  // NOLINT(cppcoreguidelines-pro-type-const-cast)
    const bool takes_body = req.method == "POST" || req.method == "PUT" || req.method == "PATCH" ||
                            req.method == "DELETE";
    if (!takes_body || req.has_header("Content-Length") || req.has_header("Transfer-Encoding")) {
      return httplib::Server::HandlerResponse::Unhandled;
    }
    handler(req, res);
    return httplib::Server::HandlerResponse::Handled;
  });
  // What httplib answers itself (413 too large, 400 unparsable, ...) gets the API's JSON shape.
  server.set_error_handler([](const httplib::Request&, httplib::Response& res) {
    if (!res.body.empty()) return;
    std::string message;
    switch (res.status) {
      case 400: message = "malformed request"; break;
      case 404: message = "not found"; break;
      case 413: message = "request body too large (at most 1 MiB)"; break;
      case 414: message = "request target too long"; break;
      case 416: message = "range not satisfiable"; break;
      default: message = "HTTP error " + std::to_string(res.status); break;
    }
    nlohmann::ordered_json doc = nlohmann::ordered_json::object();
    doc["error"] = message;
    res.set_content(doc.dump(2) + "\n", "application/json");
  });
  server.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
    std::string message = "internal error";
    try {
      if (ep) std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      message += std::string(": ") + e.what();
    } catch (...) {
    }
    nlohmann::ordered_json doc = nlohmann::ordered_json::object();
    doc["error"] = message;
    res.status = 500;
    res.set_content(doc.dump(2) + "\n", "application/json");
  });
  if (log_) {
    auto log = log_;
    server.set_logger([log](const httplib::Request& req, const httplib::Response& res) {
      log->debug("request method={} target={} status={} remote={}", req.method, req.target, res.status,
                 req.remote_addr);
    });
  }

  if (settings_.port == 0) {
    port_ = server.bind_to_any_port(settings_.host);
  } else {
    port_ = server.bind_to_port(settings_.host, settings_.port) ? settings_.port : -1;
  }
  if (port_ <= 0) {
    const int err = errno;
    port_ = 0;
    throw CommandError(kExitBadInput, where(settings_) + " cannot listen on " + text::quoted(settings_.listen) + ": " +
                                          (err != 0 ? std::string(std::strerror(err)) : "bind failed"));
  }
  impl_->api.setListen(address());
  impl_->thread = std::thread([this] {
    ::pthread_setname_np(::pthread_self(), "lf-http-accept");
    if (!impl_->server.listen_after_bind() && log_) log_->error("stopped accepting connections address={}", address());
    impl_->finished = true;
  });
  impl_->started = true;
  // stop() only works once the accepting loop runs; wait for it.
  while (!server.is_running() && !impl_->finished) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  if (log_) {
    log_->info("serving address={} token={} api=/api/v1 page=/", address(),
               settings_.token.empty() ? "none (writes refused)" : "required");
  }
}

void HttpServer::stopAccepting() {
  if (impl_ && impl_->started) impl_->server.stop();
}

void HttpServer::stop() {
  if (!impl_ || !impl_->started) return;
  impl_->server.stop();
  if (impl_->thread.joinable()) impl_->thread.join();
  impl_->started = false;
  if (log_) log_->info("stopped address={}", address());
}

}  // namespace leoflow::host
