// The leoflow web page (ARCHITECTURE §8.15, docs/web.md): three views — the DAGs, one DAG (grid of
// runs × tasks and its graph), one run (its tasks and a task's log) — drawn from /api/v1 and
// refreshed in place. Vanilla JavaScript with no dependency: the binary serves this file as is.
'use strict';

// --- states ------------------------------------------------------------------------------------
// Colours live in app.css (Okabe–Ito); each state also has a glyph, and its name is always in a label
// or a tooltip, so nothing depends on telling colours apart.
const GLYPHS = {
  success: '\u2713', failed: '\u2717', upstream_failed: '!', up_for_retry: '\u21bb', running: '\u25b6',
  queued: '\u22ef', scheduled: '\u25f7', skipped: '\u00bb', none: '',
};
const LEGEND = ['success', 'failed', 'upstream_failed', 'up_for_retry', 'running', 'queued', 'scheduled',
  'skipped', 'none'];
const RUN_STATES = ['queued', 'running', 'success', 'failed'];
const ACTIVE_RUN = new Set(['queued', 'running']);
const ACTIVE_TASK = new Set(['scheduled', 'queued', 'running', 'up_for_retry']);
const GRAPH_LIMIT = 500;    // above this many tasks the graph gives way to a searchable list
const LIST_ROWS = 200;      // ... which, like the grid's rows then, shows the first tasks the search matches
const GRID_CELLS = 100000;  // task instances one refresh of the grid asks for at most: fewer runs of a large DAG
const FAST_MS = 2000;       // refresh while runs are active
const SLOW_MS = 15000;      // otherwise, so new runs still show up
const LOG_MS = 1000;        // log follow interval while the attempt runs
const TOKEN_KEY = 'leoflow.token';

const app = {
  token: sessionStorage.getItem(TOKEN_KEY) || '',
  readOnly: false,        // the server has no token: writes would get 403, so actions are hidden
  tokenDeclined: false,   // the reader cancelled the token dialog: ask again only when they say so
  view: null,
  timer: null,
  refreshing: null,
};

