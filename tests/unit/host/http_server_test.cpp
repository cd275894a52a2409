// The scheduler's HTTP server (ARCHITECTURE §8.15) over a real socket, driven by cpp-httplib's
// client, against the in-memory store: /healthz, /status, every /api/v1 endpoint, the token rules,
// the JSON errors and the web page's files (the page itself: tests/browser).
#include <atomic>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include "host/dags_command.h"
#include "host/exit_codes.h"
#include "host/http_api.h"
#include "host/http_server.h"
#include "host/operations.h"
#include "host/run_view.h"
#include "host/status_command.h"
#include "schedule/iso_time.h"
#include "support/memory_store.h"

namespace leoflow::host {
namespace {

using ::testing::HasSubstr;
using leoflow::testing::ManualClock;
using leoflow::testing::Method;
using leoflow::testing::MemoryStore;
using json = nlohmann::json;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

constexpr const char* kToken = "s3cret-token";
// A manual run id as the CLI makes them: ':' and '+' must survive the path.
constexpr const char* kRunId = "manual__2026-01-01T00:00:00+00:00";
constexpr const char* kRunIdEncoded = "manual__2026-01-01T00%3A00%3A00%2B00%3A00";

HttpSettings settings(const std::string& token, const std::string& host = "127.0.0.1") {
  HttpSettings s;
  s.host = host;
  s.port = 0;
  s.listen = host + ":0";
  s.token = token;
  return s;
}

/// What the API answers for one run: the `runs show --json` object plus its conf (null when none).
json runShowJson(const RunRecord& run) {
  json j = json::parse(runToJson(run, true).dump());
  j["conf"] = run.conf_json.empty() ? json(nullptr) : json::parse(run.conf_json);
  return j;
}

/// Sends `request` as written on a new connection and returns everything the server answers (the
/// request should say "Connection: close").
std::string rawExchange(int port, const std::string& request) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return "";
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string answer;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      ::send(fd, request.data(), request.size(), 0) == static_cast<ssize_t>(request.size())) {
    char buffer[4096];
    ssize_t n = 0;
    while ((n = ::recv(fd, buffer, sizeof(buffer), 0)) > 0) answer.append(buffer, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return answer;
}

class HttpServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("leoflow-http-" + std::to_string(::getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
    clock_.set(Timestamp{std::chrono::seconds{1779969600}});  // 2026-05-28T12:00:00Z
    const fs::path dag = dir_ / "etl.json";
    std::ofstream(dag) << R"({"dag_id":"etl","tasks":[{"task_id":"a","type":"bash","entrypoint":"true"},)"
                          R"({"task_id":"b","type":"bash","entrypoint":"true","depends_on":["a"]}]})";
    std::ostringstream out, err;
    ASSERT_EQ(dagsSync(store_, {dag.string()}, out, err), 0) << err.str();
  }
  void TearDown() override {
    server_.reset();
    fs::remove_all(dir_);
  }

  void start(const std::string& token = kToken, HttpServerLimits limits = {}) {
    HttpApiDeps deps;
    deps.store = &store_;
    deps.clock = &clock_;
    deps.health = [this] {
      engine::Health h;
      h.healthy = healthy_.load();
      if (last_tick_) h.last_tick = *last_tick_;
      return h;
    };
    deps.leading = [this] { return leading_.load(); };
    deps.read_log = [this](const LogQuery& q) -> Result<LogChunk> {
      std::lock_guard lock(log_mutex_);
      queries_.push_back(q);
      if (!log_status_.isOk()) return log_status_;
      LogChunk chunk;
      const std::uint64_t from = std::min<std::uint64_t>(q.offset, log_text_.size());
      chunk.text = log_text_.substr(from, std::min<std::size_t>(q.max_bytes, log_chunk_size_));
      chunk.next_offset = from + chunk.text.size();
      chunk.complete = log_ended_ && chunk.next_offset == log_text_.size();
      return chunk;
    };
    server_ = std::make_unique<HttpServer>(settings(token), std::move(deps), nullptr, limits);
    server_->start();
    ASSERT_GT(server_->port(), 0);
    client_ = std::make_unique<httplib::Client>("127.0.0.1", server_->port());
    client_->set_url_encode(false);  // the tests write the encoding they mean
    client_->set_read_timeout(10s);
  }

  httplib::Headers auth(const std::string& token = kToken) { return {{"Authorization", "Bearer " + token}}; }

  httplib::Result get(const std::string& path, const httplib::Headers& headers) { return client_->Get(path, headers); }
  httplib::Result get(const std::string& path) { return client_->Get(path, auth()); }
  httplib::Result post(const std::string& path, const std::string& body, const httplib::Headers& headers) {
    return client_->Post(path, headers, body, "application/json");
  }
  httplib::Result post(const std::string& path, const std::string& body = "{}") { return post(path, body, auth()); }
  httplib::Result patch(const std::string& path, const std::string& body, const httplib::Headers& headers) {
    return client_->Patch(path, headers, body, "application/json");
  }
  httplib::Result patch(const std::string& path, const std::string& body) { return patch(path, body, auth()); }

  /// The body as JSON; fails the test when it is not.
  static json body(const httplib::Result& r) {
    if (!r) {
      ADD_FAILURE() << "no response: " << httplib::to_string(r.error());
      return json();
    }
    try {
      return json::parse(r->body);
    } catch (const std::exception& e) {
      ADD_FAILURE() << "not JSON (" << e.what() << "): " << r->body;
      return json();
    }
  }
  /// Expects `status` and a JSON `{"error": ...}` body; returns the message.
  static std::string expectError(const httplib::Result& r, int status) {
    if (!r) {
      ADD_FAILURE() << "no response: " << httplib::to_string(r.error());
      return "";
    }
    EXPECT_EQ(r->status, status) << r->body;
    EXPECT_THAT(r->get_header_value("Content-Type"), HasSubstr("application/json"));
    const json doc = body(r);
    if (!doc.is_object() || !doc.contains("error") || !doc["error"].is_string()) {
      ADD_FAILURE() << "not an error object: " << r->body;
      return "";
    }
    EXPECT_EQ(doc.size(), 1u) << r->body;
    return doc["error"].get<std::string>();
  }

  /// A running run of etl: a succeeded, b running on try 1 (started, claimed).
  RunKey putRunningRun(const std::string& run_id = kRunId) {
    RunRecord run;
    run.key = RunKey{"etl", run_id};
    run.dag_version = 1;
    run.state = DagRunState::kRunning;
    run.trigger = RunTrigger::kManual;
    run.logical_date = *schedule::parseIsoTime("2026-01-01T00:00:00Z");
    run.queued_at = run.started_at = clock_.now() - 60s;
    TaskInstance a;
    a.task_id = "a";
    a.state = TaskState::kSuccess;
    a.started_at = clock_.now() - 50s;
    a.ended_at = clock_.now() - 40s;
    a.execution_id = "exec-a";
    TaskInstance b;
    b.task_id = "b";
    b.state = TaskState::kRunning;
    b.started_at = clock_.now() - 30s;
    b.last_heartbeat_at = clock_.now() - 1s;
    b.execution_id = "exec-b";
    run.tasks = {a, b};
    store_.putRun(run);
    return run.key;
  }

  fs::path dir_;
  ManualClock clock_;
  MemoryStore store_;
  std::atomic<bool> healthy_{true};
  std::atomic<bool> leading_{true};
  std::optional<Timestamp> last_tick_;
  std::mutex log_mutex_;
  std::vector<LogQuery> queries_;
  Status log_status_;
  std::string log_text_;
  std::size_t log_chunk_size_ = 1 << 20;
  bool log_ended_ = false;
  std::unique_ptr<HttpServer> server_;
  std::unique_ptr<httplib::Client> client_;
};

// --- /healthz and /status --------------------------------------------------------------------------

TEST_F(HttpServerTest, HealthzIsOkWhileHealthyAndNeedsNoToken) {
  start();
  auto r = get("/healthz", {});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "ok\n");
  EXPECT_THAT(r->get_header_value("Content-Type"), HasSubstr("text/plain"));
}

TEST_F(HttpServerTest, HealthzIsOkForAFollower) {
  leading_ = false;
  healthy_ = true;  // Engine::health() of a follower
  start();
  auto r = get("/healthz", {});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "ok\n");
}

