#!/usr/bin/env python3
"""End-to-end figures of a real deployment: leoflow scheduler + a store + dispatcher-local.

  bench/e2e_bench.py [--store redis|postgres|both] [--build DIR] [--chain N,N] [--fanout N,N]
                     [--repeat K] [--repeat-large K] [--active-runs N,N] [--failovers K] [--small] [--statsd]
                     [--only chain|fanout|failover|scale|reference]

For each store asked for (default both) it starts a private server and one scheduler on it:

  redis     redis-server with AOF, appendfsync everysec (as the dev stack), store-redis over TCP
            on 127.0.0.1 (--redis-via unix: over its unix socket)
  postgres  a private PostgreSQL cluster (initdb; as the `postgres` user when run as root) with
            fsync = on and synchronous_commit = on, as in production (store-postgres README), its
            data and socket in a folder of its own under /tmp, store-postgres

With both, both stacks stay up for the whole run and every measurement alternates between them, so
the two columns come from the same minutes (this VM's speed drifts by ±30 % over minutes):

  chain      a chain of N tasks for each N of --chain (default 40,20000); each task stamps its start
             and end with bash's $EPOCHREALTIME (no extra process), so the gap between one task's end
             and the next one's start is exit noticed -> finished report -> plan -> queued ->
             hand-over -> process started -> bash running. Reports the median and p90 gap per size
             (and the 40-task figure against the anchors: Airflow ~2.9 s per sequential task,
             Temporal ~74 ms, Hatchet ~31 ms, a public 40-task benchmark), and for scale what
             starting bash alone costs on this machine (spawned directly, no scheduler), and the
             step the cores allow: all the CPU a task cost (its bash, the scheduler, the server,
             the CLI) over the machine's cores. Chains and fan-outs also print the scheduler's CPU
             per task by thread (its threads are named by their job: lf-dispatch, lf-local-watch...).
             --warm-shells 0 makes every start cold (dispatcher-local README "Warm shells").
             --bash bash-static runs the tasks and warm shells in that bash (dispatcher-local's `bash`
             setting, its README "Choosing the bash"); the bare references stay `bash -c true`.
  fanout     one root and N children of `true` for each N of --fanout (default 1000,20000); reports
             tasks/s from the first child's start to the last child's start, the CPU the scheduler
             and the store's server spent (and the scheduler's CPU per task), and right after each
             fan-out the bare rate of the machine at that moment: N `bash -c true` spawned by 8
             threads (--spawn-threads) as fast as they can, no scheduler; and the CPU it takes to
             make one task's log folder and file on the logs' file system (min(N, 2000) of them).
             And the CPU each task cost, split: its bash (the scheduler's reaped children: the
             supervisors and warm shells), the scheduler, the server, the CLI; beside the CPU of one
             bare `bash -c true`. Their ratio is the share of the bare rate the cores allow when
             they are the limit.
             --repeat K runs each chain and fan-out K times per store (default 3), but sizes of
             10,000 and more run --repeat-large times (default 1).
  failover   a second scheduler (a standby) joins; after a random 1.5-2.5 s the leader is SIGKILLed.
             Reports the time from the kill to the new leader's first tick (the `last_tick` of the
             liveness record it writes at the end of that tick: the tick's start, read from the store
             at full precision; `leoflow status --json` then must name the new holder), and to its
             "became scheduler leader" log line. Default leader settings of each plugin (lease_ms
             3000; store-postgres poll_ms 500, store-redis checks every lease_ms / 3).
  scale      for each N of --active-runs (default 10000,100000), per store, on a fresh store (a
             Redis database / a PostgreSQL schema of its own): bench/seed_runs (built next to leoflow)
             writes N active runs of a 10-task DAG straight into the store (task `long` running, 9
             waiting on it; no process started), then ONE scheduler (reapers' thresholds out of reach,
             debug log, metrics-statsd to a UDP socket this script reads) takes over. Reports its
             first complete tick (the engine's `first tick as leader done` line: since_leading_ms,
             tick_ms), the idle tick (median and max of `scheduler.tick_duration` over
             --idle-seconds after it), the periodic reconcile ~30 s after taking over (`periodic
             resync done`: took_ms, and the longest tick received while it ran), the scheduler's
             memory per task instance (VmRSS after the first tick minus VmRSS of the same
             scheduler on the empty store, over N x 10), a person's `leoflow runs list --state
             success` while it leads (it matches none of the runs, so the store reads them all: its
             time and the leader's longest tick meanwhile), the leader's step-downs (must be 0), and,
             with --failovers, one fail-over at that scale (SIGKILL -> the new leader's `first tick
             as leader done`). Targets of issue 14 §3 are printed beside the figures.
  reference  the physical reference of each server, in the same run, once the schedulers are gone:
             pgbench single-client TPS (`pgbench -i`, then `pgbench -c 1 -T 10`) on the private
             cluster; redis-benchmark single-client, unpipelined SET and GET on the private Redis.

For chain and fanout the summary adds what the server did per task (Redis: commands, those run by
scripts included; PostgreSQL: transactions, rows scanned, WAL flushes and kB, from pg_stat_database
and pg_stat_wal), the CLI's `runs trigger --wait` polling included. The schedulers' lines at warn
level or worse are printed at the end.

--statsd: the chains' and fan-outs' scheduler also sends its metrics (metrics-statsd, every sample)
to a UDP socket of this script, as an operator's would; each run prints the lines received, the
median and longest `scheduler.tick_duration` meanwhile, the ticks of 20 ms or more in the order
they came (a large run's start, its root's end), and how many took 100 ms or more, together and the
second longest of them.

--small: one quick run for CI (chain 5,50; fan-out 20,100; 200 active runs; 1 fail-over; repeat 1;
short references); the meson test `e2e_bench_smoke` (suite bench) runs it on the build it belongs to.

Environment: LEOFLOW_BENCH_LOG=debug for the schedulers' debug log, LEOFLOW_BENCH_KEEP=1 to keep
the folders (config, logs, ledgers) for reading. LEOFLOW_BENCH_PGSS=K (postgres) loads
pg_stat_statements into the private cluster, nested statements tracked too (those the store's
functions run), and after each chain and fan-out prints its K statements (20 when K is not a number)
that hit the most shared buffers: calls, rows, buffers hit per call, total and mean time. A function
call's line counts its nested statements' work again; `top` marks the statements the store sent.
LEOFLOW_BENCH_PGWAIT=1 (postgres) samples pg_stat_activity every 20 ms during each chain and fan-out and
prints what the server's processes were doing: on CPU, or waiting (for the client, a lock, a WAL
flush, I/O), as a share of the samples per state and wait event — where a run spends its time waiting.
LEOFLOW_BENCH_CMDSTATS=1 (redis) prints, after each chain and fan-out, what Redis's command statistics
gained during it: calls per task of each command (those a script runs count too, and so does the
script's own EVALSHA) and the server's µs per call, as INFO commandstats gives them (time inside the
command, so a script's figure includes its commands').

This is a benchmark, not a test: it prints figures and fails only when a run does not succeed or a
figure cannot be read, never on a figure's value.
"""
import argparse
import collections
import datetime
import glob
import json
import os
import random
import re
import resource
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
PGSS = os.environ.get("LEOFLOW_BENCH_PGSS", "")
PGSS_TOP = int(PGSS) if PGSS.isdigit() and int(PGSS) > 0 else 20
PGWAIT = bool(os.environ.get("LEOFLOW_BENCH_PGWAIT"))
CMDSTATS = bool(os.environ.get("LEOFLOW_BENCH_CMDSTATS"))


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


def thread_cpu_seconds(pid):
    """CPU of each of a process's live threads so far, summed by thread name (the scheduler names its
    threads by their job: lf-dispatch, lf-local-watch, ...; the engine's loop is the main thread)."""
    out = collections.Counter()
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/comm") as f:
                name = f.read().strip()
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:  # ns on a CPU: finer than stat's ticks
                out[name] += int(f.read().split()[0]) / 1e9
        except (OSError, IndexError, ValueError):
            continue  # ended meanwhile
    return out


def thread_split(pid, before, total, tasks):
    """What each named thread of the scheduler spent since `before` (thread_cpu_seconds), per task,
    largest first; threads that ended meanwhile (short-lived readers) are the rest of `total`."""
    now = thread_cpu_seconds(pid)
    spent = {name: now[name] - before.get(name, 0.0) for name in now}
    # `total` is counted in clock ticks (10 ms): a remainder of a few ticks is rounding.
    spent["the rest (ended threads)"] = max(0.0, total - sum(spent.values()))
    parts = sorted(((v, k) for k, v in spent.items() if v > 0), reverse=True)
    return ", ".join(f"{k} {1000 * v / tasks:.2f}" for v, k in parts) + " ms"


