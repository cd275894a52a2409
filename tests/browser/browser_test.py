#!/usr/bin/env python3
"""The web page (ARCHITECTURE §8.15, docs/web.md) in a real headless browser.

A private redis-server, `leoflow scheduler` with dispatcher-local and an [http] token, a second
scheduler on the same store without a token (the read-only page), and Debian's chromium driven by
chromedriver over the W3C WebDriver protocol (plain HTTP + JSON, standard library only).

It checks the page against the API: the DAG list's squares, the grid's colours, the graph's nodes,
edges and trigger rules; opens a failed task's log, clears the task with the token and sees it run
again; sees the API refuse without the token and the actions hidden on a server without one; a
500+-task DAG gives a searchable list; a narrow window does not overflow. It leaves screenshots of
the views in SCREENSHOT_DIR (docs/images/ holds copies for the README).

Usage: browser_test.py SCREENSHOT_DIR   (env: LEOFLOW_BIN, LEOFLOW_SOURCE_ROOT; CHROMIUM, CHROMEDRIVER
to override /usr/bin/chromium and /usr/bin/chromedriver). Exit 0 passed, 1 failed, 77 skipped
(chromium is not installed; under CI=true that fails instead). With GTEST_OUTPUT=json:DIR/ it writes
DIR/browser_test.py.json in GoogleTest's shape, so ./dev test counts its cases.
"""
import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.error
import urllib.request

TOKEN = "browser-s3cret"
# The page's palette (core/host/web/app.css, Okabe–Ito): what each state must look like.
PALETTE = {
    "success": (0x00, 0x9E, 0x73),
    "failed": (0xD5, 0x5E, 0x00),
    "upstream_failed": (0xE6, 0x9F, 0x00),
    "up_for_retry": (0xCC, 0x79, 0xA7),
    "running": (0x56, 0xB4, 0xE9),
    "queued": (0x80, 0x80, 0x80),
    "scheduled": (0xF0, 0xE4, 0x42),
    "skipped": (0xC8, 0xC8, 0xC8),
    "none": (0xFF, 0xFF, 0xFF),
}
WAIT = 90  # seconds for the page: generous, a fresh 2-core CI machine runs other suites meanwhile
WAIT_RUN = 300  # seconds for a run or a re-run to end: several layers of tasks, each a few ticks


class Failure(Exception):
    pass


class ScriptError(Exception):
    """A script threw in the page (an element not drawn yet, say): wait_for tries again."""