TEST_F(HttpServerTest, HealthzIs503WithTheReasonWhenUnhealthy) {
  healthy_ = false;
  last_tick_ = clock_.now() - 95s;
  start();
  auto r = get("/healthz", {});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 503);
  EXPECT_THAT(r->body, HasSubstr("unhealthy"));
  EXPECT_THAT(r->body, HasSubstr("last tick was 95.0 s ago"));

  last_tick_.reset();
  server_.reset();
  start();
  r = get("/healthz", {});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 503);
  EXPECT_THAT(r->body, HasSubstr("has not ticked"));
}

TEST_F(HttpServerTest, StatusIsTheStatusJsonPlusRoleAndNeedsNoToken) {
  auto term = store_.claimTerm("replica-1");
  ASSERT_TRUE(term);
  LivenessRecord live;
  live.holder = "replica-1";
  live.term = *term;
  live.last_tick = clock_.now() - 2s;
  live.queue_depth = 3;
  live.active_runs = 1;
  ASSERT_TRUE(store_.recordLiveness(*term, live).isOk());
  start();

  auto r = get("/status", {});
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  json doc = body(r);
  EXPECT_EQ(doc["leader"]["holder"], "replica-1");
  EXPECT_EQ(doc["leader"]["term"], *term);
  EXPECT_EQ(doc["last_tick"], "2026-05-28T11:59:58Z");
  EXPECT_DOUBLE_EQ(doc["last_tick_age_seconds"].get<double>(), 2.0);
  EXPECT_EQ(doc["queue_depth"], 3);
  EXPECT_EQ(doc["active_runs"], 1);
  EXPECT_EQ(doc["http"], "127.0.0.1:" + std::to_string(server_->port()));
  EXPECT_EQ(doc["role"], "leader");
  EXPECT_EQ(doc["token_required"], true);  // the page asks for the token

  leading_ = false;
  doc = body(get("/status", {}));
  EXPECT_EQ(doc["role"], "follower");
}

TEST_F(HttpServerTest, StatusIs503WhenTheStoreIsUnreachable) {
  store_.failAlways(Method::kReadLiveness, unavailable("connection refused"));
  start();
  EXPECT_THAT(expectError(get("/status", {}), 503), HasSubstr("connection refused"));
}

// --- the token -------------------------------------------------------------------------------------

