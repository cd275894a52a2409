// inline-http against real servers on loopback: every request goes over a socket to a cpp-httplib
// server the test runs (HTTPS with a CA the test makes with `openssl`), every report is answered
// by the in-memory reference store, as the engine's sink would.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <httplib.h>

#include <spdlog/sinks/null_sink.h>

#include "factory.h"
#include "http_runner.h"
#include "log_file.h"
#include "request.h"
#include "settings.h"
#include "support/memory_store.h"
#include "support/null_roles.h"

namespace leoflow::testing::inline_http {
namespace {

using namespace std::chrono_literals;
using leoflow::plugins::inline_http::HttpRunnerFactory;
using std::chrono::milliseconds;
using std::chrono::steady_clock;

Timestamp wallNow() {
  return std::chrono::time_point_cast<std::chrono::microseconds>(std::chrono::system_clock::now());
}

enum class Kind { kRunning, kHeartbeat, kFinished };

struct Report {
  Kind kind;
  ExecutionRef execution;
  TaskOutcome outcome;
  Status answer;
};

// Answers every report as the store would (MemoryStore), and records it.
class StoreEvents final : public TaskEvents {
 public:
  Status running(const ExecutionRef& e) override { return record(Kind::kRunning, e, {}); }
  Status heartbeat(const ExecutionRef& e) override { return record(Kind::kHeartbeat, e, {}); }
  Status finished(const ExecutionRef& e, const TaskOutcome& o) override { return record(Kind::kFinished, e, o); }

  void seed(const AttemptRef& a) { store.seedQueuedAttempt(a, wallNow()); }

  std::optional<Report> waitFinished(const AttemptRef& a, milliseconds timeout) {
    std::unique_lock lock(mutex_);
    std::optional<Report> found;
    cv_.wait_for(lock, timeout, [&] {
      for (const Report& r : reports_) {
        if (r.kind == Kind::kFinished && r.execution.attempt == a) {
          found = r;
          return true;
        }
      }
      return false;
    });
    return found;
  }
  int count(Kind kind, const AttemptRef& a) {
    std::lock_guard lock(mutex_);
    int n = 0;
    for (const Report& r : reports_) n += r.kind == kind && r.execution.attempt == a ? 1 : 0;
    return n;
  }
  std::vector<Report> reports() {
    std::lock_guard lock(mutex_);
    return reports_;
  }

  MemoryStore store;
  std::atomic<int> lose_running{0};          ///< the next N claims reach the store, their replies are lost
  std::atomic<bool> refuse_heartbeats{false};  ///< heartbeats answered kConflict (the attempt taken away)

 private:
  Status record(Kind kind, const ExecutionRef& e, const TaskOutcome& o) {
    Status s;
    if (kind == Kind::kHeartbeat && refuse_heartbeats) {
      s = conflict("taken away");
      std::lock_guard lock(mutex_);
      reports_.push_back({kind, e, o, s});
      return s;
    }
    switch (kind) {
      case Kind::kRunning: s = store.reportRunning(e, wallNow()); break;
      case Kind::kHeartbeat: s = store.reportHeartbeat(e, wallNow()); break;
      case Kind::kFinished: s = store.reportFinished(e, o, wallNow()); break;
    }
    if (kind == Kind::kRunning && lose_running > 0) {
      --lose_running;
      s = unavailable("the reply was lost");
    }
    {
      std::lock_guard lock(mutex_);
      reports_.push_back({kind, e, o, s});
    }
    cv_.notify_all();
    return s;
  }
  std::mutex mutex_;
  std::condition_variable cv_;
  std::vector<Report> reports_;
};

class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "leoflow-ih-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

std::string readFile(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// A loopback port nothing listens on: bound, read, closed.
int freePort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  int port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  ::close(fd);
  return port;
}

// What the server saw of one request.
struct Seen {
  std::string method, path, body;
  std::multimap<std::string, std::string, httplib::detail::ci> headers;
};

// A cpp-httplib server on 127.0.0.1 (plain, or TLS with a cert and key), on a thread of its own.
class TestServer {
 public:
  TestServer() : server_(std::make_unique<httplib::Server>()) { routes(); }
  TestServer(const std::string& cert, const std::string& key)
      : server_(std::make_unique<httplib::SSLServer>(cert.c_str(), key.c_str())) {
    routes();
  }
  ~TestServer() {
    release_ = true;
    server_->stop();
    if (thread_.joinable()) thread_.join();
  }
  void run() {
    port_ = server_->bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_->listen_after_bind(); });
    while (!server_->is_running()) std::this_thread::sleep_for(2ms);
  }
  std::string url(const std::string& path, bool tls = false) const {
    return std::string(tls ? "https" : "http") + "://127.0.0.1:" + std::to_string(port_) + path;
  }
  std::vector<Seen> seen() {
    std::lock_guard lock(mutex_);
    return seen_;
  }
  std::atomic<bool> release_{false};
  std::atomic<int> in_flight{0};

