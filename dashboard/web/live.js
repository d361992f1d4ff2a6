// The live view: theta and its gauge, the inverted countdown, rest and totals, heart rate and
// the two 2-minute charts, sensors, the listed alarms with their buttons, the event log.

import { post } from './api.js';
import { liveChart } from './charts.js';
import { $, fill, h, painPicker, priorityIcon, toast } from './dom.js';
import { PRIORITY_WORD, Series, clock, num, soundingPriority } from './logic.js';

const WINDOW_S = 120;
const EVENT_WORD = { raised: 'raised', escalated: 'raised to', acknowledged: 'acknowledged', silenced: 'sound paused', cleared: 'ended', resolved: 'off the list' };

/** An alarm event in words: the title and message the station wrote for a person. */
function eventText(event) {
  const w = event.words;
  if (!w) return event.message;
  return [w.title, w.message, w.action].filter(Boolean).join(' — ');
}
const LOG_MAX = 1000;
const FLIP_KEY = 'spotter.flip';

export class LiveView {
  constructor({ sound, onSessionEnded }) {
    this.sound = sound;
    this.onSessionEnded = onSessionEnded;
    this.series = new Series(WINDOW_S, ['theta', 'hr']);
    this.cards = new Map();
    this.state = null;
    this.painAfter = null;
    this.hrChart = liveChart($('#hr-chart'), {
      label: 'HR',
      unit: 'bpm',
      color: '#c53030',
      window_s: WINDOW_S,
      range: (u, min, max) => [Math.min(40, min ?? 40), Math.max(140, (max ?? 140) + 5)],
    });
    this.thetaChart = liveChart($('#theta-chart'), {
      label: 'θ',
      unit: '°',
      color: '#2b6cb0',
      window_s: WINDOW_S,
      range: (u, min, max) => [Math.min(-10, min ?? -10), Math.max(40, (max ?? 40) + 5)],
    });
    this.wire();
  }

  wire() {
    $('#flip').addEventListener('click', () => this.flip(!document.body.classList.contains('flipped')));
    this.flip(localStorage.getItem(FLIP_KEY) === '1');
    $('#stop').addEventListener('click', () => this.stop());
    $('#silence-all').addEventListener('click', () => this.silence(null));
    $('#end-session').addEventListener('click', () => {
      $('#end-panel').hidden = false;
      $('#end-session').hidden = true;
      fill($('#pain-after'), painPicker('Pain after the session', (n) => (this.painAfter = n)));
    });
    $('#end-cancel').addEventListener('click', () => this.closeEnd());
    $('#end-confirm').addEventListener('click', () => this.endSession());
    $('#alarm-list').addEventListener('click', (e) => {
      const button = e.target.closest('button[data-act]');
      if (!button) return;
      const id = button.closest('[data-alarm]').dataset.alarm;
      if (button.dataset.act === 'ack') this.acknowledge(id, button);
      else this.silence(id, button);
    });
  }

  flip(on) {
    document.body.classList.toggle('flipped', on);
    $('#flip').setAttribute('aria-pressed', on ? 'true' : 'false');
    localStorage.setItem(FLIP_KEY, on ? '1' : '0');
  }

  // -- commands ---------------------------------------------------------------------------

  async stop() {
    this.sound.unlock();
    try {
      await post('/api/symptom');
      toast('STOP sent: the alarm is raised and your spotter is called.', 'alarm');
    } catch (err) {
      toast(`STOP could not be sent: ${err.message}. Call for help.`, 'error');
    }
  }

  async acknowledge(id, button) {
    this.sound.unlock();
    if (button) button.disabled = true;
    try {
      await post(`/api/alarms/${encodeURIComponent(id)}/acknowledge`, {});
      toast(`Acknowledged: ${this.titleOf(id)}`);
    } catch (err) {
      toast(`Not acknowledged: ${err.message}`, 'error');
    } finally {
      if (button) button.disabled = false;
    }
  }

  async silence(id, button) {
    this.sound.unlock();
    if (button) button.disabled = true;
    try {
      await post('/api/alarms/silence', id === null ? {} : { alarm: id });
      toast(id === null ? 'All alarm sound paused for 2 minutes' : `Sound paused for 2 minutes: ${this.titleOf(id)}`);
    } catch (err) {
      toast(`Not silenced: ${err.message}`, 'error');
    } finally {
      if (button) button.disabled = false;
    }
  }

  titleOf(id) {
    const index = (this.state?.alarms || []).findIndex((a) => a.id === id);
    return index >= 0 ? this.state.screen.alarms[index].title : 'the alarm';
  }

  closeEnd() {
    $('#end-panel').hidden = true;
    this.painAfter = null;
    this.render(this.state);
  }