TEST_F(HttpServerTest, WithATokenEveryApiRequestNeedsIt) {
  start();
  EXPECT_THAT(expectError(get("/api/v1/dags", {}), 401), HasSubstr("Authorization: Bearer"));
  EXPECT_THAT(expectError(get("/api/v1/dags", auth("wrong")), 401), HasSubstr("wrong token"));
  expectError(get("/api/v1/dags", auth(std::string(kToken) + "x")), 401);
  expectError(get("/api/v1/dags", {{"Authorization", std::string("Basic ") + kToken}}), 401);
  expectError(get("/api/v1/nowhere", {}), 401);  // which paths exist is not told either
  expectError(post("/api/v1/dags/etl/runs", "{}", {}), 401);
  expectError(patch("/api/v1/dags/etl", R"({"paused":true})", auth("nope")), 401);
  auto r = get("/api/v1/dags", {});
  ASSERT_TRUE(r);
  EXPECT_THAT(r->get_header_value("WWW-Authenticate"), HasSubstr("Bearer"));

  r = get("/api/v1/dags");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->body;
  r = get("/api/v1/dags", {{"Authorization", std::string("bearer ") + kToken}});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << "the scheme is case-insensitive";
  r = post("/api/v1/dags/etl/runs", R"({"run_id":"with-token"})");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 201) << r->body;
}

TEST_F(HttpServerTest, WithoutATokenReadsWorkAndWritesAre403) {
  start("");
  auto r = get("/api/v1/dags", {});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->body;
  r = get("/api/v1/dags/etl", {});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->body;
  EXPECT_THAT(expectError(post("/api/v1/dags/etl/runs", "{}", {}), 403), HasSubstr("token"));
  expectError(patch("/api/v1/dags/etl", R"({"paused":true})", {}), 403);
  putRunningRun();
  expectError(post(std::string("/api/v1/dags/etl/runs/") + kRunIdEncoded + "/cancel", "{}", {}), 403);
  expectError(post(std::string("/api/v1/dags/etl/runs/") + kRunIdEncoded + "/clear", "{}", {}), 403);
  expectError(post(std::string("/api/v1/dags/etl/runs/") + kRunIdEncoded + "/tasks/b/mark",
                   R"({"state":"success"})", {}),
              403);
  EXPECT_EQ(store_.run({"etl", kRunId})->state, DagRunState::kRunning) << "nothing was written";
  EXPECT_FALSE(store_.getDag("etl", std::nullopt)->paused);
}

TEST_F(HttpServerTest, ANonLoopbackListenWithoutATokenIsRefusedAtStart) {
  for (const std::string host : {"0.0.0.0", "10.1.2.3", "::", "example.com"}) {
    HttpSettings s = settings("", host);
    s.listen = host + ":8790";
    s.file = "leoflow.toml";
    s.line = 7;
    try {
      checkHttpSettings(s);
      ADD_FAILURE() << host << " was accepted";
    } catch (const CommandError& e) {
      EXPECT_EQ(e.exitCode(), kExitBadInput);
      EXPECT_THAT(e.what(), HasSubstr("leoflow.toml:7: [http] listen = \"" + host + ":8790\""));
      EXPECT_THAT(e.what(), HasSubstr("not a loopback address and no token is configured"));
    }
    HttpServer server(s, HttpApiDeps{}, nullptr);
    EXPECT_THROW(server.start(), CommandError);
    EXPECT_EQ(server.port(), 0) << "nothing was bound";
    s.token = "t";
    EXPECT_NO_THROW(checkHttpSettings(s)) << "with a token any address may be used";
  }
  for (const std::string host : {"127.0.0.1", "127.1.2.3", "localhost", "::1"}) {
    EXPECT_NO_THROW(checkHttpSettings(settings("", host))) << host;
  }
  EXPECT_FALSE(isLoopbackHost("127.0.0.1.example.com"));
  EXPECT_FALSE(isLoopbackHost("1127.0.0.1"));
}

TEST_F(HttpServerTest, ConstantTimeEqualsComparesEveryByte) {
  EXPECT_TRUE(constantTimeEquals("abc", "abc"));
  EXPECT_TRUE(constantTimeEquals("", ""));
  EXPECT_FALSE(constantTimeEquals("abc", "abd"));
  EXPECT_FALSE(constantTimeEquals("abc", "ab"));
  EXPECT_FALSE(constantTimeEquals("ab", "abc"));
  EXPECT_FALSE(constantTimeEquals(std::string("a\0", 2), "a"));
}

// --- DAGs ------------------------------------------------------------------------------------------

TEST_F(HttpServerTest, ListsDagsFilteredByTenant) {
  start();
  auto r = get("/api/v1/dags");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  json doc = body(r);
  ASSERT_TRUE(doc.is_array());
  ASSERT_EQ(doc.size(), 1u);
  EXPECT_EQ(doc[0]["dag_id"], "etl");
  EXPECT_EQ(doc[0]["tenant"], "default");
  EXPECT_EQ(doc[0]["paused"], false);
  EXPECT_EQ(doc, json::parse(listDagsJson(store_, clock_.now()).dump())) << "the `dags list` array";

  EXPECT_EQ(body(get("/api/v1/dags?tenant=default")).size(), 1u);
  EXPECT_EQ(body(get("/api/v1/dags?tenant=other")), json::array());
}

TEST_F(HttpServerTest, ShowsADagAnd404sAnUnknownOne) {
  start();
  auto r = get("/api/v1/dags/etl");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  json doc = body(r);
  EXPECT_EQ(doc["dag_id"], "etl");
  ASSERT_EQ(doc["tasks"].size(), 2u);
  EXPECT_EQ(doc["tasks"][1]["task_id"], "b");
  EXPECT_EQ(doc, json::parse(showDagJson(store_, "etl", clock_.now()).dump())) << "the `dags show --json` object";
  EXPECT_THAT(expectError(get("/api/v1/dags/nope"), 404), HasSubstr("nope"));
  EXPECT_EQ(body(get("/api/v1/dags/etl/")), doc) << "one trailing slash is the same path";
}