def reaped_children_cpu_seconds(pid):
    """CPU of the children a process has reaped so far, and of theirs (cutime and cstime, fields 16
    and 17): for the scheduler, its tasks' supervisors — the tasks' bash — and its warm shells."""
    fields = proc_stat(pid)
    return (int(fields[13]) + int(fields[14])) / os.sysconf("SC_CLK_TCK")


def children_cpu_seconds():
    """CPU of this script's children that ended so far: the CLI commands (`dags sync`, `runs trigger
    --wait`, which follows the run on the same cores as the scheduler)."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


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

    def __init__(self, base, via="tcp"):
        self.dir = os.path.join(base, "redis")
        os.makedirs(self.dir)
        self.port = free_port()
        self.socket = os.path.join(self.dir, "redis.sock")
        # A unix socket's path holds at most 107 bytes (sun_path): with a long TMPDIR it goes into a
        # short folder of its own under /tmp instead, removed with the server.
        self.socket_dir = None
        if len(self.socket.encode()) > 100:
            self.socket_dir = tempfile.mkdtemp(prefix="lf-redis-", dir="/tmp")
            self.socket = os.path.join(self.socket_dir, "redis.sock")
        self.via = via  # how the schedulers reach it; the harness's own redis-cli uses the port
        self.process = subprocess.Popen(
            ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--dir", self.dir,
             "--unixsocket", self.socket, "--unixsocketperm", "700",
             "--appendonly", "yes", "--appendfsync", "everysec", "--save", ""],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(200):
            if self.cli("ping").strip() == "PONG":
                break
            time.sleep(0.02)
        else:
            sys.exit("redis-server did not answer")
        self.pid = self.process.pid
        self.setting = "redis-server 7, AOF with appendfsync everysec, reached over " + \
            ("its unix socket" if via == "unix" else "TCP on 127.0.0.1")

    def cli(self, *args):
        return subprocess.run(["redis-cli", "-p", str(self.port), *args], capture_output=True, text=True).stdout

    def url(self, db):
        if self.via == "unix":
            return f"unix://{self.socket}?db={db}"
        return f"redis://127.0.0.1:{self.port}/{db}"

    def store_toml(self):
        return f'url = "{self.url(0)}"\n'

    def scenario_toml(self, k):
        """A fresh store for scale scenario k: a database of its own (1..15)."""
        return f'url = "{self.url(1 + k % 15)}"\n'

    def scenario_drop(self, k):
        self.cli("-n", str(1 + k % 15), "FLUSHDB")

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

    def command_stats(self):
        """{command: (calls, µs inside it)} so far, from INFO commandstats."""
        stats = {}
        for line in self.cli("INFO", "commandstats").splitlines():
            m = re.match(r"cmdstat_(\S+):calls=(\d+),usec=(\d+)", line)
            if m:
                stats[m.group(1)] = (int(m.group(2)), int(m.group(3)))
        return stats

    def statements_reset(self):
        # A snapshot, not CONFIG RESETSTAT: that would also reset the total counters() reads.
        self.stats0 = self.command_stats() if CMDSTATS else {}

    def statements_top(self, label, tasks=1):
        """Per command since statements_reset() (LEOFLOW_BENCH_CMDSTATS): calls per task and the
        server's µs per call, the most called first, as text to print."""
        if not CMDSTATS:
            return ""
        rows = []
        for name, (calls, usec) in self.command_stats().items():
            calls0, usec0 = self.stats0.get(name, (0, 0))
            if calls > calls0:
                rows.append((calls - calls0, name, usec - usec0))
        rows.sort(reverse=True)
        lines = [f"[redis] {label}: commands per task (µs of the server per call, all calls' µs per task)"]
        lines += [f"  {name}: {calls / tasks:.2f} ({usec / calls:.1f} µs, {usec / tasks:.1f} µs)"
                  for calls, name, usec in rows]
        return "\n".join(lines) + "\n"

    def reference(self, small=False):
        """redis-benchmark, one client, no pipelining (what the store does: one command at a time)."""
        n = 10000 if small else 100000
        r = subprocess.run(["redis-benchmark", "-p", str(self.port), "-c", "1", "-n", str(n), "-t", "set,get",
                            "--csv"], capture_output=True, text=True)
        rates = {}
        for line in r.stdout.splitlines():
            cells = [c.strip('"') for c in line.split(",")]
            if len(cells) > 1 and cells[0] in ("SET", "GET"):
                rates[cells[0]] = float(cells[1])
        if "SET" not in rates:
            sys.exit(f"redis-benchmark failed: {r.stdout[-500:]} {r.stderr[-500:]}")
        return (f"redis-benchmark -c 1 -n {n}: SET {rates['SET']:,.0f} /s, GET {rates.get('GET', 0):,.0f} /s",
                rates["SET"])

    def close(self):
        self.process.terminate()
        self.process.wait(10)
        if self.socket_dir:
            shutil.rmtree(self.socket_dir, ignore_errors=True)


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
        if PGSS:
            opts += (" -c shared_preload_libraries=pg_stat_statements -c pg_stat_statements.track=all"
                     " -c pg_stat_statements.max=2000")
        self.run_pg("pg_ctl", "-D", self.data, "-l", os.path.join(self.dir, "server.log"), "-w", "-t", "30", "-s",
                    "-o", opts, "start")
        with open(os.path.join(self.data, "postmaster.pid")) as f:
            self.pid = int(f.readline())
        self.setting = ("PostgreSQL " + self.psql("SHOW server_version").split()[0] + ", fsync = "
                        + self.psql("SHOW fsync") + ", synchronous_commit = " + self.psql("SHOW synchronous_commit"))
        if PGSS:
            if self.psql("CREATE EXTENSION pg_stat_statements") is None:
                sys.exit("LEOFLOW_BENCH_PGSS: CREATE EXTENSION pg_stat_statements failed")
            self.setting += ", pg_stat_statements (track = all)"

    def index_reads(self):
        """Index entries each of the store's indexes returned so far, and rows sequential scans of
        each of its tables read (pg_stat_user_indexes, pg_stat_user_tables)."""
        out = self.psql("SELECT indexrelname, idx_scan, idx_tup_read FROM pg_stat_user_indexes "
                        "WHERE schemaname = 'leoflow' UNION ALL SELECT relname || ' (seq scan)', seq_scan, "
                        "seq_tup_read FROM pg_stat_user_tables WHERE schemaname = 'leoflow'")
        reads = {}
        for line in (out or "").splitlines():
            name, scans, rows = line.split("|")
            reads[name] = (int(scans), int(rows))
        return reads

    def statements_reset(self):
        if PGSS:
            self.psql("SELECT pg_stat_statements_reset()")
            self.reads0 = self.index_reads()
        if PGWAIT:
            self.waits = PgWaitSampler(os.path.join(self.bin, "psql"), self.port)

    def waits_top(self, label):
        """What LEOFLOW_BENCH_PGWAIT's sampler saw since statements_reset(), as text to print."""
        if not PGWAIT:
            return ""
        counts, samples = self.waits.stop()
        lines = [f"[postgres] {label}: the server's processes over {samples} samples (pg_stat_activity every "
                 f"20 ms), by backend type, state and wait event; per sample on average:"]
        for what, n in sorted(counts.items(), key=lambda kv: -kv[1])[:16]:
            lines.append(f"  {n / max(samples, 1):6.2f}  {what}")
        return "\n".join(lines) + "\n"

    def statements_top(self, label, tasks=1):
        """The statements that hit the most shared buffers since statements_reset(), and the rows each
        index and table returned meanwhile, as text to print (LEOFLOW_BENCH_PGSS), and the waits
        (LEOFLOW_BENCH_PGWAIT). Totals, not per task: `tasks` is unused here."""
        waits = self.waits_top(label)
        if not PGSS:
            return waits
        out = self.psql(
            "SELECT calls || '|' || rows || '|' || shared_blks_hit || '|' || round(total_exec_time::numeric, 1) "
            "|| '|' || toplevel || '|' || regexp_replace(query, '\\s+', ' ', 'g') FROM pg_stat_statements "
            f"WHERE query NOT LIKE '%pg_stat%' ORDER BY shared_blks_hit DESC LIMIT {PGSS_TOP}")
        lines = [f"[postgres] {label}: top statements by shared buffers hit (pg_stat_statements)",
                 f"  {'calls':>8} {'rows':>10} {'rows/call':>9} {'blks hit':>11} {'hit/call':>8} {'total ms':>9} "
                 f"{'mean ms':>7}  top  query"]
        for line in (out or "").splitlines():
            calls, rows, hit, total, top, query = line.split("|", 5)
            calls, rows, hit, total = int(calls), int(rows), int(hit), float(total)
            lines.append(f"  {calls:>8} {rows:>10} {rows / max(calls, 1):>9.1f} {hit:>11} {hit / max(calls, 1):>8.1f} "
                         f"{total:>9.1f} {total / max(calls, 1):>7.3f}  {'yes' if top == 'true' else 'no ':3}  "
                         f"{query[:150]}")
        jit = self.psql(
            "SELECT calls || '|' || jit_functions || '|' || round((jit_generation_time + jit_inlining_time + "
            "jit_optimization_time + jit_emission_time)::numeric, 1) || '|' || regexp_replace(query, '\\s+', ' ', 'g') "
            "FROM pg_stat_statements WHERE jit_functions > 0 ORDER BY 3 DESC LIMIT 5")
        lines.append("  statements the server compiled (JIT): " + ("none" if not jit else ""))
        for line in (jit or "").splitlines():
            calls, functions, ms, query = line.split("|", 3)
            lines.append(f"  {int(calls):>8} calls, {int(functions):>6} functions, {float(ms):>9.1f} ms compiling  "
                         f"{query[:150]}")
        time.sleep(1)  # backends publish their table and index counters when idle
        reads = self.index_reads()
        delta = sorted(((r[1] - self.reads0.get(k, (0, 0))[1], r[0] - self.reads0.get(k, (0, 0))[0], k)
                        for k, r in reads.items()), reverse=True)
        lines.append("  rows read, by index (index entries returned) and by table (sequential scans):")
        lines += [f"  {rows:>12} in {scans:>8} scans ({rows / max(scans, 1):,.1f} per scan)  {name}"
                  for rows, scans, name in delta[:8] if rows > 0]
        return "\n".join(lines) + "\n" + waits

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

    def scenario_toml(self, k):
        """A fresh store for scale scenario k: a schema of its own (store-postgres migrates it)."""
        return self.store_toml() + f'schema = "leoflow_scale{k}"\n'

    def scenario_drop(self, k):
        self.psql(f"DROP SCHEMA IF EXISTS leoflow_scale{k} CASCADE")

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

    def reference(self, small=False):
        """pgbench's TPC-B-like transaction, one client, 10 s: one synchronous commit at a time."""
        secs = 2 if small else 10
        pgbench = [os.path.join(self.bin, "pgbench"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres"]
        r = subprocess.run([*pgbench, "-i", "-q", "postgres"], capture_output=True, text=True)
        if r.returncode != 0:
            sys.exit(f"pgbench -i failed: {r.stderr[-1000:]}")
        r = subprocess.run([*pgbench, "-c", "1", "-T", str(secs), "postgres"], capture_output=True, text=True)
        m = re.search(r"tps = ([0-9.]+) \(without initial connection time\)", r.stdout)
        if r.returncode != 0 or not m:
            sys.exit(f"pgbench failed: {r.stdout[-1000:]} {r.stderr[-1000:]}")
        tps = float(m.group(1))
        return f"pgbench -c 1 -T {secs} (scale 1, TPC-B-like): {tps:,.0f} TPS", tps

    def close(self):
        subprocess.run([*self.as_pg, os.path.join(self.bin, "pg_ctl"), "-D", self.data, "-m", "fast", "-w", "-t",
                        "30", "-s", "stop"], cwd="/", capture_output=True)
        if KEEP:
            print(f"kept {self.dir}")
        else:
            shutil.rmtree(self.dir, ignore_errors=True)


class PgWaitSampler:
    """Samples pg_stat_activity every 20 ms through one psql session, until stop(): how many of the
    server's processes were, per sample, on CPU or waiting on each wait event (LEOFLOW_BENCH_PGWAIT)."""
    QUERY = ("SELECT backend_type || ' ' || coalesce(state, '-') || ': ' || "
             "coalesce(wait_event_type || '/' || wait_event, 'on CPU') FROM pg_stat_activity "
             "WHERE pid <> pg_backend_pid() AND backend_type NOT IN ('autovacuum launcher', "
             "'logical replication launcher', 'archiver');\nSELECT '.';\n")

    def __init__(self, psql, port):
        self.p = subprocess.Popen([psql, "-XAtq", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-d",
                                   "postgres"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
        self.counts, self.samples, self.done = {}, 0, threading.Event()
        self.thread = threading.Thread(target=self.loop, daemon=True)
        self.thread.start()

    def loop(self):
        while not self.done.is_set():
            self.p.stdin.write(self.QUERY)
            for line in self.p.stdout:
                line = line.strip()
                if line == ".":
                    break
                if line:
                    self.counts[line] = self.counts.get(line, 0) + 1
            self.samples += 1
            self.done.wait(0.02)

    def stop(self):
        self.done.set()
        self.thread.join()
        self.p.stdin.close()
        self.p.wait()
        return self.counts, self.samples


SERVERS = {"redis": RedisServer, "postgres": PostgresServer}


# ---------------------------------------------------------------------------------------------------
# A deployment on one store: its server, schedulers, config, DAGs.

class Stack:
    def __init__(self, store, build, max_parallel, warm_shells, bash, redis_via="tcp", statsd=False):
        self.dir = tempfile.mkdtemp(prefix=f"leoflow-bench-{store}-")
        self.bin = os.path.join(build, "core", "host", "leoflow")
        self.seeder = os.path.join(build, "bench", "seed_runs")
        self.server = RedisServer(self.dir, redis_via) if store == "redis" else SERVERS[store](self.dir)
        self.name = store
        self.max_parallel, self.warm_shells, self.bash = max_parallel, warm_shells, bash
        self.config = os.path.join(self.dir, "leoflow.toml")
        # --statsd: the scheduler sends its metrics as an operator's would (every sample), to a socket here.
        self.listener = StatsdListener() if statsd else None
        self.write_config(self.config, self.server.store_toml(), os.environ.get('LEOFLOW_BENCH_LOG', 'warn'), "")
        if self.listener:
            with open(self.config, "a") as f:
                f.write(statsd_recorder_toml(self.listener.port))
        self.env = dict(os.environ, LEOFLOW_CONFIG=self.config)
        self.schedulers = []  # every scheduler started, for the error scan and the clean-up
        self.scheduler = None

    def write_config(self, path, store_toml, log_level, extra, base=None):
        base = base or self.dir
        with open(path, "w") as f:
            f.write(f"""[scheduler]
tick_interval_ms = 1000
log_level = "{log_level}"
dispatch_pool_size = 16
dispatch_queue_size = 2048
{extra}[store]
plugin = "{self.server.plugin}"
[store.config]
{store_toml}[dispatcher]
plugin = "dispatcher-local"
[dispatcher.config]
max_parallel = {self.max_parallel}
warm_shells = {self.warm_shells}
bash = {json.dumps(self.bash)}
work_dir = "{base}/work"
log_dir = "{base}/logs"
state_dir = "{base}/state"
""")

    def start(self):
        self.scheduler = self.start_scheduler("scheduler")
        self.wait_for_leader()

    def start_scheduler(self, name, log_level=None, env=None):
        args = [self.bin, "scheduler"] + (["--log-level", log_level] if log_level else [])
        log = os.path.join(self.dir, f"{name}.log")
        p = subprocess.Popen(args, env=env or self.env, stdout=open(log, "w"), stderr=subprocess.STDOUT)
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
        state = (f"exited with {self.scheduler.returncode}" if self.scheduler.poll() is not None
                 else f"still running, pid {self.scheduler.pid}")
        sys.exit(f"[{self.name}] no scheduler led within {timeout} s (the scheduler {state}; liveness record "
                 f"{self.server.liveness()}):\n{self.log_tail(self.scheduler)}")

    def log_tail(self, p, n=20):
        with open(p.log) as f:
            return "".join(f.readlines()[-n:])

    def leoflow(self, *args, env=None):
        return subprocess.run([self.bin, *args], env=env or self.env, capture_output=True, text=True)

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

    def statsd_mark(self):
        """Where the metrics stand now, for statsd_since: (time.time(), lines received so far)."""
        return time.time(), self.listener.lines if self.listener else 0

    def statsd_since(self, mark):
        """With --statsd: "; statsd: N lines, tick median X ms, max Y ms (ticks of 20 ms or more, in the
        order they came: A, B ms; of 100 ms or more: K, together S s, the second longest Z ms)" since
        `mark` (statsd_mark()); "" without. The long ticks' order tells
        a run's start (its instances written) from its root's end (all of them moved)."""
        if not self.listener:
            return ""
        t0, lines0 = mark
        ticks = self.listener.between(t0, time.time())
        tick = f", tick median {median(ticks):.1f} ms, max {max(ticks):.1f} ms" if ticks else ""
        long_ticks = [ms for ms in ticks if ms >= 20]
        if long_ticks:
            shown = ", ".join(f"{ms:.0f}" for ms in long_ticks[:6]) + (", ..." if len(long_ticks) > 6 else "")
            slow = [ms for ms in long_ticks if ms >= 100]
            tick += f" (ticks of 20 ms or more, in order: {shown} ms; of 100 ms or more: {len(slow)}"
            if len(slow) > 1:
                # The longest but one: the longest other than a large run's start, or its root's end.
                tick += f", together {sum(slow) / 1000:.2f} s, the second longest {sorted(slow)[-2]:.0f} ms"
            tick += ")"
        return f"; statsd: {self.listener.lines - lines0} lines{tick}"

    def close(self):
        self.stop_schedulers()
        self.server.close()
        if self.listener:
            self.listener.close()
        if KEEP:
            print(f"kept {self.dir}")
        else:
            shutil.rmtree(self.dir, ignore_errors=True)


# ---------------------------------------------------------------------------------------------------
# The measurements, the same for every store.

def exec_floor_ms(bash, samples=50):
    """Median time from posix_spawn of `bash -c` (the tasks' bash, a path) to its first command on this
    machine: the part of every gap no scheduler can remove (process creation and bash start-up)."""
    out = []
    for _ in range(samples):
        r, w = os.pipe()
        t0 = time.time()
        pid = os.posix_spawn(bash, [bash, "-c", "echo $EPOCHREALTIME"], os.environ,
                             file_actions=[(os.POSIX_SPAWN_DUP2, w, 1)])
        os.close(w)
        stamp = float(os.read(r, 64).decode())
        os.close(r)
        os.waitpid(pid, 0)
        out.append((stamp - t0) * 1000)
    return statistics.median(out)


def bare_spawn_rate(n, threads):
    """`bash -c true` started per second by `threads` threads spawning and reaping as fast as they
    can, no scheduler: the ceiling of one process per task on this machine at this moment. Also
    answers the CPU one such bash used (from its own start to its end), in seconds."""
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
    cpu0 = children_cpu_seconds()
    t0 = time.perf_counter()
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return n / (time.perf_counter() - t0), (children_cpu_seconds() - cpu0) / n


def bare_log_create_us(folder, n):
    """Microseconds (CPU) to make one task's log folder and open its new log file for appending, as
    dispatcher-local does for every attempt, in a fresh folder on the logs' file system, no
    scheduler: the file system's share of a task. On ext4 without a journal it depends on what was
    deleted lately (a new inode skips every inode freed in the last minutes), so it is measured in
    the same minute as the fan-out. The files stay (removing them would make the next one dearer)."""
    os.makedirs(folder)
    header = b"*** leoflow: attempt started\n"
    t0 = time.process_time()
    for i in range(n):
        task_dir = os.path.join(folder, f"c{i}")
        os.mkdir(task_dir)
        fd = os.open(os.path.join(task_dir, "1.log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)
        os.write(fd, header)
        os.close(fd)
    return (time.process_time() - t0) / n * 1e6


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
    cpu0 = cpu_now(stack)
    stack.run_dag({"dag_id": name, "tasks": tasks}, 600)
    cpu = cpu_since(stack, cpu0)
    s = read_stamps(ledger)
    return [(s[f"t{i}"]["start"] - s[f"t{i - 1}"]["end"]) * 1000 for i in range(1, n)], cpu


Cpu = collections.namedtuple("Cpu", "tasks sched server cli")


def cpu_now(stack):
    """CPU seconds so far: the tasks' bash, the scheduler, the store's server, the CLI commands."""
    return Cpu(reaped_children_cpu_seconds(stack.scheduler.pid), cpu_seconds(stack.scheduler.pid),
               tree_cpu_seconds(stack.server.pid), children_cpu_seconds())


def cpu_per_task(cpus, tasks):
    """The median of each part over runs (`cpus`, each run's Cpu), per task, in ms: "a / b / c / d ms"."""
    return " / ".join(f"{1000 * median([getattr(c, part) for c in cpus]) / tasks:.2f}" for part in Cpu._fields) + " ms"


CORES = os.cpu_count() or 1


def step_floor_ms(cpu, tasks):
    """The shortest step the cores allow a chain whose tasks cost `cpu` (a Cpu over `tasks` tasks)
    in all: that CPU spread over every core, in ms. A gap near it means the machine, not a wait,
    is the limit."""
    return 1000 * sum(cpu) / tasks / CORES


def cpu_since(stack, before):
    """CPU seconds each part used since `before`, taken right after a run ended. The run can end
    before the scheduler has reaped its last supervisors (a finished report follows the exit file,
    the reaping the process's end): the tasks' figure is read again until it stops moving."""
    now = cpu_now(stack)
    tasks = now.tasks
    for _ in range(20):
        time.sleep(0.1)
        settled, tasks = tasks, reaped_children_cpu_seconds(stack.scheduler.pid)
        if tasks == settled:
            break
    return Cpu(tasks - before.tasks, now.sched - before.sched, now.server - before.server, now.cli - before.cli)


def bench_fanout(stack, n, name):
    ledger = os.path.join(stack.dir, f"{name}.ledger")
    tasks = [{"task_id": "root", "type": "bash", "entrypoint": "true"}]
    for i in range(n):
        tasks.append({"task_id": f"c{i}", "type": "bash", "depends_on": ["root"],
                      "entrypoint": f'echo "c{i} start $EPOCHREALTIME" >> {ledger}'})
    cpu0 = cpu_now(stack)
    t0 = time.time()
    stack.run_dag({"dag_id": name, "tasks": tasks}, 1200)
    wall = time.time() - t0
    cpu = cpu_since(stack, cpu0)
    starts = sorted(v["start"] for v in read_stamps(ledger).values())
    span = starts[-1] - starts[0]
    return (n / span if span > 0 else float("inf")), wall, cpu


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
# The scale scenario (issue 14 §3): N active runs seeded straight into a fresh store, one scheduler.

SCALE_DAG = "scale10"
SCALE_TASKS = 10
TICK_LINE = re.compile(rb"^[\w.]*scheduler\.tick_duration:([0-9.eE+-]+)\|ms")


def statsd_recorder_toml(port):
    """A config's [[recorder]]: metrics-statsd sending every sample to 127.0.0.1:`port`."""
    return (f'[[recorder]]\nplugin = "metrics-statsd"\n[recorder.config]\n'
            f'address = "127.0.0.1:{port}"\nsample_rate = 1.0\n')


class StatsdListener:
    """A UDP socket standing in for the StatsD daemon: keeps (arrival time, ms) of every
    scheduler.tick_duration line it receives."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.ticks = []
        self.lines = 0
        self.stop = False
        self.thread = threading.Thread(target=self.loop, daemon=True)
        self.thread.start()

    def loop(self):
        while not self.stop:
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            now = time.time()
            for line in data.split(b"\n"):
                self.lines += 1
                m = TICK_LINE.match(line)
                if m:
                    self.ticks.append((now, float(m.group(1))))

    def between(self, t0, t1):
        return [ms for t, ms in list(self.ticks) if t0 <= t <= t1]

    def close(self):
        self.stop = True
        self.thread.join()
        self.sock.close()


def vm_rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def wait_for_line(p, pattern, timeout, after=0.0, what="", stack=None, soft=False):
    """The first line of p's log matching `pattern` whose timestamp is >= `after`: (line, match).
    On a timeout: exits, or with `soft` returns (None, None)."""
    rx = re.compile(pattern)
    deadline = time.time() + timeout
    pos = 0
    while True:
        with open(p.log) as f:
            f.seek(pos)
            while True:
                line = f.readline()
                if not line or not line.endswith("\n"):
                    break
                pos = f.tell()
                m = rx.search(line)
                if m and log_time(line) >= after:
                    return line, m
        if soft and time.time() > deadline and p.poll() is None:
            return None, None
        if time.time() > deadline or p.poll() is not None:
            name = stack.name if stack else "?"
            sys.exit(f"[{name}] no `{what or pattern}` line in {os.path.basename(p.log)} within {timeout:.0f} s "
                     f"(scheduler {'exited with ' + str(p.returncode) if p.poll() is not None else 'still running'}):"
                     f"\n{tail_of(p.log)}")
        time.sleep(0.05)


def tail_of(path, n=20):
    with open(path) as f:
        return "".join(f.readlines()[-n:])


def step_down_lines(p):
    with open(p.log) as f:
        return [line.rstrip() for line in f if "stepping down" in line or "stepped down" in line]


FIRST_TICK = r"first tick as leader done runs=(\d+) loaded=(\d+) tick_ms=(\d+) since_leading_ms=(\d+)"
RESYNC = r"periodic resync done runs=(\d+) took_ms=(\d+)"
LISTED = r"active runs listed runs=(\d+) new_or_dirty=(\d+) gone=(\d+) store_ms=(\d+) took_ms=(\d+)"


def listing_lines(p):
    """The engine's `active runs listed` lines (debug): (runs, store_ms, took_ms) per listing."""
    with open(p.log) as f:
        return [(int(m.group(1)), int(m.group(4)), int(m.group(5))) for m in (re.search(LISTED, line) for line in f)
                if m]


def bench_scale(stack, n, k, seed_threads, idle_seconds, failover, small):
    """Seeds n active runs of a 10-task DAG in a fresh store and measures one scheduler taking over."""
    out = {"n": n}
    base = os.path.join(stack.dir, f"scale{k}")
    os.makedirs(base, exist_ok=True)
    listener = StatsdListener()
    config = os.path.join(base, "leoflow.toml")
    huge = 30 * 86400  # no reaper touches the seeded runs (their long task never heartbeats)
    stack.write_config(config, stack.server.scenario_toml(k), "debug",
                       f"agent_lost_threshold_s = {huge}\ndispatch_lost_threshold_s = {huge}\n"
                       f"orphan_threshold_s = {huge}\n", base=base)
    with open(config, "a") as f:
        f.write(statsd_recorder_toml(listener.port))
    env = dict(os.environ, LEOFLOW_CONFIG=config)
    schedulers = []

    def start(name):
        p = stack.start_scheduler(name, env=env)
        schedulers.append(p)
        return p

    try:
        # The DAG: `long` first, the 9 others downstream of it.
        dag = {"dag_id": SCALE_DAG, "tasks": [{"task_id": "long", "type": "bash", "entrypoint": "sleep 86400"}] + [
            {"task_id": f"w{i}", "type": "bash", "depends_on": ["long"], "entrypoint": "true"}
            for i in range(1, SCALE_TASKS)]}
        path = os.path.join(base, "dag.json")
        with open(path, "w") as f:
            json.dump(dag, f)
        r = stack.leoflow("dags", "sync", path, env=env)
        if r.returncode != 0:
            sys.exit(f"[{stack.name}] dags sync failed: {r.stderr}")

        # The same scheduler on the empty store: its memory without runs.
        p = start(f"scale{k}-empty")
        wait_for_line(p, FIRST_TICK, 60, what="first tick as leader done", stack=stack)
        time.sleep(0.5)
        rss_empty = vm_rss_kb(p.pid)
        p.terminate()
        p.wait(15)

        # Seeding, no scheduler running.
        t0 = time.time()
        sp = subprocess.Popen([stack.seeder, "--dag", SCALE_DAG, "--runs", str(n), "--threads", str(seed_threads),
                               "--prefix", "seed"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True)
        last_print = [0.0]

        def relay():
            for line in sp.stderr:
                if time.time() - last_print[0] >= 10 or not line.startswith("seed_runs: "):
                    last_print[0] = time.time()
                    print(f"[{stack.name}]   {line.rstrip()}", flush=True)
        relay_t = threading.Thread(target=relay, daemon=True)
        relay_t.start()
        seeded = sp.stdout.read()
        sp.wait()
        relay_t.join()
        if sp.returncode != 0:
            sys.exit(f"[{stack.name}] seed_runs exited with {sp.returncode}: {seeded}")
        out["seed_s"] = time.time() - t0
        m = re.search(r"runs_per_s=(\d+)", seeded)
        out["seed_rate"] = float(m.group(1)) if m else n / out["seed_s"]
        print(f"[{stack.name}] {n} active runs seeded in {out['seed_s']:.1f} s ({out['seed_rate']:.0f} runs/s, "
              f"{seed_threads} threads)", flush=True)

        # One scheduler takes over.
        leader = start(f"scale{k}")
        t_start = time.time()
        line, m = wait_for_line(leader, FIRST_TICK, 120 + n / 500, what="first tick as leader done", stack=stack)
        rss = vm_rss_kb(leader.pid)
        t_first = log_time(line)
        out["first_runs"], out["first_loaded"] = int(m.group(1)), int(m.group(2))
        out["first_tick_ms"], out["since_leading_ms"] = int(m.group(3)), int(m.group(4))
        t_lead = t_first - out["since_leading_ms"] / 1000
        out["rss_empty_kb"], out["rss_kb"] = rss_empty, rss
        out["bytes_per_ti"] = (rss - rss_empty) * 1024 / (n * SCALE_TASKS)
        if out["first_runs"] != n:
            print(f"[{stack.name}] note: the first tick names {out['first_runs']} runs, not the {n} seeded")
        print(f"[{stack.name}] {n} runs: first tick as leader done {out['since_leading_ms']} ms after leading "
              f"(tick {out['first_tick_ms']} ms, {out['first_runs']} runs, {out['first_loaded']} loaded; "
              f"{t_first - t_start:.1f} s after start); VmRSS {rss_empty / 1024:.0f} MB empty -> "
              f"{rss / 1024:.0f} MB: {out['bytes_per_ti']:.0f} B per task instance", flush=True)

        # Idle ticks: nothing changes.
        time.sleep(max(0.0, t_first + 0.3 + idle_seconds + 0.3 - time.time()))
        idle = listener.between(t_first + 0.3, t_first + 0.3 + idle_seconds)
        if not idle:
            sys.exit(f"[{stack.name}] no scheduler.tick_duration line received in the {idle_seconds} s after the "
                     f"first tick ({listener.lines} statsd lines in all)")
        out["idle_median"], out["idle_max"], out["idle_count"] = median(idle), max(idle), len(idle)
        print(f"[{stack.name}] {n} runs: idle tick median {out['idle_median']:.2f} ms, max {out['idle_max']:.2f} ms "
              f"({len(idle)} ticks)", flush=True)

        # The periodic reconcile: every run reloaded ~30 s after it was loaded, a chunk per tick. It may
        # come in several passes (the runs loaded over the first tick fall due over as long).
        # Given up (a figure that cannot be read, reported as such) when it has not ended 30 s + 120 s +
        # 2 ms per run after taking over.
        passes = []
        after = t_first
        give_up = t_lead + 30 + 120 + n / 500
        while sum(r for r, _, _ in passes) < out["first_runs"]:
            line, m = wait_for_line(leader, RESYNC, max(1.0, give_up - time.time()), after=after,
                                    what="periodic resync done", stack=stack, soft=True)
            if line is None:
                break
            after = log_time(line) + 1e-6
            passes.append((int(m.group(1)), int(m.group(2)), log_time(line)))
        complete = sum(r for r, _, _ in passes) >= out["first_runs"]
        t_end = passes[-1][2] if complete else time.time()
        time.sleep(0.4)  # the recorder's sender flushes every 100 ms
        during = listener.between(t_lead + 28, t_end + 0.3)
        out["resync_passes"] = len(passes)
        out["resync_runs"] = sum(r for r, _, _ in passes)
        out["resync_max_tick"] = max(during) if during else None
        out["resync_ticks"] = len(during)
        if not during:
            sys.exit(f"[{stack.name}] no scheduler.tick_duration line received during the periodic reconcile")
        if complete:
            out["resync_ms"] = max(p[1] for p in passes)
            out["resync_span_ms"] = (t_end - (passes[0][2] - passes[0][1] / 1000)) * 1000
            print(f"[{stack.name}] {n} runs: periodic resync done {out['resync_runs']} runs in {len(passes)} "
                  f"pass(es), took_ms {', '.join(str(p[1]) for p in passes)} (span {out['resync_span_ms']:.0f} ms); "
                  f"longest tick meanwhile {out['resync_max_tick']:.1f} ms ({len(during)} ticks from 28 s after "
                  f"leading)", flush=True)
        else:
            out["resync_span_limit"] = f"{give_up - t_lead:.0f} s"
            out["unreadable"] = (f"{n} active runs: the periodic reconcile did not end within {give_up - t_lead:.0f} s "
                                 f"of taking over ({out['resync_runs']} runs in finished passes)")
            print(f"[{stack.name}] {out['unreadable']}; longest tick since 28 s after leading "
                  f"{out['resync_max_tick']:.1f} ms ({len(during)} ticks)", flush=True)

        # The listings of the active runs (on taking over, then once a resync interval) and their cost.
        listings = listing_lines(leader)
        if listings:
            print(f"[{stack.name}] {n} runs: active-run listings (runs, store ms, tick share ms): "
                  f"{', '.join(f'{r}/{s}/{t}' for r, s, t in listings)}", flush=True)
        # A person's listing that matches none of the runs (so the store reads every one) while the
        # leader works: how long it takes, and the leader's longest tick meanwhile. One script over
        # every run held Redis for seconds, and the leader's lease ran out.
        t0 = time.time()
        r = stack.leoflow("runs", "list", "--state", "success", "--limit", "10", env=env)
        t1 = time.time()
        out["list_rc"] = r.returncode  # not fatal: a listing the store could not answer in time is a figure
        time.sleep(1.5)  # the tick the listing held up ends within a tick interval (1 s)
        ticks = listener.between(t0, t1 + 1.1)
        out["list_s"], out["list_max_tick"] = t1 - t0, max(ticks) if ticks else None
        print(f"[{stack.name}] {n} runs: runs list --state success (matching none) took {out['list_s']:.2f} s"
              f"{'' if r.returncode == 0 else f' and failed (exit {r.returncode}: {r.stderr.strip()[-160:]})'}; "
              f"the leader's longest tick meanwhile " +
              (f"{out['list_max_tick']:.1f} ms ({len(ticks)} ticks)" if ticks else "- (no tick ended)"), flush=True)
        out["step_downs"] = step_down_lines(leader)
        # A fail-over at this scale: a standby joins, the leader is SIGKILLed.
        if failover:
            standby = start(f"scale{k}-standby")
            time.sleep(2.0 if small else random.uniform(1.5, 2.5))
            if standby.poll() is not None:
                sys.exit(f"[{stack.name}] the standby exited with {standby.returncode}:\n{tail_of(standby.log)}")
            t_kill = time.time()
            os.kill(leader.pid, signal.SIGKILL)
            leader.wait()
            line, m = wait_for_line(standby, FIRST_TICK, 120 + n / 500, after=t_kill,
                                    what="first tick as leader done (standby)", stack=stack)
            out["fo_first_tick"] = log_time(line) - t_kill
            out["fo_since_leading_ms"], out["fo_tick_ms"] = int(m.group(4)), int(m.group(3))
            print(f"[{stack.name}] {n} runs: fail-over, SIGKILL -> new leader's first complete tick "
                  f"{out['fo_first_tick'] * 1000:.0f} ms (its since_leading_ms {out['fo_since_leading_ms']}, "
                  f"tick_ms {out['fo_tick_ms']})", flush=True)
            time.sleep(1)
            out["step_downs"] += step_down_lines(standby)
        out["leases_lost"] = len(out["step_downs"])
        print(f"[{stack.name}] {n} runs: {out['leases_lost']} step-down line(s) while leading", flush=True)
        for line in out["step_downs"][:5]:
            print(f"[{stack.name}]   {line}")
    finally:
        for p in schedulers:
            if p.poll() is None:
                p.terminate()
        for p in schedulers:
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        listener.close()
        stack.server.scenario_drop(k)
    return out


# ---------------------------------------------------------------------------------------------------

def sizes(text):
    try:
        out = [int(x.replace("_", "")) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated sizes, got {text!r}")
    if not out or min(out) <= 0:
        raise argparse.ArgumentTypeError(f"expected positive sizes, got {text!r}")
    return out


LARGE = 10000  # sizes from this on run --repeat-large times
# A public 40-task benchmark's seconds per sequential task (issue 14 §4).
ANCHORS = [("Airflow", 2.9), ("Temporal", 0.074), ("Hatchet", 0.031)]


def times(x):
    return f"{x:,.0f}×" if x >= 10 else f"{x:.1f}×"


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--store", choices=["redis", "postgres", "both"], default="both")
    p.add_argument("--build", default=os.path.join(ROOT, "build-release"))
    p.add_argument("--chain", type=sizes, default=None, help="chain sizes, comma-separated (default 40,20000)")
    p.add_argument("--fanout", type=sizes, default=None, help="fan-out sizes, comma-separated (default 1000,20000)")
    p.add_argument("--active-runs", type=sizes, default=None,
                   help="active runs of the scale scenario, comma-separated (default 10000,100000)")
    p.add_argument("--repeat", type=int, default=None, help="runs of each chain and fan-out size, per store (3)")
    p.add_argument("--repeat-large", type=int, default=1, help=f"runs of sizes >= {LARGE:,}, per store")
    p.add_argument("--failovers", type=int, default=None,
                   help="leader kills per store (5); with the scale scenario, one more per size when > 0")
    p.add_argument("--seed-threads", type=int, default=8, help="threads (each its own store) of seed_runs")
    p.add_argument("--idle-seconds", type=float, default=10.0, help="idle ticks watched after the first tick")
    p.add_argument("--spawn-threads", type=int, default=8, help="threads of the bare bash -c true spawn rate")
    p.add_argument("--max-parallel", type=int, default=64)
    p.add_argument("--warm-shells", type=int, default=2, help="dispatcher-local warm_shells (0: every start cold)")
    p.add_argument("--bash", default="bash",
                   help="dispatcher-local bash: the program that runs bash tasks, e.g. bash-static (the bare "
                        "references stay bash)")
    p.add_argument("--redis-via", choices=["tcp", "unix"], default="tcp",
                   help="how the schedulers reach redis-server: TCP on 127.0.0.1, or its unix socket "
                        "(store-redis url unix://...)")
    p.add_argument("--statsd", action="store_true",
                   help="the chains' and fan-outs' scheduler sends metrics (metrics-statsd, every sample) to a UDP "
                        "socket here, as an operator's would; each run prints the lines and its ticks")
    p.add_argument("--only", choices=["chain", "fanout", "failover", "scale", "reference"], help="run one benchmark")
    p.add_argument("--small", action="store_true",
                   help="one quick run for CI: chain 5,50, fan-out 20,100, 200 active runs, 1 fail-over, repeat 1")
    a = p.parse_args()
    small = {"chain": [5, 50], "fanout": [20, 100], "active_runs": [200], "failovers": 1, "repeat": 1}
    full = {"chain": [40, 20000], "fanout": [1000, 20000], "active_runs": [10000, 100000], "failovers": 5,
            "repeat": 3}
    for key, value in (small if a.small else full).items():
        if getattr(a, key) is None:
            setattr(a, key, value)
    if not os.path.exists(os.path.join(a.build, "core", "host", "leoflow")):
        sys.exit(f"no leoflow in {a.build}: ./dev build --release (or pass --build build)")
    bash = shutil.which(a.bash)
    if bash is None:
        sys.exit(f"--bash {a.bash}: not found on PATH" + (" (Debian: apt-get install bash-static)"
                                                          if a.bash == "bash-static" else ""))
    bash = os.path.abspath(bash)
    stores = ["redis", "postgres"] if a.store == "both" else [a.store]
    for s in stores:
        so = os.path.join(a.build, "plugins", f"store-{s}", f"leoflow-store-{s}.so")
        if not os.path.exists(so):
            sys.exit(f"{so} is not built")

    def wanted(what):
        return a.only in (None, what)

    if wanted("scale") and a.active_runs:
        for need in (os.path.join(a.build, "bench", "seed_runs"),
                     os.path.join(a.build, "plugins", "metrics-statsd", "leoflow-metrics-statsd.so")):
            if not os.path.exists(need):
                sys.exit(f"{need} is not built (the scale scenario needs it): ninja -C {a.build} "
                         f"{os.path.relpath(need, a.build)}")

    def runs_of(n):
        return a.repeat_large if n >= LARGE else a.repeat

    started = datetime.datetime.now(datetime.timezone.utc)
    # Others' CPU during the run: the machine's busy time minus ours (this process with everything it
    # started and reaped, the schedulers and their tasks, redis-server, and the PostgreSQL servers,
    # which pg_ctl detaches from us).
    busy0, ours0, t0 = machine_busy_seconds(), tree_cpu_seconds(os.getpid()), time.time()
    foreign = None
    floor = None
    refs = {}
    warnings = {}
    phase = {}  # seconds each scenario took
    plan = [f"chain {a.chain}" if wanted("chain") else "", f"fan-out {a.fanout}" if wanted("fanout") else "",
            f"repeat {a.repeat} (sizes >= {LARGE:,}: {a.repeat_large})" if wanted("chain") or wanted("fanout") else "",
            f"active runs {a.active_runs}" if wanted("scale") else "",
            f"fail-overs {a.failovers}" if wanted("failover") or wanted("scale") else "",
            f"tasks' bash {bash}" if a.bash != "bash" else ""]
    print(f"{started:%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores, build {a.build}, stores: {', '.join(stores)}; "
          + ", ".join(x for x in plan if x), flush=True)
    stacks = []
    res = {s: {"gaps": {}, "rates": {}, "bare": {}, "create": {}, "chain_cpu": {}, "fanout_cpu": {}, "bare_cpu": {},
               "work": {}, "fo_tick": [], "fo_won": [], "fo_seen": [], "scale": {}} for s in stores}
    try:
        for s in stores:
            stacks.append(Stack(s, a.build, a.max_parallel, a.warm_shells, bash, a.redis_via, a.statsd))
            stacks[-1].start()
            print(f"[{s}] {stacks[-1].server.setting}", flush=True)

        def counters():
            time.sleep(2)  # PostgreSQL's backends publish their statistics when idle (see counters())
            return {st.name: st.server.counters() for st in stacks}

        def work_per_task(label, c0, c1, tasks):
            for st in stacks:
                res[st.name]["work"].setdefault(label, []).append(
                    ", ".join(f"{(c1[st.name][k] - c0[st.name][k]) / tasks:.1f} {k}" for k in c0[st.name]))

        # Every measurement alternates between the stores, so both columns come from the same minutes.
        tp = time.time()
        for n in a.chain if wanted("chain") else []:
            c0 = counters()
            for k in range(runs_of(n)):
                for st in stacks:
                    st.server.statements_reset()
                    threads0 = thread_cpu_seconds(st.scheduler.pid)
                    mark = st.statsd_mark()
                    gaps, cpu = bench_chain(st, n, f"chain{n}_{k}")
                    statsd = st.statsd_since(mark)
                    split = thread_split(st.scheduler.pid, threads0, cpu.sched, n)
                    top = st.server.statements_top(f"chain of {n}, run {k + 1}", n)
                    res[st.name]["gaps"].setdefault(n, []).extend(gaps)
                    res[st.name]["chain_cpu"].setdefault(n, []).append(cpu)
                    print(f"[{st.name}] chain of {n}, run {k + 1}: median gap {median(gaps):.2f} ms, "
                          f"p90 {pct(gaps, 0.9):.2f} ms, max {max(gaps):.2f} ms; CPU per task: the tasks' bash "
                          f"{1000 * cpu.tasks / n:.2f} ms, scheduler {1000 * cpu.sched / n:.2f}, {st.name} "
                          f"{1000 * cpu.server / n:.2f}, CLI {1000 * cpu.cli / n:.2f}; all of it over "
                          f"{CORES} cores {step_floor_ms(cpu, n):.2f} ms{statsd}\n"
                          f"  the scheduler's CPU per task by thread: "
                          f"{split}\n{top}", end="", flush=True)
            work_per_task(f"chain {n}", c0, counters(), runs_of(n) * n)
        if wanted("chain"):
            floor = exec_floor_ms(bash)
            phase["chain"] = time.time() - tp

        tp = time.time()
        for n in a.fanout if wanted("fanout") else []:
            c0 = counters()
            for k in range(runs_of(n)):
                for st in stacks:
                    st.server.statements_reset()
                    threads0 = thread_cpu_seconds(st.scheduler.pid)
                    mark = st.statsd_mark()
                    rate, wall, cpu = bench_fanout(st, n, f"fanout{n}_{k}")
                    statsd = st.statsd_since(mark)
                    split = thread_split(st.scheduler.pid, threads0, cpu.sched, n + 1)
                    top = st.server.statements_top(f"fan-out of {n}, run {k + 1}", n + 1)
                    bare, bare_cpu = bare_spawn_rate(n, a.spawn_threads)
                    create = bare_log_create_us(os.path.join(st.dir, "logs", f"bare-create-{n}-{k}"), min(n, 2000))
                    r = res[st.name]
                    r["rates"].setdefault(n, []).append(rate)
                    r["bare"].setdefault(n, []).append(bare)
                    r["create"].setdefault(n, []).append(create)
                    r["fanout_cpu"].setdefault(n, []).append(cpu)
                    r["bare_cpu"].setdefault(n, []).append(bare_cpu)
                    print(f"[{st.name}] fan-out of {n}, run {k + 1}: {rate:.0f} tasks/s (run took {wall:.1f} s wall; "
                          f"CPU: scheduler {cpu.sched:.2f} s = {1000 * cpu.sched / (n + 1):.2f} ms per task, "
                          f"{st.name} {cpu.server:.2f} s, CLI {cpu.cli:.2f} s, the tasks' bash {cpu.tasks:.2f} s "
                          f"= {1000 * cpu.tasks / (n + 1):.2f} ms per task); right after, bare `bash -c true` "
                          f"from {a.spawn_threads} threads: {bare:.0f} /s ({100 * rate / bare:.0f} %), "
                          f"{1000 * bare_cpu:.2f} ms of CPU each; a task's log "
                          f"folder and file, bare: {create:.0f} µs{statsd}\n  the scheduler's CPU per task by thread: "
                          f"{split}\n{top}", end="", flush=True)
            work_per_task(f"fan-out {n}", c0, counters(), runs_of(n) * (n + 1))
        if wanted("fanout"):
            phase["fan-out"] = time.time() - tp

        tp = time.time()
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
                      f"(won the lock {won_s}; record read {seen * 1000:.0f} ms; term {term})", flush=True)
        if wanted("failover"):
            phase["fail-over"] = time.time() - tp

        for st in stacks:
            st.stop_schedulers()

        # The scale scenario: one store at a time (each wants the whole machine), a fresh store each.
        tp = time.time()
        scenario = 0
        for n in a.active_runs if wanted("scale") else []:
            for st in stacks:
                ts = time.time()
                st.server.statements_reset()
                res[st.name]["scale"][n] = bench_scale(st, n, scenario, a.seed_threads, a.idle_seconds,
                                                       a.failovers > 0, a.small)
                res[st.name]["scale"][n]["wall"] = time.time() - ts
                print(f"[{st.name}] {n} active runs: scenario took {time.time() - ts:.0f} s", flush=True)
                print(st.server.statements_top(f"{n} active runs"), end="", flush=True)
                scenario += 1
        if wanted("scale"):
            phase["scale"] = time.time() - tp

        warnings = {st.name: st.warning_lines() for st in stacks}  # shutdown included
        tp = time.time()
        for st in stacks if wanted("reference") else []:
            refs[st.name] = st.server.reference(a.small)
            print(f"[{st.name}] reference: {refs[st.name][0]}", flush=True)
        if wanted("reference"):
            phase["reference"] = time.time() - tp
        ours = tree_cpu_seconds(os.getpid()) - ours0
        ours += sum(tree_cpu_seconds(st.server.pid) for st in stacks if st.server.detached)
        wall = time.time() - t0
        foreign = (machine_busy_seconds() - busy0 - ours, wall)
    finally:
        for st in stacks:
            st.close()

    # The summary, one column per store and the target.
    def col(s, f):
        try:
            return f(res[s])
        except (TypeError, ValueError, KeyError, IndexError, statistics.StatisticsError):
            return "—"

    def ms(x):
        return f"{x * 1000:.0f} ms"

    rows = []
    for n in a.chain if wanted("chain") else []:
        target = "≤ 2 ms (Redis), ≤ 3 ms (PostgreSQL)" if n < LARGE else "median ≤ 1.5 × the 40-task chain's"
        rows.append((f"chain of {n:,}: median gap (p90), {runs_of(n)} × {n - 1:,} steps",
                     lambda r, n=n: f"{median(r['gaps'][n]):.2f} ms ({pct(r['gaps'][n], 0.9):.2f})", target))
        rows.append((f"chain of {n:,}: CPU per task, the tasks' bash / scheduler / server / CLI (median of the runs)",
                     lambda r, n=n: cpu_per_task(r["chain_cpu"][n], n), ""))
        # When the cores are the limit, a step cannot take less than its CPU spread over every core.
        rows.append((f"chain of {n:,}: the step the cores allow (all CPU per task / {CORES} cores), per run",
                     lambda r, n=n: " ".join(f"{step_floor_ms(c, n):.2f} ms" for c in r["chain_cpu"][n]), ""))
    anchor_n = min(a.chain, key=lambda x: abs(x - 40)) if wanted("chain") and a.chain else None
    if anchor_n is not None:
        rows.append((f"chain of {anchor_n:,} vs a public 40-task benchmark (Airflow 2.9 s, Temporal 74 ms, "
                     f"Hatchet 31 ms per sequential task)",
                     lambda r: ", ".join(f"{times(sec * 1000 / median(r['gaps'][anchor_n]))} faster than {name}"
                                         for name, sec in ANCHORS), ""))
    if len(a.chain) > 1 and wanted("chain"):
        big, small_n = max(a.chain), min(a.chain)
        rows.append((f"chain of {big:,} / chain of {small_n:,}: median gap ratio",
                     lambda r: f"{median(r['gaps'][big]) / median(r['gaps'][small_n]):.2f}", "≤ 1.5"))
    for n in a.fanout if wanted("fanout") else []:
        rows += [
            (f"fan-out of {n:,}: tasks/s (median of {runs_of(n)})", lambda r, n=n: f"{median(r['rates'][n]):.0f} /s",
             ""),
            (f"fan-out of {n:,}: bare bash -c true, {a.spawn_threads} threads, right after",
             lambda r, n=n: f"{median(r['bare'][n]):.0f} /s", ""),
            (f"fan-out of {n:,}: a task's log folder and file made bare, right after (CPU)",
             lambda r, n=n: f"{median(r['create'][n]):.0f} µs", ""),
            (f"fan-out of {n:,} / bare, per run",
             lambda r, n=n: " ".join(f"{100 * x / y:.0f} %" for x, y in zip(r["rates"][n], r["bare"][n])), "≥ 90 %"),
            (f"fan-out of {n:,}: scheduler CPU per task; CPU per fan-out scheduler / server",
             lambda r, n=n: f"{1000 * median([c.sched for c in r['fanout_cpu'][n]]) / (n + 1):.2f} ms; "
                            f"{median([c.sched for c in r['fanout_cpu'][n]]):.2f} s / "
                            f"{median([c.server for c in r['fanout_cpu'][n]]):.2f} s", ""),
            (f"fan-out of {n:,}: CPU per task, the tasks' bash / scheduler / server / CLI; a bare bash -c true",
             lambda r, n=n: f"{cpu_per_task(r['fanout_cpu'][n], n + 1)}; {1000 * median(r['bare_cpu'][n]):.2f} ms",
             ""),
            # When the cores are the limit, a rate is cores / CPU per task: the fan-out cannot reach more
            # of the bare rate than a bare bash's CPU over everything a task costs.
            (f"fan-out of {n:,}: the share of bare the CPU allows (a bare bash's CPU / all CPU per task), per run",
             lambda r, n=n: " ".join(f"{100 * b * (n + 1) / sum(c):.0f} %"
                                     for c, b in zip(r["fanout_cpu"][n], r["bare_cpu"][n])),
             ""),
        ]
    for label in [f"chain {n}" for n in a.chain if wanted("chain")] + \
                 [f"fan-out {n}" for n in a.fanout if wanted("fanout")]:
        rows.append((f"server work per task, {label} (incl. the CLI's polling)",
                     lambda r, label=label: "; ".join(r["work"][label]), ""))
    if wanted("failover") and a.failovers:
        rows += [
            (f"fail-over: SIGKILL -> first tick, median (max) of {a.failovers}",
             lambda r: f"{ms(median(r['fo_tick']))} ({ms(max(r['fo_tick']))})", "≤ 1 s"),
            ("fail-over: SIGKILL -> lock won (log line), median", lambda r: ms(median(r["fo_won"])), ""),
            ("fail-over: SIGKILL -> first tick's record read from the store, median",
             lambda r: ms(median(r["fo_seen"])), ""),
        ]
    for n in a.active_runs if wanted("scale") else []:
        def sc(f, n=n):
            return lambda r: f(r["scale"][n])
        rows += [
            (f"{n:,} active runs × 10 tasks: seeding (seed_runs, {a.seed_threads} threads)",
             sc(lambda x: f"{x['seed_s']:.0f} s ({x['seed_rate']:,.0f} runs/s)"), ""),
            (f"{n:,} active runs: first complete tick after taking over (its tick_ms)",
             sc(lambda x: f"{x['since_leading_ms']:,} ms ({x['first_tick_ms']:,} ms)"), "≤ 5 s"),
            (f"{n:,} active runs: idle tick, median (max) over {a.idle_seconds:.0f} s",
             sc(lambda x: f"{x['idle_median']:.2f} ms ({x['idle_max']:.2f})"), "≤ 10 ms"),
            (f"{n:,} active runs: periodic reconcile took_ms (passes); longest tick meanwhile",
             sc(lambda x: (f"{x['resync_ms']:,} ms ({x['resync_passes']})" if "resync_ms" in x else
                           f"not done in {x['resync_span_limit']}") + f"; {x['resync_max_tick']:.1f} ms"),
             "≤ 10 s; no tick > 100 ms"),
            (f"{n:,} active runs: scheduler memory per task instance (VmRSS empty -> loaded)",
             sc(lambda x: f"{x['bytes_per_ti']:,.0f} B ({x['rss_empty_kb'] / 1024:.0f} -> {x['rss_kb'] / 1024:.0f} MB)"),
             "≤ 2 KB"),
            (f"{n:,} active runs: a person's `runs list --state success` (reads every run); the leader's longest "
             f"tick meanwhile",
             sc(lambda x: f"{x['list_s']:.2f} s" + (f" (failed, exit {x['list_rc']})" if x["list_rc"] else "") + "; " +
                (f"{x['list_max_tick']:.1f} ms" if x["list_max_tick"] is not None else "no tick ended")),
             "no tick > 100 ms"),
            (f"{n:,} active runs: step-down lines (leases lost)", sc(lambda x: f"{x['leases_lost']}"), "0"),
        ]
        if a.failovers:
            rows.append((f"{n:,} active runs: fail-over, SIGKILL -> new leader's first complete tick",
                         sc(lambda x: f"{ms(x['fo_first_tick'])} (since leading {x['fo_since_leading_ms']:,} ms)"),
                         "≤ 5 s after taking over"))
    print()
    print(f"summary ({started:%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores, {os.path.basename(a.build)})")
    print("| figure | " + " | ".join(stores) + " | target |")
    print("|---|" + "---|" * len(stores) + "---|")
    missing = []
    for label, f, target in rows:
        cells = [col(s, f) for s in stores]
        missing += [f"{s}: {label}" for s, c in zip(stores, cells) if c == "—"]
        print(f"| {label} | " + " | ".join(cells) + f" | {target} |")
    if refs:
        print("| reference (same run) | " + " | ".join(refs[s][0] if s in refs else "—" for s in stores) + " | |")
    if foreign:
        print(f"other processes on this machine used {foreign[0]:.1f} CPU-seconds during the run's {foreign[1]:.0f} s "
              f"({100 * foreign[0] / (foreign[1] * os.cpu_count()):.1f} % of its {os.cpu_count()} cores)")
    if phase:
        print("time per scenario (both stores): " + ", ".join(f"{k} {v:.0f} s" for k, v in phase.items()))
    if floor is not None:
        print(f"starting the tasks' bash ({bash}) cold (posix_spawn to first command, no scheduler): "
              f"{floor:.2f} ms; warm_shells = {a.warm_shells}")
    for s, lines in warnings.items():
        if lines:
            print(f"[{s}] {len(lines)} line(s) at warn level or worse in the scheduler logs:")
            for line in lines[:20]:
                print("  " + line)
    for s in stores:
        missing += [f"{s}: {x['unreadable']}" for x in res[s]["scale"].values() if "unreadable" in x]
    if missing:
        sys.exit("figures that could not be read:\n  " + "\n  ".join(missing))


if __name__ == "__main__":
    main()
