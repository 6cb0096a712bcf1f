// The agent's local dashboard: plain browser JavaScript, no build step. It reads GET /v1/summary and
// GET /v1/series (the agent's in-memory history) and follows GET /v1/events/stream. With an API token
// set, the token is asked for once and kept in this tab's sessionStorage (or passed as #token=...).
/* global uPlot */

const REFRESH_MS = 5000;
const EVENTS_KEPT = 200;
const COLORS = ['#2f7ed8', '#1b873f', '#d98c00', '#c62828', '#8e44ad', '#16a2b8', '#7f8c8d', '#e84393'];
const STATUS_COLORS = { '1xx': '#7f8c8d', '2xx': '#1b873f', '3xx': '#2f7ed8', '4xx': '#d98c00', '5xx': '#c62828' };

const state = { token: '', instance: '', summary: null, plots: new Map(), lastEventId: 0, streamAbort: null };

function byId(id) {
  return document.getElementById(id);
}

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return node;
}

function readToken() {
  const m = /(?:^#|&)token=([^&]+)/.exec(location.hash);
  if (m) {
    sessionStorage.setItem('agent-token', decodeURIComponent(m[1]));
    history.replaceState(null, '', location.pathname);
  }
  return sessionStorage.getItem('agent-token') || '';
}

class Unauthorized extends Error {}

async function api(path, init) {
  const headers = state.token ? { Authorization: `Bearer ${state.token}` } : {};
  const res = await fetch(path, { ...init, headers: { ...headers, ...init?.headers } });
  if (res.status === 401) throw new Unauthorized('the API needs a token');
  return res;
}

async function getJson(path) {
  const res = await api(path);
  if (!res.ok) throw new Error(`${path}: ${res.status} ${(await res.text()).slice(0, 200)}`);
  return res.json();
}

function showError(err) {
  if (err instanceof Unauthorized) {
    byId('login').hidden = false;
    byId('error').hidden = true;
    return;
  }
  byId('error').hidden = !err;
  byId('error').textContent = err ? `error: ${err.message}` : '';
}

function duration(seconds) {
  const d = Math.floor(seconds / 86400);
  const h = Math.floor((seconds % 86400) / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  return d ? `${d}d ${h}h` : h ? `${h}h ${m}m` : `${m}m ${seconds % 60}s`;
}

function renderSummary(s) {
  state.summary = s;
  byId('agent').textContent =
    `${s.agent.hostname} · agent ${s.agent.version} · ${s.agent.state} · up ${duration(s.agent.uptime_seconds)}`;
  const select = byId('instance');
  const ids = s.nginx.map((i) => i.id);
  if (!ids.includes(state.instance)) state.instance = ids[0] || '';
  const current = [...select.options].map((o) => o.value).join(',');
  if (current !== ids.join(',')) {
    select.replaceChildren(
      ...s.nginx.map((i) => el('option', { value: i.id }, `${i.conf_path || i.id} (${i.id.slice(0, 8)})`)),
    );
  }
  select.value = state.instance;
  const inst = s.nginx.find((i) => i.id === state.instance);
  byId('instance-line').textContent = inst
    ? `${inst.up === false ? 'DOWN' : inst.up ? 'up' : '?'} · ${inst.version || ''} · ${inst.health} · ` +
      `${inst.requests_per_second ?? '-'} req/s · p95 ${inst.request_time_p95_seconds === null ? '-' : `${(inst.request_time_p95_seconds * 1000).toFixed(1)} ms`}`
    : 'no nginx instance known yet';
  renderConfig(inst);
  renderTopUris(inst);
  const tbody = byId('plugins').tBodies[0];
  tbody.replaceChildren(
    ...s.plugins.map((p) =>
      el(
        'tr',
        {},
        el('td', {}, p.name),
        el('td', { class: `state-${p.state}` }, p.state),
        el('td', {}, p.reason || ''),
      ),
    ),
  );
  byId('updated').textContent = `updated ${new Date().toLocaleTimeString()}`;
}

function renderTopUris(inst) {
  const top = inst?.top_uris;
  byId('top-uris-line').textContent = !inst
    ? ''
    : top
      ? `last ${top.window_seconds} s · ${top.requests} requests`
      : inst.status_mix
        ? '(the access log format has no $request, $request_uri or $uri)'
        : '(no access log read)';
  byId('top-uris').tBodies[0].replaceChildren(
    ...(top?.uris ?? []).map((u) =>
      el(
        'tr',
        {},
        el('td', { class: 'mono' }, u.uri),
        el('td', {}, String(u.requests)),
        el('td', {}, `${(u.share * 100).toFixed(1)}%`),
        el('td', u.errors_5xx > 0 ? { class: 'sev-error' } : {}, String(u.errors_5xx)),
      ),
    ),
  );
}

function renderConfig(inst) {
  const tbody = byId('findings').tBodies[0];
  if (!inst) {
    tbody.replaceChildren();
    byId('files').replaceChildren();
    byId('config-line').textContent = '';
    return;
  }
  const c = inst.config;
  const test = c.last_test ? (c.last_test.ok ? 'nginx -t ok' : 'nginx -t FAILED') : 'nginx -t not run yet';
  byId('config-line').textContent =
    `${inst.conf_path || ''} · version ${(c.version || '-').slice(0, 12)} · parse ${c.status || '-'} · ${test}`;
  const rows = [...c.findings].sort((a, b) =>
    (a.file || '') === (b.file || '') ? (a.line || 0) - (b.line || 0) : (a.file || '') < (b.file || '') ? -1 : 1,
  );
  tbody.replaceChildren(
    ...(rows.length
      ? rows.map((f) =>
          el(
            'tr',
            {},
            el('td', { class: 'mono' }, f.file ? `${f.file}:${f.line ?? ''}` : '-'),
            el('td', { class: `sev-${f.severity}` }, f.severity),
            el('td', {}, f.rule ? `${f.source} (${f.rule})` : f.source),
            el('td', {}, f.message),
          ),
        )
      : [el('tr', {}, el('td', { colspan: '4', class: 'ok' }, 'no findings'))]),
  );
  byId('files').replaceChildren(...c.files.map((f) => el('li', { class: 'mono' }, f)));
}

const MAX_LINES = 6;
const MAX_LABEL = 32;

function seriesLabel(figure, name, attributes) {
  const key = figure.dataset.label;
  const label = key ? attributes[key] || name : name.split('.').pop();
  return label.length > MAX_LABEL ? `…${label.slice(-(MAX_LABEL - 1))}` : label;
}

function humanBytes(x) {
  const units = ['B', 'KB', 'MB', 'GB'];
  let i = 0;
  while (Math.abs(x) >= 1024 && i < units.length - 1) {
    x /= 1024;
    i++;
  }
  return `${+x.toFixed(1)} ${units[i]}/s`;
}

function lastValue(values) {
  for (let i = values.length - 1; i >= 0; i--) if (values[i] !== null) return values[i];
  return Number.NEGATIVE_INFINITY;
}

function colorFor(label, i) {
  return STATUS_COLORS[label] || COLORS[i % COLORS.length];
}

async function renderChart(figure) {
  const names = figure.dataset.series.split(',');
  const perInstance = figure.hasAttribute('data-per-instance');
  if (perInstance && !state.instance) return;
  const query = (name) =>
    `/v1/series?name=${encodeURIComponent(name)}&since=1h${perInstance ? `&instance=${encodeURIComponent(state.instance)}` : ''}`;
  const answers = await Promise.all(names.map((n) => getJson(query(n))));
  // Every answer shares the history's sample times.
  const times = answers[0].times;
  const lines = [];
  answers.forEach((a, ai) => {
    for (const s of a.series) lines.push({ label: seriesLabel(figure, names[ai], s.attributes), values: s.values });
  });
  // Many lines (one per mount point, say): keep the highest now.
  if (lines.length > MAX_LINES) {
    lines.sort((x, y) => lastValue(y.values) - lastValue(x.values));
    lines.length = MAX_LINES;
  }
  lines.sort((x, y) => (x.label < y.label ? -1 : 1));
  const percent = figure.hasAttribute('data-percent');
  const scale = percent ? 100 : Number(figure.dataset.scale || 1);
  const data = [times.map((t) => t / 1000), ...lines.map((l) => l.values.map((v) => (v === null ? null : v * scale)))];
  const points = lines.reduce((n, l) => n + l.values.filter((v) => v !== null).length, 0);
  figure.dataset.points = String(points);
  const signature = `${state.instance}|${lines.map((l) => l.label).join(',')}`;
  let entry = state.plots.get(figure);
  if (entry && entry.signature !== signature) {
    entry.plot.destroy();
    entry = undefined;
  }
  figure.querySelector('.empty')?.remove();
  if (!lines.length) {
    figure.append(el('div', { class: 'empty' }, 'no data yet'));
    state.plots.delete(figure);
    return;
  }
  if (!entry) {
    const unit = percent ? '%' : figure.dataset.scale ? ` ${figure.dataset.unit}` : '';
    const bytes = figure.dataset.unit === 'B/s';
    const width = Math.max(300, figure.clientWidth - 16);
    const opts = {
      width,
      height: 180,
      legend: { live: true },
      scales: { x: { time: true } },
      axes: [
        {},
        {
          size: bytes ? 76 : 60,
          values: (_plot, ticks) => ticks.map((v) => (bytes ? humanBytes(v) : `${+v.toFixed(3)}${unit}`)),
        },
      ],
      series: [
        {},
        ...lines.map((l, i) => ({ label: l.label, stroke: colorFor(l.label, i), width: 1.5, spanGaps: false })),
      ],
    };
    entry = { plot: new uPlot(opts, data, figure), signature };
    state.plots.set(figure, entry);
  } else {
    entry.plot.setData(data);
  }
}

async function refresh() {
  try {
    renderSummary(await getJson('/v1/summary'));
    await Promise.all([...document.querySelectorAll('figure.chart')].map(renderChart));
    showError(null);
    document.body.dataset.loaded = 'true';
  } catch (err) {
    showError(err);
  }
}

function eventLine(e) {
  const time = new Date(e.time).toLocaleTimeString();
  const li = el(
    'li',
    { class: `sev-${e.severity}`, 'data-id': String(e.id), 'data-kind': e.kind },
    `${time} ${e.severity.toUpperCase()} ${e.kind} ${e.state ? `[${e.state}] ` : ''}${e.summary}`,
  );
  li.title = JSON.stringify(e.attributes || {});
  return li;
}

function addEvents(events) {
  const list = byId('events');
  for (const e of events) {
    if (e.id <= state.lastEventId) continue;
    state.lastEventId = e.id;
    list.prepend(eventLine(e));
  }
  while (list.children.length > EVENTS_KEPT) list.lastElementChild.remove();
}

async function loadEvents() {
  const res = await api('/v1/events?limit=50');
  if (res.status === 404) {
    byId('events-note').textContent = 'this agent has no events pipeline (GET /v1/events)';
    return false;
  }
  if (!res.ok) throw new Error(`/v1/events: ${res.status}`);
  const body = await res.json();
  addEvents(Array.isArray(body) ? body : body.events || []);
  return true;
}

// EventSource cannot send the Authorization header, so the stream is read with fetch.
async function followEvents() {
  for (;;) {
    try {
      state.streamAbort = new AbortController();
      const headers = { Accept: 'text/event-stream' };
      if (state.lastEventId) headers['Last-Event-ID'] = String(state.lastEventId);
      const res = await api('/v1/events/stream', { headers, signal: state.streamAbort.signal });
      if (res.status === 404) return pollEvents();
      if (!res.ok || !res.body) throw new Error(`/v1/events/stream: ${res.status}`);
      byId('events-note').textContent = 'live';
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let end;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const data = block
            .split('\n')
            .filter((l) => l.startsWith('data:'))
            .map((l) => l.slice(5).trimStart())
            .join('\n');
          if (!data) continue;
          try {
            const e = JSON.parse(data);
            if (e && typeof e.id === 'number') addEvents([e]);
            else if (e?.reason) byId('events-note').textContent = `stream closed: ${e.reason}`;
          } catch {
            // a non-JSON data line (a notice from the agent): shown as is
            byId('events-note').textContent = data;
          }
        }
      }
      byId('events-note').textContent = 'stream ended; reconnecting';
    } catch (err) {
      if (err instanceof Unauthorized) return showError(err);
      byId('events-note').textContent = `stream: ${err.message}; reconnecting`;
    }
    await new Promise((r) => setTimeout(r, 3000));
  }
}