TEST_F(HttpServerTest, PatchPausesAndUnpauses) {
  start();
  auto r = patch("/api/v1/dags/etl", R"({"paused": true})");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(body(r)["paused"], true);
  EXPECT_EQ(body(r)["dag_id"], "etl");
  EXPECT_TRUE(store_.getDag("etl", std::nullopt)->paused);
  r = patch("/api/v1/dags/etl", R"({"paused": false})");
  ASSERT_TRUE(r);
  EXPECT_EQ(body(r)["paused"], false);
  EXPECT_FALSE(store_.getDag("etl", std::nullopt)->paused);

  EXPECT_THAT(expectError(patch("/api/v1/dags/etl", R"({"paused": "yes"})"), 400), HasSubstr("paused"));
  EXPECT_THAT(expectError(patch("/api/v1/dags/etl", R"({})"), 400), HasSubstr("required"));
  EXPECT_THAT(expectError(patch("/api/v1/dags/etl", R"({"paused": true)"), 400), HasSubstr("malformed JSON"));
  EXPECT_THAT(expectError(patch("/api/v1/dags/etl", R"([true])"), 400), HasSubstr("expected a JSON object"));
  EXPECT_THAT(expectError(patch("/api/v1/dags/etl", R"({"paused": true, "pasued": 1})"), 400),
              HasSubstr("unknown field \"pasued\""));
  expectError(patch("/api/v1/dags/nope", R"({"paused": true})"), 404);
}

// --- runs ------------------------------------------------------------------------------------------

TEST_F(HttpServerTest, TriggerAnswers201WithTheRunsShowObject) {
  start();
  auto r = post("/api/v1/dags/etl/runs",
                std::string(R"({"run_id":")") + kRunId + R"(","conf":{"x":1},"logical_date":"2026-01-01T00:00:00Z"})");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 201) << r->body;
  json doc = body(r);
  EXPECT_EQ(doc["run_id"], kRunId);
  EXPECT_EQ(doc["dag_id"], "etl");
  EXPECT_EQ(doc["state"], "queued");
  EXPECT_EQ(doc["logical_date"], "2026-01-01T00:00:00Z");
  EXPECT_TRUE(doc.contains("tasks"));
  // (httplib's client percent-decodes a Location header as it reads it.)
  EXPECT_EQ(r->get_header_value("Location"), std::string("/api/v1/dags/etl/runs/") + kRunId);
  const auto stored = store_.run({"etl", kRunId});
  ASSERT_TRUE(stored);
  EXPECT_EQ(json::parse(stored->conf_json), json::parse(R"({"x":1})"));
  EXPECT_EQ(doc, runShowJson(*stored));

  // An empty body: manual__<now>.
  r = post("/api/v1/dags/etl/runs", "");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 201) << r->body;
  EXPECT_EQ(body(r)["run_id"], "manual__2026-05-28T12:00:00.000000Z");

  EXPECT_THAT(expectError(post("/api/v1/dags/etl/runs", std::string(R"({"run_id":")") + kRunId + "\"}"), 409),
              HasSubstr("already exists"));
  EXPECT_THAT(expectError(post("/api/v1/dags/etl/runs", R"({"run_id":"scheduled__x"})"), 400), HasSubstr("reserved"));
  EXPECT_THAT(expectError(post("/api/v1/dags/etl/runs", R"({"logical_date":"yesterday"})"), 400),
              HasSubstr("logical_date"));
  EXPECT_THAT(expectError(post("/api/v1/dags/etl/runs", R"({"conf":[1]})"), 400), HasSubstr("conf"));
  EXPECT_THAT(expectError(post("/api/v1/dags/etl/runs", R"({"run_id":7})"), 400), HasSubstr("run_id"));
  expectError(post("/api/v1/dags/nope/runs", "{}"), 404);
}

TEST_F(HttpServerTest, RunIdsArePercentDecoded) {
  putRunningRun();
  start();
  const json expected = runShowJson(*store_.run({"etl", kRunId}));
  for (const std::string& path : {std::string("/api/v1/dags/etl/runs/") + kRunIdEncoded,
                                 std::string("/api/v1/dags/etl/runs/") + kRunId,  // ':' and '+' as they are
                                 std::string("/api/v1/dags/%65tl/runs/") + kRunIdEncoded}) {
    auto r = get(path);
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200) << path << ": " << r->body;
    EXPECT_EQ(body(r), expected) << path;
  }
  // An encoded '/' stays in its segment: no such run (rather than another path).
  expectError(get("/api/v1/dags/etl/runs/a%2Fb"), 404);
  EXPECT_THAT(expectError(get("/api/v1/dags/etl/runs/manual%zz"), 400), HasSubstr("percent-encoding"));
  EXPECT_THAT(expectError(get("/api/v1/dags/etl/runs/manual%2"), 400), HasSubstr("percent-encoding"));
  expectError(get("/api/v1/dags/etl/runs/nope"), 404);
}