def check(cond, message):
    if not cond:
        raise Failure(message)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_for(what, pred, timeout=WAIT, interval=0.25):
    """Polls pred() until it returns something truthy; fails naming `what` (and the last value)."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = pred()
            if last:
                return last
        except Failure:
            raise
        except Exception as e:  # noqa: BLE001 — a page or server still starting
            last = e
        time.sleep(interval)
    raise Failure(f"timed out after {timeout} s waiting for {what} (last: {last!r})")


# --- HTTP --------------------------------------------------------------------------------------
def http(method, url, body=None, headers=None, timeout=30):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers=dict(headers or {}))
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read().decode(), dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(), dict(e.headers)


class Api:
    def __init__(self, port, token):
        self.base = f"http://127.0.0.1:{port}"
        self.token = token

    def call(self, method, path, body=None):
        headers = {"Authorization": "Bearer " + self.token} if self.token else {}
        status, text, _ = http(method, self.base + "/api/v1" + path, body, headers)
        if status >= 300:
            raise Failure(f"{method} {path}: {status} {text}")
        return json.loads(text)


# --- WebDriver (W3C) ---------------------------------------------------------------------------
class Browser:
    def __init__(self, driver_port, chromium, log_dir):
        self.base = f"http://127.0.0.1:{driver_port}"
        args = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1280,900", "--no-first-run", "--disable-extensions",
                "--user-data-dir=" + os.path.join(log_dir, "chromium-profile")]
        caps = {"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": chromium, "args": args},
            "timeouts": {"script": 30000, "pageLoad": 60000, "implicit": 0},
        }}}
        value = self._call("POST", "/session", caps, timeout=120)
        self.session = value["sessionId"]

    def _call(self, method, path, body=None, timeout=60):
        status, text, _ = http(method, self.base + path, body if body is not None else ({} if method == "POST" else None),
                               timeout=timeout)
        doc = json.loads(text) if text else {}
        if status != 200:
            value = doc.get("value", doc)
            message = f"WebDriver {method} {path}: {status} {value.get('message', value) if isinstance(value, dict) else value}"
            if isinstance(value, dict) and value.get("error") in ("javascript error", "no such element",
                                                                   "stale element reference"):
                raise ScriptError(message)
            raise Failure(message)
        return doc.get("value")

    def cmd(self, method, path, body=None):
        return self._call(method, f"/session/{self.session}{path}", body)

    def get(self, url):
        self.cmd("POST", "/url", {"url": url})

    def js(self, script, *args):
        """Runs `script` (a function body; `arguments` holds args) and returns its value."""
        return self.cmd("POST", "/execute/sync", {"script": script, "args": list(args)})

    def find(self, css):
        value = self.cmd("POST", "/element", {"using": "css selector", "value": css})
        return next(iter(value.values()))

    def click(self, css):
        self.cmd("POST", f"/element/{self.find(css)}/click")

    def type(self, css, text):
        el = self.find(css)
        self.cmd("POST", f"/element/{el}/clear")
        self.cmd("POST", f"/element/{el}/value", {"text": text})

    def window(self, width, height):
        self.cmd("POST", "/window/rect", {"width": width, "height": height})

    def screenshot(self, path):
        with open(path, "wb") as f:
            f.write(base64.b64decode(self.cmd("GET", "/screenshot")))

    def wait_js(self, what, script, *args, timeout=WAIT):
        return wait_for(what, lambda: self.js(script, *args), timeout=timeout)

    def quit(self):
        try:
            self._call("DELETE", f"/session/{self.session}", timeout=30)
        except Exception:  # noqa: BLE001 — the browser may be gone already
            pass


def rgb(css_colour):
    """'rgb(1, 2, 3)' or 'rgba(1, 2, 3, 1)' -> (1, 2, 3)."""
    inside = css_colour[css_colour.index("(") + 1:css_colour.index(")")]
    return tuple(int(float(x)) for x in inside.split(",")[:3])


# --- the deployment ----------------------------------------------------------------------------
FAILING_DAG = {
    # Fails until the file `fixed` exists in the work folder; the test creates it, then clears.
    "dag_id": "browser_fails",
    "tenant": "team-b",
    "default_args": {"retries": 0},
    "tasks": [
        {"task_id": "prepare", "type": "bash", "entrypoint": "echo preparing"},
        {"task_id": "flaky", "type": "bash", "depends_on": ["prepare"],
         "entrypoint": "echo attempt $LEOFLOW_TRY_NUMBER; if [ -f fixed ]; then echo fixed now; else echo boom >&2; exit 3; fi"},
        {"task_id": "publish", "type": "bash", "depends_on": ["flaky"], "entrypoint": "echo publishing"},
        {"task_id": "report_failure", "type": "bash", "depends_on": ["flaky"], "trigger_rule": "one_failed",
         "entrypoint": "echo flaky failed"},
        {"task_id": "cleanup", "type": "bash", "depends_on": ["publish", "report_failure"], "trigger_rule": "all_done",
         "entrypoint": "echo cleanup"},
    ],
}


TALKING_DAG = {
    # One task that prints for a few seconds: the page follows its log while it runs.
    "dag_id": "browser_talks",
    "tasks": [{"task_id": "talk", "type": "bash",
               "entrypoint": "for i in 1 2 3 4 5 6 7 8; do echo line $i; sleep 0.5; done"}],
}


def big_dag(n):
    """One root and n-1 tasks after it: too many to draw."""
    tasks = [{"task_id": "root", "type": "bash", "entrypoint": "true"}]
    tasks += [{"task_id": f"leaf_{i:04d}", "type": "bash", "entrypoint": "true", "depends_on": ["root"]} for i in range(1, n)]
    return {"dag_id": "browser_wide", "tasks": tasks}


class Stack:
    """redis-server, two schedulers (with and without a token) and chromedriver, all torn down by stop()."""

    def __init__(self, tmp, leoflow, source_root):
        self.tmp, self.leoflow, self.source_root = tmp, leoflow, source_root
        self.procs = []
        self.redis_port = free_port()
        self.port = free_port()
        self.ro_port = free_port()

    def spawn(self, name, argv, env=None):
        log = open(os.path.join(self.tmp, name + ".log"), "wb")
        p = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})},
                             start_new_session=True)
        self.procs.append((name, p))
        return p

    def log(self, name):
        try:
            with open(os.path.join(self.tmp, name + ".log"), errors="replace") as f:
                return f.read()[-4000:]
        except OSError:
            return ""

    def config(self, name, port, token):
        host = os.path.join(self.tmp, name)
        os.makedirs(host, exist_ok=True)
        path = os.path.join(host, "leoflow.toml")
        with open(path, "w") as f:
            f.write(f"""[scheduler]