// An agent without the stream: ask for what is new every 2 s.
async function pollEvents() {
  byId('events-note').textContent = 'polling';
  for (;;) {
    await new Promise((r) => setTimeout(r, 2000));
    try {
      const body = await getJson(`/v1/events?since=${state.lastEventId}&limit=100`);
      addEvents(body.events || []);
    } catch (err) {
      if (err instanceof Unauthorized) return showError(err);
      byId('events-note').textContent = `events: ${err.message}`;
    }
  }
}

async function startEvents() {
  try {
    const summary = await getJson('/v1/summary');
    if (!summary.events_available) {
      byId('events-note').textContent = 'this agent has no events pipeline (GET /v1/events)';
      return;
    }
    if (await loadEvents()) void followEvents();
  } catch (err) {
    showError(err);
  }
}

function main() {
  state.token = readToken();
  byId('login').addEventListener('submit', (ev) => {
    ev.preventDefault();
    state.token = byId('token').value.trim();
    sessionStorage.setItem('agent-token', state.token);
    byId('login').hidden = true;
    void refresh();
    void startEvents();
  });
  byId('instance').addEventListener('change', (ev) => {
    state.instance = ev.target.value;
    void refresh();
  });
  void refresh();
  void startEvents();
  setInterval(refresh, REFRESH_MS);
}

main();