TEST_F(HttpServerTest, ListsRunsWithStateTenantAndLimit) {
  start();
  for (int i = 1; i <= 5; ++i) {
    TriggerRequest t;
    t.dag_id = "etl";
    t.run_id = "r" + std::to_string(i);
    t.logical_date = clock_.now() + std::chrono::hours(i);
    triggerRun(store_, clock_.now(), t);
  }
  putRunningRun();
  json doc = body(get("/api/v1/dags/etl/runs"));
  ASSERT_TRUE(doc.is_array());
  ASSERT_EQ(doc.size(), 6u);
  EXPECT_EQ(doc[0]["run_id"], "r5") << "newest logical date first";
  EXPECT_FALSE(doc[0].contains("tasks")) << "the `runs list` objects";
  EXPECT_EQ(body(get("/api/v1/dags/etl/runs?limit=2")).size(), 2u);
  EXPECT_EQ(body(get("/api/v1/dags/etl/runs?limit=1000")).size(), 6u);
  doc = body(get("/api/v1/dags/etl/runs?state=running"));
  ASSERT_EQ(doc.size(), 1u);
  EXPECT_EQ(doc[0]["run_id"], kRunId);
  EXPECT_EQ(body(get("/api/v1/dags/etl/runs?state=queued")).size(), 5u);
  EXPECT_EQ(body(get("/api/v1/dags/etl/runs?tenant=default&state=queued&limit=3")).size(), 3u);
  EXPECT_EQ(body(get("/api/v1/dags/etl/runs?tenant=other")), json::array());

  EXPECT_THAT(expectError(get("/api/v1/dags/etl/runs?limit=0"), 400), HasSubstr("limit"));
  EXPECT_THAT(expectError(get("/api/v1/dags/etl/runs?limit=1001"), 400), HasSubstr("1 to 1000"));
  expectError(get("/api/v1/dags/etl/runs?limit=ten"), 400);
  expectError(get("/api/v1/dags/etl/runs?state=sleeping"), 400);
  expectError(get("/api/v1/dags/nope/runs"), 404);
}

TEST_F(HttpServerTest, CancelAnswersTheUpdatedRunAndNamesTheApiActor) {
  const RunKey key = putRunningRun();
  start();
  auto r = post(std::string("/api/v1/dags/etl/runs/") + kRunIdEncoded + "/cancel", "");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  json doc = body(r);
  EXPECT_EQ(doc["run_id"], kRunId);
  const auto stored = store_.run(key);
  ASSERT_TRUE(stored);
  EXPECT_NE(stored->state, DagRunState::kRunning);
  EXPECT_EQ(doc, runShowJson(*stored));
  EXPECT_THAT(stored->note, HasSubstr("cancelled by api"));

  expectError(post(std::string("/api/v1/dags/etl/runs/") + kRunIdEncoded + "/cancel", ""), 409);
  expectError(post("/api/v1/dags/etl/runs/nope/cancel", ""), 404);
  EXPECT_THAT(expectError(post(std::string("/api/v1/dags/etl/runs/") + kRunIdEncoded + "/cancel", R"({"x":1})"), 400),
              HasSubstr("unknown field"));
}

TEST_F(HttpServerTest, AWriteWithoutABodyIsAnEmptyObject) {
  const RunKey key = putRunningRun();
  start();
  // No Content-Length, no Transfer-Encoding (`curl -X POST`): a body of zero bytes.
  const std::string answer = rawExchange(
      server_->port(), std::string("POST /api/v1/dags/etl/runs/") + kRunIdEncoded +
                           "/cancel HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + kToken +
                           "\r\nConnection: close\r\n\r\n");
  EXPECT_THAT(answer, ::testing::StartsWith("HTTP/1.1 200 ")) << answer;
  EXPECT_NE(store_.run(key)->state, DagRunState::kRunning);
  // Without the token it is still refused.
  EXPECT_THAT(rawExchange(server_->port(), "POST /api/v1/dags/etl/runs HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
              ::testing::StartsWith("HTTP/1.1 401 "));
}

TEST_F(HttpServerTest, TheLocationOfANewRunIsPercentEncodedOnTheWire) {
  start();
  const std::string body = std::string(R"({"run_id":")") + kRunId + "\"}";
  const std::string answer =
      rawExchange(server_->port(), "POST /api/v1/dags/etl/runs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " +
                                       std::string(kToken) + "\r\nContent-Type: application/json\r\nContent-Length: " +
                                       std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body);
  EXPECT_THAT(answer, ::testing::StartsWith("HTTP/1.1 201 ")) << answer;
  EXPECT_THAT(answer, HasSubstr(std::string("Location: /api/v1/dags/etl/runs/") + kRunIdEncoded + "\r\n"));
}

TEST_F(HttpServerTest, ClearAnswersTheUpdatedRun) {
  const RunKey key = putRunningRun();
  RunRecord run = *store_.run(key);
  run.state = DagRunState::kFailed;
  run.ended_at = clock_.now();
  run.tasks[1].state = TaskState::kFailed;
  run.tasks[1].ended_at = clock_.now();
  store_.putRun(run);
  start();

  const std::string path = std::string("/api/v1/dags/etl/runs/") + kRunIdEncoded + "/clear";
  EXPECT_THAT(expectError(post(path, R"({"task_ids":"b"})"), 400), HasSubstr("task_ids"));
  EXPECT_THAT(expectError(post(path, R"({"downstream":"yes"})"), 400), HasSubstr("downstream"));
  expectError(post(path, R"({"task_ids":["nope"]})"), 404);

  auto r = post(path, R"({"task_ids":["a"],"downstream":true,"failed_only":true})");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  const auto stored = store_.run(key);
  ASSERT_TRUE(stored);
  EXPECT_EQ(body(r), runShowJson(*stored));
  EXPECT_EQ(store_.task(key, "a")->state, TaskState::kSuccess) << "failed_only keeps the succeeded task";
  EXPECT_EQ(store_.task(key, "b")->state, TaskState::kNone);
  EXPECT_THAT(store_.task(key, "b")->note, HasSubstr("cleared by api"));
}

TEST_F(HttpServerTest, MarkAnswersTheUpdatedRun) {
  const RunKey key = putRunningRun();
  start();
  const std::string base = std::string("/api/v1/dags/etl/runs/") + kRunIdEncoded + "/tasks/";
  EXPECT_THAT(expectError(post(base + "b/mark", R"({})"), 400), HasSubstr("state"));
  EXPECT_THAT(expectError(post(base + "b/mark", R"({"state":"running"})"), 400), HasSubstr("success, failed or skipped"));
  expectError(post(base + "nope/mark", R"({"state":"success"})"), 404);

  auto r = post(base + "b/mark", R"({"state":"success"})");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  const auto stored = store_.run(key);
  ASSERT_TRUE(stored);
  EXPECT_EQ(body(r), runShowJson(*stored));
  EXPECT_EQ(store_.task(key, "b")->state, TaskState::kSuccess);
  EXPECT_THAT(store_.task(key, "b")->note, HasSubstr("marked success by api"));
}

// --- logs ------------------------------------------------------------------------------------------

TEST_F(HttpServerTest, LogsAreReadFromAnOffsetWithTheNextOffsetAndCompleteness) {
  const RunKey key = putRunningRun();
  log_text_ = "line one\nline two\nline three\n";
  log_chunk_size_ = 9;
  start();
  const std::string path = std::string("/api/v1/dags/etl/runs/") + kRunIdEncoded + "/tasks/b/logs";

  auto r = get(path);
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_THAT(r->get_header_value("Content-Type"), HasSubstr("text/plain"));
  EXPECT_EQ(r->body, "line one\n");
  EXPECT_EQ(r->get_header_value("X-Log-Next-Offset"), "9");
  EXPECT_EQ(r->get_header_value("X-Log-Complete"), "false");
  {
    std::lock_guard lock(log_mutex_);
    ASSERT_EQ(queries_.size(), 1u);
    EXPECT_EQ(queries_[0].attempt, (AttemptRef{key, "b", 1}));
    EXPECT_EQ(queries_[0].execution_id, "exec-b");
    EXPECT_EQ(queries_[0].offset, 0u);
  }

  r = get(path + "?offset=9");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, "line two\n");
  EXPECT_EQ(r->get_header_value("X-Log-Next-Offset"), "18");

  // The attempt ends; the reader has everything: complete once the last byte is read.
  log_ended_ = true;
  log_chunk_size_ = 1 << 20;
  TaskInstance b = *store_.task(key, "b");
  b.state = TaskState::kSuccess;
  b.ended_at = clock_.now();
  store_.putTask(key, b);
  r = get(path + "?try=1&offset=18");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(r->body, "line three\n");
  EXPECT_EQ(r->get_header_value("X-Log-Next-Offset"), std::to_string(log_text_.size()));
  EXPECT_EQ(r->get_header_value("X-Log-Complete"), "true");
  r = get(path + "?offset=" + std::to_string(log_text_.size()));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, "");
  EXPECT_EQ(r->get_header_value("X-Log-Complete"), "true");
  {
    std::lock_guard lock(log_mutex_);
    EXPECT_EQ(queries_.back().offset, log_text_.size());
  }
}

