// Charts with uPlot: the live 2-minute windows, a session's theta and HR with its alarm
// markers, and pain over sessions.

import uPlot from 'uplot';
import { TIME_INCRS, tickClock } from './logic.js';

const COLORS = { theta: '#2b6cb0', hr: '#c53030', before: '#805ad5', after: '#2f855a' };
const MARKER = { high: '#d50000', medium: '#b7791f', low: '#0987a0' };

function sized(el, opts, data) {
  const width = () => Math.max(240, el.clientWidth || 320);
  const plot = new uPlot({ ...opts, width: width() }, data, el);
  new ResizeObserver(() => plot.setSize({ width: width(), height: opts.height })).observe(el);
  return plot;
}

/** A live chart of one value over the last `window_s` station seconds, with a limit line. */
export function liveChart(el, { label, unit, color, window_s = 120, range }) {
  let limit = null;
  let latest = 0;
  const plot = sized(
    el,
    {
      height: 140,
      legend: { show: false },
      cursor: { show: false },
      scales: { x: { time: false, range: () => [latest - window_s, latest] }, y: { range } },
      axes: [
        { values: (u, ticks) => ticks.map((v) => `${Math.round(v - latest)} s`), size: 28 },
        { label: unit, size: 44 },
      ],
      series: [{}, { label, stroke: color, width: 2, spanGaps: false }],
      hooks: {
        draw: [
          (u) => {
            if (limit === null) return;
            const y = u.valToPos(limit, 'y', true);
            const { ctx } = u;
            ctx.save();
            ctx.strokeStyle = '#d50000';
            ctx.setLineDash([6, 4]);
            ctx.lineWidth = 1.5;
            ctx.beginPath();
            ctx.moveTo(u.bbox.left, y);
            ctx.lineTo(u.bbox.left + u.bbox.width, y);
            ctx.stroke();
            ctx.restore();
          },
        ],
      },
    },
    [[], []],
  );
  return {
    update([t, values], newLimit = null) {
      limit = newLimit;
      latest = t.length ? t[t.length - 1] : 0;
      plot.setData([t.slice(), values.slice()]);
    },
  };
}


/**
 * A session's theta and heart rate (1 Hz trend) with a vertical line at each alarm event.
 * Time runs from the session's first sample (0:00), so ticks fall at round times; the page
 * draws its own legend (uPlot's reads "s: -- θ °: --" until hovered).
 */
export function sessionChart(el, trend, events) {
  const t0 = trend.t[0] ?? 0;
  const raised = events
    .filter((e) => e.event === 'raised' || e.event === 'escalated')
    .map((e) => ({ ...e, t: e.t - t0 }));
  return sized(
    el,
    {
      height: 220,
      legend: { show: false },
      scales: { x: { time: false }, theta: { auto: true }, hr: { auto: true } },
      axes: [
        { label: 'time in session (m:ss)', incrs: TIME_INCRS, values: (u, ticks) => ticks.map(tickClock) },
        { scale: 'theta', label: 'θ (°)', size: 44 },
        { scale: 'hr', label: 'heart rate (bpm)', side: 1, size: 44, grid: { show: false } },
      ],
      series: [
        { label: 'time' },
        { label: 'θ °', scale: 'theta', stroke: COLORS.theta, width: 2 },
        { label: 'HR bpm', scale: 'hr', stroke: COLORS.hr, width: 2 },
      ],
      hooks: {
        draw: [
          (u) => {
            const { ctx } = u;
            ctx.save();
            for (const e of raised) {
              const x = u.valToPos(e.t, 'x', true);
              if (x < u.bbox.left || x > u.bbox.left + u.bbox.width) continue;
              ctx.strokeStyle = MARKER[e.priority] || '#333';
              ctx.lineWidth = e.priority === 'high' ? 3 : 2;
              ctx.setLineDash(e.priority === 'low' ? [3, 3] : []);
              ctx.beginPath();
              ctx.moveTo(x, u.bbox.top);
              ctx.lineTo(x, u.bbox.top + u.bbox.height);
              ctx.stroke();
            }
            ctx.restore();
          },
        ],
      },
    },
    [trend.t.map((t) => t - t0), trend.theta_deg, trend.hr_bpm],
  );
}

/** Pain before and after over sessions (0-10). */
export function painChart(el, pain) {
  const x = pain.map((_, i) => i + 1);
  return sized(
    el,
    {
      height: 180,
      scales: { x: { time: false, range: [0.5, x.length + 0.5] }, y: { range: [0, 10] } },
      axes: [
        { label: 'session', incrs: [1, 2, 5, 10, 20, 50], values: (u, ticks) => ticks.map((v) => (Number.isInteger(v) ? v : '')) },
        { label: 'pain 0-10', size: 44 },
      ],
      series: [
        { label: 'session' },
        { label: 'before', stroke: COLORS.before, width: 2, points: { size: 7 } },
        { label: 'after', stroke: COLORS.after, width: 2, points: { size: 7 }, dash: [6, 3] },
      ],
    },
    [x, pain.map((p) => p.before), pain.map((p) => p.after)],
  );
}
