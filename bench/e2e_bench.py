#!/usr/bin/env python3
"""End-to-end figures of a real deployment: leoflow scheduler + a store + dispatcher-local.

  bench/e2e_bench.py [--store redis|postgres|both] [--build DIR] [--chain N] [--fanout N] [--repeat K]
                     [--failovers K] [--only chain|fanout|failover|reference]

For each store asked for (default both) it starts a private server and one scheduler on it:

  redis     redis-server with AOF, appendfsync everysec (as the dev stack), store-redis
  postgres  a private PostgreSQL cluster (initdb; as the `postgres` user when run as root) with
            fsync = on and synchronous_commit = on, as in production (store-postgres README), its
            data and socket in a folder of its own under /tmp, store-postgres

With both, both stacks stay up for the whole run and every measurement alternates between them, so
the two columns come from the same minutes (this VM's speed drifts by ±30 % over minutes):

  chain      a chain of N tasks (default 40); each task stamps its start and end with bash's
             $EPOCHREALTIME (no extra process), so the gap between one task's end and the next one's
             start is exit noticed -> finished report -> plan -> queued -> hand-over -> process
             started -> bash running. Reports the median and p90 gap, and for scale what starting
             bash alone costs on this machine (spawned directly, no scheduler). --warm-shells 0
             makes every start cold (dispatcher-local README "Warm shells").
  fanout     one root and N children (default 1000) of `true`; reports tasks/s from the first child's
             start to the last child's start and the CPU the scheduler and the store's server spent,
             and right after each fan-out the bare rate of the machine at that moment: N `bash -c
             true` spawned by 8 threads (--spawn-threads) as fast as they can, no scheduler.
  failover   a second scheduler (a standby) joins; after a random 1.5-2.5 s the leader is SIGKILLed.
             Reports the time from the kill to the new leader's first tick (the `last_tick` of the
             liveness record it writes at the end of that tick: the tick's start, read from the store
             at full precision; `leoflow status --json` then must name the new holder), and to its
             "became scheduler leader" log line. Default leader settings of each plugin (lease_ms
             3000; store-postgres poll_ms 500, store-redis checks every lease_ms / 3).
  reference  the physical reference of each server, in the same run, once the schedulers are gone:
             pgbench single-client TPS (`pgbench -i`, then `pgbench -c 1 -T 10`) on the private
             cluster; redis-benchmark single-client, unpipelined SET and GET on the private Redis.

For chain and fanout the summary adds what the server did per task (Redis: commands, those run by
scripts included; PostgreSQL: transactions, rows scanned, WAL flushes and kB, from pg_stat_database
and pg_stat_wal), the CLI's `runs trigger --wait` polling included. The schedulers' lines at warn
level or worse are printed at the end.

Environment: LEOFLOW_BENCH_LOG=debug for the schedulers' debug log, LEOFLOW_BENCH_KEEP=1 to keep
the folders (config, logs, ledgers) for reading.

This is a benchmark, not a test: it prints figures and fails only when a run does not succeed.
"""
import argparse
import datetime
import glob
import json
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KEEP = bool(os.environ.get("LEOFLOW_BENCH_KEEP"))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def proc_stat(pid):
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()


def cpu_seconds(pid):
    """User + system CPU time of a process so far (/proc/<pid>/stat fields 14 and 15)."""
    fields = proc_stat(pid)
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds(pid):
    """CPU of a server and every process under it: its own, its children's that ended (cutime and
    cstime) and its live descendants' (PostgreSQL runs a process per session)."""
    children = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                children.setdefault(int(proc_stat(d)[1]), []).append(int(d))
            except (OSError, IndexError):
                pass
    total = 0.0
    stack = [pid]
    while stack:
        p = stack.pop()
        try:
            f = proc_stat(p)
        except OSError:
            continue
        total += sum(int(x) for x in f[11:15]) / os.sysconf("SC_CLK_TCK")
        stack += children.get(p, [])
    return total


