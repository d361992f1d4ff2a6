// History and progress: the sessions, one session's theta and heart rate with its alarm
// markers, weekly inverted minutes and days, pain before and after, milestones and the plan.

import { get } from './api.js';
import { painChart, sessionChart } from './charts.js';
import { $, fill, h, priorityIcon } from './dom.js';
import { PRIORITY_WORD, clock } from './logic.js';

const shortDate = (day) => new Date(`${day}T12:00:00`).toLocaleDateString(undefined, { month: 'short', day: 'numeric' });
const when = (iso) => (iso ? `${iso.slice(0, 10)} ${iso.slice(11, 16)}` : '–');

export class History {
  constructor() {
    this.root = $('#view-history');
    this.user = '';
  }

  async show() {
    const [users, sessions] = await Promise.all([
      get('/api/users'),
      get(this.user ? `/api/sessions?user=${encodeURIComponent(this.user)}` : '/api/sessions'),
    ]);
    const select = h(
      'select',
      {
        id: 'history-user',
        onchange: (e) => {
          this.user = e.target.value;
          this.show();
        },
      },
      h('option', { value: '' }, 'everyone'),
      users.map((u) => h('option', { value: u.name, selected: u.name === this.user }, u.name)),
    );
    const progress = h('div', { id: 'progress' });
    fill(
      this.root,
      h('div', { class: 'card' }, h('h1', {}, 'History'), h('label', { class: 'inline' }, 'Sessions of ', select)),
      h(
        'div',
        { class: 'card' },
        h('h2', {}, `Sessions (${sessions.length})`),
        sessions.length
          ? h('ul', { class: 'sessions' }, sessions.map(sessionItem))
          : h('p', {}, 'No sessions yet.'),
      ),
      progress,
    );
    if (this.user) await this.progress(progress, this.user);
    else fill(progress, h('p', { class: 'card hint' }, 'Choose a person to see their progress.'));
  }

  async progress(el, user) {
    const p = await get(`/api/progress?user=${encodeURIComponent(user)}`);
    const most = Math.max(1, ...p.weekly.map((w) => w.inverted_min));
    const painBox = h('div', { class: 'chart', id: 'pain-chart' });
    const scored = p.pain.filter((x) => x.before !== null || x.after !== null);
    fill(
      el,
      h(
        'div',
        { class: 'card' },
        h('h2', {}, 'Inverted minutes per week'),
        h(
          'table',
          { class: 'weeks' },
          h('thead', {}, h('tr', {}, h('th', {}, 'week from'), h('th', {}, 'minutes'), h('th', {}, 'days'), h('th', {}, 'sessions'))),
          h(
            'tbody',
            {},
            p.weekly.map((w) =>
              h(
                'tr',
                {},
                h('td', {}, shortDate(w.week_from)),
                h('td', { class: 'bar-cell' }, h('span', { class: 'bar', style: `width:${(100 * w.inverted_min) / most}%` }), ` ${w.inverted_min}`),
                h('td', { class: w.days > 4 ? 'warn' : '' }, String(w.days)),
                h('td', {}, String(w.sessions)),
              ),
            ),
          ),
        ),
        h('p', { class: 'hint' }, '3-4 days a week is the aim; rest days help.'),
      ),
      h('div', { class: 'card' }, h('h2', {}, 'Pain before and after (0-10)'), scored.length ? painBox : h('p', {}, 'No pain scores logged yet.')),
      h(
        'div',
        { class: 'card' },
        h('h2', {}, 'Plan and milestones'),
        h('p', {}, `Step ${p.plan.step}: up to ${p.plan.target.angle_deg}°, holds of ${clock(p.plan.target.hold_s)}, ${clock(p.plan.target.session_s)} per session.`),
        p.plan.proposal ? h('p', { class: 'proposal' }, `Proposed: ${p.plan.proposal}`) : null,
        h('ul', { class: 'notes' }, p.plan.notes.map((n) => h('li', {}, n))),
        h('h3', {}, `Milestones (${p.sessions} session(s))`),
        p.milestones.length ? h('ul', { class: 'milestones' }, p.milestones.map((m) => h('li', {}, `★ ${m}`))) : h('p', {}, 'The first session is the first milestone.'),
      ),
    );
    if (scored.length) painChart(painBox, scored);
  }
}

