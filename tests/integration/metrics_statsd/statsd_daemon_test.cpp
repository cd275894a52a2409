// metrics-statsd against the real Etsy StatsD daemon (scripts/servers/statsd.sh; suite
// needs-statsd): a leoflow scheduler with the recorder configured runs DAGs across a retry and a
// failure, then the counters, timers and gauges are read back through the daemon's management port
// and checked per DAG and task. No line may be malformed (statsd.bad_lines_seen stays 0).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <map>
#include <regex>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "support/e2e_stack.h"
#include "udp_listener.h"

namespace leoflow::testing {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

// One management command ("counters", "timers", "gauges"): its answer up to "END".
std::string management(int port, const std::string& command) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  ::inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    ::close(fd);
    return "";
  }
  const std::string line = command + "\n";
  (void)!::write(fd, line.data(), line.size());
  std::string out;
  char buf[65536];
  while (out.find("END") == std::string::npos) {
    const ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n <= 0) break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return out;
}

// util.inspect's `{ 'a.b': 3, ... }` (counters, gauges).
std::map<std::string, double> numbers(const std::string& text) {
  std::map<std::string, double> m;
  static const std::regex re(R"('([^']+)':\s*(-?[0-9.]+(e[-+]?[0-9]+)?))");
  for (auto it = std::sregex_iterator(text.begin(), text.end(), re); it != std::sregex_iterator(); ++it) {
    m[(*it)[1]] = std::stod((*it)[2]);
  }
  return m;
}

// `{ 'a.b': [ 1.5, 2 ], ... }` (timers): how many samples each timer holds.
std::map<std::string, std::vector<double>> samples(const std::string& text) {
  std::map<std::string, std::vector<double>> m;
  static const std::regex re(R"('([^']+)':\s*\[([^\]]*)\])");
  static const std::regex num(R"(-?[0-9.]+)");
  for (auto it = std::sregex_iterator(text.begin(), text.end(), re); it != std::sregex_iterator(); ++it) {
    const std::string body = (*it)[2];
    auto& v = m[(*it)[1]];
    for (auto n = std::sregex_iterator(body.begin(), body.end(), num); n != std::sregex_iterator(); ++n) {
      v.push_back(std::stod((*n)[0]));
    }
  }
  return m;
}

class StatsdDaemon : public ::testing::Test {
 protected:
  void SetUp() override {
    address_ = env("LEOFLOW_TEST_STATSD_ADDRESS");
    const std::string mgmt = env("LEOFLOW_TEST_STATSD_MGMT_PORT");
    std::string why;
    if (address_.empty() || mgmt.empty()) {
      why = "no StatsD daemon (scripts/servers/statsd.sh sets LEOFLOW_TEST_STATSD_ADDRESS)";
      if (!env("LEOFLOW_TEST_STATSD_ERROR").empty()) why += ": " + env("LEOFLOW_TEST_STATSD_ERROR");
    } else if (auto stack = stackUnavailable("redis")) {
      why = *stack;
    }
    if (!why.empty()) {
      if (inCi()) FAIL() << why << " (CI=true: nothing may be skipped)";
      GTEST_SKIP() << why;
    }
    mgmt_port_ = std::stoi(mgmt);
  }

  /// A prefix of this test's own on the shared daemon.
  static std::string prefix() { return "lftest" + std::to_string(::getpid()); }

  std::string address_;
  int mgmt_port_ = 0;
};

json task(const std::string& id, const std::string& cmd, std::vector<std::string> deps = {}) {
  return {{"task_id", id}, {"type", "bash"}, {"entrypoint", cmd}, {"depends_on", deps}};
}