 private:
  void routes() {
    // /status/<code>: answers that code with a small body.
    auto handler = [this](const httplib::Request& req, httplib::Response& res) {
      {
        std::lock_guard lock(mutex_);
        Seen s{req.method, req.path, req.body, {}};
        for (const auto& [k, v] : req.headers) s.headers.emplace(k, v);
        seen_.push_back(std::move(s));
      }
      if (req.path.rfind("/status/", 0) == 0) {
        res.status = std::stoi(req.path.substr(8));
        res.set_header("Set-Cookie", "session=abc");
        res.set_content("{\"answer\":" + req.path.substr(8) + "}", "application/json");
      } else if (req.path.rfind("/sleep/", 0) == 0) {
        ++in_flight;
        const auto until = steady_clock::now() + milliseconds(std::stoi(req.path.substr(7)));
        while (steady_clock::now() < until && !release_) std::this_thread::sleep_for(10ms);
        --in_flight;
        res.set_content("slept\n", "text/plain");
      } else if (req.path.rfind("/bytes/", 0) == 0) {
        res.set_content(std::string(std::stoul(req.path.substr(7)), 'x'), "text/plain");
      } else {
        res.set_content("echo\n", "text/plain");
      }
    };
    server_->Get(".*", handler);
    server_->Post(".*", handler);
    server_->Put(".*", handler);
    server_->Delete(".*", handler);
    server_->Patch(".*", handler);
  }

  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  int port_ = 0;
  std::mutex mutex_;
  std::vector<Seen> seen_;
};

std::shared_ptr<spdlog::logger> quietLogger() {
  return stderrTestLogger("plugin.inline-http", spdlog::level::off);
}

class InlineHttp : public ::testing::Test {
 protected:
  // A runner with [inline_runner.config] `extra` over the defaults (log_dir in the test's folder).
  std::unique_ptr<InlineRunner> makeRunner(std::map<std::string, ConfigValue> extra = {}) {
    extra.emplace("log_dir", (dir_.path() / "logs").string());
    config_ = ConfigView("inline_runner.config", extra);
    return factory_.create(config_, context_);
  }
  std::unique_ptr<LogReader> makeReader() { return factory_.createLogReader(config_, context_); }

  AttemptRef attempt(const std::string& task, int try_number = 1) {
    return AttemptRef{RunKey{"dag", "run1"}, task, try_number};
  }
  DispatchRequest request(const AttemptRef& a, const std::string& url, const std::string& method = "GET") {
    DispatchRequest r;
    r.attempt = a;
    r.run_uid = 7;
    r.tenant = "acme";
    r.task.task_id = a.task_id;
    r.task.type = "http_api";
    r.task.execution_mode = ExecutionMode::kInline;
    HttpRequestSpec h;
    h.method = method;
    h.url = url;
    r.task.http_request = h;
    return r;
  }
  // The engine's part: the attempt is queued in the store, then handed over.
  Result<bool> start(InlineRunner& runner, const DispatchRequest& r) {
    events_.seed(r.attempt);
    return runner.start(r);
  }
  TaskOutcome runToEnd(InlineRunner& runner, const DispatchRequest& r, milliseconds timeout = 10s) {
    auto started = start(runner, r);
    EXPECT_TRUE(started.isOk()) << started.status().toString();
    if (!started.isOk()) return {};
    EXPECT_TRUE(*started);
    auto fin = events_.waitFinished(r.attempt, timeout);
    EXPECT_TRUE(fin.has_value()) << "no finished report for " << r.attempt.task_id;
    return fin ? fin->outcome : TaskOutcome{};
  }
  std::string logOf(const AttemptRef& a) {
    return readFile(plugins::inline_http::attemptLogPath(dir_.path() / "logs", a, 7));
  }