function sessionItem(s) {
  return h(
    'li',
    {},
    h(
      'a',
      { class: 'session-item', href: `#/history/${s.id}`, dataset: { session: String(s.id) } },
      h('strong', {}, when(s.started_at)),
      h('span', {}, ` ${s.user || 'unknown user'} · ${clock(s.inverted_s)} inverted · max ${s.max_theta_deg ?? '–'}°`),
      h('span', { class: s.alarms_raised ? 'warn' : '' }, ` · ${s.alarms_raised} alarm(s)`),
      s.pain_before !== null || s.pain_after !== null ? h('span', {}, ` · pain ${s.pain_before ?? '–'} → ${s.pain_after ?? '–'}`) : null,
      s.ended_at ? null : h('span', { class: 'live-tag' }, ' · in progress'),
    ),
  );
}

function maxTheta(s) {
  const values = s.trend.theta_deg.filter((v) => v !== null);
  return values.length ? `${Math.max(...values).toFixed(1)}°` : '–';
}

/** One session: its numbers, the chart with alarm markers, its events and outages. */
export async function renderSession(root, id, title = 'Session') {
  const s = await get(`/api/sessions/${id}`);
  const chart = h('div', { class: 'chart', id: 'session-chart' });
  fill(
    root,
    h(
      'div',
      { class: 'card', dataset: { session: String(s.id) } },
      h('h1', {}, `${title} ${when(s.started_at)}`),
      h(
        'dl',
        { class: 'facts' },
        h('dt', {}, 'Who'),
        h('dd', {}, s.user || '–'),
        h('dt', {}, 'Profile'),
        h('dd', {}, s.profile),
        h('dt', {}, 'Inverted'),
        h('dd', {}, `${clock(s.inverted_s)} in ${s.inversions} inversion(s)`),
        h('dt', {}, 'Highest θ'),
        h('dd', {}, maxTheta(s)),
        h('dt', {}, 'Pain'),
        h('dd', {}, `${s.pain_before ?? '–'} before → ${s.pain_after ?? '–'} after`),
        h('dt', {}, 'Ended'),
        h('dd', {}, s.ended_at ? `${when(s.ended_at)} (${s.end_reason || ''})` : 'in progress'),
      ),
    ),
    h(
      'div',
      { class: 'card' },
      h('h2', {}, 'θ and heart rate'),
      s.trend.t.length ? chart : h('p', {}, 'No trend recorded.'),
      h(
        'p',
        { class: 'legend' },
        h('span', { class: 'key theta' }, 'θ (°), left axis'),
        ' ',
        h('span', { class: 'key hr' }, 'heart rate (bpm), right axis'),
        ' ',
        h('span', { class: 'key mark' }, 'alarm raised: red high, amber medium, cyan low'),
      ),
    ),
    h(
      'div',
      { class: 'card' },
      h('h2', {}, `Alarm events (${s.events.length})`),
      h(
        'ol',
        { class: 'event-log static' },
        s.events.map((e) =>
          h(
            'li',
            { class: `ev p-${e.priority}`, dataset: { seq: String(e.seq) } },
            h('span', { class: 'ev-t' }, (e.at || '').slice(11, 19)),
            ' ',
            priorityIcon(e.priority),
            h('strong', {}, ` ${PRIORITY_WORD[e.priority]} `),
            h('span', { class: 'ev-kind' }, e.event),
            ' ',
            h('span', { class: 'ev-msg' }, e.words ? [e.words.title, e.words.message].filter(Boolean).join(' — ') : e.message),
            h('details', { class: 'ev-more' }, h('summary', {}, 'details'), h('span', { class: 'ev-raw' }, e.words ? e.words.details : e.id)),
          ),
        ),
      ),
      s.gaps.length ? h('h2', {}, 'Outages') : null,
      s.gaps.length ? h('ul', {}, s.gaps.map((g) => h('li', {}, `${when(g.from_at)}: ${Math.round(g.gap_s)} s without data`))) : null,
    ),
  );
  if (s.trend.t.length) sessionChart(chart, s.trend, s.events);
}