TEST_F(StatsdDaemon, CountersTimersAndGaugesPerDagAndTaskAcrossARetryAndAFailure) {
  // Two recorders at once: the daemon, and a DogStatsD-tagged one to a plain UDP listener (the
  // Etsy daemon rejects tags), whose every line is parsed.
  UdpListener tagged;
  E2eStack::Options o;
  o.store = "redis";
  o.extra_toml = "[[recorder]]\nplugin = \"metrics-statsd\"\n[recorder.config]\naddress = \"" + address_ +
                 "\"\nprefix = \"" + prefix() + "\"\n" +
                 "[[recorder]]\nplugin = \"metrics-statsd\"\n[recorder.config]\naddress = \"" + tagged.address() +
                 "\"\ntags = true\nmax_packet_bytes = 512\n";
  E2eStack stack("statsd", o);
  json flaky = task("extract", "test \"$LEOFLOW_TRY_NUMBER\" -ge 2");  // fails once, then succeeds
  flaky["retries"] = 1;
  flaky["retry_delay_seconds"] = 0;
  stack.writeDag({{"dag_id", "flaky"}, {"tasks", json::array({flaky, task("load", "true", {"extract"})})}});
  stack.writeDag({{"dag_id", "broken"}, {"tasks", json::array({task("boom", "exit 3")})}});
  ASSERT_EQ(stack.leoflow("dags sync " + (stack.dir() / "dags").string()).exit_code, 0);
  auto scheduler = stack.startScheduler("s1");
  auto ok = stack.leoflow("runs trigger flaky --run-id f1 --wait --timeout 60");
  ASSERT_EQ(ok.exit_code, 0) << ok.err << scheduler->log();
  auto bad = stack.leoflow("runs trigger broken --run-id b1 --wait --timeout 60");
  ASSERT_EQ(bad.exit_code, 1) << bad.err << scheduler->log();

  const std::string p = prefix() + ".";
  std::map<std::string, double> counters, gauges;
  std::map<std::string, std::vector<double>> timers;
  // The recorder flushes every 100 ms and the gauges come with each full tick (200 ms here).
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  do {
    std::this_thread::sleep_for(200ms);
    counters = numbers(management(mgmt_port_, "counters"));
    gauges = numbers(management(mgmt_port_, "gauges"));
    timers = samples(management(mgmt_port_, "timers"));
  } while (std::chrono::steady_clock::now() < deadline &&
           (counters[p + "ti_failures"] < 2 || timers[p + "dagrun.duration.failed.broken"].empty() ||
            !gauges.count(p + "executor.open_slots")));

  EXPECT_EQ(counters["statsd.bad_lines_seen"], 0);
  // Per DAG and task: the retried task started twice, failed once, succeeded once.
  EXPECT_EQ(counters[p + "ti.start.flaky.extract"], 2);
  EXPECT_EQ(counters[p + "ti.finish.flaky.extract.failed"], 1);
  EXPECT_EQ(counters[p + "ti.finish.flaky.extract.success"], 1);
  EXPECT_EQ(counters[p + "ti.start.flaky.load"], 1);
  EXPECT_EQ(counters[p + "ti.finish.flaky.load.success"], 1);
  EXPECT_EQ(counters.count(p + "ti.finish.flaky.load.failed"), 0u);
  EXPECT_EQ(counters[p + "ti.start.broken.boom"], 1);
  EXPECT_EQ(counters[p + "ti.finish.broken.boom.failed"], 1);
  EXPECT_EQ(counters[p + "ti_successes"], 2);
  EXPECT_EQ(counters[p + "ti_failures"], 2);
  EXPECT_GT(counters[p + "scheduler_heartbeat"], 0);
  EXPECT_EQ(counters[p + "scheduler.decisions.retry"], 1);
  EXPECT_GE(counters[p + "scheduler.task_transitions.scheduled.queued"], 4);

  EXPECT_EQ(timers[p + "dag.flaky.extract.duration"].size(), 2u);
  EXPECT_EQ(timers[p + "dag.flaky.load.duration"].size(), 1u);
  EXPECT_EQ(timers[p + "dag.broken.boom.duration"].size(), 1u);
  ASSERT_EQ(timers[p + "dagrun.duration.success.flaky"].size(), 1u);
  EXPECT_GT(timers[p + "dagrun.duration.success.flaky"][0], 0);
  EXPECT_EQ(timers[p + "dagrun.duration.failed.broken"].size(), 1u);
  EXPECT_EQ(timers.count(p + "dagrun.duration.failed.flaky"), 0u);
  EXPECT_EQ(timers.count(p + "dagrun.schedule_delay.flaky"), 0u);  // manual runs have no slot
  EXPECT_FALSE(timers[p + "scheduler.tick_duration"].empty());
  EXPECT_FALSE(timers[p + "dispatch.latency"].empty());

  // Gauges: nothing is left running once both runs ended.
  ASSERT_TRUE(gauges.count(p + "scheduler.tasks.running")) << management(mgmt_port_, "gauges");
  EXPECT_EQ(gauges[p + "scheduler.tasks.running"], 0);
  EXPECT_EQ(gauges[p + "executor.running_tasks"], 0);
  EXPECT_EQ(gauges[p + "executor.queued_tasks"], 0);
  EXPECT_GT(gauges[p + "executor.open_slots"], 0);
  EXPECT_EQ(gauges[p + "dispatch.queue_depth"], 0);

  // The tagged recorder saw the same events, ids in tags (it flushes on the same 100 ms beat).
  std::this_thread::sleep_for(300ms);
  static const std::regex line(
      R"(^leoflow\.[a-z_.]+:-?[0-9]+(\.[0-9]+)?\|(c|g|ms)(\|#[a-z_]+:[^,|#:@\s]+(,[a-z_]+:[^,|#:@\s]+)*)?$)");
  std::map<std::string, int> seen;
  for (const std::string& d : tagged.datagrams()) EXPECT_LE(d.size(), 512u);
  for (const std::string& l : tagged.lines()) {
    EXPECT_TRUE(std::regex_match(l, line)) << l;
    ++seen[l.substr(0, l.find(':')) + (l.find("|#") != std::string::npos ? l.substr(l.find("|#")) : "")];
  }
  // Task metrics carry the run's tenant, noted by the replica that handed the attempt over.
  EXPECT_EQ((seen["leoflow.ti.start|#dag_id:flaky,task_id:extract,tenant:default"]), 2);
  EXPECT_EQ((seen["leoflow.ti.finish|#dag_id:flaky,task_id:extract,tenant:default,state:failed"]), 1);
  EXPECT_EQ((seen["leoflow.ti.finish|#dag_id:flaky,task_id:extract,tenant:default,state:success"]), 1);
  EXPECT_EQ((seen["leoflow.ti.finish|#dag_id:broken,task_id:boom,tenant:default,state:failed"]), 1);
  EXPECT_EQ((seen["leoflow.dagrun.duration.success|#dag_id:flaky,tenant:default"]), 1);
  EXPECT_EQ((seen["leoflow.dagrun.duration.failed|#dag_id:broken,tenant:default"]), 1);
  EXPECT_EQ((seen["leoflow.task.duration|#dag_id:flaky,task_id:extract,tenant:default"]), 2);
  EXPECT_GT((seen["leoflow.scheduler_heartbeat"]), 0);
}

}  // namespace
}  // namespace leoflow::testing
