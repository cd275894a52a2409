// The HTTP server of a running scheduler (docs/operating.md §4.9), end to end on every store: health
// and status, the token, a run triggered, followed by its log's offsets and cancelled through the API.
#include <signal.h>

#include <cerrno>
#include <fstream>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <httplib.h>

#include "support/e2e_stack.h"
#include "support/store_test.h"

namespace leoflow::testing {
namespace {

using ::testing::HasSubstr;
using nlohmann::json;
using namespace std::chrono_literals;

class HttpEndToEnd : public StoreTest {};
INSTANTIATE_FOR_EVERY_STORE(HttpEndToEnd);

json task(const std::string& id, const std::string& cmd) {
  return {{"task_id", id}, {"type", "bash"}, {"entrypoint", cmd}};
}

constexpr const char* kToken = "s3cret-token";

struct Api {
  explicit Api(int port) : client("127.0.0.1", port) {
    client.set_read_timeout(10, 0);
    client.set_connection_timeout(5, 0);
  }
  httplib::Headers auth() const { return {{"Authorization", std::string("Bearer ") + kToken}}; }
  httplib::Result get(const std::string& path, bool with_token = true) {
    return client.Get(path.c_str(), with_token ? auth() : httplib::Headers{});
  }
  httplib::Result post(const std::string& path, const json& body) {
    return client.Post(path.c_str(), auth(), body.dump(), "application/json");
  }
  httplib::Client client;
};

bool waitFor(const std::function<bool()>& pred, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(100ms);
  }
  return false;
}

TEST_P(HttpEndToEnd, ARunIsTriggeredFollowedByItsLogOffsetsAndCancelledThroughTheApi) {
  const int port = freePort();
  E2eStack::Options opts = options();
  opts.extra_toml = "[http]\nlisten = \"127.0.0.1:" + std::to_string(port) + "\"\ntoken = \"" + kToken + "\"\n";
  E2eStack stack("http", opts);
  const auto pid_file = stack.dir() / "sleep.pid";
  stack.writeDag({{"dag_id", "talk"},
                  {"tasks", json::array({task("t", "for i in 1 2 3 4; do echo line $i; sleep 0.4; done")})}});
  stack.writeDag({{"dag_id", "nap"},
                  {"tasks", json::array({task("s", "echo $$ > " + pid_file.string() + " && exec sleep 60")})}});
  ASSERT_EQ(stack.leoflow("dags sync " + (stack.dir() / "dags").string()).exit_code, 0);
  auto scheduler = stack.startScheduler("s1");
  Api api(port);

  // Health without a token; the leader says so in /status once it leads.
  ASSERT_TRUE(waitFor(
      [&] {
        auto r = api.get("/healthz", false);
        return r && r->status == 200;
      },
      30s))
      << scheduler->log();
  ASSERT_TRUE(waitFor(
      [&] {
        auto r = api.get("/status", false);
        return r && r->status == 200 && json::parse(r->body)["role"] == "leader";
      },
      30s))
      << scheduler->log();
  auto status = stack.leoflow("status");
  EXPECT_THAT(status.out, HasSubstr(std::to_string(port)));

  // The API wants the token.
  auto refused = api.get("/api/v1/dags", false);
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 401);
  auto dags = api.get("/api/v1/dags");
  ASSERT_TRUE(dags);
  ASSERT_EQ(dags->status, 200) << dags->body;
  EXPECT_EQ(json::parse(dags->body).size(), 2u);

  // Trigger with a run id that needs percent-encoding, then follow the log by offset while it runs.
  auto created = api.post("/api/v1/dags/talk/runs", {{"run_id", "api:1+x"}});
  ASSERT_TRUE(created);
  ASSERT_EQ(created->status, 201) << created->body;
  EXPECT_EQ(json::parse(created->body)["run_id"], "api:1+x");
  std::string text;
  std::uint64_t offset = 0;
  int reads_while_running = 0;
  const bool completed = waitFor(
      [&] {
        auto r = api.get("/api/v1/dags/talk/runs/api%3A1%2Bx/tasks/t/logs?offset=" + std::to_string(offset));
        if (!r || r->status != 200) return false;  // 404 until the attempt started
        text += r->body;
        offset = std::stoull(r->get_header_value("X-Log-Next-Offset"));
        if (r->get_header_value("X-Log-Complete") == "true") return true;
        ++reads_while_running;
        return false;
      },
      60s);
  ASSERT_TRUE(completed) << text << scheduler->log();
  EXPECT_GT(reads_while_running, 0) << "the log was never read while the task ran";
  EXPECT_THAT(text, HasSubstr("line 1\nline 2\nline 3\nline 4\n"));
  EXPECT_THAT(text, HasSubstr("exit code 0"));
  EXPECT_EQ(offset, text.size());  // the pieces add up to the whole log, nothing twice
  auto shown = api.get("/api/v1/dags/talk/runs/api%3A1%2Bx");
  ASSERT_TRUE(shown);
  EXPECT_EQ(json::parse(shown->body)["state"], "success");

  // Cancel a running run: its process is stopped and the answer is the updated run.
  auto nap = api.post("/api/v1/dags/nap/runs", {{"run_id", "n1"}});
  ASSERT_TRUE(nap);
  ASSERT_EQ(nap->status, 201) << nap->body;
  pid_t pid = 0;
  ASSERT_TRUE(waitFor(
      [&] {
        std::ifstream in(pid_file);
        return static_cast<bool>(in >> pid) && pid > 0;
      },
      30s))
      << scheduler->log();
  auto cancelled = api.post("/api/v1/dags/nap/runs/n1/cancel", json::object());
  ASSERT_TRUE(cancelled);
  ASSERT_EQ(cancelled->status, 200) << cancelled->body;
  const json run = json::parse(cancelled->body);
  EXPECT_EQ(run["state"], "failed");
  EXPECT_EQ(run["note"], "cancelled by api");
  EXPECT_TRUE(waitFor([&] { return ::kill(pid, 0) != 0 && errno == ESRCH; }, 10s)) << scheduler->log();
  auto again = api.post("/api/v1/dags/nap/runs/n1/cancel", json::object());
  ASSERT_TRUE(again);
  EXPECT_EQ(again->status, 409);
  EXPECT_TRUE(json::parse(again->body).contains("error"));
}

}  // namespace
}  // namespace leoflow::testing