TEST_F(HttpServerTest, LogErrorsAreJson) {
  putRunningRun();
  start();
  const std::string base = std::string("/api/v1/dags/etl/runs/") + kRunIdEncoded + "/tasks/";
  EXPECT_THAT(expectError(get(base + "b/logs?try=2"), 404), HasSubstr("no try 2"));
  expectError(get(base + "b/logs?try=0"), 400);
  expectError(get(base + "b/logs?offset=-1"), 400);
  expectError(get(base + "b/logs?offset=abc"), 400);
  expectError(get(base + "nope/logs"), 404);
  expectError(get("/api/v1/dags/etl/runs/nope/tasks/b/logs"), 404);
  log_status_ = unavailable("the log server is down");
  EXPECT_THAT(expectError(get(base + "b/logs"), 503), HasSubstr("the log server is down"));
  log_status_ = leoflow::notFound("the log is on host worker-2");
  EXPECT_THAT(expectError(get(base + "b/logs"), 404), HasSubstr("worker-2"));
}

// --- the web page (GET /) ------------------------------------------------------------------------

TEST_F(HttpServerTest, ThePageAndItsFilesAreServedFromTheBinaryWithoutAToken) {
  start();
  auto page = get("/", {});
  ASSERT_TRUE(page);
  ASSERT_EQ(page->status, 200) << page->body;
  EXPECT_THAT(page->get_header_value("Content-Type"), HasSubstr("text/html"));
  EXPECT_THAT(page->body, HasSubstr("<script src=\"/web/app.js\""));
  // Nothing from elsewhere, no inline script, no framing.
  EXPECT_THAT(page->get_header_value("Content-Security-Policy"), HasSubstr("default-src 'none'"));
  EXPECT_THAT(page->get_header_value("Content-Security-Policy"), HasSubstr("script-src 'self'"));
  EXPECT_EQ(page->get_header_value("X-Content-Type-Options"), "nosniff");
  EXPECT_EQ(page->body.find("http://"), std::string::npos) << "the page must not load from the network";
  EXPECT_EQ(page->body.find("https://"), std::string::npos) << "the page must not load from the network";

  for (const auto& [path, type] : {std::pair{"/web/app.js", "text/javascript"}, std::pair{"/web/app.css", "text/css"}}) {
    auto r = get(path, {});
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200) << path;
    EXPECT_THAT(r->get_header_value("Content-Type"), HasSubstr(type)) << path;
    EXPECT_GT(r->body.size(), 1000u) << path;
    // Revalidated by ETag: unchanged files answer 304 without a body.
    const std::string etag = r->get_header_value("ETag");
    ASSERT_FALSE(etag.empty()) << path;
    auto again = get(path, {{"If-None-Match", etag}});
    ASSERT_TRUE(again);
    EXPECT_EQ(again->status, 304) << path;
    EXPECT_TRUE(again->body.empty()) << path;
  }
  EXPECT_EQ(get("/web/app.js", {{"If-None-Match", "\"other\""}})->status, 200);
  auto head = client_->Head("/");
  ASSERT_TRUE(head);
  EXPECT_EQ(head->status, 200);
  expectError(post("/", "{}", {}), 405);
}

