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

// A station that is offline (or silent past the link timeout) keeps its last values on the
// tile, marked as stale with their age: never shown as if they were live.
function tile(s) {
  const link = s.link_lost ? 'lost' : s.status;
  const away = s.link_lost || s.status !== 'online';
  const age = s.silent_s == null ? 'not heard from since the hub started' : `last heard ${fmt(s.silent_s)} ago`;
  const timers = s.timers || {};
  const hold = timers.hold_s != null ? `${fmt(timers.hold_s)} / ${fmt(timers.max_hold_s)}` : '–';
  const value = away ? 'big stale' : 'big';
  return el('article', { class: 'tile', 'data-station': s.station, 'data-priority': s.highest_priority || 'none', 'data-link': link, 'data-stale': String(away) },
    el('h3', {}, el('span', { text: s.station }), priorityBadge(s.highest_priority)),
    away ? el('div', { class: 'stale-note', text: `OFFLINE — ${age}. Last values, from then:` }) : '',
    el('div', { class: 'row' },
      el('span', { class: value, text: s.theta_deg == null ? 'θ –' : `θ ${s.theta_deg.toFixed(0)}°` }),
      el('span', { class: value, text: s.hr_bpm == null ? 'HR –' : `HR ${s.hr_bpm}` })),
    el('div', { class: away ? 'stale' : '', text: `${s.phase || 'no data'} · hold ${hold}${s.user ? ` · ${s.user}` : ''}` }),
    el('div', { text: s.link_lost ? `LINK LOST (${s.status})` : `link ${s.status}`, class: 'link' }),
    el('div', { class: 'sensors', text: away ? 'sensors: unknown while the station is offline' : (s.sensors || []).map((x) => `${x.name}: ${x.link || (x.connected ? 'connected' : 'no link')}${x.battery_percent != null ? ` ${x.battery_percent} %` : ''}`).join(' · ') }),
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

// Nobody on the escalation list: say so, loudest while a HIGH alarm is listed, so an empty
// list is never read as "nothing to escalate".
function renderEscalations(chases, people, alarms) {
  const high = alarms.some((a) => a.priority === 'high');
  const none = $('no-escalation');
  none.hidden = people > 0;
  none.dataset.high = String(high);
  none.replaceChildren(
    el('strong', { text: high ? 'No one to escalate to: HIGH alarms reach no phone, only this page. ' : 'No one to escalate to: alarms would reach no phone, only this page. ' }),
    'An admin adds a therapist to the list with ', el('code', { text: 'spotter hub person add NAME --role therapist --rank 1 --push-url URL' }), '.');
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

function clock(at) {
  const when = at ? new Date(at) : null;
  if (!when || Number.isNaN(when.getTime())) return el('time', { text: '--:--:--' });
  return el('time', { datetime: at, title: when.toLocaleString(), text: when.toLocaleTimeString() });
}

// One line of the event log, with its time. Live events go on top; pages from the store
// (after a reload, and older ones on demand) below; an event already shown is skipped.
function logEvent(data, older = false) {
  let key = null;
  if (data.kind === 'alarm') key = `${data.station}:${data.seq}`;
  else if (data.kind === 'hub_alarm' && data.row != null) key = `hub:${data.row}`;
  if (key && seen.has(key)) return;
  if (key) seen.add(key);
  const text = `${data.station} · ${data.kind === 'reply' ? `command ${data.cmd}: ${data.ok ? 'done' : data.error}` : `${data.priority} ${data.event} ${data.id}: ${data.message}`}`;
  const item = el('li', { 'data-key': key || '', 'data-kind': data.kind }, clock(data.at || data.received_at), ` ${text}`);
  if (older) $('log').append(item);
  else $('log').prepend(item);
  if (!older && (data.event === 'raised' || data.event === 'escalated')) $('announce').textContent = text;
}

const LOG_PAGE = Number(new URLSearchParams(location.search).get('log_page')) || 50;
let logOffset = 0;

async function olderEvents() {
  try {
    const page = await api(`/hub/api/log?offset=${logOffset}&limit=${LOG_PAGE}`);
    logOffset += page.events.length;
    for (const row of page.events) logEvent({ ...row, row: row.kind === 'hub_alarm' ? row.row : undefined }, true);
    $('log-more').hidden = !page.more;
    $('log-empty').hidden = $('log').children.length > 0;
  } catch (error) {
    $('log-empty').hidden = false;
    $('log-empty').textContent = `The event log could not be loaded: ${error.message}`;
  }
}

async function act(path, json = {}) {
  const out = $('action-result');
  try {
    await api(path, { method: 'POST', json });
    out.textContent = 'Sent to the station; its answer appears in the event log.';
    out.dataset.ok = 'true';
  } catch (error) {
    out.textContent = `Not done: ${error.message}`;
    out.dataset.ok = 'false';
  }
}

function stream() {
  const source = new EventSource('/hub/api/stream');
  source.addEventListener('snapshot', (e) => {
    lastBeat = Date.now();
    const snap = JSON.parse(e.data);
    renderTiles(snap.stations, snap.sites);
    renderAlarms(snap.alarms);
    renderEscalations(snap.escalations, snap.escalation_people ?? 0, snap.alarms);
    renderProblems(snap.problems);
  });
  source.addEventListener('event', (e) => {
    lastBeat = Date.now();
    logEvent(JSON.parse(e.data));
    $('log-empty').hidden = true;
  });
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
  await olderEvents();
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
$('log-more').addEventListener('click', olderEvents);
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
