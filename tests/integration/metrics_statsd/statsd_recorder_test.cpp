// metrics-statsd without a daemon: the line format, batching, tag mode (DogStatsD, which the Etsy
// daemon rejects) against a plain UDP listener that parses every line, and an absent daemon.
#include <regex>
#include <set>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include "lines.h"
#include "statsd_recorder.h"
#include "udp_listener.h"

namespace leoflow::plugins::metrics_statsd {
namespace {

using leoflow::testing::UdpListener;
using ::testing::Contains;
using namespace std::chrono_literals;

std::shared_ptr<spdlog::logger> quietLogger(std::ostringstream& out) {
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(out);
  return std::make_shared<spdlog::logger>("plugin.metrics-statsd", sink);
}

// name:value|type[|@rate][|#k:v,...] — every line the recorder sends must match.
const std::regex kLine(R"(^[A-Za-z0-9_.\-]+:-?[0-9]+(\.[0-9]+)?\|(c|g|ms)(\|@[0-9.]+)?(\|#[a-z_]+:[^,|#:@\s]+(,[a-z_]+:[^,|#:@\s]+)*)?$)");

void driveEveryHook(Recorder& r) {
  r.recordSchedulerDecision("scheduled");
  r.recordTaskTransition(TaskState::kQueued, TaskState::kRunning, "etl.v2");
  r.recordUndispatchable("no_executor");
  r.recordSchedulerStepDown("lock_released");
  r.observeSchedulerReacquire(1500us);
  r.observeTickDuration(2500us);
  r.setDispatchQueueDepth(3);
  r.observeDispatchLatency(700us);
  r.observeTaskDuration("etl.v2", "load:all", "bash", 12'345us);
  r.recordSchedulerHeartbeat();
  r.recordTaskStart("etl.v2", "load:all");
  r.recordTaskFinish("etl.v2", "load:all", TaskState::kFailed);
  r.recordTaskFinish("etl.v2", "load:all", TaskState::kSuccess);
  r.recordRunEnd("etl.v2", DagRunState::kSuccess, 90s, 4s, "team-a");
  r.recordRunEnd("etl.v2", DagRunState::kFailed, 1s, std::nullopt, "team-a");
  r.setTaskGauges(2, 5, 7);
  // SDK 3.2: the task hooks with the run's tenant
  const TaskLabels labelled{"etl.v2", "load:all", "bash", "team-a"};
  r.recordTaskStartLabelled(labelled);
  r.recordTaskFinishLabelled(labelled, TaskState::kSuccess);
  r.observeTaskDurationLabelled(labelled, 7ms);
}

TEST(StatsdLines, IdsAreSanitisedAndLinesFollowTheProtocol) {
  EXPECT_EQ(sanitize("a.b:c|d@e"), "a_b_c_d_e");
  EXPECT_EQ(formatLine("p.x", MetricType::kCounter, 1), "p.x:1|c");
  EXPECT_EQ(formatLine("p.t", MetricType::kTimer, 12.5), "p.t:12.500|ms");
  EXPECT_EQ(formatLine("p.t", MetricType::kTimer, 3, 0.25), "p.t:3|ms|@0.25");
  EXPECT_EQ(formatLine("p.g", MetricType::kGauge, 4, 0.5), "p.g:4|g");
  EXPECT_EQ(formatLine("p.c", MetricType::kCounter, 1, 1.0, {{"dag_id", "a.b|c"}, {"state", "failed"}}),
            "p.c:1|c|#dag_id:a.b_c,state:failed");
}

TEST(StatsdLines, DatagramsStayWithinTheLimit) {
  std::vector<std::string> lines;
  for (int i = 0; i < 100; ++i) lines.push_back("leoflow.metric_" + std::to_string(i) + ":1|c");
  lines.push_back(std::string(300, 'x'));
  std::size_t oversized = 0;
  auto grams = packDatagrams(lines, 200, oversized);
  EXPECT_EQ(oversized, 1u);
  std::size_t count = 0;
  for (const auto& g : grams) {
    EXPECT_LE(g.size(), 200u);
    count += static_cast<std::size_t>(std::count(g.begin(), g.end(), '\n') + 1);
  }
  EXPECT_EQ(count, 100u);
}

TEST(StatsdRecorder, PlainModeNamesCarryTheSanitisedIds) {
  UdpListener listener;
  std::ostringstream log;
  RecorderOptions o;
  o.sender.address = listener.address();
  StatsdRecorder r(o, quietLogger(log));
  driveEveryHook(r);
  r.sender().flush();
  ASSERT_TRUE(listener.waitForLines(26));
  const auto lines = listener.lines();
  for (const auto& l : lines) {
    EXPECT_TRUE(std::regex_match(l, kLine)) << l;
    EXPECT_EQ(l.find("team"), std::string::npos) << "plain names carry no tenant: " << l;
  }
  const std::set<std::string> got(lines.begin(), lines.end());
  for (const char* want : {"leoflow.scheduler.decisions.scheduled:1|c",
                           "leoflow.dag.etl_v2.load_all.duration:7|ms",
                           "leoflow.scheduler.task_transitions.queued.running:1|c",
                           "leoflow.scheduler.undispatchable.no_executor:1|c",
                           "leoflow.scheduler.step_downs.lock_released:1|c",
                           "leoflow.scheduler.reacquire:1.500|ms",
                           "leoflow.scheduler.tick_duration:2.500|ms",
                           "leoflow.dispatch.queue_depth:3|g",
                           "leoflow.dispatch.latency:0.700|ms",
                           "leoflow.dag.etl_v2.load_all.duration:12.345|ms",
                           "leoflow.scheduler_heartbeat:1|c",
                           "leoflow.ti.start.etl_v2.load_all:1|c",
                           "leoflow.ti.finish.etl_v2.load_all.failed:1|c",
                           "leoflow.ti.finish.etl_v2.load_all.success:1|c",
                           "leoflow.ti_failures:1|c",
                           "leoflow.ti_successes:1|c",
                           "leoflow.dagrun.duration.success.etl_v2:90000|ms",
                           "leoflow.dagrun.schedule_delay.etl_v2:4000|ms",
                           "leoflow.dagrun.duration.failed.etl_v2:1000|ms",
                           "leoflow.scheduler.tasks.running:2|g",
                           "leoflow.executor.queued_tasks:5|g",
                           "leoflow.executor.running_tasks:2|g",
                           "leoflow.executor.open_slots:7|g"}) {
    EXPECT_EQ(got.count(want), 1u) << want;
  }
  EXPECT_EQ(r.sender().dropped(), 0u);
}

TEST(StatsdRecorder, DecisionsCountedTogetherAreOneCounterLineCarryingTheCount) {
  // A tick that leaves 20,000 tasks waiting for capacity counts 20,000 backpressure decisions: one
  // line, not 20,000.
  UdpListener listener;
  std::ostringstream log;
  RecorderOptions o;
  o.sender.address = listener.address();
  StatsdRecorder r(o, quietLogger(log));
  r.recordSchedulerDecisions("backpressure", 20'000);
  r.recordSchedulerDecisions("backpressure", 0);  // nothing to count: no line
  r.recordSchedulerDecision("queued");
  r.sender().flush();
  ASSERT_TRUE(listener.waitForLines(2));
  std::this_thread::sleep_for(100ms);  // a stray third line would have arrived by now
  EXPECT_THAT(listener.lines(), ::testing::UnorderedElementsAre("leoflow.scheduler.decisions.backpressure:20000|c",
                                                                "leoflow.scheduler.decisions.queued:1|c"));
}

TEST(StatsdRecorder, TagModeMovesIdsIntoDogStatsdTags) {
  UdpListener listener;
  std::ostringstream log;
  RecorderOptions o;
  o.sender.address = listener.address();
  o.prefix = "lf";
  o.tags = true;
  StatsdRecorder r(o, quietLogger(log));
  driveEveryHook(r);
  r.sender().flush();
  ASSERT_TRUE(listener.waitForLines(26));
  const auto lines = listener.lines();
  for (const auto& l : lines) {
    EXPECT_TRUE(std::regex_match(l, kLine)) << l;
    EXPECT_EQ(l.find("etl_v2"), std::string::npos) << "an id left in a name: " << l;
  }
  const std::set<std::string> got(lines.begin(), lines.end());
  for (const char* want : {"lf.scheduler.task_transitions.queued.running:1|c|#dag_id:etl.v2",
                           "lf.task.duration:12.345|ms|#dag_id:etl.v2,task_id:load_all",
                           "lf.ti.start:1|c|#dag_id:etl.v2,task_id:load_all",
                           "lf.ti.finish:1|c|#dag_id:etl.v2,task_id:load_all,state:failed",
                           "lf.ti.finish:1|c|#dag_id:etl.v2,task_id:load_all,state:success",
                           "lf.dagrun.duration.success:90000|ms|#dag_id:etl.v2,tenant:team-a",
                           "lf.dagrun.schedule_delay:4000|ms|#dag_id:etl.v2,tenant:team-a",
                           "lf.dagrun.duration.failed:1000|ms|#dag_id:etl.v2,tenant:team-a",
                           "lf.ti.start:1|c|#dag_id:etl.v2,task_id:load_all,tenant:team-a",
                           "lf.ti.finish:1|c|#dag_id:etl.v2,task_id:load_all,tenant:team-a,state:success",
                           "lf.task.duration:7|ms|#dag_id:etl.v2,task_id:load_all,tenant:team-a",
                           "lf.scheduler_heartbeat:1|c", "lf.executor.open_slots:7|g"}) {
    EXPECT_EQ(got.count(want), 1u) << want;
  }
}

TEST(StatsdRecorder, LinesAreBatchedIntoDatagramsBelowMaxPacketBytesWithinAFlushInterval) {
  UdpListener listener;
  std::ostringstream log;
  RecorderOptions o;
  o.sender.address = listener.address();
  o.sender.max_packet_bytes = 256;
  StatsdRecorder r(o, quietLogger(log));
  for (int i = 0; i < 200; ++i) r.recordTaskStart("dag", "task_" + std::to_string(i));
  // No flush(): the sender sends on its own within its 100 ms interval.
  ASSERT_TRUE(listener.waitForLines(200, 2s));
  const auto grams = listener.datagrams();
  EXPECT_LT(grams.size(), 50u);  // batched, not one datagram per line
  for (const auto& g : grams) EXPECT_LE(g.size(), 256u);
}

TEST(StatsdRecorder, AnAbsentDaemonNeitherBlocksNorThrowsAndDropsAreCountedAndLoggedOnce) {
  int port = 0;
  {
    UdpListener closed;  // a port that was just free: nothing listens there any more
    port = std::stoi(closed.address().substr(closed.address().rfind(':') + 1));
  }
  std::ostringstream log;
  RecorderOptions o;
  o.sender.address = "127.0.0.1:" + std::to_string(port);
  o.sender.max_queued_lines = 1000;
  StatsdRecorder r(o, quietLogger(log));
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 20'000; ++i) r.recordTaskStart("dag", "task");
  const auto spent = std::chrono::steady_clock::now() - start;
  EXPECT_LT(spent, 500ms);  // queueing only, never the network
  for (int i = 0; i < 5; ++i) {
    r.sender().flush();
    r.recordSchedulerHeartbeat();
  }
  r.sender().flush();
  EXPECT_GE(r.sender().dropped(), 19'000u);  // the queue holds 1000; the rest were refused at once
}

TEST(StatsdRecorder, AnUnresolvableAddressDropsEverythingQuietly) {
  std::ostringstream log;
  RecorderOptions o;
  o.sender.address = "no-such-host.invalid:8125";
  StatsdRecorder r(o, quietLogger(log));
  r.recordSchedulerHeartbeat();
  r.sender().flush();
  EXPECT_EQ(r.sender().dropped(), 1u);
  EXPECT_EQ(r.sender().datagramsSent(), 0u);
}

}  // namespace
}  // namespace leoflow::plugins::metrics_statsd