  async endSession() {
    const button = $('#end-confirm');
    button.disabled = true;
    try {
      const body = this.painAfter === null ? {} : { pain_after: this.painAfter };
      const result = await post('/api/session/end', body);
      this.closeEnd();
      toast('Session ending: it ends once you are upright.');
      this.onSessionEnded(result.session);
    } catch (err) {
      toast(`The session did not end: ${err.message}`, 'error');
    } finally {
      button.disabled = false;
    }
  }

  // -- the stream -------------------------------------------------------------------------

  onAlarm(event, replayed = false) {
    const log = $('#event-log');
    const item = h(
      'li',
      {
        class: `ev p-${event.priority}`,
        dataset: { seq: String(event.seq), id: event.id, event: event.event, priority: event.priority, at: event.at || '', atMs: String(Date.now()) },
      },
      h('span', { class: 'ev-t' }, (event.at || '').slice(11, 19)),
      ' ',
      priorityIcon(event.priority),
      h('strong', {}, ` ${PRIORITY_WORD[event.priority] || event.priority} `),
      h('span', { class: 'ev-kind' }, EVENT_WORD[event.event] || event.event),
      ' ',
      h('span', { class: 'ev-msg' }, eventText(event)),
    );
    log.append(item);
    while (log.children.length > LOG_MAX) log.firstElementChild.remove();
    $('#log-count').textContent = String(log.children.length);
    if (!replayed && (event.event === 'raised' || event.event === 'escalated')) {
      $('#announce').textContent = `${PRIORITY_WORD[event.priority]} priority alarm ${event.event}: ${eventText(event)}`;
    }
  }

  onState(state) {
    this.state = state;
    this.series.push(state.t, { theta: state.theta_deg, hr: state.hr_bpm });
    this.render(state);
  }

  // -- rendering --------------------------------------------------------------------------

  render(state) {
    if (!state) return;
    // Every word and figure below comes from the station's one read model (state.screen):
    // the cards, the gauge, the timer and the alarm list cannot disagree.
    const view = state.screen;
    const limit = state.profile.max_angle_deg;
    const theta = view.theta;
    $('#theta').textContent = num(theta.value_deg ?? null, 1);
    $('#theta').classList.toggle('stale', theta.value_deg === null);
    $('#theta-limit').textContent = num(limit);
    $('#rate').textContent = num(state.rate_dps, 1);
    $('#phase').textContent = theta.label;
    $('#phase').dataset.phase = state.phase;
    this.gauge(theta.gauge_deg, limit);

    const timers = state.timers;
    const hold = view.hold;
    $('#hold').textContent = hold.text;
    $('#hold').classList.toggle('over', hold.over);
    $('#hold').classList.toggle('long', hold.text.length > 5);
    $('#timer-card').classList.toggle('idle', !hold.inverted);
    $('#hold-label').textContent = hold.label;
    $('#rest').textContent = clock(timers.rest_s);
    $('#rest-min').textContent = `min ${clock(timers.min_rest_s)}`;
    $('#session-total').textContent = clock(timers.session_inverted_s);
    $('#session-max').textContent = `of ${clock(timers.max_session_inverted_s)}`;
    $('#day-total').textContent = clock(timers.day_inverted_s);
    $('#day-max').textContent = `of ${clock(timers.max_day_inverted_s)}`;

    $('#hr').textContent = num(state.hr_bpm);
    this.hrChart.update(this.series.data('hr'));
    this.thetaChart.update(this.series.data('theta'), limit);

    this.sensors(view.sensors, state.sensors);
    this.alarms(state.alarms, view.alarms);
    this.session(state);
    const problems = Object.entries(state.problems || {});
    $('#problems').hidden = problems.length === 0;
    fill($('#problems'), problems.map(([part, text]) => h('div', {}, `Station problem (${part}): ${text}`)));

    const sounding = soundingPriority(state.alarms);
    this.sound.set(sounding);
    document.body.dataset.highest = state.highest_priority || 'none';
    document.body.dataset.alarms = String(state.alarms.length);
  }

  gauge(theta, limit) {
    const point = (deg, r = 80) => {
      const a = ((Math.max(-90, Math.min(90, deg)) - 90) * Math.PI) / 180;
      return [100 + r * Math.cos(a), 100 + r * Math.sin(a)];
    };
    const [zx, zy] = point(limit);
    $('#gauge-zone').setAttribute('d', `M ${zx.toFixed(1)} ${zy.toFixed(1)} A 80 80 0 0 1 180 100`);
    const needle = $('#gauge-needle');
    if (theta === null || theta === undefined) {
      needle.setAttribute('visibility', 'hidden');
      return;
    }
    const [nx, ny] = point(theta, 72);
    needle.setAttribute('visibility', 'visible');
    needle.setAttribute('x2', nx.toFixed(1));
    needle.setAttribute('y2', ny.toFixed(1));
    needle.classList.toggle('over', theta > limit);
  }