TEST_F(HttpServerTest, StatusSaysWhetherTheApiWantsAToken) {
  start("");
  auto r = get("/status", {});
  ASSERT_TRUE(r);
  EXPECT_EQ(body(r)["token_required"], false);  // the page shows itself read-only
}

TEST_F(HttpServerTest, ARunCarriesItsConfAndTheRunListCanCarryTasks) {
  start();
  auto created = post("/api/v1/dags/etl/runs", R"({"run_id":"with-conf","conf":{"day":"monday","n":3}})");
  ASSERT_TRUE(created);
  ASSERT_EQ(created->status, 201) << created->body;
  EXPECT_EQ(body(created)["conf"], json({{"day", "monday"}, {"n", 3}}));
  putRunningRun();
  EXPECT_TRUE(body(get(std::string("/api/v1/dags/etl/runs/") + kRunIdEncoded))["conf"].is_null());

  // The grid's request: every run with its tasks, in one answer.
  const json runs = body(get("/api/v1/dags/etl/runs?tasks=true"));
  ASSERT_EQ(runs.size(), 2u) << runs.dump();
  for (const json& run : runs) {
    ASSERT_TRUE(run.contains("tasks")) << run.dump();
    if (run["run_id"] == kRunId) {
      ASSERT_EQ(run["tasks"].size(), 2u) << run.dump();
      std::map<std::string, std::string> states;
      for (const json& t : run["tasks"]) states[t["task_id"]] = t["state"];
      EXPECT_EQ(states["a"], "success");
      EXPECT_EQ(states["b"], "running");
    }
  }
  for (const json& run : body(get("/api/v1/dags/etl/runs"))) EXPECT_FALSE(run.contains("tasks")) << run.dump();
  for (const json& run : body(get("/api/v1/dags/etl/runs?tasks=false"))) EXPECT_FALSE(run.contains("tasks"));
  expectError(get("/api/v1/dags/etl/runs?tasks=yes"), 400);
}

// --- errors and limits ------------------------------------------------------------------------------

TEST_F(HttpServerTest, UnknownPathsAndMethodsAreJsonErrors) {
  start();
  expectError(get("/nowhere", {}), 404);
  expectError(get("/web/nowhere.js", {}), 404);
  expectError(get("/web", {}), 404);
  expectError(get("/api/v1"), 404);
  expectError(get("/api/v1/runs"), 404);
  expectError(get("/api/v1/dags/etl/versions"), 404);
  expectError(get("/api/v1/dags/etl/runs/x/tasks/a/frobnicate"), 404);
  expectError(get("/api/v1/dags//runs"), 404);
  auto r = client_->Delete("/api/v1/dags/etl", auth());
  EXPECT_THAT(expectError(r, 405), HasSubstr("PATCH"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->get_header_value("Allow"), "GET, PATCH");
  expectError(post("/api/v1/dags", "{}"), 405);
  expectError(post("/healthz", "{}", {}), 405);
}

TEST_F(HttpServerTest, StoreOutagesAre503) {
  start();
  store_.failAlways(Method::kListDags, unavailable("redis is down"));
  EXPECT_THAT(expectError(get("/api/v1/dags"), 503), HasSubstr("redis is down"));
  store_.failAlways(Method::kCreateRun, unavailable("redis is down"));
  expectError(post("/api/v1/dags/etl/runs", "{}"), 503);
}

TEST_F(HttpServerTest, OversizedBodiesAre413) {
  start();
  const std::string big(1 << 20 | 1, ' ');
  auto r = post("/api/v1/dags/etl/runs", big);
  EXPECT_THAT(expectError(r, 413), HasSubstr("1 MiB"));
  EXPECT_TRUE(store_.runs().empty());
  // Just under the bound is read (and judged on its contents).
  std::string fits = R"({"run_id":"fits"})";
  fits.resize(1 << 20, ' ');
  r = post("/api/v1/dags/etl/runs", fits);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 201) << r->body.substr(0, 200);
}

TEST_F(HttpServerTest, ServesManyClientsAtOnceWithFewWorkers) {
  HttpServerLimits limits;
  limits.worker_threads = 2;
  limits.queued_connections = 2;
  start(kToken, limits);
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int i = 0; i < 16; ++i) {
    threads.emplace_back([&] {
      httplib::Client c("127.0.0.1", server_->port());
      c.set_read_timeout(10s);
      auto r = c.Get("/api/v1/dags", auth());
      if (r && r->status == 200) ++ok;
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(ok.load(), 16);
}

TEST_F(HttpServerTest, StopsAndFreesThePort) {
  start();
  const int port = server_->port();
  // A keep-alive connection is open and idle when the shutdown begins.
  httplib::Client idle("127.0.0.1", port);
  idle.set_keep_alive(true);
  ASSERT_TRUE(idle.Get("/healthz"));
  const auto begun = std::chrono::steady_clock::now();
  server_->stopAccepting();  // returns at once
  EXPECT_LT(std::chrono::steady_clock::now() - begun, 500ms);
  server_->stop();
  EXPECT_LT(std::chrono::steady_clock::now() - begun, 4s) << "idle connections end within the keep-alive timeout";
  httplib::Client c("127.0.0.1", port);
  c.set_connection_timeout(1s);
  EXPECT_FALSE(c.Get("/healthz"));
  server_->stop();  // idempotent
}

// The server's end of a connection from this process to `port` whose local end is `client_fd`:
// the server runs in this process, so its descriptors are found in /proc/self/fd. -1 if none.
int serverEndOf(int client_fd, int port) {
  sockaddr_in mine{};
  socklen_t len = sizeof(mine);
  if (::getsockname(client_fd, reinterpret_cast<sockaddr*>(&mine), &len) != 0) return -1;
  for (const auto& entry : fs::directory_iterator("/proc/self/fd")) {
    const int fd = std::stoi(entry.path().filename().string());
    sockaddr_in local{};
    sockaddr_in peer{};
    socklen_t ll = sizeof(local), pl = sizeof(peer);
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &ll) != 0 || local.sin_family != AF_INET) continue;
    if (::getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &pl) != 0) continue;
    if (ntohs(local.sin_port) == port && peer.sin_port == mine.sin_port) return fd;
  }
  return -1;
}

