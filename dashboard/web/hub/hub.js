// The clinic's central page: every station as a tile coloured by its highest alarm (with
// text and icon, never colour alone), the merged alarm list with acknowledge and silence,
// escalations to accept or reject, the event log, and review of an uploaded trace.
import './hub.css';

const ICON = { high: '!!!', medium: '!!', low: 'i' };
let csrf = '';
let me = null;
const seen = new Set();
let lastBeat = Date.now();

const $ = (id) => document.getElementById(id);
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'text') node.textContent = v;
    else if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  for (const child of children) node.append(child);
  return node;
}

async function api(path, options = {}) {
  const headers = { ...(options.headers || {}) };
  if (options.method && options.method !== 'GET') headers['X-CSRF-Token'] = csrf;
  if (options.json !== undefined) {
    headers['Content-Type'] = 'application/json';
    options.body = JSON.stringify(options.json);
  }
  const response = await fetch(path, { ...options, headers, credentials: 'same-origin' });
  const body = response.headers.get('content-type')?.includes('json') ? await response.json() : await response.text();
  if (!response.ok) throw new Error(body.detail || body || response.statusText);
  return body;
}

function fmt(seconds) {
  if (seconds == null) return '–';
  const s = Math.max(0, Math.round(seconds));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}

function priorityBadge(priority) {
  if (!priority) return el('span', { class: 'badge ok', text: '✓ OK' });
  return el('span', { class: `badge ${priority}`, text: `${ICON[priority]} ${priority.toUpperCase()}` });
}

// A clinic group's central hub: the stations grouped by site, each site headed by the state of
// its bridge (down: its stations are unseen here, whatever they show).
function siteHeading(site, sites) {
  const up = (sites[site] || {}).bridge_up;
  return el('h3', { class: 'site', 'data-site': site, 'data-bridge': up ? 'up' : 'down' },
    el('span', { text: `Site ${site}` }),
    el('span', { class: 'bridge', text: up ? 'bridge up' : '⚠ BRIDGE DOWN: its stations are not seen' }));
}

function renderTiles(stations, sites = {}) {
  const tiles = $('tiles');
  const grouped = [...stations].sort((a, b) => (a.site || '').localeCompare(b.site || '') || a.station.localeCompare(b.station));
  tiles.replaceChildren(...grouped.flatMap((s, i) => {
    const heading = s.site && s.site !== (grouped[i - 1] || {}).site ? [siteHeading(s.site, sites)] : [];
    return [...heading, tile(s)];
  }));
}

function tile(s) {
  const link = s.link_lost ? 'lost' : s.status;
  const timers = s.timers || {};
  const hold = timers.hold_s != null ? `${fmt(timers.hold_s)} / ${fmt(timers.max_hold_s)}` : '–';
  return el('article', { class: 'tile', 'data-station': s.station, 'data-priority': s.highest_priority || 'none', 'data-link': link },
    el('h3', {}, el('span', { text: s.station }), priorityBadge(s.highest_priority)),
    el('div', { class: 'row' },
      el('span', { class: 'big', text: s.theta_deg == null ? 'θ –' : `θ ${s.theta_deg.toFixed(0)}°` }),
      el('span', { class: 'big', text: s.hr_bpm == null ? 'HR –' : `HR ${s.hr_bpm}` })),
    el('div', { text: `${s.phase || 'no data'} · hold ${hold}${s.user ? ` · ${s.user}` : ''}` }),
    el('div', { text: s.link_lost ? `LINK LOST (${s.status})` : `link ${s.status}`, class: 'link' }),
    el('div', { class: 'sensors', text: (s.sensors || []).map((x) => `${x.name}: ${x.link || (x.connected ? 'connected' : 'no link')}${x.battery_percent != null ? ` ${x.battery_percent} %` : ''}`).join(' · ') }),
    s.site_down ? el('div', { class: 'link', text: `site ${s.site}'s bridge is down` }) : '');
}

function renderAlarms(alarms) {
  $('no-alarms').hidden = alarms.length > 0;
  $('alarm-rows').replaceChildren(...alarms.map((a) => {
    const actions = el('td');
    if (me && me.role !== 'viewer' && !a.acknowledged) {
      actions.append(el('button', { type: 'button', 'data-action': 'ack', text: 'Acknowledge', onclick: () => act(`/hub/api/stations/${a.station}/alarms/${a.id}/acknowledge`) }));
    }
    if (me && me.role !== 'viewer' && a.source === 'station') {
      actions.append(' ', el('button', { type: 'button', text: 'Silence', onclick: () => act(`/hub/api/stations/${a.station}/silence`, { alarm: a.id }) }));
    }
    return el('tr', { 'data-alarm': `${a.station}:${a.id}`, 'data-priority': a.priority },
      el('td', {}, priorityBadge(a.priority)), el('td', { text: a.station }), el('td', { text: a.id }),
      el('td', { text: a.message || '' }), el('td', { text: a.acknowledged ? 'acknowledged' : a.state || '' }), actions);
  }));
}