  sensors(views, sensors) {
    const raw = new Map(sensors.map((s) => [s.name, s]));
    fill(
      $('#sensors'),
      views.map((v) => {
        const s = raw.get(v.name) || {};
        return h(
          'li',
          { class: `sensor ${v.ok ? 'up' : 'down'}`, dataset: { sensor: v.name } },
          h('span', { class: 'sensor-name' }, v.title),
          h('span', { class: 'sensor-link' }, h('span', { class: 'dot', 'aria-hidden': 'true' }), v.status),
          h('span', { class: 'sensor-battery' }, battery(s.battery_percent)),
          h('span', { class: 'sensor-signal' }, signal(s.rssi_dbm)),
          s.malformed ? h('span', { class: 'sensor-bad' }, `${s.malformed} unreadable messages`) : null,
        );
      }),
    );
  }

  alarms(alarms, words) {
    const list = $('#alarm-list');
    const seen = new Set();
    alarms.forEach((alarm, index) => {
      seen.add(alarm.id);
      let card = this.cards.get(alarm.id);
      if (!card) {
        card = alarmCard(alarm);
        this.cards.set(alarm.id, card);
      }
      updateCard(card, alarm, words[index]);
      if (list.children[index] !== card) list.insertBefore(card, list.children[index] || null);
    });
    for (const [id, card] of this.cards) {
      if (!seen.has(id)) {
        card.remove();
        this.cards.delete(id);
      }
    }
    $('#no-alarms').hidden = alarms.length > 0;
    $('#silence-all').hidden = !alarms.some((a) => a.sounding);
  }

  session(state) {
    const inSession = state.timers.session_inverted_s !== null;
    const ending = !$('#end-panel').hidden;
    $('#end-session').hidden = !inSession || ending;
    $('#start-link').hidden = inSession;
    $('#session-line').textContent = state.screen.session;
  }
}

function battery(percent) {
  if (percent === null || percent === undefined) return 'battery –';
  const low = percent <= 15;
  return h('span', { class: low ? 'low' : '' }, h('span', { class: 'batt', style: `--level:${percent}%`, 'aria-hidden': 'true' }), ` ${percent} %${low ? ' LOW' : ''}`);
}

function signal(rssi) {
  if (rssi === null || rssi === undefined) return 'signal –';
  const bars = rssi >= -60 ? 4 : rssi >= -70 ? 3 : rssi >= -80 ? 2 : 1;
  const el = h('span', { class: 'bars', 'aria-hidden': 'true' });
  for (let i = 1; i <= 4; i += 1) el.append(h('i', { class: i <= bars ? 'on' : '' }));
  return h('span', {}, el, ` ${rssi} dBm`);
}

function alarmCard(alarm) {
  const card = h(
    'li',
    { class: 'alarm', dataset: { alarm: alarm.id, shownAt: String(Date.now()) }, tabindex: '-1' },
    h('div', { class: 'alarm-head' }, h('span', { class: 'alarm-icon' }), h('strong', { class: 'alarm-title' }), h('span', { class: 'alarm-word' })),
    h('p', { class: 'alarm-msg' }),
    h('p', { class: 'alarm-action' }),
    h(
      'div',
      { class: 'alarm-actions writer' },
      h('button', { type: 'button', class: 'btn ack', dataset: { act: 'ack' } }, '✓ Acknowledge'),
      h('button', { type: 'button', class: 'btn silence', dataset: { act: 'silence' } }, 'Silence 2 min'),
    ),
    h('details', { class: 'alarm-more' }, h('summary', {}, 'Details'), h('p', { class: 'alarm-detail' })),
  );
  return card;
}

function updateCard(card, alarm, words) {
  if (card.dataset.priority !== alarm.priority) {
    card.dataset.priority = alarm.priority;
    card.className = `alarm p-${alarm.priority}`;
    fill(card.querySelector('.alarm-icon'), priorityIcon(alarm.priority));
    card.querySelector('.alarm-word').textContent = `${PRIORITY_WORD[alarm.priority]} PRIORITY`;
  }
  card.dataset.state = alarm.state;
  card.querySelector('.alarm-title').textContent = words.title;
  card.querySelector('.alarm-msg').textContent = words.message;
  card.querySelector('.alarm-action').textContent = words.action;
  // For clinicians, folded away: the raw id, value and threshold, and the alarm's state.
  const bits = [words.details];
  bits.push(alarm.condition ? 'present' : 'condition ended');
  if (alarm.acknowledged) bits.push('acknowledged');
  if (alarm.silenced_for_s > 0) bits.push(`sound paused ${Math.ceil(alarm.silenced_for_s)} s`);
  else if (alarm.sounding) bits.push('sounding');
  bits.push(`raised ${clock(alarm.raised_s_ago)} ago`);
  card.querySelector('.alarm-detail').textContent = bits.join(' · ');
  card.querySelector('.ack').hidden = alarm.acknowledged;
}
