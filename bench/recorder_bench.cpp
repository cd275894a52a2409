// recorder_bench: what the scheduler loop pays for its Recorder calls with metrics-statsd
// (plugins/metrics-statsd), against a no-op Recorder measured in the same run (issue 13: "the
// loop's tick time with the daemon stopped is a benchmark figure, not a timed test").
//
// One iteration is one tick's worth of Recorder calls, as the engine makes them on a leader tick:
// `transitions` × recordTaskTransition (plus one recordSchedulerDecision per task, as a launch
// makes), then recordSchedulerHeartbeat, observeTickDuration, setDispatchQueueDepth and
// setTaskGauges. The recorder is created through StatsdRecorderFactory (the plugin's own config
// path) and called through `Recorder&`, as the host calls it.
//
//   recorder/noop/tick<N>            the reference: a Recorder whose hooks do nothing
//   recorder/statsd_stopped/tick<N>  address = a closed loopback UDP port (the daemon is stopped)
//   recorder/statsd_live/tick<N>     address = a UDP socket this program opens and drains
//
// Between ticks (timing paused) the statsd sender is flushed, as it is between real ticks (one a
// second by default): the figure is a tick's cost with the sender caught up, not a queue that fills
// at millions of lines a second and then drops. The sender thread still runs beside the timed tick
// (it wakes once 8 datagrams' worth are queued). Counters: ns_per_call, datagrams sent and samples
// dropped per tick. After the run a summary prints each figure's ratio to the no-op reference.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <benchmark/benchmark.h>
#include <spdlog/logger.h>
#include <spdlog/sinks/null_sink.h>

#include "factory.h"
#include "null_roles.h"
#include "statsd_recorder.h"

namespace leoflow::bench {
namespace {

using namespace std::chrono_literals;
using plugins::metrics_statsd::StatsdRecorder;
using plugins::metrics_statsd::StatsdRecorderFactory;

[[noreturn]] void die(const std::string& why) {
  std::fprintf(stderr, "recorder_bench: %s\n", why.c_str());
  std::exit(1);
}

sockaddr_in loopback(std::uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  return a;
}

std::uint16_t boundPort(int fd) {
  sockaddr_in a{};
  socklen_t len = sizeof(a);
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) die("getsockname");
  return ntohs(a.sin_port);
}

// A loopback UDP port nothing listens on: bound to find a free one, then closed again.
std::uint16_t closedPort() {
  const int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in a = loopback(0);
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) die("bind (closed port)");
  const std::uint16_t port = boundPort(fd);
  ::close(fd);
  return port;
}

// A live daemon stand-in: a loopback UDP socket whose thread reads and discards every datagram.
class DrainingSocket {
 public:
  DrainingSocket() {
    fd_ = ::socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in a = loopback(0);
    if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) die("bind (live socket)");
    int buf = 4 << 20;
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf));
    timeval tv{0, 50'000};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    port_ = boundPort(fd_);
    thread_ = std::thread([this] {
      char data[70'000];
      while (!stop_.load(std::memory_order_relaxed)) {
        if (::recv(fd_, data, sizeof(data), 0) > 0) received_.fetch_add(1, std::memory_order_relaxed);
      }
    });
  }
  ~DrainingSocket() {
    stop_ = true;
    thread_.join();
    ::close(fd_);
  }
  DrainingSocket(const DrainingSocket&) = delete;
  DrainingSocket& operator=(const DrainingSocket&) = delete;
  std::uint16_t port() const { return port_; }
  std::uint64_t received() const { return received_.load(); }
  /// Whether a datagram arrived within `timeout`: the reader thread counts them a moment after the
  /// sender's flush() returns (on a loaded machine, after the benchmark's single smoke iteration).
  bool receivedAnyWithin(std::chrono::milliseconds timeout) const {
    const auto until = std::chrono::steady_clock::now() + timeout;
    while (received() == 0 && std::chrono::steady_clock::now() < until) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return received() != 0;
  }

 private:
  int fd_ = -1;
  std::uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<std::uint64_t> received_{0};
  std::thread thread_;
};

// The noop reference: every hook (the SDK 3.1 ones included, through their defaults) does nothing.
using NoopRecorder = testing::NullRecorder;

struct Quiet {
  std::shared_ptr<spdlog::logger> logger =
      std::make_shared<spdlog::logger>("plugin.metrics-statsd", std::make_shared<spdlog::sinks::null_sink_mt>());
  testing::WallClock clock;
  testing::NullTaskEvents events;
  testing::NullRecorder host_recorder;
};

std::unique_ptr<Recorder> makeStatsd(const std::string& address, Quiet& q) {
  StatsdRecorderFactory factory;
  std::map<std::string, ConfigValue> values;
  for (const ConfigKey& key : factory.configKeys()) {
    if (key.default_value) values.emplace(key.name, *key.default_value);
  }
  values["address"] = ConfigValue{address};
  const ConfigView config("recorder.config", std::move(values));
  const PluginContext context("metrics-statsd", q.logger, q.clock, q.events, q.host_recorder, 1000ms, "bench");
  return factory.create(config, context);
}

constexpr int kCallsBesideTransitions = 4;  // heartbeat, tick duration, queue depth, task gauges

// One leader tick's worth of Recorder calls. `dags` cycles the dag ids so names vary as in a real run.
void oneTick(Recorder& r, int transitions, const std::vector<std::string>& dags) {
  for (int i = 0; i < transitions; ++i) {
    const std::string& dag = dags[static_cast<std::size_t>(i) % dags.size()];
    r.recordSchedulerDecision("queued");
    r.recordTaskTransition(TaskState::kScheduled, TaskState::kQueued, dag);
  }
  r.recordSchedulerHeartbeat();
  r.observeTickDuration(1234us);
  r.setDispatchQueueDepth(transitions);
  r.setTaskGauges(64, transitions, 0);
}

