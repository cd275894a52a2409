#!/usr/bin/env python3
"""End-to-end figures of a real deployment: leoflow scheduler + store-redis + dispatcher-local.

  bench/e2e_bench.py [--build DIR] [--chain N] [--fanout N] [--repeat K]

Starts a private redis-server (AOF, appendfsync everysec, as the dev stack) and one scheduler, then:

  chain   a chain of N tasks (default 40); each task stamps its start and end with bash's
          $EPOCHREALTIME (no extra process), so the gap between one task's end and the next one's
          start is exit noticed -> finished report -> plan -> queued -> hand-over -> process
          started -> bash running. Reports the median and p90 gap, and for scale what starting
          bash alone costs on this machine (spawned directly, no scheduler). --warm-shells 0
          makes every start cold (dispatcher-local README "Warm shells").
  fanout  one root and N children (default 1000) of `true`; reports tasks/s from the first child's
          start to the last child's start, and the CPU the scheduler and Redis spent.

Environment: LEOFLOW_BENCH_LOG=debug for the scheduler's debug log, LEOFLOW_BENCH_KEEP=1 to keep
the folder (config, logs, ledgers) for reading.

This is a benchmark, not a test: it prints figures and fails only when a run does not succeed.
"""
import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Stack:
    def __init__(self, build, max_parallel, warm_shells):
        self.dir = tempfile.mkdtemp(prefix="leoflow-bench-")
        self.bin = os.path.join(build, "core", "host", "leoflow")
        self.port = free_port()
        self.redis = subprocess.Popen(
            ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--dir", self.dir,
             "--appendonly", "yes", "--appendfsync", "everysec", "--save", ""],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(200):
            if subprocess.run(["redis-cli", "-p", str(self.port), "ping"], capture_output=True).stdout.strip() == b"PONG":
                break
            time.sleep(0.02)
        self.config = os.path.join(self.dir, "leoflow.toml")
        with open(self.config, "w") as f:
            f.write(f"""[scheduler]
tick_interval_ms = 1000
log_level = "{os.environ.get('LEOFLOW_BENCH_LOG', 'warn')}"
dispatch_pool_size = 16
dispatch_queue_size = 2048
[store]
plugin = "store-redis"
[store.config]
url = "redis://127.0.0.1:{self.port}/0"
[dispatcher]
plugin = "dispatcher-local"
[dispatcher.config]
max_parallel = {max_parallel}
warm_shells = {warm_shells}
work_dir = "{self.dir}/work"
log_dir = "{self.dir}/logs"
state_dir = "{self.dir}/state"
""")
        self.env = dict(os.environ, LEOFLOW_CONFIG=self.config)
        self.scheduler = subprocess.Popen([self.bin, "scheduler"], env=self.env,
                                          stdout=open(os.path.join(self.dir, "scheduler.log"), "w"),
                                          stderr=subprocess.STDOUT)

    def leoflow(self, *args):
        return subprocess.run([self.bin, *args], env=self.env, capture_output=True, text=True)

    def run_dag(self, dag, timeout):
        path = os.path.join(self.dir, dag["dag_id"] + ".json")
        with open(path, "w") as f:
            json.dump(dag, f)
        r = self.leoflow("dags", "sync", path)
        if r.returncode != 0:
            sys.exit(f"dags sync failed: {r.stderr}")
        r = self.leoflow("runs", "trigger", dag["dag_id"], "--run-id", "bench", "--wait", "--timeout", str(timeout))
        if r.returncode != 0:
            sys.exit(f"run of {dag['dag_id']} ended with exit {r.returncode}: {r.stderr[-2000:]}")

    def close(self):
        self.scheduler.terminate()
        try:
            self.scheduler.wait(15)
        except subprocess.TimeoutExpired:
            self.scheduler.kill()
        self.redis.terminate()
        self.redis.wait(10)
        if os.environ.get("LEOFLOW_BENCH_KEEP"):
            print(f"kept {self.dir}")
        else:
            shutil.rmtree(self.dir, ignore_errors=True)


