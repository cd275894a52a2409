// seed_runs: fills a store with N active runs of one DAG without starting a single process, for the
// scale scenario of e2e_bench.py (issue 14 §3).
//
//   seed_runs [--config FILE] --dag DAG --runs N [--running-task long] [--threads 8] [--prefix seed]
//
// Reads the same leoflow TOML config as the scheduler (--config, else $LEOFLOW_CONFIG, else
// ./leoflow.toml), creates the store through the host's plugin loader (one store object per thread,
// store-only scope) and claims a term. Then, per run: createRun (manual trigger, run id
// <prefix>_<i>, logical date base + i s), materializeRun (every task of the DAG's current version in
// `none`), the running task none → scheduled, scheduled → queued, and reportRunning with execution id
// "bench-seed/<i>". Each run ends with one task `running` (a long task nobody will ever finish) and
// the others waiting on it. The DAG must be synced first (`leoflow dags sync`).
//
// Prints progress (runs/s) every 2 s on stderr and, last, one line on stdout:
//   seeded runs=N seconds=S runs_per_s=R threads=T
// Exit 1 on the first store error (named), 2 on a usage or config problem.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <iostream>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include <leoflow/domain.h>
#include <leoflow/store.h>

#include "host/backends.h"
#include "host/config.h"
#include "host/logging.h"
#include "host/plugin_loader.h"

namespace {

using leoflow::ExecutionRef;
using leoflow::NewRun;
using leoflow::NewTaskInstance;
using leoflow::RunKey;
using leoflow::Status;
using leoflow::Store;
using leoflow::TaskState;
using leoflow::TaskTransitionWrite;
using leoflow::Term;
using leoflow::Timestamp;

struct Options {
  std::string config;
  std::string dag;
  std::string running_task = "long";
  std::string prefix = "seed";
  long runs = 0;
  int threads = 8;
};

[[noreturn]] void usage(const std::string& why) {
  std::cerr << "seed_runs: " << why
            << "\nusage: seed_runs [--config FILE] --dag DAG --runs N [--running-task long] [--threads 8] "
               "[--prefix seed]\n";
  std::exit(2);
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage(a + " needs a value");
      return argv[++i];
    };
    if (a == "--config") {
      o.config = value();
    } else if (a == "--dag") {
      o.dag = value();
    } else if (a == "--runs") {
      o.runs = std::stol(value());
    } else if (a == "--running-task") {
      o.running_task = value();
    } else if (a == "--threads") {
      o.threads = std::stoi(value());
    } else if (a == "--prefix") {
      o.prefix = value();
    } else {
      usage("unknown argument " + a);
    }
  }
  if (o.dag.empty()) usage("--dag is required");
  if (o.runs <= 0) usage("--runs must be positive");
  if (o.threads <= 0) usage("--threads must be positive");
  return o;
}

Timestamp now() {
  return std::chrono::time_point_cast<std::chrono::microseconds>(std::chrono::system_clock::now());
}

std::mutex fail_mutex;