enum class Kind { kNoop, kStatsdStopped, kStatsdLive };

void BM_RecorderTick(benchmark::State& state, Kind kind, int transitions) {
  std::vector<std::string> dags;
  for (int i = 0; i < 20; ++i) dags.push_back("etl_dag_" + std::to_string(i));

  Quiet quiet;
  std::unique_ptr<DrainingSocket> daemon;
  std::unique_ptr<Recorder> owned;
  switch (kind) {
    case Kind::kNoop: owned = std::make_unique<NoopRecorder>(); break;
    case Kind::kStatsdStopped: owned = makeStatsd("127.0.0.1:" + std::to_string(closedPort()), quiet); break;
    case Kind::kStatsdLive:
      daemon = std::make_unique<DrainingSocket>();
      owned = makeStatsd("127.0.0.1:" + std::to_string(daemon->port()), quiet);
      break;
  }
  Recorder* recorder = owned.get();
  benchmark::DoNotOptimize(recorder);  // called through the vtable, as the host does
  auto* statsd = dynamic_cast<StatsdRecorder*>(recorder);
  if (kind != Kind::kNoop && statsd == nullptr) die("the factory did not make a StatsdRecorder");

  // One tick before timing, so the address is resolved and, with the daemon stopped, the ICMP
  // "port unreachable" has come back: the steady state of a stopped daemon.
  oneTick(*recorder, transitions, dags);
  if (statsd != nullptr) statsd->sender().flush();
  const std::uint64_t sent0 = statsd ? statsd->sender().datagramsSent() : 0;
  const std::uint64_t dropped0 = statsd ? statsd->sender().dropped() : 0;

  for (auto _ : state) {
    oneTick(*recorder, transitions, dags);
    state.PauseTiming();
    if (statsd != nullptr) statsd->sender().flush();
    state.ResumeTiming();
  }

  const double calls = 2.0 * transitions + kCallsBesideTransitions;
  state.counters["calls_per_tick"] = calls;
  state.counters["ns_per_call"] = benchmark::Counter(
      calls * 1e-9, benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
  if (statsd != nullptr) {
    const double ticks = static_cast<double>(state.iterations());
    state.counters["datagrams_per_tick"] = static_cast<double>(statsd->sender().datagramsSent() - sent0) / ticks;
    state.counters["dropped_per_tick"] = static_cast<double>(statsd->sender().dropped() - dropped0) / ticks;
  }
  if (kind == Kind::kStatsdLive && !daemon->receivedAnyWithin(std::chrono::seconds(2))) {
    die("the live socket received nothing within 2 s");
  }
}

// Console output as usual, and the figures kept for the summary with the ratios.
class SummaryReporter final : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    ConsoleReporter::ReportRuns(runs);
    for (const Run& run : runs) {
      if (run.error_occurred) continue;
      const bool median = run.run_type == Run::RT_Aggregate && run.aggregate_name == "median";
      if (run.run_type == Run::RT_Aggregate && !median) continue;
      // The median wins over single repetitions; without repetitions the one run is the figure.
      std::string name = run.run_name.str();
      if (!median && medians_.count(name) != 0) continue;
      auto calls = run.counters.find("calls_per_tick");
      const double ns = run.GetAdjustedRealTime() * (run.time_unit == benchmark::kMicrosecond   ? 1e3
                                                     : run.time_unit == benchmark::kMillisecond ? 1e6
                                                     : run.time_unit == benchmark::kSecond      ? 1e9
                                                                                                : 1.0);
      figures_[name] = {ns, calls == run.counters.end() ? 1.0 : double(calls->second)};
      if (median) medians_[name] = true;
    }
  }

  void printSummary() const {
    if (figures_.empty()) return;
    std::printf("\n%-36s %14s %12s %10s\n", "benchmark (real time)", "µs per tick", "ns per call", "× no-op");
    for (const auto& [name, f] : figures_) {
      std::string reference = name;
      const auto slash = name.find('/', name.find('/') + 1);
      if (slash != std::string::npos) reference = "recorder/noop" + name.substr(slash);
      auto ref = figures_.find(reference);
      char ratio[32] = "—";
      if (ref != figures_.end() && ref->second.ns_per_tick > 0) {
        std::snprintf(ratio, sizeof(ratio), "%.1f", f.ns_per_tick / ref->second.ns_per_tick);
      }
      std::printf("%-36s %14.3f %12.1f %10s\n", name.c_str(), f.ns_per_tick / 1e3, f.ns_per_tick / f.calls, ratio);
    }
  }

 private:
  struct Figure {
    double ns_per_tick;
    double calls;
  };
  std::map<std::string, Figure> figures_;
  std::map<std::string, bool> medians_;
};

void registerRecorderBenchmarks() {
  const struct {
    const char* name;
    Kind kind;
  } kinds[] = {{"noop", Kind::kNoop}, {"statsd_stopped", Kind::kStatsdStopped}, {"statsd_live", Kind::kStatsdLive}};
  for (const auto& k : kinds) {
    for (int transitions : {10, 1000}) {
      benchmark::RegisterBenchmark(("recorder/" + std::string(k.name) + "/tick" + std::to_string(transitions)).c_str(),
                                   BM_RecorderTick, k.kind, transitions)
          ->UseRealTime()
          ->Unit(benchmark::kMicrosecond);
    }
  }
}

}  // namespace
}  // namespace leoflow::bench

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 2;
  leoflow::bench::registerRecorderBenchmarks();
  leoflow::bench::SummaryReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  reporter.printSummary();
  benchmark::Shutdown();
  return 0;
}