  TempDir dir_;
  StoreEvents events_;
  WallClock clock_;
  NullRecorder recorder_;
  PluginContext context_{"inline-http", quietLogger(), clock_, events_, recorder_, 200ms, "test-replica"};
  HttpRunnerFactory factory_;
  ConfigView config_;
};

TEST_F(InlineHttp, SuccessIsReportedAfterTheClaimAndLogged) {
  TestServer server;
  server.run();
  auto runner = makeRunner();
  const auto a = attempt("ok");
  const TaskOutcome out = runToEnd(*runner, request(a, server.url("/status/200")));
  EXPECT_TRUE(out.success) << out.message;
  const auto reports = events_.reports();
  ASSERT_GE(reports.size(), 2u);
  EXPECT_EQ(reports.front().kind, Kind::kRunning);
  EXPECT_TRUE(reports.front().answer.isOk());
  EXPECT_EQ(reports.back().kind, Kind::kFinished);
  EXPECT_TRUE(reports.back().answer.isOk()) << reports.back().answer.toString();
  EXPECT_EQ(reports.front().execution.execution_id.rfind("inline-http/", 0), 0u);
  const auto ti = events_.store.task(a.run, "ok");
  ASSERT_TRUE(ti.has_value());
  EXPECT_EQ(ti->state, TaskState::kSuccess);
  const std::string log = logOf(a);
  EXPECT_NE(log.find("leoflow: ==== attempt dag/run1/ok try 1"), std::string::npos) << log;
  EXPECT_NE(log.find("< HTTP/1.1 200 OK"), std::string::npos) << log;
  EXPECT_NE(log.find("< Set-Cookie: ***"), std::string::npos) << log;
  EXPECT_NE(log.find("{\"answer\":200}"), std::string::npos) << log;
  EXPECT_NE(log.find("leoflow: timing total"), std::string::npos) << log;
  EXPECT_NE(log.find("leoflow: outcome success"), std::string::npos) << log;
  EXPECT_EQ(runner->freeCapacity(), 32u);
  EXPECT_TRUE(runner->heldAttempts().empty());
}

TEST_F(InlineHttp, CustomSuccessCodes) {
  TestServer server;
  server.run();
  auto runner = makeRunner();
  auto teapot = request(attempt("teapot"), server.url("/status/418"));
  teapot.task.http_request->success_status_codes = {418};
  EXPECT_TRUE(runToEnd(*runner, teapot).success);
  auto strict = request(attempt("strict"), server.url("/status/200"));
  strict.task.http_request->success_status_codes = {201};
  const TaskOutcome out = runToEnd(*runner, strict);
  EXPECT_FALSE(out.success);
  EXPECT_NE(out.message.find("HTTP 200"), std::string::npos) << out.message;
  EXPECT_NE(out.message.find("success: 201"), std::string::npos) << out.message;
  // 202 and 204 succeed by default.
  EXPECT_TRUE(runToEnd(*runner, request(attempt("accepted"), server.url("/status/202"))).success);
  EXPECT_TRUE(runToEnd(*runner, request(attempt("nocontent"), server.url("/status/204"))).success);
}

TEST_F(InlineHttp, ClientAndServerErrorsFail) {
  TestServer server;
  server.run();
  auto runner = makeRunner();
  const auto a404 = attempt("notfound");
  const TaskOutcome c = runToEnd(*runner, request(a404, server.url("/status/404")));
  EXPECT_FALSE(c.success);
  EXPECT_NE(c.message.find("HTTP 404"), std::string::npos) << c.message;
  const TaskOutcome s = runToEnd(*runner, request(attempt("unavailable"), server.url("/status/503"), "POST"));
  EXPECT_FALSE(s.success);
  EXPECT_NE(s.message.find("HTTP 503"), std::string::npos) << s.message;
  EXPECT_EQ(events_.store.task(a404.run, "notfound")->state, TaskState::kFailed);
  EXPECT_NE(logOf(a404).find("leoflow: outcome failed: HTTP 404"), std::string::npos) << logOf(a404);
}