[[noreturn]] void fail(const std::string& what, const Status& s) {
  std::lock_guard lock(fail_mutex);
  std::cerr << "seed_runs: " << what << ": " << s.toString() << std::endl;
  std::_Exit(1);
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = parse(argc, argv);
  leoflow::host::setLogLevel("warn");
  leoflow::host::HostConfig config;
  std::unique_ptr<leoflow::host::PluginLoader> loader;
  std::vector<std::unique_ptr<leoflow::host::Backends>> stores;
  try {
    config = leoflow::host::loadHostConfig(leoflow::host::findConfigPath(o.config));
    loader = std::make_unique<leoflow::host::PluginLoader>(config.plugin_search_path);
    // One store object (one connection or pool) per thread, made one after the other.
    for (int i = 0; i < o.threads; ++i) {
      stores.push_back(std::make_unique<leoflow::host::Backends>(config, *loader,
                                                                 leoflow::host::Backends::Scope::kStoreOnly));
    }
  } catch (const std::exception& e) {
    std::cerr << "seed_runs: " << e.what() << std::endl;
    return 2;
  }
  Store& first = stores.front()->store();

  auto dag = first.getDag(o.dag, std::nullopt);
  if (!dag) fail("reading dag " + o.dag + " (sync it first: leoflow dags sync)", dag.status());
  std::vector<NewTaskInstance> tasks;
  std::string tenant = "default";
  try {
    const auto spec = nlohmann::json::parse(dag->spec_json);
    if (spec.contains("tenant") && spec["tenant"].is_string()) tenant = spec["tenant"].get<std::string>();
    for (const auto& t : spec.at("tasks")) {
      NewTaskInstance ti;
      ti.task_id = t.at("task_id").get<std::string>();
      if (t.contains("retries") && t["retries"].is_number_integer()) ti.max_tries = t["retries"].get<int>() + 1;
      tasks.push_back(ti);
    }
  } catch (const std::exception& e) {
    std::cerr << "seed_runs: cannot read the tasks of dag " << o.dag << ": " << e.what() << std::endl;
    return 2;
  }
  bool found = false;
  for (const auto& t : tasks) found = found || t.task_id == o.running_task;
  if (!found) usage("dag " + o.dag + " has no task " + o.running_task);

  auto term = first.claimTerm("bench-seed-" + std::to_string(::getpid()));
  if (!term) fail("claiming a term", term.status());
  const Term fence = *term;
  const std::int64_t version = dag->version;
  // Distinct logical dates, one second apart, ending a day ago.
  const Timestamp base = now() - std::chrono::hours(24) - std::chrono::seconds(o.runs);

  std::atomic<long> next{0}, done{0};
  auto worker = [&](Store& store) {
    for (long i = next++; i < o.runs; i = next++) {
      char id[64];
      std::snprintf(id, sizeof id, "%s_%07ld", o.prefix.c_str(), i);
      const RunKey key{o.dag, id};
      NewRun run;
      run.key = key;
      run.dag_version = version;
      run.trigger = leoflow::RunTrigger::kManual;
      run.logical_date = base + std::chrono::seconds(i);
      run.conf_json = "{}";
      run.queued_at = now();
      run.tenant = tenant;
      if (Status s = store.createRun(std::nullopt, run); !s.isOk()) fail(std::string("createRun ") + id, s);
      if (Status s = store.materializeRun(fence, key, tasks, now()); !s.isOk()) {
        fail(std::string("materializeRun ") + id, s);
      }
      for (auto [from, to] : {std::pair{TaskState::kNone, TaskState::kScheduled},
                              std::pair{TaskState::kScheduled, TaskState::kQueued}}) {
        TaskTransitionWrite w;
        w.task_id = o.running_task;
        w.from = from;
        w.to = to;
        auto applied = store.applyTransitions(fence, key, std::span<const TaskTransitionWrite>(&w, 1), now());
        if (!applied) fail(std::string("applyTransitions ") + id, applied.status());
        if (applied->size() != 1 || !(*applied)[0]) {
          fail(std::string("applyTransitions ") + id,
               Status(leoflow::StatusCode::kConflict, "the write was not applied"));
        }
      }
      ExecutionRef ex;
      ex.attempt.run = key;
      ex.attempt.task_id = o.running_task;
      ex.attempt.try_number = 1;
      ex.execution_id = "bench-seed/" + std::to_string(i);
      if (Status s = store.reportRunning(ex, now()); !s.isOk()) fail(std::string("reportRunning ") + id, s);
      ++done;
    }
  };

  const auto t0 = std::chrono::steady_clock::now();
  std::vector<std::thread> pool;
  for (auto& b : stores) pool.emplace_back(worker, std::ref(b->store()));
  std::atomic<bool> finished{false};
  std::thread progress([&] {
    long last = 0;
    auto last_t = t0;
    while (!finished) {
      for (int k = 0; k < 20 && !finished; ++k) std::this_thread::sleep_for(std::chrono::milliseconds(100));
      if (finished) break;
      const auto t = std::chrono::steady_clock::now();
      const long d = done;
      const double dt = std::chrono::duration<double>(t - last_t).count();
      std::fprintf(stderr, "seed_runs: %ld/%ld runs, %.0f runs/s\n", d, o.runs, dt > 0 ? (d - last) / dt : 0.0);
      last = d;
      last_t = t;
    }
  });
  for (auto& t : pool) t.join();
  finished = true;
  progress.join();
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("seeded runs=%ld seconds=%.2f runs_per_s=%.0f threads=%d term=%lld\n", o.runs, secs, o.runs / secs,
              o.threads, static_cast<long long>(fence));
  std::fflush(stdout);
  // Leave at once: the stores' destructors would only close connections the exit closes anyway.
  std::_Exit(0);
}