def cpu_seconds(pid):
    """User + system CPU time of a process so far (/proc/<pid>/stat fields 14 and 15)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def exec_floor_ms(samples=50):
    """Median time from posix_spawn of `bash -c` to its first command on this machine: the part of
    every gap no scheduler can remove (process creation and bash start-up)."""
    out = []
    for _ in range(samples):
        r, w = os.pipe()
        t0 = time.time()
        pid = os.posix_spawnp("bash", ["bash", "-c", "echo $EPOCHREALTIME"], os.environ,
                              file_actions=[(os.POSIX_SPAWN_DUP2, w, 1)])
        os.close(w)
        stamp = float(os.read(r, 64).decode())
        os.close(r)
        os.waitpid(pid, 0)
        out.append((stamp - t0) * 1000)
    return statistics.median(out)


def stamped(ledger):
    # bash builtins only: the stamps cost no process of their own
    return f'echo "$LEOFLOW_TASK_ID start $EPOCHREALTIME" >> {ledger}; echo "$LEOFLOW_TASK_ID end $EPOCHREALTIME" >> {ledger}'


def read_stamps(ledger):
    stamps = {}
    with open(ledger) as f:
        for line in f:
            task, kind, t = line.split()
            stamps.setdefault(task, {})[kind] = float(t)
    return stamps


def bench_chain(stack, n, name):
    ledger = os.path.join(stack.dir, f"{name}.ledger")
    tasks = []
    for i in range(n):
        t = {"task_id": f"t{i}", "type": "bash", "entrypoint": stamped(ledger)}
        if i:
            t["depends_on"] = [f"t{i - 1}"]
        tasks.append(t)
    stack.run_dag({"dag_id": name, "tasks": tasks}, 600)
    s = read_stamps(ledger)
    gaps = [(s[f"t{i}"]["start"] - s[f"t{i - 1}"]["end"]) * 1000 for i in range(1, n)]
    return gaps


def bench_fanout(stack, n, name):
    ledger = os.path.join(stack.dir, f"{name}.ledger")
    tasks = [{"task_id": "root", "type": "bash", "entrypoint": "true"}]
    for i in range(n):
        tasks.append({"task_id": f"c{i}", "type": "bash", "depends_on": ["root"],
                      "entrypoint": f'echo "c{i} start $EPOCHREALTIME" >> {ledger}'})
    t0 = time.time()
    stack.run_dag({"dag_id": name, "tasks": tasks}, 1200)
    wall = time.time() - t0
    s = read_stamps(ledger)
    starts = sorted(v["start"] for v in s.values())
    span = starts[-1] - starts[0]
    return n / span if span > 0 else float("inf"), wall


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--build", default=os.path.join(ROOT, "build-release"))
    p.add_argument("--chain", type=int, default=40)
    p.add_argument("--fanout", type=int, default=1000)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--max-parallel", type=int, default=64)
    p.add_argument("--warm-shells", type=int, default=2, help="dispatcher-local warm_shells (0: every start cold)")
    p.add_argument("--only", choices=["chain", "fanout"], help="run one of the two benchmarks")
    a = p.parse_args()
    if not os.path.exists(os.path.join(a.build, "core", "host", "leoflow")):
        sys.exit(f"no leoflow in {a.build}: ./dev build --release (or pass --build build)")
    stack = Stack(a.build, a.max_parallel, a.warm_shells)
    try:
        for _ in range(100):
            if '"holder": "' in stack.leoflow("status", "--json").stdout:
                break
            time.sleep(0.1)
        all_gaps = []
        for k in range(a.repeat if a.only != "fanout" else 0):
            gaps = bench_chain(stack, a.chain, f"chain{k}")
            all_gaps += gaps
            print(f"chain of {a.chain}, run {k + 1}: median gap {statistics.median(gaps):.2f} ms, "
                  f"p90 {sorted(gaps)[int(0.9 * (len(gaps) - 1))]:.2f} ms, max {max(gaps):.2f} ms")
        if all_gaps:
            floor = exec_floor_ms()
            median = statistics.median(all_gaps)
            print(f"chain of {a.chain}, all runs: median end-to-next-start {median:.2f} ms (target <= 5 ms)")
            print(f"  for scale: starting bash cold (posix_spawn to first command, no scheduler) takes "
                  f"{floor:.2f} ms here; warm_shells = {a.warm_shells}")
        rates = []
        for k in range(a.repeat if a.only != "chain" else 0):
            cpu0 = cpu_seconds(stack.scheduler.pid), cpu_seconds(stack.redis.pid)
            rate, wall = bench_fanout(stack, a.fanout, f"fanout{k}")
            cpu1 = cpu_seconds(stack.scheduler.pid), cpu_seconds(stack.redis.pid)
            rates.append(rate)
            print(f"fan-out of {a.fanout}, run {k + 1}: {rate:.0f} tasks/s (run took {wall:.1f} s wall; CPU: "
                  f"scheduler {cpu1[0] - cpu0[0]:.2f} s, redis {cpu1[1] - cpu0[1]:.2f} s)")
        if rates:
            print(f"fan-out of {a.fanout}: median {statistics.median(rates):.0f} tasks/s (target >= 1000)")
    finally:
        stack.close()


if __name__ == "__main__":
    main()