def machine_busy_seconds():
    """CPU time every core of the machine spent busy so far (/proc/stat: all but idle and iowait)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    return (v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / os.sysconf("SC_CLK_TCK")


def median(xs):
    return statistics.median(xs) if xs else None


def pct(xs, q):
    return sorted(xs)[int(q * (len(xs) - 1))]


# ---------------------------------------------------------------------------------------------------
# The stores' servers: what differs between the stores is here, the rest is shared.

class RedisServer:
    name = "redis"
    plugin = "store-redis"
    detached = False  # our child: its CPU counts in ours

    def __init__(self, base):
        self.dir = os.path.join(base, "redis")
        os.makedirs(self.dir)
        self.port = free_port()
        self.process = subprocess.Popen(
            ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--dir", self.dir,
             "--appendonly", "yes", "--appendfsync", "everysec", "--save", ""],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(200):
            if self.cli("ping").strip() == "PONG":
                break
            time.sleep(0.02)
        else:
            sys.exit("redis-server did not answer")
        self.pid = self.process.pid
        self.setting = "redis-server 7, AOF with appendfsync everysec"

    def cli(self, *args):
        return subprocess.run(["redis-cli", "-p", str(self.port), *args], capture_output=True, text=True).stdout

    def store_toml(self):
        return f'url = "redis://127.0.0.1:{self.port}/0"\n'

    def liveness(self):
        """(holder, term, last_tick in µs since the epoch) of the leader's record, or None."""
        out = self.cli("HMGET", "leoflow:liveness", "holder", "term", "last_tick").split("\n")
        if len(out) < 3 or not out[0] or not out[1]:
            return None
        return out[0], int(out[1]), int(out[2])

    def counters(self):
        """What the server did so far: commands (those a script runs count too)."""
        m = re.search(r"total_commands_processed:(\d+)", self.cli("INFO", "stats"))
        return {"commands": int(m.group(1))}

    def reference(self):
        """redis-benchmark, one client, no pipelining (what the store does: one command at a time)."""
        r = subprocess.run(["redis-benchmark", "-p", str(self.port), "-c", "1", "-n", "100000", "-t", "set,get",
                            "--csv"], capture_output=True, text=True)
        rates = {}
        for line in r.stdout.splitlines():
            cells = [c.strip('"') for c in line.split(",")]
            if len(cells) > 1 and cells[0] in ("SET", "GET"):
                rates[cells[0]] = float(cells[1])
        if "SET" not in rates:
            sys.exit(f"redis-benchmark failed: {r.stdout[-500:]} {r.stderr[-500:]}")
        return (f"redis-benchmark -c 1 -n 100000: SET {rates['SET']:,.0f} /s, GET {rates.get('GET', 0):,.0f} /s",
                rates["SET"])

    def close(self):
        self.process.terminate()
        self.process.wait(10)


def postgres_bin():
    dirs = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda d: int(d.split("/")[-2]))
    dirs = [d for d in dirs if os.path.exists(os.path.join(d, "pg_ctl"))]
    if not dirs:
        sys.exit("PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/pg_ctl): ./dev setup")
    return "/usr/lib/postgresql/15/bin" if "/usr/lib/postgresql/15/bin" in dirs else dirs[-1]