TEST_F(InlineHttp, SlowServerTimesOutAndHeartbeatsMeanwhile) {
  TestServer server;
  server.run();
  auto runner = makeRunner();
  auto r = request(attempt("slow"), server.url("/sleep/5000"));
  r.task.http_request->timeout_seconds = 3;
  r.task.execution_timeout_seconds = 1;  // the smaller non-zero one wins
  const auto begin = steady_clock::now();
  const TaskOutcome out = runToEnd(*runner, r);
  const auto took = steady_clock::now() - begin;
  EXPECT_FALSE(out.success);
  EXPECT_EQ(out.message, "timed out after 1 s");
  EXPECT_LT(took, 2500ms);
  EXPECT_GE(took, 900ms);
  EXPECT_GE(events_.count(Kind::kHeartbeat, r.attempt), 2);
}

TEST_F(InlineHttp, ConnectionRefusedFails) {
  auto runner = makeRunner();
  const int port = freePort();
  const TaskOutcome out =
      runToEnd(*runner, request(attempt("refused"), "http://127.0.0.1:" + std::to_string(port) + "/x"));
  EXPECT_FALSE(out.success);
  EXPECT_NE(out.message.find("request failed"), std::string::npos) << out.message;
}

TEST_F(InlineHttp, BodyPastTheLimitFailsWithANote) {
  TestServer server;
  server.run();
  auto runner = makeRunner({{"max_response_bytes", ConfigValue{std::int64_t{1000}}}});
  EXPECT_TRUE(runToEnd(*runner, request(attempt("fits"), server.url("/bytes/1000"))).success);
  const auto a = attempt("big");
  const TaskOutcome out = runToEnd(*runner, request(a, server.url("/bytes/50000")));
  EXPECT_FALSE(out.success);
  EXPECT_NE(out.message.find("exceeds max_response_bytes (1000 bytes)"), std::string::npos) << out.message;
  EXPECT_NE(logOf(a).find(std::string(1000, 'x')), std::string::npos);
  EXPECT_EQ(logOf(a).find(std::string(1001, 'x')), std::string::npos);
}

TEST_F(InlineHttp, CapacityRefusesThenTakesAgain) {
  TestServer server;
  server.run();
  auto runner = makeRunner({{"max_parallel", ConfigValue{std::int64_t{2}}}});
  EXPECT_EQ(runner->freeCapacity(), 2u);
  const auto a1 = attempt("c1"), a2 = attempt("c2"), a3 = attempt("c3");
  ASSERT_TRUE(*start(*runner, request(a1, server.url("/sleep/800"))));
  ASSERT_TRUE(*start(*runner, request(a2, server.url("/sleep/800"))));
  EXPECT_EQ(runner->freeCapacity(), 0u);
  auto third = start(*runner, request(a3, server.url("/status/200")));
  ASSERT_TRUE(third.isOk());
  EXPECT_FALSE(*third);  // at capacity: the host leaves it scheduled
  EXPECT_EQ(events_.count(Kind::kRunning, a3), 0);
  EXPECT_EQ(runner->heldAttempts().size(), 2u);
  // Both in flight at once on the one transfer thread.
  for (int i = 0; i < 100 && server.in_flight < 2; ++i) std::this_thread::sleep_for(10ms);
  EXPECT_EQ(server.in_flight.load(), 2);
  ASSERT_TRUE(events_.waitFinished(a1, 5s));
  ASSERT_TRUE(events_.waitFinished(a2, 5s));
  EXPECT_EQ(runner->freeCapacity(), 2u);
  EXPECT_TRUE(runToEnd(*runner, request(a3, server.url("/status/200"))).success);
}