// --- small DOM helpers -------------------------------------------------------------------------
function h(tag, props, ...kids) {
  const el = document.createElement(tag);
  setProps(el, props);
  for (const kid of kids.flat(Infinity)) {
    if (kid != null && kid !== false) el.append(kid instanceof Node ? kid : String(kid));
  }
  return el;
}
const SVG_NS = 'http://www.w3.org/2000/svg';
function svg(tag, props, ...kids) {
  const el = document.createElementNS(SVG_NS, tag);
  setProps(el, props);
  for (const kid of kids.flat(Infinity)) {
    if (kid != null && kid !== false) el.append(kid instanceof Node ? kid : String(kid));
  }
  return el;
}
function setProps(el, props) {
  for (const [k, v] of Object.entries(props || {})) {
    if (v == null || v === false) continue;
    if (k === 'class') el.setAttribute('class', v);
    else if (k === 'text') el.textContent = v;
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
}
const $ = (id) => document.getElementById(id);

// Replaces `host`'s children with build() only when `sig` (what they were built from) changed: a
// refresh with nothing new leaves the DOM alone — selections, focus, hover and scroll stay put.
function patch(host, sig, build) {
  if (host._sig === sig) return false;
  host._sig = sig;
  host.replaceChildren(...[build()].flat());
  return true;
}

function badge(state) {
  const st = state || 'none';
  return h('span', { class: 'badge st', dataset: { state: st } },
    h('span', { class: 'g', 'aria-hidden': 'true', text: GLYPHS[st] ?? '?' }), st.replaceAll('_', '\u00a0'));
}
function square(state, title, href) {
  const st = state || 'none';
  return h(href ? 'a' : 'span', { class: 'sq st', dataset: { state: st }, title, href, 'aria-label': title },
    GLYPHS[st] ?? '?');
}

function fmtTime(iso) {
  if (!iso) return '\u2014';
  return iso.replace('T', ' ').replace(/Z$/, '');
}
function fmtDuration(start, end) {
  if (!start) return '\u2014';
  const ms = (end ? Date.parse(end) : Date.now()) - Date.parse(start);
  if (!(ms >= 0)) return '\u2014';
  const s = Math.round(ms / 1000);
  if (s < 60) return s + ' s';
  if (s < 3600) return Math.floor(s / 60) + 'm ' + String(s % 60).padStart(2, '0') + 's';
  return Math.floor(s / 3600) + 'h ' + String(Math.floor(s / 60) % 60).padStart(2, '0') + 'm';
}
const enc = encodeURIComponent;

// --- the API -----------------------------------------------------------------------------------
class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

async function errorText(r) {
  try {
    const j = await r.json();
    return j.error || ('HTTP ' + r.status);
  } catch (e) {
    return 'HTTP ' + r.status;
  }
}

// Calls /api/v1 with the token when there is one. A 401 opens the token dialog (once for all the
// requests waiting) and retries with what the reader typed; cancelling gives up until they ask.
async function api(method, path, body, raw) {
  for (let attempt = 0; ; attempt++) {
    const headers = {};
    if (app.token) headers.Authorization = 'Bearer ' + app.token;
    const init = { method, headers, cache: 'no-store' };
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    let r;
    try {
      r = await fetch('/api/v1' + path, init);
    } catch (e) {
      throw new ApiError(0, 'the scheduler cannot be reached (' + e.message + ')');
    }
    if (r.status === 401) {
      const message = await errorText(r);
      if (app.tokenDeclined || attempt >= 5) throw new ApiError(401, message);
      if (!(await askToken(app.token ? 'The token was refused: ' + message : ''))) throw new ApiError(401, message);
      continue;
    }
    if (!r.ok && !(raw && r.status === 404)) throw new ApiError(r.status, await errorText(r));
    return raw ? r : r.json();
  }
}

let tokenAsk = null;
function askToken(message) {
  if (tokenAsk) return tokenAsk;  // one dialog for every request that met the 401
  const dialog = $('token-dialog');
  $('token-error').textContent = message;
  $('token-input').value = '';
  tokenAsk = new Promise((resolve) => {
    const done = (ok) => {
      $('token-form').onsubmit = null;
      $('token-cancel').onclick = null;
      dialog.close();
      tokenAsk = null;
      resolve(ok);
    };
    $('token-form').onsubmit = (ev) => {
      ev.preventDefault();
      app.token = $('token-input').value.trim();
      sessionStorage.setItem(TOKEN_KEY, app.token);
      app.tokenDeclined = false;
      showBanner('');
      done(true);
    };
    $('token-cancel').onclick = () => {
      app.tokenDeclined = true;
      showTokenBanner();
      done(false);
    };
    dialog.showModal();
    $('token-input').focus();
  });
  return tokenAsk;
}

function showTokenBanner() {
  const b = $('banner');
  b.replaceChildren('This scheduler wants a token to show anything. ',
    h('button', { type: 'button', id: 'token-again', onclick: () => { app.tokenDeclined = false; showBanner(''); refreshNow(); } },
      'Enter the token'));
  b.className = 'banner';
  b.hidden = false;
}

function showBanner(text, bad) {
  const b = $('banner');
  b.textContent = text;
  b.className = bad ? 'banner bad' : 'banner';
  b.hidden = !text;
}

// Whether the server has a token decides whether the page offers actions (GET /status needs none).
async function loadMode() {
  try {
    const r = await fetch('/status', { cache: 'no-store' });
    const status = await r.json();
    app.readOnly = status.token_required === false;
  } catch (e) {
    app.readOnly = false;  // unknown: offer the actions and let the API answer
  }
  document.body.classList.toggle('read-only', app.readOnly);
  $('mode').textContent = app.readOnly ? 'read-only: no token configured' : 'token';
  $('mode').title = app.readOnly
    ? 'The scheduler has no [http] token, so the API refuses every change; actions are hidden.'
    : 'The API needs a token; the page keeps it in this tab\'s session storage.';
}

// Runs an action: the button waits, an error goes to the banner, and the view refreshes after.
async function act(button, fn) {
  if (button) button.disabled = true;
  try {
    await fn();
    showBanner('');
  } catch (e) {
    const hint = e.status === 403 ? ' (this scheduler has no token: the API refuses changes)' : '';
    showBanner('Refused: ' + e.message + hint, true);
  } finally {
    if (button) button.disabled = false;
  }
  await refreshNow();
}

function confirmAction(text) {
  const dialog = $('confirm-dialog');
  $('confirm-text').textContent = text;
  return new Promise((resolve) => {
    const done = (ok) => {
      $('confirm-form').onsubmit = null;
      $('confirm-cancel').onclick = null;
      dialog.close();
      resolve(ok);
    };
    $('confirm-form').onsubmit = (ev) => { ev.preventDefault(); done(true); };
    $('confirm-cancel').onclick = () => done(false);
    dialog.showModal();
    $('confirm-ok').focus();
  });
}

function openTrigger(dag) {
  const dialog = $('trigger-dialog');
  $('trigger-title').textContent = 'Trigger ' + dag;
  $('trigger-error').textContent = '';
  $('trigger-form').onsubmit = async (ev) => {
    ev.preventDefault();
    const body = {};
    const text = $('trigger-conf').value.trim();
    if (text) {
      try {
        body.conf = JSON.parse(text);
      } catch (e) {
        $('trigger-error').textContent = 'conf is not JSON: ' + e.message;
        return;
      }
      if (typeof body.conf !== 'object' || body.conf === null || Array.isArray(body.conf)) {
        $('trigger-error').textContent = 'conf must be a JSON object';
        return;
      }
    }
    const runId = $('trigger-run-id').value.trim();
    if (runId) body.run_id = runId;
    try {
      const run = await api('POST', '/dags/' + enc(dag) + '/runs', body);
      dialog.close();
      go(['dags', dag, 'runs', run.run_id]);
    } catch (e) {
      $('trigger-error').textContent = e.message;
    }
  };
  $('trigger-cancel').onclick = () => dialog.close();
  dialog.showModal();
  $('trigger-conf').focus();
}

// --- routing: #/, #/dags/<dag>, #/dags/<dag>/runs/<run>, with ?query for the reader's choices ------
function parseRoute() {
  const hash = location.hash.replace(/^#/, '');
  const q = hash.indexOf('?');
  const path = q < 0 ? hash : hash.slice(0, q);
  const params = new URLSearchParams(q < 0 ? '' : hash.slice(q + 1));
  const seg = path.split('/').filter(Boolean).map(decodeURIComponent);
  if (seg[0] === 'dags' && seg.length === 2) return { kind: 'dag', dag: seg[1], params };
  if (seg[0] === 'dags' && seg[2] === 'runs' && seg.length === 4) return { kind: 'run', dag: seg[1], run: seg[3], params };
  return { kind: 'list', params };
}
function href(seg, params) {
  const qs = params ? new URLSearchParams(Object.entries(params).filter(([, v]) => v != null && v !== '')).toString() : '';
  return '#/' + seg.map(enc).join('/') + (qs ? '?' + qs : '');
}
function go(seg, params) { location.hash = href(seg, params); }
// Changes the reader's choices in the address without a new history entry, then redraws.
function setParams(changes) {
  const r = parseRoute();
  for (const [k, v] of Object.entries(changes)) {
    if (v == null || v === '') r.params.delete(k); else r.params.set(k, v);
  }
  const hash = location.hash.replace(/^#/, '').split('?')[0] || '/';
  const qs = r.params.toString();
  history.replaceState(null, '', '#' + hash + (qs ? '?' + qs : ''));
  onRoute();
}

function crumbs(parts) {
  const nav = $('crumbs');
  nav.replaceChildren();
  parts.forEach(([label, link], i) => {
    if (i > 0) nav.append(h('span', { class: 'sep', 'aria-hidden': 'true' }, '/'));
    nav.append(link ? h('a', { href: link }, label) : h('span', {}, label));
  });
}

// --- view: the DAGs ----------------------------------------------------------------------------
class ListView {
  constructor() {
    this.root = h('div', { id: 'dags-view' });
    this.toolbar = h('div', { class: 'toolbar' });
    this.table = h('div', { class: 'scroll panel' });
    this.root.append(h('h1', {}, 'DAGs'), this.toolbar, this.table);
    this.tenantSelect = h('select', { id: 'tenant-filter', onchange: (e) => setParams({ tenant: e.target.value }) });
    this.search = h('input', { type: 'search', id: 'dag-search', placeholder: 'dag id contains\u2026',
      oninput: () => this.draw() });
    this.toolbar.append(h('label', { for: 'tenant-filter' }, 'tenant'), this.tenantSelect,
      h('label', { for: 'dag-search' }, 'search'), this.search);
    this.dags = [];
    this.runs = {};
  }
  async refresh() {
    crumbs([['DAGs']]);
    const dags = await api('GET', '/dags');
    const runs = {};
    await Promise.all(dags.map(async (d) => {
      try {
        runs[d.dag_id] = (await api('GET', '/dags/' + enc(d.dag_id) + '/runs?limit=10')).reverse();
      } catch (e) {
        if (e.status !== 404) throw e;  // deleted meanwhile
        runs[d.dag_id] = [];
      }
    }));
    this.dags = dags;
    this.runs = runs;
    this.draw();
    return Object.values(runs).some((rs) => rs.some((r) => ACTIVE_RUN.has(r.state)));
  }
  draw() {
    const route = parseRoute();
    const tenant = route.params.get('tenant') || '';
    const tenants = [...new Set(this.dags.map((d) => d.tenant))].sort();
    patch(this.tenantSelect, JSON.stringify([tenants, tenant]), () => [
      h('option', { value: '' }, 'all'),
      ...tenants.map((t) => h('option', { value: t, selected: t === tenant }, t)),
    ]);
    this.tenantSelect.value = tenant;
    const needle = this.search.value.trim().toLowerCase();
    const shown = this.dags.filter((d) => (!tenant || d.tenant === tenant) && d.dag_id.toLowerCase().includes(needle));
    patch(this.table, JSON.stringify([shown, shown.map((d) => this.runs[d.dag_id]), app.readOnly]), () => {
      if (shown.length === 0) return h('p', { class: 'muted' }, this.dags.length ? 'No DAG matches.' : 'No DAGs registered yet (leoflow dags sync PATH).');
      return h('table', { id: 'dags' },
        h('thead', {}, h('tr', {}, h('th', {}, 'DAG'), h('th', {}, 'schedule'), h('th', { class: 'hide-narrow' }, 'tenant'),
          h('th', { class: 'hide-narrow' }, 'next slot (UTC)'), h('th', {}, 'last runs'), h('th', {}, 'paused'),
          h('th', { class: 'action' }, ''))),
        h('tbody', {}, shown.map((d) => this.row(d))));
    });
  }
  row(d) {
    const runs = this.runs[d.dag_id] || [];
    return h('tr', { dataset: { dag: d.dag_id } },
      h('td', {}, h('a', { href: href(['dags', d.dag_id]), class: 'dag-link' }, d.dag_id)),
      h('td', { class: 'mono' }, d.schedule || 'manual'),
      h('td', { class: 'hide-narrow' }, d.tenant),
      h('td', { class: 'num hide-narrow' }, fmtTime(d.next_slot)),
      h('td', {}, h('span', { class: 'squares' }, runs.map((r) =>
        square(r.state, r.run_id + ': ' + r.state, href(['dags', d.dag_id, 'runs', r.run_id]))))),
      h('td', {}, d.paused ? '\u23f8 paused' : 'active'),
      h('td', { class: 'action' }, h('span', { class: 'toolbar' },
        h('button', { type: 'button', class: 'pause', onclick: (e) => act(e.currentTarget,
          () => api('PATCH', '/dags/' + enc(d.dag_id), { paused: !d.paused })) }, d.paused ? 'Unpause' : 'Pause'),
        h('button', { type: 'button', class: 'trigger', onclick: () => openTrigger(d.dag_id) }, 'Trigger'))));
  }
}

// --- the graph: layers from the edges ----------------------------------------------------------
// Layer = longest path from a task without upstreams (so every edge points right); within a layer,
// a few barycentre sweeps order the tasks by the mean position of their neighbours, which removes
// most crossings of the usual fan-out/fan-in shapes.
function layoutGraph(tasks) {
  const index = new Map(tasks.map((t, i) => [t.task_id, i]));
  const ups = tasks.map((t) => (t.depends_on || []).filter((u) => index.has(u)).map((u) => index.get(u)));
  const downs = tasks.map(() => []);
  ups.forEach((us, i) => us.forEach((u) => downs[u].push(i)));
  const layer = new Array(tasks.length).fill(0);
  const indeg = ups.map((us) => us.length);
  const queue = [];
  indeg.forEach((d, i) => { if (d === 0) queue.push(i); });
  for (let qi = 0; qi < queue.length; qi++) {
    const i = queue[qi];
    for (const c of downs[i]) {
      layer[c] = Math.max(layer[c], layer[i] + 1);
      if (--indeg[c] === 0) queue.push(c);
    }
  }
  const layers = [];
  layer.forEach((l, i) => (layers[l] = layers[l] || []).push(i));
  const pos = new Array(tasks.length).fill(0);
  const place = () => layers.forEach((ids) => ids.forEach((id, k) => (pos[id] = k - (ids.length - 1) / 2)));
  place();
  const mean = (list, i) => (list[i].length ? list[i].reduce((a, b) => a + pos[b], 0) / list[i].length : pos[i]);
  for (let sweep = 0; sweep < 4; sweep++) {
    for (let l = 1; l < layers.length; l++) { layers[l].sort((a, b) => mean(ups, a) - mean(ups, b) || a - b); place(); }
    for (let l = layers.length - 2; l >= 0; l--) { layers[l].sort((a, b) => mean(downs, a) - mean(downs, b) || a - b); place(); }
  }
  return { layers, ups };
}

function drawGraph(dag, run, onPick, selectedTask) {
  const tasks = dag.tasks;
  const { layers, ups } = layoutGraph(tasks);
  const W = 190, H = 46, GX = 70, GY = 18, PAD = 16;
  const tallest = Math.max(1, ...layers.map((l) => l.length));
  const xy = [];
  layers.forEach((ids, l) => ids.forEach((id, k) => {
    xy[id] = [PAD + l * (W + GX), PAD + ((tallest - ids.length) / 2 + k) * (H + GY)];
  }));
  const width = PAD * 2 + layers.length * (W + GX) - GX;
  const height = PAD * 2 + tallest * (H + GY) - GY;
  const states = new Map((run?.tasks || []).map((t) => [t.task_id, t.state]));
  const edges = [];
  ups.forEach((us, i) => us.forEach((u) => {
    const [x1, y1] = [xy[u][0] + W, xy[u][1] + H / 2];
    const [x2, y2] = [xy[i][0] - 6, xy[i][1] + H / 2];
    const dx = Math.max(20, (x2 - x1) / 2);
    edges.push(svg('path', { class: 'edge', 'marker-end': 'url(#arrow)', dataset: { from: tasks[u].task_id, to: tasks[i].task_id },
      d: `M${x1},${y1} C${x1 + dx},${y1} ${x2 - dx},${y2} ${x2},${y2}` }));
  }));
  const nodes = tasks.map((t, i) => {
    const st = states.get(t.task_id) || 'none';
    const rule = t.trigger_rule && t.trigger_rule !== 'all_success' ? t.trigger_rule : '';
    const label = t.task_id.length > 24 ? t.task_id.slice(0, 23) + '\u2026' : t.task_id;
    const g = svg('g', { class: 'node st' + (t.task_id === selectedTask ? ' selected' : ''), tabindex: '0', role: 'button',
      dataset: { task: t.task_id, state: st }, transform: `translate(${xy[i][0]},${xy[i][1]})` },
      svg('title', {}, `${t.task_id}: ${st}${rule ? ' (trigger rule ' + rule + ')' : ''}`),
      svg('rect', { width: W, height: H, rx: 5 }),
      svg('rect', { class: 'mark', width: 24, height: H, rx: 5 }),
      svg('text', { class: 'glyph', x: 12, y: H / 2 + 4, 'text-anchor': 'middle' }, GLYPHS[st] ?? '?'),
      svg('text', { x: 32, y: rule ? 19 : H / 2 + 4 }, label),
      rule ? svg('text', { class: 'rule', x: 32, y: 36 }, '\u2937 ' + rule) : null);
    g.querySelector('.mark').style.fill = 'var(--c)';
    const pick = () => onPick(t.task_id);
    g.addEventListener('click', pick);
    g.addEventListener('keydown', (e) => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); pick(); } });
    return g;
  });
  return svg('svg', { class: 'graph', id: 'graph', width, height, viewBox: `0 0 ${width} ${height}`, role: 'img',
    'aria-label': `graph of ${dag.dag_id}: ${tasks.length} tasks` },
  svg('defs', {}, svg('marker', { id: 'arrow', viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto' },
    svg('path', { d: 'M0,0 L10,5 L0,10 z', fill: '#8b929c' }))),
  svg('g', { class: 'edges' }, edges), svg('g', { class: 'nodes' }, nodes));
}

// --- view: one DAG -----------------------------------------------------------------------------
class DagView {
  constructor(dag) {
    this.dagId = dag;
    this.head = h('div');
    this.gridTools = h('div', { class: 'toolbar' });
    this.gridNote = h('p', { class: 'muted', id: 'grid-note', hidden: true });
    this.grid = h('div', { class: 'scroll', id: 'grid-wrap' });
    this.graphTitle = h('h2');
    this.graph = h('div', { class: 'graph-wrap', id: 'graph-wrap' });
    this.list = h('div', { id: 'task-list-wrap' });
    this.root = h('div', { id: 'dag-view' }, this.head,
      h('section', { class: 'panel' }, h('h2', {}, 'Runs \u00d7 tasks'), this.gridTools, this.gridNote, this.grid),
      h('section', { class: 'panel' }, this.graphTitle, this.graph, this.list));
    this.stateSelect = h('select', { id: 'run-state-filter', onchange: (e) => setParams({ state: e.target.value, run: '' }) },
      h('option', { value: '' }, 'all'), RUN_STATES.map((s) => h('option', { value: s }, s)));
    this.limitSelect = h('select', { id: 'run-limit', onchange: (e) => setParams({ limit: e.target.value }) },
      [10, 25, 50, 100].map((n) => h('option', { value: n, selected: n === 25 }, n)));
    this.gridTools.append(h('label', { for: 'run-state-filter' }, 'runs in state'), this.stateSelect,
      h('label', { for: 'run-limit' }, 'last'), this.limitSelect);
    this.search = h('input', { type: 'search', id: 'task-search', placeholder: 'task id contains\u2026', oninput: () => this.draw() });
  }
  async refresh() {
    const p = parseRoute().params;
    const state = p.get('state') || '';
    const limit = p.get('limit') || '25';
    this.stateSelect.value = state;
    this.limitSelect.value = limit;
    // A run of a large DAG is thousands of instances: the grid asks for fewer runs of it, so that one
    // refresh reads at most GRID_CELLS instances. The DAG's size is the last refresh's (the first one
    // reads the DAG before its runs).
    const dagRead = api('GET', '/dags/' + enc(this.dagId));
    const known = this.dag || await dagRead;
    this.askedRuns = Number(limit) || 25;
    this.runLimit = Math.max(1, Math.min(this.askedRuns, Math.floor(GRID_CELLS / Math.max(1, known.tasks.length))));
    const [dag, runs] = await Promise.all([
      dagRead,
      api('GET', '/dags/' + enc(this.dagId) + '/runs?tasks=true&limit=' + this.runLimit + (state ? '&state=' + enc(state) : '')),
    ]);
    this.dag = dag;
    this.runs = runs.reverse();  // oldest on the left, as time reads
    crumbs([['DAGs', '#/'], [dag.dag_id]]);
    this.draw();
    return runs.some((r) => ACTIVE_RUN.has(r.state));
  }
  selectedRun() {
    const id = parseRoute().params.get('run');
    return this.runs.find((r) => r.run_id === id) || this.runs[this.runs.length - 1] || null;
  }
  draw() {
    const d = this.dag;
    patch(this.head, JSON.stringify([d, app.readOnly]), () => [
      h('h1', {}, d.dag_id),
      h('dl', { class: 'facts' },
        h('dt', {}, 'schedule'), h('dd', { class: 'mono' }, d.schedule || 'manual'),
        h('dt', {}, 'tenant'), h('dd', {}, d.tenant),
        h('dt', {}, 'version'), h('dd', {}, d.version),
        h('dt', {}, 'paused'), h('dd', {}, d.paused ? '\u23f8 paused' : 'no'),
        h('dt', {}, 'next slot (UTC)'), h('dd', {}, fmtTime(d.next_slot))),
      h('div', { class: 'toolbar action' },
        h('button', { type: 'button', class: 'pause', onclick: (e) => act(e.currentTarget,
          () => api('PATCH', '/dags/' + enc(d.dag_id), { paused: !d.paused })) }, d.paused ? 'Unpause' : 'Pause'),
        h('button', { type: 'button', class: 'trigger', onclick: () => openTrigger(d.dag_id) }, 'Trigger')),
    ]);
    const sel = this.selectedRun();
    const selId = sel ? sel.run_id : null;
    const runs = this.runs;
    // Too many tasks to draw: the grid's rows, like the list's, are the first the task search matches.
    const rows = d.tasks.length > GRAPH_LIMIT ? this.matchingTasks().slice(0, LIST_ROWS) : d.tasks;
    const notes = [];
    if (rows.length < d.tasks.length) {
      const needle = this.search.value.trim();
      notes.push(`${rows.length} of the ${d.tasks.length} tasks` + (needle ? ` (those whose id contains \u201c${needle}\u201d)` : '') +
        '; the task search below chooses them');
    }
    if (this.runLimit < this.askedRuns) notes.push(`the last ${this.runLimit} runs, not ${this.askedRuns}: each has ${d.tasks.length} tasks`);
    this.gridNote.textContent = notes.join('; ');
    this.gridNote.hidden = notes.length === 0;
    patch(this.grid, JSON.stringify([rows.map((t) => t.task_id), runs, selId]), () => {
      if (runs.length === 0) return h('p', { class: 'muted' }, 'No runs' + (this.stateSelect.value ? ' in this state.' : ' yet.'));
      const byRun = runs.map((r) => new Map(r.tasks.map((t) => [t.task_id, t])));
      return h('table', { class: 'grid', id: 'grid' },
        h('thead', {}, h('tr', {}, h('th', {}, ''), runs.map((r) => h('th', { class: 'run' + (r.run_id === selId ? ' selected' : ''), dataset: { run: r.run_id } },
          h('button', { type: 'button', title: `${r.run_id}: ${r.state} \u2014 show it in the graph`, onclick: () => setParams({ run: r.run_id }) },
            h('span', { class: 'runbar st', dataset: { state: r.state }, style: null, 'aria-label': r.state }, GLYPHS[r.state])))))),
        h('tbody', {}, rows.map((t) => h('tr', { dataset: { task: t.task_id } },
          h('td', { class: 'task', title: t.task_id }, t.task_id),
          runs.map((r, i) => {
            const ti = byRun[i].get(t.task_id);
            const st = ti ? ti.state : 'none';
            return h('td', { class: 'cell' + (r.run_id === selId ? ' selected-run' : ''), dataset: { run: r.run_id } },
              square(st, `${t.task_id} in ${r.run_id}: ${st}${ti && ti.try_number > 1 ? ', try ' + ti.try_number : ''}`,
                href(['dags', d.dag_id, 'runs', r.run_id], { task: t.task_id })));
          })))));
    });
    // Run bars are as tall as the run was long, relative to the longest shown (Airflow's grid).
    const longest = Math.max(1, ...runs.map((r) => durationMs(r)));
    this.grid.querySelectorAll('th.run').forEach((th, i) => {
      th.querySelector('.runbar').style.height = Math.max(14, Math.round(56 * durationMs(runs[i]) / longest)) + 'px';
    });
    if (d.tasks.length > GRAPH_LIMIT) {
      this.graphTitle.textContent = `Tasks (${d.tasks.length}: too many to draw) \u2014 states of ${selId || 'no run'}`;
      this.graph.hidden = true;
      this.list.hidden = false;
      this.drawList();
    } else {
      this.graphTitle.textContent = 'Graph' + (selId ? ' \u2014 states of ' + selId : '');
      this.graph.hidden = false;
      this.list.hidden = true;
      patch(this.graph, JSON.stringify([d.tasks, sel && sel.tasks]), () => drawGraph(d, sel,
        (task) => { const r = this.selectedRun(); if (r) go(['dags', d.dag_id, 'runs', r.run_id], { task }); }));
    }
  }
  // The DAG's tasks whose id contains the task search's text.
  matchingTasks() {
    return tasksWhoseIdContains(this.dag.tasks, this.search.value);
  }
  drawList() {
    const d = this.dag;
    const sel = this.selectedRun();
    const states = new Map((sel?.tasks || []).map((t) => [t.task_id, t.state]));
    const needle = this.search.value.trim().toLowerCase();
    const matches = this.matchingTasks();
    const shown = matches.slice(0, LIST_ROWS);
    if (!this.list.contains(this.search)) this.list.replaceChildren(h('div', { class: 'toolbar' }, this.search), h('div', { class: 'scroll' }));
    patch(this.list.lastChild, JSON.stringify([shown, [...states], needle]), () => [
      h('p', { class: 'muted' }, `${matches.length} of ${d.tasks.length} tasks` + (matches.length > shown.length ? `, the first ${shown.length} shown` : '')),
      h('table', { id: 'task-list' }, h('thead', {}, h('tr', {}, h('th', {}, 'task'), h('th', {}, 'state'), h('th', {}, 'upstream'), h('th', {}, 'trigger rule'))),
        h('tbody', {}, shown.map((t) => h('tr', { dataset: { task: t.task_id } },
          h('td', {}, sel ? h('a', { href: href(['dags', d.dag_id, 'runs', sel.run_id], { task: t.task_id }) }, t.task_id) : t.task_id),
          h('td', {}, badge(states.get(t.task_id))),
          h('td', { class: 'mono' }, (t.depends_on || []).join(', ')),
          h('td', {}, t.trigger_rule || 'all_success'))))),
    ]);
  }
}
// The tasks (or instances) whose task id contains `text`, a search box's value, in any case; all of
// them when it is blank.
function tasksWhoseIdContains(tasks, text) {
  const needle = text.trim().toLowerCase();
  return needle ? tasks.filter((t) => t.task_id.toLowerCase().includes(needle)) : tasks;
}
function durationMs(r) {
  if (!r || !r.started_at) return 0;
  return (r.ended_at ? Date.parse(r.ended_at) : Date.now()) - Date.parse(r.started_at);
}

// --- view: one run -----------------------------------------------------------------------------
class RunView {
  constructor(dag, run) {
    this.dagId = dag;
    this.runId = run;
    this.head = h('div');
    this.tasks = h('div', { class: 'scroll' });
    // A run of more than GRAPH_LIMIT tasks lists the first LIST_ROWS that its filter matches.
    this.taskSearch = h('input', { type: 'search', id: 'run-task-search', placeholder: 'task id contains\u2026', oninput: () => this.draw() });
    this.stateFilter = h('select', { id: 'run-task-state', onchange: () => this.draw() });
    this.taskFilter = h('div', { class: 'toolbar', hidden: true }, h('label', { for: 'run-task-state' }, 'tasks in state'), this.stateFilter,
      h('label', { for: 'run-task-search' }, 'search'), this.taskSearch);
    this.taskNote = h('p', { class: 'muted', id: 'run-task-note', hidden: true });
    this.taskHead = h('div');
    this.logStatus = h('span', { class: 'muted', id: 'log-status' });
    this.trySelect = h('select', { id: 'log-try', onchange: (e) => setParams({ try: e.target.value }) });
    this.logPre = h('pre', { class: 'log', id: 'log', tabindex: '0' });
    this.taskPanel = h('section', { class: 'panel', id: 'task-panel' }, this.taskHead,
      h('div', { class: 'toolbar' }, h('label', { for: 'log-try' }, 'log of try'), this.trySelect, this.logStatus), this.logPre);
    this.root = h('div', { id: 'run-view' }, this.head,
      h('div', { class: 'run-cols' }, h('section', { class: 'panel' }, h('h2', {}, 'Tasks'), this.taskFilter, this.taskNote, this.tasks),
        this.taskPanel));
    this.log = null;  // what the log panel follows: {task, try, offset, complete, timer}
  }
  async refresh() {
    const run = await api('GET', '/dags/' + enc(this.dagId) + '/runs/' + enc(this.runId));
    this.run = run;
    crumbs([['DAGs', '#/'], [run.dag_id, href(['dags', run.dag_id])], [run.run_id]]);
    this.draw();
    return ACTIVE_RUN.has(run.state);
  }
  draw() {
    const r = this.run;
    const base = '/dags/' + enc(r.dag_id) + '/runs/' + enc(r.run_id);
    patch(this.head, JSON.stringify([r.state, r.note, r.conf, r.started_at, r.ended_at, r.tenant, r.dag_version]), () => [
      h('h1', {}, 'Run ', h('span', { class: 'mono' }, r.run_id), ' ', badge(r.state)),
      h('div', { class: 'cols' },
        h('dl', { class: 'facts', id: 'run-facts' },
          h('dt', {}, 'DAG'), h('dd', {}, h('a', { href: href(['dags', r.dag_id]) }, r.dag_id), ' (version ' + r.dag_version + ')'),
          h('dt', {}, 'tenant'), h('dd', {}, r.tenant),
          h('dt', {}, 'trigger'), h('dd', {}, r.trigger),
          h('dt', {}, 'logical date'), h('dd', { class: 'num' }, fmtTime(r.logical_date)),
          h('dt', {}, 'started'), h('dd', { class: 'num' }, fmtTime(r.started_at)),
          h('dt', {}, 'ended'), h('dd', { class: 'num' }, fmtTime(r.ended_at)),
          h('dt', {}, 'duration'), h('dd', { class: 'num' }, fmtDuration(r.started_at, r.ended_at)),
          h('dt', {}, 'note'), h('dd', { id: 'run-note' }, r.note || '\u2014')),
        h('div', {}, h('div', { class: 'muted' }, 'conf'),
          h('pre', { class: 'conf panel', id: 'run-conf' }, r.conf == null ? '{}' : JSON.stringify(r.conf, null, 2)))),
      h('div', { class: 'toolbar action' },
        ACTIVE_RUN.has(r.state) ? h('button', { type: 'button', class: 'danger', id: 'cancel-run', onclick: async (e) => {
          const b = e.currentTarget;
          if (await confirmAction(`Cancel run ${r.run_id}? Its running tasks are stopped.`)) act(b, () => api('POST', base + '/cancel', {}));
        } }, 'Cancel run') : null,
        h('button', { type: 'button', id: 'clear-failed', onclick: async (e) => {
          const b = e.currentTarget;
          if (await confirmAction(`Clear the failed tasks of ${r.run_id} (and what they held back)? They run again.`)) act(b, () => api('POST', base + '/clear', { failed_only: true }));
        } }, 'Clear failed tasks')),
    ]);
    const taskId = parseRoute().params.get('task');
    const shown = this.shownTasks();
    patch(this.tasks, JSON.stringify([shown, taskId, ACTIVE_RUN.has(r.state) ? Math.floor(Date.now() / 1000) : 0]), () =>
      h('table', { id: 'tasks' },
        h('thead', {}, h('tr', {}, h('th', {}, 'task'), h('th', {}, 'state'), h('th', {}, 'try'), h('th', { class: 'hide-narrow' }, 'start (UTC)'),
          h('th', { class: 'hide-narrow' }, 'end (UTC)'), h('th', {}, 'duration'), h('th', { class: 'hide-narrow' }, 'note'))),
        h('tbody', {}, shown.map((t) => h('tr', { class: 'clickable' + (t.task_id === taskId ? ' selected' : ''), dataset: { task: t.task_id },
          tabindex: '0', onclick: () => setParams({ task: t.task_id, try: '' }),
          onkeydown: (e) => { if (e.key === 'Enter') setParams({ task: t.task_id, try: '' }); } },
        h('td', {}, t.task_id), h('td', {}, badge(t.state)), h('td', { class: 'num' }, `${t.try_number} / ${t.max_tries}`),
        h('td', { class: 'num hide-narrow' }, fmtTime(t.started_at)), h('td', { class: 'num hide-narrow' }, fmtTime(t.ended_at)),
        h('td', { class: 'num' }, fmtDuration(t.started_at, t.ended_at)), h('td', { class: 'hide-narrow' }, t.note || ''))))));
    this.drawTask(taskId);
  }
  // The run's tasks the table shows: all of them, or for a run too large to list whole the first
  // LIST_ROWS that the state filter and the search match. Also shows or hides the filter and its note,
  // and brings the filter's choices (each state with its count) up to date.
  shownTasks() {
    const tasks = this.run.tasks;
    const many = tasks.length > GRAPH_LIMIT;
    this.taskFilter.hidden = !many;
    this.taskNote.hidden = !many;
    if (!many) return tasks;
    const counts = new Map();
    for (const t of tasks) counts.set(t.state, (counts.get(t.state) || 0) + 1);
    const states = LEGEND.filter((st) => counts.has(st));
    const chosen = states.includes(this.stateFilter.value) ? this.stateFilter.value : '';
    patch(this.stateFilter, JSON.stringify([...counts]), () => [h('option', { value: '' }, `all (${tasks.length})`),
      ...states.map((st) => h('option', { value: st }, `${st.replaceAll('_', ' ')} (${counts.get(st)})`))]);
    this.stateFilter.value = chosen;
    const searched = this.taskSearch.value.trim() !== '';
    const matching = tasksWhoseIdContains(tasks, this.taskSearch.value).filter((t) => !chosen || t.state === chosen);
    const shown = matching.slice(0, LIST_ROWS);
    this.taskNote.textContent = `${shown.length} of the ${matching.length} tasks` +
      (chosen || searched ? ` that match (of ${tasks.length})` : '') +
      (matching.length > shown.length ? '; the state and the search choose them' : '');
    return shown;
  }
  drawTask(taskId) {
    const r = this.run;
    const t = r.tasks.find((x) => x.task_id === taskId);
    this.taskPanel.hidden = !t;
    if (!t) { this.stopLog(); return; }
    const base = '/dags/' + enc(r.dag_id) + '/runs/' + enc(r.run_id) + '/tasks/' + enc(t.task_id);
    patch(this.taskHead, JSON.stringify([t, app.readOnly]), () => {
      const downstream = h('input', { type: 'checkbox', id: 'clear-downstream', checked: true });
      return [
        h('h2', {}, 'Task ', h('span', { class: 'mono' }, t.task_id), ' ', badge(t.state)),
        h('div', { class: 'toolbar action' },
          h('button', { type: 'button', id: 'clear-task', onclick: async (e) => {
            const b = e.currentTarget;
            const down = downstream.checked;
            if (await confirmAction(`Clear ${t.task_id}${down ? ' and its downstream tasks' : ''}? It runs again.`)) {
              act(b, () => api('POST', '/dags/' + enc(r.dag_id) + '/runs/' + enc(r.run_id) + '/clear', { task_ids: [t.task_id], downstream: down }));
            }
          } }, 'Clear'),
          h('label', { for: 'clear-downstream' }, downstream, ' with downstream'),
          h('button', { type: 'button', id: 'mark-success', onclick: (e) => act(e.currentTarget, () => api('POST', base + '/mark', { state: 'success' })) }, 'Mark success'),
          h('button', { type: 'button', id: 'mark-failed', class: 'danger', onclick: (e) => act(e.currentTarget, () => api('POST', base + '/mark', { state: 'failed' })) }, 'Mark failed')),
      ];
    });
    // The log: the try asked for, else the latest; a new try (the task was cleared) is followed.
    const asked = parseInt(parseRoute().params.get('try') || '', 10);
    const tryNo = asked > 0 ? Math.min(asked, Math.max(1, t.try_number)) : t.try_number;
    patch(this.trySelect, JSON.stringify([t.try_number, tryNo]), () =>
      t.try_number < 1 ? h('option', { value: '' }, '\u2014')
        : Array.from({ length: t.try_number }, (_, i) => h('option', { value: i + 1, selected: i + 1 === tryNo }, i + 1)));
    const key = JSON.stringify([r.dag_id, r.run_id, t.task_id, tryNo]);
    if (!this.log || this.log.key !== key) {
      this.stopLog();
      this.logPre.textContent = '';
      this.log = { key, url: base + '/logs?try=' + tryNo + '&offset=', offset: 0, complete: false, timer: null, tryNo };
      if (tryNo < 1) { this.logStatus.textContent = 'not started yet'; this.log.complete = true; return; }
      this.followLog(this.log);
    } else if (this.log.complete && !this.log.timer && ACTIVE_TASK.has(t.state) && t.try_number === tryNo) {
      this.followLog(this.log);  // the same try is running again (re-queued): keep reading
    }
  }
  // Reads the log from where it stopped (by byte offset) until the attempt has ended.
  async followLog(log) {
    log.timer = null;
    if (this.log !== log || app.view !== this) return;
    let wait = LOG_MS;
    try {
      const r = await api('GET', log.url + log.offset, undefined, true);
      if (this.log !== log) return;
      if (r.status === 404) {
        this.logStatus.textContent = 'no log yet';
        wait = 2 * LOG_MS;
      } else {
        const text = await r.text();
        if (this.log !== log) return;
        const pre = this.logPre;
        const atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
        if (text) pre.append(text);
        if (atEnd) pre.scrollTop = pre.scrollHeight;  // follow, unless the reader scrolled up
        log.offset = Number(r.headers.get('X-Log-Next-Offset') || log.offset + text.length);
        log.complete = r.headers.get('X-Log-Complete') === 'true';
        this.logStatus.textContent = log.complete ? 'complete' : 'following\u2026';
        this.logStatus.dataset.complete = String(log.complete);
        if (log.complete) return;
        if (text.length > 0) wait = 200;  // more may be waiting: read on soon
      }
    } catch (e) {
      this.logStatus.textContent = 'cannot read the log: ' + e.message;
      wait = 3 * LOG_MS;
    }
    if (this.log === log && app.view === this) log.timer = setTimeout(() => this.followLog(log), wait);
  }
  stopLog() {
    if (this.log && this.log.timer) clearTimeout(this.log.timer);
    this.log = null;
  }
  destroy() { this.stopLog(); }
}

// --- the refresh loop --------------------------------------------------------------------------
function onRoute() {
  const r = parseRoute();
  const key = [r.kind, r.dag || '', r.run || ''].join('\u0000');
  if (!app.view || app.view.key !== key) {
    if (app.view && app.view.destroy) app.view.destroy();
    app.view = r.kind === 'dag' ? new DagView(r.dag) : r.kind === 'run' ? new RunView(r.dag, r.run) : new ListView();
    app.view.key = key;
    $('view').replaceChildren(app.view.root);
    window.scrollTo(0, 0);
  } else if (app.view.loaded) {
    app.view.draw();  // the reader's choice changed: redraw from the data in hand at once
  }
  refreshNow();
}

// Reloads the current view's data; polls every 2 s while runs are active, slowly otherwise. A view
// that took long to load and draw (a run of thousands of tasks) waits 20 times as long as it took, so
// the page asks at most a twentieth of the time of the scheduler that serves it; a hidden page only
// slowly (it refreshes at once when shown again).
async function refreshNow() {
  clearTimeout(app.timer);
  const view = app.view;
  const mine = {};
  app.refreshing = mine;
  let active = false;
  const started = performance.now();
  try {
    active = await view.refresh();
    view.loaded = true;
    if (app.loadFailed) showBanner('');  // the earlier failure is over
    app.loadFailed = false;
  } catch (e) {
    if (e.status === 401) {
      showTokenBanner();
    } else {
      showBanner('Cannot load: ' + e.message, true);
      app.loadFailed = true;
    }
  }
  if (app.refreshing !== mine) return;  // a newer refresh took over
  const wait = active && !document.hidden ? refreshWait(performance.now() - started) : SLOW_MS;
  const live = $('live');
  live.classList.toggle('on', active);
  live.textContent = active ? `live: every ${Math.round(wait / 1000)} s` : 'idle';
  app.timer = setTimeout(refreshNow, wait);
}

// How long to wait after a refresh of an active view that took `tookMs`: FAST_MS, or 20 times the
// refresh when that is longer, at most SLOW_MS.
function refreshWait(tookMs) {
  return Math.min(SLOW_MS, Math.max(FAST_MS, Math.round(20 * tookMs)));
}

function drawLegend() {
  $('legend').replaceChildren(...LEGEND.map((s) => h('span', { class: 'item' }, square(s, s.replaceAll('_', ' ')), s.replaceAll('_', ' '))));
}

document.addEventListener('visibilitychange', () => { if (!document.hidden) refreshNow(); });
window.addEventListener('hashchange', onRoute);
document.addEventListener('DOMContentLoaded', async () => {
  drawLegend();
  $('refresh').addEventListener('click', () => refreshNow());
  await loadMode();
  onRoute();
});