tick_interval_ms = 250
[store]
plugin = "store-redis"
[store.config]
url = "redis://127.0.0.1:{self.redis_port}/0"
[dispatcher]
plugin = "dispatcher-local"
[dispatcher.config]
max_parallel = 8
work_dir = "{self.tmp}/work"
log_dir = "{host}/logs"
state_dir = "{host}/state"
[http]
listen = "127.0.0.1:{port}"
""" + (f'token = "{token}"\n' if token else ""))
        return path

    def start(self):
        os.makedirs(os.path.join(self.tmp, "work"), exist_ok=True)
        os.makedirs(os.path.join(self.tmp, "dags"), exist_ok=True)
        self.spawn("redis", ["redis-server", "--bind", "127.0.0.1", "--port", str(self.redis_port), "--save", "",
                             "--appendonly", "no", "--dir", self.tmp])
        wait_for("redis-server", lambda: socket.create_connection(("127.0.0.1", self.redis_port), 1).close() or True, 30)
        self.conf = self.config("main", self.port, TOKEN)
        self.ro_conf = self.config("reader", self.ro_port, None)
        dags = os.path.join(self.tmp, "dags")
        shutil.copy(os.path.join(self.source_root, "examples", "dags", "diamond.json"), dags)
        for dag in (FAILING_DAG, TALKING_DAG, big_dag(520)):
            with open(os.path.join(dags, dag["dag_id"] + ".json"), "w") as f:
                json.dump(dag, f)
        out = subprocess.run([self.leoflow, "dags", "sync", dags], env={**os.environ, "LEOFLOW_CONFIG": self.conf},
                             capture_output=True, text=True, timeout=60)
        check(out.returncode == 0, "dags sync failed: " + out.stdout + out.stderr)
        self.spawn("scheduler", [self.leoflow, "scheduler"], {"LEOFLOW_CONFIG": self.conf})

        def leads():
            status, text, _ = http("GET", f"http://127.0.0.1:{self.port}/status", timeout=5)
            return status == 200 and json.loads(text).get("role") == "leader"
        try:
            wait_for("the scheduler to lead", leads)
        except Failure as e:
            raise Failure(f"{e}\n{self.log('scheduler')}") from None
        # The second replica only serves the page; it follows, so it runs nothing.
        self.spawn("reader", [self.leoflow, "scheduler"], {"LEOFLOW_CONFIG": self.ro_conf})
        wait_for("the token-less replica's /status",
                 lambda: http("GET", f"http://127.0.0.1:{self.ro_port}/status", timeout=5)[0] == 200)

    def stop(self):
        for name, p in reversed(self.procs):
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGTERM)
                    p.wait(timeout=15)
                except (subprocess.TimeoutExpired, ProcessLookupError):
                    try:
                        os.killpg(p.pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                    p.wait()


def wait_run(api, dag, run, states=("success", "failed")):
    return wait_for(f"run {run} of {dag} to end",
                    lambda: (lambda r: r if r["state"] in states else None)(api.call("GET", f"/dags/{dag}/runs/{run}")),
                    timeout=WAIT_RUN)


# --- the cases -----------------------------------------------------------------------------------
class Cases:
    def __init__(self, stack, browser, shots):
        self.s, self.b, self.shots = stack, browser, shots
        self.api = Api(stack.port, TOKEN)
        self.page = f"http://127.0.0.1:{stack.port}/"

    def setup_runs(self):
        for run in ("ok-1", "ok-2"):
            self.api.call("POST", "/dags/example_diamond/runs", {"run_id": run, "conf": {"source": "browser test"}})
        for run in ("bad-1", "bad-2"):
            self.api.call("POST", "/dags/browser_fails/runs", {"run_id": run})
        for dag, run, want in (("example_diamond", "ok-1", "success"), ("example_diamond", "ok-2", "success"),
                               ("browser_fails", "bad-1", "failed"), ("browser_fails", "bad-2", "failed")):
            got = wait_run(self.api, dag, run)
            check(got["state"] == want, f"{dag}/{run} ended {got['state']}, wanted {want}: {got}")

    def test_token_is_asked_once_and_kept(self):
        b = self.b
        b.get(self.page)
        b.wait_js("the token dialog", "return document.getElementById('token-dialog').open")
        check(b.js("return document.querySelectorAll('#dags tr[data-dag]').length") == 0, "the DAGs showed without a token")
        # Without the token the API refuses, reads and writes alike.
        refused = b.js("return fetch('/api/v1/dags/browser_fails/runs', {method: 'POST', body: '{}'}).then(r => r.status)")
        check(refused == 401, f"a write without the token got {refused}, wanted 401")
        b.type("#token-input", "not-the-token")
        b.click("#token-ok")
        b.wait_js("the dialog to ask again after a wrong token",
                  "const d = document.getElementById('token-dialog');"
                  "return d.open && document.getElementById('token-error').textContent.includes('wrong token')")
        b.type("#token-input", TOKEN)
        b.click("#token-ok")
        b.wait_js("the DAG list", "return document.querySelectorAll('#dags tr[data-dag]').length === 4")
        check(not b.js("return document.getElementById('token-dialog').open"), "the token dialog is still open")
        check(b.js("return sessionStorage.getItem('leoflow.token')") == TOKEN, "the token is not in session storage")
        check(not b.js("return document.body.classList.contains('read-only')"), "a server with a token shows read-only")
        # A reload keeps the token: no dialog this time.
        b.get(self.page)
        b.wait_js("the DAG list after a reload", "return document.querySelectorAll('#dags tr[data-dag]').length === 4")
        check(not b.js("return document.getElementById('token-dialog').open"), "the token was asked again after a reload")

    def test_dag_list_matches_the_api(self):
        b = self.b
        rows = b.js("""return [...document.querySelectorAll('#dags tr[data-dag]')].map(tr => ({
            dag: tr.dataset.dag, text: tr.innerText,
            squares: [...tr.querySelectorAll('.sq')].map(s => [s.dataset.state, getComputedStyle(s).backgroundColor, s.title])}))""")
        by_dag = {r["dag"]: r for r in rows}
        for d in self.api.call("GET", "/dags"):
            check(d["dag_id"] in by_dag, f"{d['dag_id']} is missing from the list")
            row = by_dag[d["dag_id"]]
            check(d["tenant"] in row["text"] or d["tenant"] == "default", f"tenant of {d['dag_id']} not shown: {row['text']}")
            runs = list(reversed(self.api.call("GET", f"/dags/{d['dag_id']}/runs?limit=10")))
            check([s[0] for s in row["squares"]] == [r["state"] for r in runs],
                  f"{d['dag_id']}: squares {row['squares']} != runs {[r['state'] for r in runs]}")
            for (state, colour, _), r in zip(row["squares"], runs):
                check(rgb(colour) == PALETTE[r["state"]], f"{d['dag_id']}: a {state} square is {colour}")
        # Filter by tenant.
        b.js("const s = document.getElementById('tenant-filter'); s.value = 'team-b'; s.dispatchEvent(new Event('change'))")
        b.wait_js("the tenant filter", "return [...document.querySelectorAll('#dags tr[data-dag]')].map(t => t.dataset.dag).join() === 'browser_fails'")
        b.js("const s = document.getElementById('tenant-filter'); s.value = ''; s.dispatchEvent(new Event('change'))")
        b.wait_js("the filter off", "return document.querySelectorAll('#dags tr[data-dag]').length === 4")

    def grid_and_graph_match(self, dag_id):
        b = self.b
        b.get(self.page + "#/dags/" + dag_id)
        dag = self.api.call("GET", f"/dags/{dag_id}")
        runs = list(reversed(self.api.call("GET", f"/dags/{dag_id}/runs?tasks=true&limit=25")))
        b.wait_js("the grid of " + dag_id, "return document.querySelectorAll('#grid td.cell').length === arguments[0]",
                  len(runs) * len(dag["tasks"]))
        b.wait_js("the graph of " + dag_id, "return document.querySelectorAll('#graph g.node').length === arguments[0]",
                  len(dag["tasks"]))
        # The grid: one square per (task, run), its state and colour those of the API.
        cells = b.js("""return [...document.querySelectorAll('#grid tbody tr')].map(tr => [tr.dataset.task,
            [...tr.querySelectorAll('td.cell')].map(td => { const s = td.querySelector('.sq');
              return [td.dataset.run, s.dataset.state, getComputedStyle(s).backgroundColor]; })])""")
        check([c[0] for c in cells] == [t["task_id"] for t in dag["tasks"]], f"grid rows {[c[0] for c in cells]}")
        for task_id, row in cells:
            check([c[0] for c in row] == [r["run_id"] for r in runs], f"grid columns of {task_id}: {row}")
            for (run_id, state, colour), run in zip(row, runs):
                want = next((t["state"] for t in run["tasks"] if t["task_id"] == task_id), "none")
                check(state == want, f"grid {task_id} × {run_id}: {state}, the API says {want}")
                check(rgb(colour) == PALETTE[want], f"grid {task_id} × {run_id} ({want}) is {colour}")
        # The graph: the DAG's tasks, its edges, coloured by the newest run, with the trigger rules.
        nodes = b.js("""return [...document.querySelectorAll('#graph g.node')].map(g => [g.dataset.task, g.dataset.state,
            getComputedStyle(g.querySelector('rect.mark')).fill, (g.querySelector('text.rule') || {}).textContent || '',
            g.getAttribute('transform')])""")
        edges = b.js("return [...document.querySelectorAll('#graph path.edge')].map(p => [p.dataset.from, p.dataset.to])")
        newest = {t["task_id"]: t["state"] for t in runs[-1]["tasks"]}
        check(sorted(n[0] for n in nodes) == sorted(t["task_id"] for t in dag["tasks"]), f"graph nodes {nodes}")
        want_edges = sorted([u, t["task_id"]] for t in dag["tasks"] for u in t["depends_on"])
        check(sorted(edges) == want_edges, f"graph edges {sorted(edges)} != {want_edges}")
        x_of = {n[0]: float(n[4].split("(")[1].split(",")[0]) for n in nodes}
        for task_id, state, fill, rule_text, _ in nodes:
            check(state == newest.get(task_id, "none"), f"graph node {task_id}: {state}, the API says {newest.get(task_id)}")
            check(rgb(fill) == PALETTE[state], f"graph node {task_id} ({state}) is filled {fill}")
            rule = next(t["trigger_rule"] for t in dag["tasks"] if t["task_id"] == task_id)
            check((rule in rule_text) if rule != "all_success" else rule_text == "",
                  f"graph node {task_id}: rule {rule!r} shown as {rule_text!r}")
        for u, v in want_edges:
            check(x_of[u] < x_of[v], f"edge {u} -> {v} does not point right (layers): {x_of[u]} vs {x_of[v]}")
        return runs

    def test_grid_and_graph_match_the_api(self):
        self.grid_and_graph_match("example_diamond")
        runs = self.grid_and_graph_match("browser_fails")
        states = {t["state"] for r in runs for t in r["tasks"]}
        check({"failed", "upstream_failed", "success"} <= states, f"the failing DAG's states: {states}")
        # Filter by run state.
        b = self.b
        b.js("const s = document.getElementById('run-state-filter'); s.value = 'success'; s.dispatchEvent(new Event('change'))")
        b.wait_js("the run-state filter", "return document.querySelector('#grid-wrap').innerText.includes('No runs in this state')")
        b.js("const s = document.getElementById('run-state-filter'); s.value = ''; s.dispatchEvent(new Event('change'))")
        b.wait_js("the filter off", "return document.querySelectorAll('#grid th.run').length === 2")

    def test_failed_log_then_clear_and_run_again(self):
        b = self.b
        b.get(self.page + "#/dags/browser_fails/runs/bad-1")
        b.wait_js("the run's tasks", "return document.querySelectorAll('#tasks tr[data-task]').length === 5")
        run = self.api.call("GET", "/dags/browser_fails/runs/bad-1")
        rows = b.js("return Object.fromEntries([...document.querySelectorAll('#tasks tr[data-task]')].map(tr => [tr.dataset.task, tr.innerText]))")
        for t in run["tasks"]:
            check(t["state"].replace("_", "\u00a0") in rows[t["task_id"]].replace(" ", "\u00a0"),
                  f"{t['task_id']}: {rows[t['task_id']]!r} does not say {t['state']}")
            check(f"{t['try_number']} / {t['max_tries']}" in rows[t["task_id"]], f"{t['task_id']}: try not shown")
        b.click('#tasks tr[data-task="flaky"]')
        b.wait_js("the failed task's log", "return document.getElementById('log').textContent.includes('boom')"
                  " && document.getElementById('log-status').dataset.complete === 'true'")
        check("attempt 1" in b.js("return document.getElementById('log').textContent"), "the log misses its first line")
        b.js("window.__still_here = true; window.scrollTo(0, 40)")
        # Fix the cause, then clear flaky with its downstream tasks through the page.
        open(os.path.join(self.s.tmp, "work", "fixed"), "w").close()
        check(b.js("return document.getElementById('clear-downstream').checked") is True, "with downstream is not the default")
        b.click("#clear-task")
        b.wait_js("the confirmation", "return document.getElementById('confirm-dialog').open")
        b.click("#confirm-ok")
        # The page follows by itself (no reload): flaky runs again, try 2, and succeeds.
        b.wait_js("flaky to succeed on try 2",
                  "const tr = document.querySelector('#tasks tr[data-task=\"flaky\"]');"
                  "return tr && tr.innerText.includes('success') && tr.children[2].textContent.startsWith('2 /')", timeout=WAIT_RUN)
        b.wait_js("the new try's log", "return document.getElementById('log').textContent.includes('fixed now')"
                  " && document.getElementById('log-try').value === '2'")
        check(b.js("return window.__still_here === true"), "the page reloaded")
        run = wait_run(self.api, "browser_fails", "bad-1")
        flaky = next(t for t in run["tasks"] if t["task_id"] == "flaky")
        check(flaky["try_number"] == 2 and flaky["state"] == "success", f"flaky in the API: {flaky}")
        check(run["state"] == "success", f"bad-1 after the clear: {run['state']}")
        note = b.js("return document.querySelector('#tasks tr[data-task=\"flaky\"]').innerText")
        check("cleared by api" in note, f"the clear's note is not shown: {note!r}")
        # The earlier try's log is still there.
        b.js("const s = document.getElementById('log-try'); s.value = '1'; s.dispatchEvent(new Event('change'))")
        b.wait_js("try 1's log", "return document.getElementById('log').textContent.includes('boom')")

    def test_trigger_with_conf_pause_and_follow_a_running_log(self):
        b = self.b
        b.get(self.page)
        b.wait_js("the DAG list", "return document.querySelector('#dags tr[data-dag=\"browser_talks\"] button.trigger') !== null")
        b.click('#dags tr[data-dag="browser_talks"] button.pause')
        b.wait_js("browser_talks paused", "return document.querySelector('#dags tr[data-dag=\"browser_talks\"]').innerText.includes('paused')")
        check(self.api.call("GET", "/dags/browser_talks")["paused"] is True, "Pause did not pause")
        b.click('#dags tr[data-dag="browser_talks"] button.pause')
        b.wait_js("browser_talks unpaused", "return !document.querySelector('#dags tr[data-dag=\"browser_talks\"]').innerText.includes('paused')")
        check(self.api.call("GET", "/dags/browser_talks")["paused"] is False, "Unpause did not unpause")
        # Trigger with a conf: a malformed one is refused in the dialog, a good one opens the new run.
        b.click('#dags tr[data-dag="browser_talks"] button.trigger')
        b.wait_js("the trigger dialog", "return document.getElementById('trigger-dialog').open")
        b.type("#trigger-conf", "{not json")
        b.click("#trigger-ok")
        b.wait_js("the conf refused", "return document.getElementById('trigger-error').textContent.includes('not JSON')")
        b.type("#trigger-conf", '{"batch": 7}')
        b.type("#trigger-run-id", "talk-1")
        b.click("#trigger-ok")
        b.wait_js("the new run", "return location.hash.includes('/runs/talk-1')"
                  " && (document.getElementById('run-conf') || {}).textContent.includes('\"batch\": 7')")
        check(self.api.call("GET", "/dags/browser_talks/runs/talk-1")["conf"] == {"batch": 7}, "the conf did not arrive")
        # Follow the log while the task runs: it grows by offset until the attempt ends, nothing twice.
        b.wait_js("the talk task", "return document.querySelector('#tasks tr[data-task=\"talk\"]') !== null")
        b.click('#tasks tr[data-task="talk"]')
        seen_partial = b.wait_js("the log while it runs",
                                 "const t = document.getElementById('log').textContent;"
                                 "return document.getElementById('log-status').dataset.complete === 'false'"
                                 " && t.includes('line 1') && !t.includes('line 8') && t", timeout=WAIT_RUN)
        check("line 8" not in seen_partial, "the log was not read while the task ran")
        text = b.wait_js("the whole log", "return document.getElementById('log-status').dataset.complete === 'true'"
                         " && document.getElementById('log').textContent", timeout=WAIT_RUN)
        lines = [ln for ln in text.splitlines() if ln.startswith("line ")]
        check(lines == [f"line {i}" for i in range(1, 9)], f"the followed log: {lines}")
        wait_run(self.api, "browser_talks", "talk-1")

    def test_screens(self):
        b = self.b
        b.get(self.page)  # every run has ended by now: the list shows them all
        b.wait_js("the DAG list's squares", "return document.querySelectorAll('#dags .sq').length === 5")
        b.screenshot(os.path.join(self.shots, "dags.png"))
        b.get(self.page + "#/dags/browser_fails/runs/bad-2?task=flaky")
        b.wait_js("bad-2 with flaky's log", "return document.getElementById('log').textContent.includes('boom')"
                  " && document.getElementById('log-status').dataset.complete === 'true'")
        check(b.js("return document.getElementById('run-conf').textContent.trim()") == "{}", "bad-2's conf")
        b.window(1280, 1180)  # the task table with the log below it
        b.screenshot(os.path.join(self.shots, "run.png"))
        b.window(1280, 900)
        b.get(self.page + "#/dags/example_diamond/runs/ok-1")
        b.wait_js("ok-1's conf", "return document.getElementById('run-conf').textContent.includes('browser test')")
        b.get(self.page + "#/dags/browser_fails")
        b.wait_js("the grid", "return document.querySelectorAll('#grid th.run').length === 2"
                  " && document.querySelectorAll('#graph g.node').length === 5")
        b.screenshot(os.path.join(self.shots, "dag.png"))

    def test_many_tasks_give_a_searchable_list(self):
        b = self.b
        # A run that stays queued (its DAG paused): the grid has a column, every square "none".
        self.api.call("PATCH", "/dags/browser_wide", {"paused": True})
        self.api.call("POST", "/dags/browser_wide/runs", {"run_id": "wide-1"})
        b.get(self.page + "#/dags/browser_wide")
        b.wait_js("the task list", "return document.querySelectorAll('#task-list tbody tr').length === 200")
        check(b.js("return document.getElementById('graph-wrap').hidden"), "a 520-task DAG was drawn")
        # The grid draws no more rows than the list: the first 200 tasks, and says so.
        b.wait_js("the grid's rows", "return document.querySelectorAll('#grid tbody tr').length === 200")
        note = b.js("return document.getElementById('grid-note').textContent")
        check("200 of the 520 tasks" in note, f"the grid's note: {note!r}")
        b.type("#task-search", "leaf_04")
        b.wait_js("the search", "return document.querySelectorAll('#task-list tbody tr').length === 100")
        # The search chooses the grid's rows too.
        rows = b.wait_js("the grid searched", "const r = [...document.querySelectorAll('#grid tbody tr')]"
                         ".map(tr => tr.dataset.task); return r.length === 100 && r")
        check(rows == [f"leaf_{i:04d}" for i in range(400, 500)], f"the grid's rows after the search: {rows[:3]}...")
        # The run's view lists no more than 200 of its 520 tasks either: the state and the search choose.
        self.api.call("PATCH", "/dags/browser_wide", {"paused": False})
        got = wait_run(self.api, "browser_wide", "wide-1")
        check(got["state"] == "success", f"browser_wide/wide-1 ended {got['state']}")
        b.get(self.page + "#/dags/browser_wide/runs/wide-1")
        b.wait_js("the run's tasks", "return document.querySelectorAll('#tasks tbody tr').length === 200")
        note = b.js("return document.getElementById('run-task-note').textContent")
        check(note.startswith("200 of the 520 tasks"), f"the run's task note: {note!r}")
        options = b.js("return [...document.querySelectorAll('#run-task-state option')].map(o => o.textContent)")
        check(options == ["all (520)", "success (520)"], f"the state filter's choices: {options}")
        b.js("const s = document.getElementById('run-task-state'); s.value = 'success';"
             " s.dispatchEvent(new Event('change'));")
        b.type("#run-task-search", "leaf_04")
        rows = b.wait_js("the run's tasks searched", "const r = [...document.querySelectorAll('#tasks tbody tr')]"
                         ".map(tr => tr.dataset.task); return r.length === 100 && r")
        check(rows == [f"leaf_{i:04d}" for i in range(400, 500)], f"the run's rows after the search: {rows[:3]}...")

    def test_narrow_screen(self):
        b = self.b
        b.window(390, 844)
        try:
            for view, ready in (("", "#dags tr[data-dag]"), ("#/dags/browser_fails/runs/bad-2?task=flaky", "#tasks tr"),
                                ("#/dags/example_diamond", "#grid td.cell")):
                b.get(self.page + view)
                b.wait_js("the view " + (view or "/"), "return document.querySelector(arguments[0]) !== null", ready)
                over = b.js("return document.documentElement.scrollWidth - window.innerWidth")
                check(over <= 1, f"{view or '/'} is {over}px wider than a narrow window")
            b.screenshot(os.path.join(self.shots, "narrow.png"))
        finally:
            b.window(1280, 900)

    def test_without_a_token_the_page_is_read_only(self):
        b = self.b
        page = f"http://127.0.0.1:{self.s.ro_port}/"
        b.get(page)
        b.wait_js("the read-only DAG list", "return document.querySelectorAll('#dags tr[data-dag]').length === 4")
        check(b.js("return document.body.classList.contains('read-only')"), "no read-only mode without a token")
        check("read-only" in b.js("return document.getElementById('mode').textContent"), "the mode is not said")
        visible = b.js("return [...document.querySelectorAll('.action, button.pause, button.trigger')].filter(e => e.offsetParent !== null).length")
        check(visible == 0, f"{visible} actions visible on a read-only page")
        b.get(page + "#/dags/browser_fails/runs/bad-2?task=flaky")
        b.wait_js("the read-only run view", "return document.querySelector('#tasks tr[data-task=\"flaky\"]') !== null"
                  " && document.getElementById('clear-task') !== null")
        for button in ("#clear-task", "#mark-success", "#mark-failed", "#clear-failed"):
            check(b.js("return document.querySelector(arguments[0]).offsetParent === null", button), f"{button} is visible")
        # And the API refuses a write from the page all the same.
        status = b.js("return fetch('/api/v1/dags/browser_fails/runs/bad-2/clear', {method: 'POST',"
                      " headers: {'Content-Type': 'application/json'}, body: '{}'}).then(r => r.status)")
        check(status == 403, f"a write on the token-less server got {status}, wanted 403")


def write_report(path, results, elapsed):
    cases = []
    for name, error, seconds in results:
        case = {"name": name, "status": "RUN", "result": "COMPLETED", "time": f"{seconds:.3f}s", "classname": "Browser"}
        if error:
            case["failures"] = [{"failure": error, "type": ""}]
        cases.append(case)
    doc = {"tests": len(cases), "failures": sum(1 for c in cases if "failures" in c), "time": f"{elapsed:.3f}s",
           "name": "AllTests",
           "testsuites": [{"name": "Browser", "tests": len(cases), "failures": sum(1 for c in cases if "failures" in c),
                           "testsuite": cases}]}
    with open(path, "w") as f:
        json.dump(doc, f, indent=2)


def main():
    shots = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "browser-screenshots")
    chromium = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    driver = os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")
    missing = [p for p in (chromium, driver) if not os.access(p, os.X_OK)]
    if missing or not shutil.which("redis-server"):
        what = ", ".join(missing) or "redis-server"
        message = f"browser test: {what} not found (./dev setup installs chromium, chromium-driver, redis-server)"
        if os.environ.get("CI") == "true":
            print(message + " — under CI=true that is a failure", file=sys.stderr)
            return 1
        print("SKIP " + message)
        return 77
    leoflow = os.environ["LEOFLOW_BIN"]
    source_root = os.environ["LEOFLOW_SOURCE_ROOT"]
    os.makedirs(shots, exist_ok=True)
    for old in os.listdir(shots):  # a failure's screenshot from an earlier run would mislead
        if old.startswith("failed-"):
            os.remove(os.path.join(shots, old))
    report = None
    gtest_output = os.environ.get("GTEST_OUTPUT", "")
    if gtest_output.startswith("json:"):
        target = gtest_output[5:]
        report = os.path.join(target, "browser_test.py.json") if target.endswith("/") else target

    # meson's timeout sends SIGTERM: unwind through the finally below, so no server or browser outlives us.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    started = time.monotonic()
    results = []
    tmp = tempfile.mkdtemp(prefix="leoflow-browser-")
    stack = Stack(tmp, leoflow, source_root)
    browser = None
    driver_port = free_port()
    order = ["test_token_is_asked_once_and_kept", "test_dag_list_matches_the_api", "test_grid_and_graph_match_the_api",
             "test_failed_log_then_clear_and_run_again", "test_trigger_with_conf_pause_and_follow_a_running_log",
             "test_screens", "test_many_tasks_give_a_searchable_list",
             "test_narrow_screen", "test_without_a_token_the_page_is_read_only"]
    try:
        t0 = time.monotonic()
        try:
            stack.start()
            stack.spawn("chromedriver", [driver, f"--port={driver_port}"])
            wait_for("chromedriver", lambda: http("GET", f"http://127.0.0.1:{driver_port}/status", timeout=5)[0] == 200, 60)
            browser = Browser(driver_port, chromium, tmp)
            cases = Cases(stack, browser, shots)
            cases.setup_runs()
            results.append(("SetUp", None, time.monotonic() - t0))
        except Exception as e:  # noqa: BLE001 — reported as the failing case
            detail = "".join(traceback.format_exception_only(type(e), e)).strip()
            results.append(("SetUp", detail + "\n--- scheduler log ---\n" + stack.log("scheduler")
                            + "\n--- chromedriver log ---\n" + stack.log("chromedriver"), time.monotonic() - t0))
            cases = None
        for name in order:
            if cases is None:
                break
            t0 = time.monotonic()
            print(f"[ RUN      ] Browser.{name}", flush=True)
            try:
                getattr(cases, name)()
                results.append((name, None, time.monotonic() - t0))
                print(f"[       OK ] Browser.{name} ({time.monotonic() - t0:.1f} s)", flush=True)
            except Exception as e:  # noqa: BLE001
                detail = traceback.format_exc() if not isinstance(e, Failure) else str(e)
                try:
                    browser.screenshot(os.path.join(shots, f"failed-{name}.png"))
                    detail += "\npage text: " + str(browser.js("return document.body.innerText"))[:3000]
                except Exception:  # noqa: BLE001
                    pass
                results.append((name, detail, time.monotonic() - t0))
                print(f"[  FAILED  ] Browser.{name}: {detail}", flush=True)
    finally:
        if browser:
            browser.quit()
        stack.stop()
        if all(e is None for _, e, _ in results):
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print(f"kept {tmp} for a look (logs of redis, schedulers and chromedriver)")
    for name, error, _ in results:
        if error and name == "SetUp":
            print(f"[  FAILED  ] Browser.SetUp: {error}")
    if report:
        write_report(report, results, time.monotonic() - started)
    failed = [n for n, e, _ in results if e]
    print(f"{len(results) - len(failed)} passed, {len(failed)} failed; screenshots in {shots}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
