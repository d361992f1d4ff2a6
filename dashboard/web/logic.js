// Pure helpers of the dashboard: no DOM, no network, no clock. Tested with `npm test`.

/** SPEC section 7: priorities, their words, and the order they rank in. */
export const PRIORITIES = ['high', 'medium', 'low'];
export const PRIORITY_RANK = { high: 3, medium: 2, low: 1 };
export const PRIORITY_WORD = { high: 'HIGH', medium: 'MEDIUM', low: 'LOW' };

/** The stream is lost when no message arrived for this long (the server beats every 1 s). */
export const HEARTBEAT_LOST_MS = 3000;

/**
 * Alarm tones after IEC 60601-1-8: high is a 10-pulse burst (3 + 2, pause, 3 + 2), medium
 * 3 pulses, low 1 pulse. Each burst repeats every `repeat_s` while the alarm sounds.
 * `lost` (no data from the station) is a distinct two-tone warble.
 */
export const TONES = {
  high: { hz: 880, pulse_s: 0.15, repeat_s: 5, offsets_s: [0, 0.25, 0.5, 1.0, 1.25, 2.0, 2.25, 2.5, 3.0, 3.25] },
  medium: { hz: 660, pulse_s: 0.2, repeat_s: 8, offsets_s: [0, 0.35, 0.7] },
  low: { hz: 520, pulse_s: 0.25, repeat_s: 16, offsets_s: [0] },
  lost: { hz: 740, pulse_s: 0.12, repeat_s: 2, offsets_s: [0, 0.2] },
};

/** The number of pulses one burst of `tone` has. */
export function pulses(tone) {
  return TONES[tone].offsets_s.length;
}

/** The most urgent priority among the alarms of a state that are sounding, or null. */
export function soundingPriority(alarms) {
  let best = null;
  for (const alarm of alarms || []) {
    if (!alarm.sounding) continue;
    if (best === null || PRIORITY_RANK[alarm.priority] > PRIORITY_RANK[best]) best = alarm.priority;
  }
  return best;
}

/**
 * Alarm events in the order the store committed them (by seq), each at most once.
 * `add` returns false for an event already seen (a replay after a reconnect).
 */
export class EventLog {
  constructor(max = 1000) {
    this.max = max;
    this.lastSeq = 0;
    this.events = [];
    this.duplicates = 0;
  }

  add(event) {
    const seq = Number(event.seq);
    if (!Number.isInteger(seq) || seq <= this.lastSeq) {
      this.duplicates += 1;
      return false;
    }
    this.lastSeq = seq;
    this.events.push(event);
    if (this.events.length > this.max) this.events.shift();
    return true;
  }
}

/** Seconds as m:ss (or h:mm:ss); negative values get a sign. Null gives an en dash. */
export function clock(seconds) {
  if (seconds === null || seconds === undefined || Number.isNaN(seconds)) return '–';
  const sign = seconds < 0 ? '−' : '';
  let s = Math.floor(Math.abs(seconds));
  const h = Math.floor(s / 3600);
  s -= h * 3600;
  const m = Math.floor(s / 60);
  s -= m * 60;
  const ss = String(s).padStart(2, '0');
  return h ? `${sign}${h}:${String(m).padStart(2, '0')}:${ss}` : `${sign}${m}:${ss}`;
}

/** A number with fixed decimals, or an en dash for null. */
export function num(value, digits = 0) {
  return value === null || value === undefined ? '–' : Number(value).toFixed(digits);
}

/** Tick steps for a session chart's time axis in seconds: every tick a round m:ss. */
export const TIME_INCRS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600];

/** Seconds since the session's first sample as an m:ss tick label. */
export function tickClock(seconds) {
  const s = Math.round(seconds);
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}

/** A moving window of samples for the live charts: x (station seconds) and named series. */
export class Series {
  constructor(window_s, keys) {
    this.window_s = window_s;
    this.keys = keys;
    this.clear();
  }

  push(t, point) {
    const last = this.t.length ? this.t[this.t.length - 1] : null;
    if (last !== null && t < last) this.clear(); // the station restarted, and so did its clock
    else if (last !== null && t === last) return;
    this.t.push(t);
    for (const key of this.keys) this.values[key].push(point[key] ?? null);
    while (this.t[0] < t - this.window_s) {
      this.t.shift();
      for (const key of this.keys) this.values[key].shift();
    }
  }

  clear() {
    this.t = [];
    this.values = Object.fromEntries(this.keys.map((k) => [k, []]));
  }

  data(key) {
    return [this.t, this.values[key]];
  }
}

/** The detail of an API error body: FastAPI's string, or its list of validation problems. */
export function detailText(body, status) {
  const detail = body && body.detail;
  if (typeof detail === 'string') return detail;
  if (Array.isArray(detail)) {
    return detail.map((d) => `${(d.loc || []).slice(1).join('.') || 'request'}: ${d.msg}`).join('; ');
  }
  return `the station answered ${status}`;
}