function renderEscalations(chases) {
  $('escalations').replaceChildren(...chases.map((c) => el('li', { 'data-escalation': `${c.station}:${c.alarm}` },
    `${c.priority.toUpperCase()} ${c.station} ${c.alarm}: ${c.message} `,
    c.accepted_by ? el('strong', { text: `accepted by ${c.accepted_by}` }) : el('span', {},
      el('button', { type: 'button', text: 'Accept', onclick: () => act(`/hub/api/escalations/${c.station}/${c.alarm}/accept`) }), ' ',
      el('button', { type: 'button', text: 'Reject', onclick: () => act(`/hub/api/escalations/${c.station}/${c.alarm}/reject`) })))));
}

// The hub's own problems (a crashed task, restarted; a station sending malformed messages or
// flooding): what the hub cannot fix itself, shown until it is gone.
function renderProblems(problems) {
  const entries = Object.entries(problems || {});
  $('problems-section').hidden = entries.length === 0;
  $('problems').replaceChildren(...entries.map(([key, text]) => el('li', { 'data-problem': key, text })));
}

function logEvent(data) {
  const key = data.kind === 'alarm' ? `${data.station}:${data.seq}` : null;
  if (key && seen.has(key)) return;
  if (key) seen.add(key);
  const text = `${data.station} · ${data.kind === 'reply' ? `command ${data.cmd}: ${data.ok ? 'done' : data.error}` : `${data.priority} ${data.event} ${data.id}: ${data.message}`}`;
  $('log').prepend(el('li', { 'data-key': key || '', 'data-kind': data.kind, text }));
  if (data.event === 'raised' || data.event === 'escalated') $('announce').textContent = text;
}

async function act(path, json = {}) {
  try { await api(path, { method: 'POST', json }); } catch (error) { alert(error.message); }
}

function stream() {
  const source = new EventSource('/hub/api/stream');
  source.addEventListener('snapshot', (e) => {
    lastBeat = Date.now();
    const snap = JSON.parse(e.data);
    renderTiles(snap.stations, snap.sites);
    renderAlarms(snap.alarms);
    renderEscalations(snap.escalations);
    renderProblems(snap.problems);
  });
  source.addEventListener('event', (e) => { lastBeat = Date.now(); logEvent(JSON.parse(e.data)); });
  setInterval(() => {
    const lost = Date.now() - lastBeat > 3000;
    $('lost').hidden = !lost;
    document.body.dataset.link = lost ? 'lost' : 'live';
  }, 500);
}

async function start() {
  try {
    me = await api('/hub/api/me');
  } catch {
    $('login').hidden = false;
    return;
  }
  csrf = me.csrf;
  $('login').hidden = true;
  $('main').hidden = false;
  $('who').textContent = `${me.name} (${me.role})`;
  $('hub-name').textContent = me.hub;
  $('audit-link').hidden = me.role !== 'admin';
  $('logout').hidden = false;
  stream();
}

$('login').addEventListener('submit', async (event) => {
  event.preventDefault();
  const form = new FormData(event.target);
  try {
    await api('/hub/api/login', { method: 'POST', json: { name: form.get('name'), password: form.get('password') } });
    await start();
  } catch (error) {
    $('login-error').textContent = error.message;
  }
});
$('logout').addEventListener('click', async () => { await act('/hub/api/logout'); location.reload(); });
$('review').addEventListener('submit', async (event) => {
  event.preventDefault();
  const form = new FormData(event.target);
  const file = form.get('trace');
  try {
    const result = await api(`/hub/api/review?profile=${encodeURIComponent(form.get('profile'))}`, { method: 'POST', body: await file.text(), headers: { 'Content-Type': 'application/x-ndjson' } });
    $('review-out').replaceChildren(
      el('p', { text: `${result.station}: ${result.events.length} alarm events, ${result.trend.t.length} s of data` }),
      el('ol', {}, ...result.events.map((e) => el('li', { text: `${e.t.toFixed(1)} s · ${e.priority} ${e.event} ${e.id}: ${e.message}` }))));
  } catch (error) {
    $('review-out').textContent = error.message;
  }
});
start();