// Headers and body are two writes: with Nagle's algorithm on, every answer after the first on a
// kept-alive connection waited for the client's delayed ACK (~40 ms) — 200 DAGs' runs on the page
// took seconds to load. The connections the server accepts send at once, and its port is its own.
TEST_F(HttpServerTest, AcceptedConnectionsSendWithoutDelayAndThePortIsNotShared) {
  start();
  const int port = server_->port();
  const int client = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(client, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::connect(client, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  const std::string request = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
  ASSERT_EQ(::write(client, request.data(), request.size()), static_cast<ssize_t>(request.size()));
  char answer[256];
  ASSERT_GT(::read(client, answer, sizeof(answer)), 0) << "the server answered, so it has accepted";
  const int accepted = serverEndOf(client, port);
  ASSERT_GE(accepted, 0) << "the server's end of the connection";
  int on = 0;
  socklen_t len = sizeof(on);
  ASSERT_EQ(::getsockopt(accepted, IPPROTO_TCP, TCP_NODELAY, &on, &len), 0);
  EXPECT_EQ(on, 1) << "TCP_NODELAY on the accepted connection";
  ASSERT_EQ(::getsockopt(accepted, SOL_SOCKET, SO_REUSEPORT, &on, &len), 0);
  EXPECT_EQ(on, 0) << "SO_REUSEPORT would let a second replica share the port";
  ::close(client);
}

// A browser names br among the encodings it takes. httplib's Brotli runs at its highest quality,
// seconds of the scheduler's CPU for a large run's JSON, so the answer comes in gzip instead (a
// hundredth of the CPU for nearly the same size), and in none when br was the only choice.
TEST_F(HttpServerTest, AnswersAreGzippedNotBrotliEvenWhenTheClientPrefersBrotli) {
  start();
  httplib::Client c("127.0.0.1", server_->port());
  c.set_decompress(false);  // see the encoding as sent
  const auto encodingFor = [&](const std::string& accept) {
    auto res = c.Get("/api/v1/dags", httplib::Headers{{"Accept-Encoding", accept}});
    EXPECT_TRUE(res) << accept;
    return res ? res->get_header_value("Content-Encoding") : std::string("no answer");
  };
  EXPECT_EQ(encodingFor("gzip, deflate, br"), "gzip");
  EXPECT_EQ(encodingFor("br;q=1.0, gzip;q=0.8"), "gzip");
  EXPECT_EQ(encodingFor("br"), "");
  EXPECT_EQ(encodingFor("gzip"), "gzip");
}

TEST_F(HttpServerTest, ABusyPortIsAClearStartError) {
  start();
  HttpSettings s = settings(kToken);
  s.port = server_->port();
  s.listen = "127.0.0.1:" + std::to_string(s.port);
  HttpServer second(s, HttpApiDeps{}, nullptr);
  try {
    second.start();
    ADD_FAILURE() << "bound a busy port";
  } catch (const CommandError& e) {
    EXPECT_EQ(e.exitCode(), kExitBadInput);
    EXPECT_THAT(e.what(), HasSubstr("cannot listen on \"" + s.listen + "\""));
  }
}

TEST_F(HttpServerTest, LeoflowStatusShowsTheConfiguredHttpAddress) {
  std::ostringstream text, doc, without;
  EXPECT_EQ(status(store_, clock_, false, text, std::string("127.0.0.1:8790")), 0);
  EXPECT_THAT(text.str(), HasSubstr("http:        127.0.0.1:8790\n"));
  EXPECT_EQ(status(store_, clock_, true, doc, std::string("127.0.0.1:8790")), 0);
  EXPECT_EQ(json::parse(doc.str())["http"], "127.0.0.1:8790");
  EXPECT_EQ(status(store_, clock_, true, without), 0);
  EXPECT_FALSE(json::parse(without.str()).contains("http")) << "no [http]: no address";
  std::ostringstream any;
  status(store_, clock_, false, any, std::string("127.0.0.1:0"));
  EXPECT_THAT(any.str(), HasSubstr("127.0.0.1:0 (a free port: the scheduler's log names it)"));
}

TEST(HttpPercent, DecodesAndEncodes) {
  EXPECT_EQ(percentDecode("a%3Ab%2Bc+d", false), "a:b+c+d");
  EXPECT_EQ(percentDecode("a%3ab+c", true), "a:b c");
  EXPECT_EQ(percentDecode("%", false), std::nullopt);
  EXPECT_EQ(percentDecode("%4", false), std::nullopt);
  EXPECT_EQ(percentDecode("%g0", false), std::nullopt);
  EXPECT_EQ(percentEncode(kRunId), kRunIdEncoded);
  EXPECT_EQ(percentDecode(percentEncode("a b/c%d"), false), "a b/c%d");
}

}  // namespace
}  // namespace leoflow::host