class PostgresServer:
    name = "postgres"
    plugin = "store-postgres"
    detached = True  # pg_ctl detaches the server from us

    def __init__(self, base):
        self.bin = postgres_bin()
        # Under /tmp and owned by postgres: root cannot run the server (TOOLCHAIN.md).
        self.dir = tempfile.mkdtemp(prefix="leoflow-bench-pg-", dir="/tmp")
        os.chmod(self.dir, 0o755)
        self.as_pg = []
        if os.getuid() == 0:
            import pwd
            pw = pwd.getpwnam("postgres")
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
            self.as_pg = ["runuser", "-u", "postgres", "--"]
        self.data = os.path.join(self.dir, "data")
        self.port = free_port()
        self.run_pg("initdb", "-D", self.data, "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8",
                    "--locale=C", "--no-instructions")
        # As production (store-postgres README): every commit waits for its WAL flush.
        opts = (f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.dir} "
                "-c fsync=on -c synchronous_commit=on -c full_page_writes=on")
        self.run_pg("pg_ctl", "-D", self.data, "-l", os.path.join(self.dir, "server.log"), "-w", "-t", "30", "-s",
                    "-o", opts, "start")
        with open(os.path.join(self.data, "postmaster.pid")) as f:
            self.pid = int(f.readline())
        self.setting = ("PostgreSQL " + self.psql("SHOW server_version").split()[0] + ", fsync = "
                        + self.psql("SHOW fsync") + ", synchronous_commit = " + self.psql("SHOW synchronous_commit"))

    def run_pg(self, program, *args):
        r = subprocess.run([*self.as_pg, os.path.join(self.bin, program), *args], cwd="/", capture_output=True,
                           text=True)
        if r.returncode != 0:
            log = ""
            if os.path.exists(os.path.join(self.dir, "server.log")):
                with open(os.path.join(self.dir, "server.log")) as f:
                    log = f.read()[-1000:]
            sys.exit(f"{program} failed: {r.stdout[-1000:]} {r.stderr[-1000:]} {log}")
        return r.stdout

    def psql(self, sql):
        r = subprocess.run([os.path.join(self.bin, "psql"), "-XAtq", "-h", "127.0.0.1", "-p", str(self.port),
                            "-U", "postgres", "-d", "postgres", "-c", sql], capture_output=True, text=True)
        return r.stdout.strip() if r.returncode == 0 else None

    def store_toml(self):
        return f'dsn = "postgresql://postgres@127.0.0.1:{self.port}/postgres"\n'

    def liveness(self):
        out = self.psql("SELECT holder || ' ' || term || ' ' || "
                        "(extract(epoch FROM last_tick) * 1000000)::bigint FROM leoflow.liveness")
        if not out:
            return None
        holder, term, tick = out.split()
        return holder, int(term), int(tick)

    def counters(self):
        """What the server did so far: transactions (read-only ones too), rows its scans returned, WAL
        flushes to disk, WAL kB. Backends publish these up to ~1 s after going idle: read them after a
        pause."""
        out = self.psql("SELECT (SELECT (xact_commit + xact_rollback) || ' ' || tup_returned FROM pg_stat_database "
                        "WHERE datname = 'postgres') || ' ' || wal_sync || ' ' || wal_bytes FROM pg_stat_wal")
        xacts, rows, syncs, wal = out.split()
        return {"transactions": int(xacts), "rows scanned": int(rows), "WAL flushes": int(syncs),
                "WAL kB": float(wal) / 1024}

    def reference(self):
        """pgbench's TPC-B-like transaction, one client, 10 s: one synchronous commit at a time."""
        pgbench = [os.path.join(self.bin, "pgbench"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres"]
        r = subprocess.run([*pgbench, "-i", "-q", "postgres"], capture_output=True, text=True)
        if r.returncode != 0:
            sys.exit(f"pgbench -i failed: {r.stderr[-1000:]}")
        r = subprocess.run([*pgbench, "-c", "1", "-T", "10", "postgres"], capture_output=True, text=True)
        m = re.search(r"tps = ([0-9.]+) \(without initial connection time\)", r.stdout)
        if r.returncode != 0 or not m:
            sys.exit(f"pgbench failed: {r.stdout[-1000:]} {r.stderr[-1000:]}")
        tps = float(m.group(1))
        return f"pgbench -c 1 -T 10 (scale 1, TPC-B-like): {tps:,.0f} TPS", tps

    def close(self):
        subprocess.run([*self.as_pg, os.path.join(self.bin, "pg_ctl"), "-D", self.data, "-m", "fast", "-w", "-t",
                        "30", "-s", "stop"], cwd="/", capture_output=True)
        if KEEP:
            print(f"kept {self.dir}")
        else:
            shutil.rmtree(self.dir, ignore_errors=True)


SERVERS = {"redis": RedisServer, "postgres": PostgresServer}


# ---------------------------------------------------------------------------------------------------
# A deployment on one store: its server, schedulers, config, DAGs.

class Stack:
    def __init__(self, store, build, max_parallel, warm_shells):
        self.dir = tempfile.mkdtemp(prefix=f"leoflow-bench-{store}-")
        self.bin = os.path.join(build, "core", "host", "leoflow")
        self.server = SERVERS[store](self.dir)
        self.name = store
        self.config = os.path.join(self.dir, "leoflow.toml")
        with open(self.config, "w") as f:
            f.write(f"""[scheduler]
tick_interval_ms = 1000
log_level = "{os.environ.get('LEOFLOW_BENCH_LOG', 'warn')}"
dispatch_pool_size = 16
dispatch_queue_size = 2048
[store]
plugin = "{self.server.plugin}"
[store.config]
{self.server.store_toml()}[dispatcher]
plugin = "dispatcher-local"
[dispatcher.config]
max_parallel = {max_parallel}
warm_shells = {warm_shells}
work_dir = "{self.dir}/work"
log_dir = "{self.dir}/logs"
state_dir = "{self.dir}/state"
""")
        self.env = dict(os.environ, LEOFLOW_CONFIG=self.config)
        self.schedulers = []  # every scheduler started, for the error scan and the clean-up
        self.scheduler = None

    def start(self):
        self.scheduler = self.start_scheduler("scheduler")
        self.wait_for_leader()

    def start_scheduler(self, name, log_level=None):
        args = [self.bin, "scheduler"] + (["--log-level", log_level] if log_level else [])
        log = os.path.join(self.dir, f"{name}.log")
        p = subprocess.Popen(args, env=self.env, stdout=open(log, "w"), stderr=subprocess.STDOUT)
        p.log = log
        self.schedulers.append(p)
        return p

    def wait_for_leader(self, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.server.liveness():
                return
            if self.scheduler.poll() is not None:
                break
            time.sleep(0.05)
        sys.exit(f"[{self.name}] no scheduler led within {timeout} s:\n{self.log_tail(self.scheduler)}")

    def log_tail(self, p, n=20):
        with open(p.log) as f:
            return "".join(f.readlines()[-n:])

    def leoflow(self, *args):
        return subprocess.run([self.bin, *args], env=self.env, capture_output=True, text=True)

    def run_dag(self, dag, timeout):
        path = os.path.join(self.dir, dag["dag_id"] + ".json")
        with open(path, "w") as f:
            json.dump(dag, f)
        r = self.leoflow("dags", "sync", path)
        if r.returncode != 0:
            sys.exit(f"[{self.name}] dags sync failed: {r.stderr}")
        r = self.leoflow("runs", "trigger", dag["dag_id"], "--run-id", "bench", "--wait", "--timeout", str(timeout))
        if r.returncode != 0:
            sys.exit(f"[{self.name}] run of {dag['dag_id']} ended with exit {r.returncode}: {r.stderr[-2000:]}\n"
                     f"scheduler log:\n{self.log_tail(self.scheduler)}")

    def warning_lines(self):
        """Lines at warn level or worse in every scheduler's log."""
        out = []
        for p in self.schedulers:
            with open(p.log) as f:
                out += [f"{os.path.basename(p.log)}: {line.rstrip()}" for line in f
                        if re.match(r"\S+Z (warn|error|critical)", line)]
        return out

    def stop_schedulers(self):
        for p in self.schedulers:
            if p.poll() is None:
                p.terminate()
        for p in self.schedulers:
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                print(f"[{self.name}] scheduler {p.pid} did not stop within 15 s of SIGTERM; killed")
                p.kill()
                p.wait()

    def close(self):
        self.stop_schedulers()
        self.server.close()
        if KEEP:
            print(f"kept {self.dir}")
        else:
            shutil.rmtree(self.dir, ignore_errors=True)


# ---------------------------------------------------------------------------------------------------
# The measurements, the same for every store.

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


def bare_spawn_rate(n, threads):
    """`bash -c true` started per second by `threads` threads spawning and reaping as fast as they
    can, no scheduler: the ceiling of one process per task on this machine at this moment."""
    bash = shutil.which("bash")
    left = [n]
    lock = threading.Lock()

    def worker():
        while True:
            with lock:
                if left[0] == 0:
                    return
                left[0] -= 1
            pid = os.posix_spawn(bash, ["bash", "-c", "true"], os.environ)
            os.waitpid(pid, 0)

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    t0 = time.perf_counter()
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return n / (time.perf_counter() - t0)


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
    return [(s[f"t{i}"]["start"] - s[f"t{i - 1}"]["end"]) * 1000 for i in range(1, n)]


def bench_fanout(stack, n, name):
    ledger = os.path.join(stack.dir, f"{name}.ledger")
    tasks = [{"task_id": "root", "type": "bash", "entrypoint": "true"}]
    for i in range(n):
        tasks.append({"task_id": f"c{i}", "type": "bash", "depends_on": ["root"],
                      "entrypoint": f'echo "c{i} start $EPOCHREALTIME" >> {ledger}'})
    cpu0 = cpu_seconds(stack.scheduler.pid), tree_cpu_seconds(stack.server.pid)
    t0 = time.time()
    stack.run_dag({"dag_id": name, "tasks": tasks}, 1200)
    wall = time.time() - t0
    cpu1 = cpu_seconds(stack.scheduler.pid), tree_cpu_seconds(stack.server.pid)
    starts = sorted(v["start"] for v in read_stamps(ledger).values())
    span = starts[-1] - starts[0]
    return (n / span if span > 0 else float("inf")), wall, cpu1[0] - cpu0[0], cpu1[1] - cpu0[1]


def log_time(line):
    """The UTC timestamp spdlog puts first on every line (core/host/logging.cpp)."""
    stamp = line.split()[0].rstrip("Z")
    return datetime.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%f").replace(tzinfo=datetime.timezone.utc).timestamp()


def bench_failover(stack, k):
    """A standby joins, the leader is SIGKILLed; seconds from the kill to the new leader's first tick,
    to its "became scheduler leader" line, and to our first read of its liveness record."""
    before = stack.server.liveness()
    standby = stack.start_scheduler(f"standby{k}", log_level="info")
    time.sleep(random.uniform(1.5, 2.5))  # a random phase against the standby's polling
    if standby.poll() is not None:
        sys.exit(f"[{stack.name}] the standby exited with {standby.returncode}:\n{stack.log_tail(standby)}")
    if stack.server.liveness()[1] != before[1]:
        sys.exit(f"[{stack.name}] the term moved before the kill: {before} -> {stack.server.liveness()}")
    leader = stack.scheduler
    t_kill = time.time()
    os.kill(leader.pid, signal.SIGKILL)
    leader.wait()
    deadline = t_kill + 30
    while True:
        rec = stack.server.liveness()
        if rec and rec[1] > before[1]:
            break
        if time.time() > deadline or standby.poll() is not None:
            sys.exit(f"[{stack.name}] no new leader ticked within 30 s of the kill; standby log:\n"
                     f"{stack.log_tail(standby)}")
        time.sleep(0.005)
    t_seen = time.time()
    stack.scheduler = standby
    holder, term, tick_us = rec
    if f"-{standby.pid}-" not in holder:
        sys.exit(f"[{stack.name}] the record names {holder}, not the standby (pid {standby.pid})")
    status = json.loads(stack.leoflow("status", "--json").stdout)
    if status["leader"]["holder"] != holder:
        sys.exit(f"[{stack.name}] leoflow status names {status['leader']['holder']}, the store {holder}")
    won = None
    with open(standby.log) as f:
        for line in f:
            if "became scheduler leader" in line:
                won = log_time(line) - t_kill
                break
    return tick_us / 1e6 - t_kill, won, t_seen - t_kill, term


# ---------------------------------------------------------------------------------------------------

def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--store", choices=["redis", "postgres", "both"], default="both")
    p.add_argument("--build", default=os.path.join(ROOT, "build-release"))
    p.add_argument("--chain", type=int, default=40)
    p.add_argument("--fanout", type=int, default=1000)
    p.add_argument("--repeat", type=int, default=3, help="runs of the chain and of the fan-out, per store")
    p.add_argument("--failovers", type=int, default=5, help="leader kills per store")
    p.add_argument("--spawn-threads", type=int, default=8, help="threads of the bare bash -c true spawn rate")
    p.add_argument("--max-parallel", type=int, default=64)
    p.add_argument("--warm-shells", type=int, default=2, help="dispatcher-local warm_shells (0: every start cold)")
    p.add_argument("--only", choices=["chain", "fanout", "failover", "reference"], help="run one benchmark")
    a = p.parse_args()
    if not os.path.exists(os.path.join(a.build, "core", "host", "leoflow")):
        sys.exit(f"no leoflow in {a.build}: ./dev build --release (or pass --build build)")
    stores = ["redis", "postgres"] if a.store == "both" else [a.store]
    for s in stores:
        so = os.path.join(a.build, "plugins", f"store-{s}", f"leoflow-store-{s}.so")
        if not os.path.exists(so):
            sys.exit(f"{so} is not built")

    def wanted(what):
        return a.only in (None, what)

    started = datetime.datetime.now(datetime.timezone.utc)
    # Others' CPU during the run: the machine's busy time minus ours (this process with everything it
    # started and reaped, the schedulers and their tasks, redis-server, and the PostgreSQL servers,
    # which pg_ctl detaches from us).
    busy0, ours0, t0 = machine_busy_seconds(), tree_cpu_seconds(os.getpid()), time.time()
    foreign = None
    print(f"{started:%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores, build {a.build}, stores: {', '.join(stores)}")
    stacks = []
    res = {s: {"gaps": [], "rates": [], "bare": [], "sched_cpu": [], "server_cpu": [], "fo_tick": [], "fo_won": [],
               "fo_seen": []} for s in stores}
    try:
        for s in stores:
            stacks.append(Stack(s, a.build, a.max_parallel, a.warm_shells))
            stacks[-1].start()
            print(f"[{s}] {stacks[-1].server.setting}")

        def counters():
            time.sleep(2)  # PostgreSQL's backends publish their statistics when idle (see counters())
            return {st.name: st.server.counters() for st in stacks}

        def work_per_task(c0, c1, tasks):
            for st in stacks:
                res[st.name].setdefault("work", []).append(
                    ", ".join(f"{(c1[st.name][k] - c0[st.name][k]) / tasks:.1f} {k}" for k in c0[st.name]))

        # Every measurement alternates between the stores, so both columns come from the same minutes.
        c0 = counters() if wanted("chain") else None
        for k in range(a.repeat if wanted("chain") else 0):
            for st in stacks:
                gaps = bench_chain(st, a.chain, f"chain{k}")
                res[st.name]["gaps"] += gaps
                print(f"[{st.name}] chain of {a.chain}, run {k + 1}: median gap {median(gaps):.2f} ms, "
                      f"p90 {pct(gaps, 0.9):.2f} ms, max {max(gaps):.2f} ms")
        floor = exec_floor_ms() if wanted("chain") else None
        if wanted("chain"):
            work_per_task(c0, counters(), a.repeat * a.chain)
        c0 = counters() if wanted("fanout") else None

        for k in range(a.repeat if wanted("fanout") else 0):
            for st in stacks:
                rate, wall, sched_cpu, server_cpu = bench_fanout(st, a.fanout, f"fanout{k}")
                bare = bare_spawn_rate(a.fanout, a.spawn_threads)
                r = res[st.name]
                r["rates"].append(rate)
                r["bare"].append(bare)
                r["sched_cpu"].append(sched_cpu)
                r["server_cpu"].append(server_cpu)
                print(f"[{st.name}] fan-out of {a.fanout}, run {k + 1}: {rate:.0f} tasks/s (run took {wall:.1f} s wall; "
                      f"CPU: scheduler {sched_cpu:.2f} s, {st.name} {server_cpu:.2f} s); right after, bare "
                      f"`bash -c true` from {a.spawn_threads} threads: {bare:.0f} /s ({100 * rate / bare:.0f} %)")

        if wanted("fanout"):
            work_per_task(c0, counters(), a.repeat * (a.fanout + 1))

        for k in range(a.failovers if wanted("failover") else 0):
            for st in stacks:
                tick, won, seen, term = bench_failover(st, k)
                r = res[st.name]
                r["fo_tick"].append(tick)
                r["fo_seen"].append(seen)
                if won is not None:
                    r["fo_won"].append(won)
                won_s = f"{won * 1000:.0f} ms" if won is not None else "no log line"
                print(f"[{st.name}] fail-over {k + 1}: SIGKILL -> new leader's first tick {tick * 1000:.0f} ms "
                      f"(won the lock {won_s}; record read {seen * 1000:.0f} ms; term {term})")

        for st in stacks:
            st.stop_schedulers()
        warnings = {st.name: st.warning_lines() for st in stacks}  # shutdown included
        refs = {}
        for st in stacks if wanted("reference") else []:
            refs[st.name] = st.server.reference()
            print(f"[{st.name}] reference: {refs[st.name][0]}")
        ours = tree_cpu_seconds(os.getpid()) - ours0
        ours += sum(tree_cpu_seconds(st.server.pid) for st in stacks if st.server.detached)
        wall = time.time() - t0
        foreign = (machine_busy_seconds() - busy0 - ours, wall)
    finally:
        for st in stacks:
            st.close()

    # The summary, one column per store.
    def col(s, f):
        try:
            return f(res[s])
        except (TypeError, ValueError, KeyError, statistics.StatisticsError):
            return "—"

    def ms(x):
        return f"{x * 1000:.0f} ms"

    rows = [
        (f"chain of {a.chain}: median gap (p90)",
         lambda r: f"{median(r['gaps']):.2f} ms ({pct(r['gaps'], 0.9):.2f})"),
        (f"fan-out of {a.fanout}: tasks/s (median of {a.repeat})", lambda r: f"{median(r['rates']):.0f} /s"),
        (f"bare bash -c true, {a.spawn_threads} threads, right after each fan-out",
         lambda r: f"{median(r['bare']):.0f} /s"),
        ("fan-out / bare, per run", lambda r: " ".join(f"{100 * x / y:.0f} %" for x, y in zip(r["rates"], r["bare"]))),
        ("CPU per fan-out: scheduler / server",
         lambda r: f"{median(r['sched_cpu']):.2f} s / {median(r['server_cpu']):.2f} s"),
        ("server work per task: chain; fan-out (incl. the CLI's polling)", lambda r: "; ".join(r["work"])),
        (f"fail-over: SIGKILL -> first tick, median (max) of {a.failovers}",
         lambda r: f"{ms(median(r['fo_tick']))} ({ms(max(r['fo_tick']))})"),
        ("fail-over: SIGKILL -> lock won (log line), median", lambda r: ms(median(r["fo_won"]))),
        ("fail-over: SIGKILL -> first tick's record read from the store, median",
         lambda r: ms(median(r["fo_seen"]))),
    ]
    print()
    print(f"summary ({started:%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores, {os.path.basename(a.build)})")
    print("| figure | " + " | ".join(stores) + " |")
    print("|---|" + "---|" * len(stores))
    for label, f in rows:
        print(f"| {label} | " + " | ".join(col(s, f) for s in stores) + " |")
    if refs:
        print("| reference (same run) | " + " | ".join(refs[s][0] if s in refs else "—" for s in stores) + " |")
    if foreign:
        print(f"other processes on this machine used {foreign[0]:.1f} CPU-seconds during the run's {foreign[1]:.0f} s "
              f"({100 * foreign[0] / (foreign[1] * os.cpu_count()):.1f} % of its {os.cpu_count()} cores)")
    if floor is not None:
        print(f"starting bash cold (posix_spawn to first command, no scheduler): {floor:.2f} ms; "
              f"warm_shells = {a.warm_shells}")
    for s, lines in warnings.items():
        if lines:
            print(f"[{s}] {len(lines)} line(s) at warn level or worse in the scheduler logs:")
            for line in lines[:20]:
                print("  " + line)


if __name__ == "__main__":
    main()