TEST_F(InlineHttp, ShutdownMidRequestReportsFailedAfterTheGrace) {
  TestServer server;
  server.run();
  auto runner = makeRunner({{"shutdown_grace_ms", ConfigValue{std::int64_t{1000}}}});
  const auto slow = attempt("slow");
  ASSERT_TRUE(*start(*runner, request(slow, server.url("/sleep/10000"))));
  const auto quick = attempt("quick");
  ASSERT_TRUE(*start(*runner, request(quick, server.url("/sleep/100"))));
  for (int i = 0; i < 100 && server.in_flight < 2; ++i) std::this_thread::sleep_for(10ms);
  const auto begin = steady_clock::now();
  runner->shutdown();
  EXPECT_LT(steady_clock::now() - begin, 4s);
  EXPECT_GE(steady_clock::now() - begin, 900ms) << "the grace is waited out for the slow request";
  EXPECT_EQ(runner->freeCapacity(), 0u);
  auto q = events_.waitFinished(quick, 1s);
  ASSERT_TRUE(q);
  EXPECT_TRUE(q->outcome.success) << "the grace lets a quick request finish";
  auto s = events_.waitFinished(slow, 1s);
  ASSERT_TRUE(s);
  EXPECT_FALSE(s->outcome.success);
  EXPECT_NE(s->outcome.message.find("shut down"), std::string::npos) << s->outcome.message;
  auto after = start(*runner, request(attempt("late"), server.url("/status/200")));
  ASSERT_TRUE(after.isOk());
  EXPECT_FALSE(*after);
}

TEST_F(InlineHttp, MethodHeadersBodyAndTenantArriveExactly) {
  TestServer server;
  server.run();
  auto runner = makeRunner({{"user_agent", ConfigValue{std::string("probe/1")}}});
  const auto a = attempt("post");
  auto r = request(a, server.url("/things?x=1"), "PUT");
  r.task.http_request->headers = {{"X-Custom", "v 1"}, {"Authorization", "Bearer plain"}};
  r.task.http_request->body_json = R"({"a":[1,2],"b":"c"})";
  ASSERT_TRUE(runToEnd(*runner, r).success);
  auto json_ct = request(attempt("ct"), server.url("/typed"), "POST");
  json_ct.task.http_request->headers = {{"content-type", "application/vnd.x+json"}};
  json_ct.task.http_request->body_json = "[]";
  ASSERT_TRUE(runToEnd(*runner, json_ct).success);

  const auto seen = server.seen();
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0].method, "PUT");
  EXPECT_EQ(seen[0].path, "/things");
  EXPECT_EQ(seen[0].body, R"({"a":[1,2],"b":"c"})");
  auto header = [](const Seen& s, const std::string& name) {
    auto it = s.headers.find(name);
    return it == s.headers.end() ? std::string("<none>") : it->second;
  };
  EXPECT_EQ(header(seen[0], "Content-Type"), "application/json");
  EXPECT_EQ(header(seen[0], "X-Custom"), "v 1");
  EXPECT_EQ(header(seen[0], "Authorization"), "Bearer plain");
  EXPECT_EQ(header(seen[0], "X-Leoflow-Tenant"), "acme");
  EXPECT_EQ(header(seen[0], "User-Agent"), "probe/1");
  EXPECT_EQ(seen[0].headers.count("Content-Type"), 1u);
  EXPECT_EQ(seen[1].method, "POST");
  EXPECT_EQ(header(seen[1], "Content-Type"), "application/vnd.x+json");
  EXPECT_EQ(seen[1].headers.count("Content-Type"), 1u);
  const std::string log = logOf(a);
  EXPECT_NE(log.find("> Authorization: ***"), std::string::npos) << log;
  EXPECT_EQ(log.find("Bearer plain"), std::string::npos) << log;
  EXPECT_NE(log.find("> X-Leoflow-Tenant: acme"), std::string::npos) << log;
  EXPECT_NE(log.find("leoflow: command PUT " + server.url("/things?x=1")), std::string::npos) << log;
}

