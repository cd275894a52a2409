// Inline http_api tasks end to end: a real `leoflow scheduler` with inline-http as its
// [inline_runner], against an HTTP server the test runs on loopback (cpp-httplib), on every store.
#include <signal.h>

#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

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
using std::chrono::steady_clock;

class InlineHttpE2e : public StoreTest {};
INSTANTIATE_FOR_EVERY_STORE(InlineHttpE2e);

// A loopback server: /ok answers 200; /flaky 503 the first time, then 200; /hang holds the first
// request until the test ends, then answers 200 at once. Every request is stamped.
class Endpoint {
 public:
  Endpoint() {
    auto handle = [this](const httplib::Request& req, httplib::Response& res) {
      int n = 0;
      {
        std::lock_guard lock(mutex_);
        hits_[req.path].push_back(steady_clock::now());
        n = static_cast<int>(hits_[req.path].size());
        tenants_.push_back(req.get_header_value("X-Leoflow-Tenant"));
      }
      if (req.path == "/flaky" && n == 1) {
        res.status = 503;
        res.set_content("try again later\n", "text/plain");
        return;
      }
      if (req.path == "/hang" && n == 1) {
        while (!release_) std::this_thread::sleep_for(20ms);
      }
      res.set_content("{\"ok\":true,\"body\":" + (req.body.empty() ? std::string("null") : req.body) + "}",
                      "application/json");
    };
    server_.Get(".*", handle);
    server_.Post(".*", handle);
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    while (!server_.is_running()) std::this_thread::sleep_for(2ms);
  }
  ~Endpoint() {
    release_ = true;
    server_.stop();
    thread_.join();
  }
  std::string url(const std::string& path) const { return "http://127.0.0.1:" + std::to_string(port_) + path; }
  std::vector<steady_clock::time_point> hits(const std::string& path) {
    std::lock_guard lock(mutex_);
    return hits_[path];
  }
  std::vector<std::string> tenants() {
    std::lock_guard lock(mutex_);
    return tenants_;
  }

 private:
  httplib::Server server_;
  std::thread thread_;
  int port_ = 0;
  std::atomic<bool> release_{false};
  std::mutex mutex_;
  std::map<std::string, std::vector<steady_clock::time_point>> hits_;
  std::vector<std::string> tenants_;
};

json httpTask(const std::string& id, const std::string& url, std::vector<std::string> deps = {}) {
  return {{"task_id", id}, {"type", "http_api"}, {"depends_on", deps}, {"http_request", {{"url", url}}}};
}

std::map<std::string, json> tasksById(const json& run) {
  std::map<std::string, json> out;
  for (const json& t : run["tasks"]) out[t["task_id"]] = t;
  return out;
}

// The stack's config with an [inline_runner] whose logs go to `logs`.
E2eStack::Options withInlineRunner(E2eStack::Options o, const TempDir& logs) {
  o.extra_toml = "[inline_runner]\nplugin = \"inline-http\"\n[inline_runner.config]\nmax_parallel = 4\n"
                 "log_dir = \"" + logs.path().string() + "\"\n";
  return o;
}

TEST_P(InlineHttpE2e, HttpTasksRunAndAFailingOneIsRetriedAfterItsDelay) {
  Endpoint endpoint;
  TempDir logs("inline-http-logs");
  E2eStack stack("inline-http", withInlineRunner(options(), logs));
  json call = httpTask("call", endpoint.url("/ok"));
  call["http_request"]["method"] = "POST";
  call["http_request"]["body"] = {{"k", 1}};
  json flaky = httpTask("flaky", endpoint.url("/flaky"), {"call"});
  flaky["retries"] = 2;
  flaky["retry_delay_seconds"] = 2;
  stack.writeDag({{"dag_id", "http_e2e"}, {"tenant", "acme"}, {"tasks", json::array({call, flaky})}});
  auto sync = stack.leoflow("dags sync " + (stack.dir() / "dags").string());
  ASSERT_EQ(sync.exit_code, 0) << sync.err;
  auto scheduler = stack.startScheduler("s1");
  auto trigger = stack.leoflow("runs trigger http_e2e --run-id r1 --wait --timeout 60");
  ASSERT_EQ(trigger.exit_code, 0) << trigger.err << scheduler->log();
  auto run = stack.waitForRun("http_e2e", "r1", 5s);
  ASSERT_TRUE(run);
  EXPECT_EQ((*run)["state"], "success");
  auto tasks = tasksById(*run);
  EXPECT_EQ(tasks["call"]["state"], "success");
  EXPECT_EQ(tasks["flaky"]["state"], "success");
  EXPECT_EQ(tasks["flaky"]["try_number"], 2);
  const auto flaky_hits = endpoint.hits("/flaky");
  ASSERT_EQ(flaky_hits.size(), 2u);
  EXPECT_GE(flaky_hits[1] - flaky_hits[0], 1900ms);  // the retry waited out retry_delay_seconds
  EXPECT_EQ(endpoint.hits("/ok").size(), 1u);
  EXPECT_THAT(endpoint.tenants(), ::testing::Each(std::string("acme")));

  auto log = stack.leoflow("tasks logs r1 call");
  ASSERT_EQ(log.exit_code, 0) << log.err;
  EXPECT_THAT(log.out, HasSubstr("leoflow: command POST " + endpoint.url("/ok")));
  EXPECT_THAT(log.out, HasSubstr("< HTTP/1.1 200 OK"));
  EXPECT_THAT(log.out, HasSubstr("{\"ok\":true,\"body\":{\"k\":1}}"));
  EXPECT_THAT(log.out, HasSubstr("leoflow: outcome success"));
  auto first_try = stack.leoflow("tasks logs r1 flaky --try 1");
  ASSERT_EQ(first_try.exit_code, 0) << first_try.err;
  EXPECT_THAT(first_try.out, HasSubstr("< HTTP/1.1 503"));
  EXPECT_THAT(first_try.out, HasSubstr("leoflow: outcome failed: HTTP 503"));
}

TEST_P(InlineHttpE2e, ASchedulerKilledMidRequestLeavesAnAttemptTheReaperRetries) {
  Endpoint endpoint;
  TempDir logs("inline-http-kill-logs");
  E2eStack::Options o = withInlineRunner(options(), logs);
  o.agent_lost_threshold_s = 3;
  E2eStack stack("inline-http-kill", o);
  json hang = httpTask("hang", endpoint.url("/hang"));
  hang["retries"] = 1;
  stack.writeDag({{"dag_id", "http_kill"}, {"tasks", json::array({hang})}});
  ASSERT_EQ(stack.leoflow("dags sync " + (stack.dir() / "dags").string()).exit_code, 0);
  auto first = stack.startScheduler("s1");
  ASSERT_EQ(stack.leoflow("runs trigger http_kill --run-id k1").exit_code, 0);
  const auto deadline = steady_clock::now() + 30s;
  while (endpoint.hits("/hang").empty() && steady_clock::now() < deadline) std::this_thread::sleep_for(50ms);
  ASSERT_EQ(endpoint.hits("/hang").size(), 1u) << first->log();
  first->signal(SIGKILL);
  first->wait(10s);
  auto second = stack.startScheduler("s2");
  auto run = stack.waitForRun("http_kill", "k1", 60s);
  ASSERT_TRUE(run) << second->log();
  EXPECT_EQ((*run)["state"], "success");
  EXPECT_EQ((*run)["tasks"][0]["try_number"], 2);
  EXPECT_EQ(endpoint.hits("/hang").size(), 2u);
}

}  // namespace
}  // namespace leoflow::testing