TEST_F(InlineHttp, SecretEnvHeaderIsResolvedAndAnUnlistedOneRefused) {
  ::setenv("LEOFLOW_IH_TEST_TOKEN", "s3cret-value", 1);
  ::setenv("LEOFLOW_IH_TEST_OTHER", "nope", 1);
  TestServer server;
  server.run();
  auto runner = makeRunner({{"secret_env", ConfigValue{std::vector<std::string>{"LEOFLOW_IH_TEST_TOKEN", "LEOFLOW_IH_UNSET"}}}});
  const auto a = attempt("secret");
  auto r = request(a, server.url("/s"));
  r.task.http_request->headers = {{"X-Api-Key", "key ${LEOFLOW_IH_TEST_TOKEN}"}};
  ASSERT_TRUE(runToEnd(*runner, r).success);
  ASSERT_EQ(server.seen().size(), 1u);
  EXPECT_EQ(server.seen()[0].headers.find("X-Api-Key")->second, "key s3cret-value");
  EXPECT_EQ(logOf(a).find("s3cret-value"), std::string::npos);
  EXPECT_NE(logOf(a).find("> X-Api-Key: ***"), std::string::npos) << logOf(a);

  const auto b = attempt("unlisted");
  auto bad = request(b, server.url("/s"));
  bad.task.http_request->headers = {{"X-Api-Key", "${LEOFLOW_IH_TEST_OTHER}"}};
  auto refused = start(*runner, bad);
  ASSERT_FALSE(refused.isOk());
  EXPECT_EQ(refused.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(refused.status().message().find("not listed in [inline_runner.config] secret_env"), std::string::npos)
      << refused.status().message();
  auto unset = request(attempt("unset"), server.url("/s"));
  unset.task.http_request->headers = {{"X-Api-Key", "${LEOFLOW_IH_UNSET}"}};
  auto refused2 = start(*runner, unset);
  ASSERT_FALSE(refused2.isOk());
  EXPECT_NE(refused2.status().message().find("not set in the scheduler's environment"), std::string::npos);
  EXPECT_EQ(events_.count(Kind::kRunning, b), 0) << "nothing is claimed for a refused task";
  EXPECT_EQ(server.seen().size(), 1u);
}

TEST_F(InlineHttp, TimeoutAboveMaxFailsAtOnceSayingToUseAPod) {
  auto runner = makeRunner({{"max_timeout_s", ConfigValue{std::int64_t{30}}}});
  auto r = request(attempt("long"), "http://127.0.0.1:1/x");
  r.task.execution_timeout_seconds = 31;
  auto refused = start(*runner, r);
  ASSERT_FALSE(refused.isOk());
  EXPECT_EQ(refused.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(refused.status().message().find("max_timeout_s (30 s)"), std::string::npos) << refused.status().message();
  EXPECT_NE(refused.status().message().find("pod"), std::string::npos);
  EXPECT_EQ(plugins::inline_http::effectiveTimeout(r.task, 30), 31);
  r.task.execution_timeout_seconds = 0;
  EXPECT_EQ(plugins::inline_http::effectiveTimeout(r.task, 300), 60);
  EXPECT_EQ(plugins::inline_http::effectiveTimeout(r.task, 30), 30);
  r.task.http_request->timeout_seconds = 5;
  r.task.execution_timeout_seconds = 9;
  EXPECT_EQ(plugins::inline_http::effectiveTimeout(r.task, 300), 5);
  // Not an http_api task, or none of its request: refused too.
  auto bash = r;
  bash.task.type = "bash";
  EXPECT_EQ(start(*runner, bash).status().code(), StatusCode::kInvalidArgument);
}

TEST_F(InlineHttp, StopAbortsTheRequestAndReportsNothing) {
  TestServer server;
  server.run();
  auto runner = makeRunner();
  const auto a = attempt("stopme");
  ASSERT_TRUE(*start(*runner, request(a, server.url("/sleep/10000"))));
  for (int i = 0; i < 200 && server.in_flight < 1; ++i) std::this_thread::sleep_for(10ms);
  ASSERT_EQ(runner->heldAttempts(), std::vector<AttemptRef>{a});
  ASSERT_TRUE(runner->stop(a).isOk());
  for (int i = 0; i < 200 && !runner->heldAttempts().empty(); ++i) std::this_thread::sleep_for(10ms);
  EXPECT_TRUE(runner->heldAttempts().empty());
  EXPECT_EQ(runner->freeCapacity(), 32u);
  EXPECT_FALSE(events_.waitFinished(a, 300ms).has_value());
  EXPECT_NE(logOf(a).find("leoflow: outcome failed: stopped: the attempt is no longer current"), std::string::npos)
      << logOf(a);
  EXPECT_TRUE(runner->stop(attempt("unknown")).isOk());
}

TEST_F(InlineHttp, ARefusedClaimSendsNothing) {
  TestServer server;
  server.run();
  auto runner = makeRunner();
  const auto a = attempt("claimed");
  events_.seed(a);
  ASSERT_TRUE(events_.store.reportRunning(ExecutionRef{a, "other/host/1/abc"}, wallNow()).isOk());
  auto r = runner->start(request(a, server.url("/status/200")));
  ASSERT_TRUE(r.isOk());
  EXPECT_TRUE(*r);
  std::this_thread::sleep_for(200ms);
  EXPECT_TRUE(server.seen().empty());
  EXPECT_EQ(events_.count(Kind::kFinished, a), 0);
  EXPECT_EQ(runner->freeCapacity(), 32u);
}

TEST_F(InlineHttp, AClaimWithoutAnswerIsRetriedWithTheSameExecutionId) {
  TestServer server;
  server.run();
  auto runner = makeRunner();
  const auto a = attempt("lost-reply");
  events_.lose_running = 1;
  auto first = start(*runner, request(a, server.url("/status/200")));
  ASSERT_FALSE(first.isOk());
  EXPECT_EQ(first.status().code(), StatusCode::kUnavailable);
  EXPECT_TRUE(server.seen().empty()) << "nothing is sent without the claim's answer";
  EXPECT_EQ(runner->freeCapacity(), 32u);
  // The host hands it over again: the same id is accepted again, and the request goes out once.
  EXPECT_TRUE(runToEnd(*runner, request(a, server.url("/status/200"))).success);
  const auto reports = events_.reports();
  ASSERT_GE(reports.size(), 3u);
  EXPECT_EQ(reports[0].execution.execution_id, reports[1].execution.execution_id);
  EXPECT_EQ(server.seen().size(), 1u);
}

TEST_F(InlineHttp, ARefusedHeartbeatAbortsTheRequest) {
  TestServer server;
  server.run();
  auto runner = makeRunner();
  const auto a = attempt("taken");
  ASSERT_TRUE(*start(*runner, request(a, server.url("/sleep/10000"))));
  for (int i = 0; i < 200 && server.in_flight < 1; ++i) std::this_thread::sleep_for(10ms);
  events_.refuse_heartbeats = true;
  for (int i = 0; i < 300 && !runner->heldAttempts().empty(); ++i) std::this_thread::sleep_for(10ms);
  EXPECT_TRUE(runner->heldAttempts().empty());
  EXPECT_EQ(events_.count(Kind::kFinished, a), 0);
  EXPECT_NE(logOf(a).find("the store refused a heartbeat"), std::string::npos) << logOf(a);
}

TEST_F(InlineHttp, ConnectionsAreReused) {
  TestServer server;
  server.run();
  auto runner = makeRunner();
  ASSERT_TRUE(runToEnd(*runner, request(attempt("first"), server.url("/status/200"))).success);
  const auto b = attempt("second");
  ASSERT_TRUE(runToEnd(*runner, request(b, server.url("/status/200"))).success);
  EXPECT_NE(logOf(b).find("connection reused"), std::string::npos) << logOf(b);
}

TEST_F(InlineHttp, LogReaderServesTheLogByOffset) {
  TestServer server;
  server.run();
  auto runner = makeRunner();
  const auto a = attempt("logged");
  ASSERT_TRUE(runToEnd(*runner, request(a, server.url("/status/201"))).success);
  auto reader = makeReader();
  ASSERT_TRUE(reader);
  LogQuery q;
  q.attempt = a;
  q.run_uid = 7;
  auto whole = reader->read(q);
  ASSERT_TRUE(whole.isOk()) << whole.status().toString();
  EXPECT_TRUE(whole->complete);
  EXPECT_EQ(whole->text, logOf(a));
  EXPECT_NE(whole->text.find("leoflow: ==== end of execution inline-http/"), std::string::npos);
  q.offset = 10;
  q.max_bytes = 20;
  auto part = reader->read(q);
  ASSERT_TRUE(part.isOk());
  EXPECT_EQ(part->text, whole->text.substr(10, 20));
  EXPECT_EQ(part->next_offset, 30u);
  EXPECT_FALSE(part->complete);
  LogQuery missing;
  missing.attempt = attempt("never");
  missing.run_uid = 7;
  EXPECT_EQ(reader->read(missing).status().code(), StatusCode::kNotFound);
  missing.execution_id = "inline-http/elsewhere/1/abcd";
  auto elsewhere = reader->read(missing);
  EXPECT_NE(elsewhere.status().message().find("on host elsewhere"), std::string::npos) << elsewhere.status().message();
}

TEST_F(InlineHttp, ARunningRequestsLogIsIncomplete) {
  TestServer server;
  server.run();
  auto runner = makeRunner();
  const auto a = attempt("inflight");
  ASSERT_TRUE(*start(*runner, request(a, server.url("/sleep/600"))));
  for (int i = 0; i < 200 && server.in_flight < 1; ++i) std::this_thread::sleep_for(10ms);
  auto reader = makeReader();
  LogQuery q;
  q.attempt = a;
  q.run_uid = 7;
  auto now = reader->read(q);
  ASSERT_TRUE(now.isOk());
  EXPECT_FALSE(now->complete);
  EXPECT_NE(now->text.find("> GET "), std::string::npos) << now->text;
  ASSERT_TRUE(events_.waitFinished(a, 5s));
  EXPECT_TRUE(reader->read(q)->complete);
}

// --- TLS -------------------------------------------------------------------------------------------

bool sh(const std::string& cmd) { return std::system((cmd + " >/dev/null 2>&1").c_str()) == 0; }

struct Pki {
  std::filesystem::path ca, cert, key;
};

// A CA, and a server certificate for 127.0.0.1 it signed, made by `openssl`.
std::optional<Pki> makePki(const std::filesystem::path& dir) {
  const std::string d = dir.string();
  Pki p{dir / "ca.pem", dir / "server.pem", dir / "server.key"};
  std::ofstream(dir / "ext.cnf") << "subjectAltName=IP:127.0.0.1,DNS:localhost\n";
  if (!sh("openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=leoflow-test-ca -keyout " + d +
          "/ca.key -out " + d + "/ca.pem")) return std::nullopt;
  if (!sh("openssl req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 -keyout " + d + "/server.key -out " + d +
          "/server.csr")) return std::nullopt;
  if (!sh("openssl x509 -req -in " + d + "/server.csr -CA " + d + "/ca.pem -CAkey " + d + "/ca.key -CAcreateserial -days 2 -out " +
          d + "/server.pem -extfile " + d + "/ext.cnf")) return std::nullopt;
  return p;
}

TEST_F(InlineHttp, TlsIsVerifiedWithTheConfiguredCaAndRefusedWithout) {
  if (!sh("openssl version")) GTEST_SKIP() << "openssl is not installed";
  auto pki = makePki(dir_.path());
  ASSERT_TRUE(pki) << "openssl could not make the test CA";
  TestServer server(pki->cert.string(), pki->key.string());
  server.run();
  {
    auto runner = makeRunner({{"ca_file", ConfigValue{pki->ca.string()}}});
    const TaskOutcome out = runToEnd(*runner, request(attempt("tls"), server.url("/status/200", true)));
    EXPECT_TRUE(out.success) << out.message;
  }
  {
    auto runner = makeRunner();
    const TaskOutcome out = runToEnd(*runner, request(attempt("untrusted"), server.url("/status/200", true)));
    EXPECT_FALSE(out.success);
    EXPECT_NE(out.message.find("request failed"), std::string::npos) << out.message;
    EXPECT_NE(out.message.find("certificate"), std::string::npos) << out.message;
  }
  EXPECT_EQ(server.seen().size(), 1u);
}

TEST_F(InlineHttp, ConfigIsChecked) {
  EXPECT_THROW(makeRunner({{"max_parallel", ConfigValue{std::int64_t{0}}}}), std::invalid_argument);
  EXPECT_THROW(makeRunner({{"ca_file", ConfigValue{std::string("/nonexistent/ca.pem")}}}), std::invalid_argument);
  EXPECT_THROW(makeRunner({{"secret_env", ConfigValue{std::vector<std::string>{"BAD-NAME"}}}}), std::invalid_argument);
  const auto keys = factory_.configKeys();
  std::vector<std::string> names;
  for (const auto& k : keys) names.push_back(k.name);
  for (const char* want : {"max_parallel", "max_timeout_s", "max_response_bytes", "secret_env", "user_agent", "ca_file",
                           "log_dir"}) {
    EXPECT_NE(std::find(names.begin(), names.end(), want), names.end()) << want;
  }
}

}  // namespace
}  // namespace leoflow::testing::inline_http
