// Unit tests of the pure helpers: `npm test` (node's own test runner, no dependencies).

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EventLog, Series, TONES, clock, detailText, pulses, TIME_INCRS, tickClock, soundingPriority } from './logic.js';

test('tone bursts follow SPEC 7: high 10 pulses, medium 3, low 1', () => {
  assert.equal(pulses('high'), 10);
  assert.equal(pulses('medium'), 3);
  assert.equal(pulses('low'), 1);
  for (const tone of Object.values(TONES)) {
    const last = tone.offsets_s[tone.offsets_s.length - 1];
    assert.ok(last + tone.pulse_s < tone.repeat_s, 'a burst ends before it repeats');
  }
});

test('the most urgent sounding alarm decides the tone', () => {
  assert.equal(soundingPriority([]), null);
  assert.equal(soundingPriority([{ priority: 'high', sounding: false }, { priority: 'low', sounding: true }]), 'low');
  assert.equal(soundingPriority([{ priority: 'medium', sounding: true }, { priority: 'high', sounding: true }]), 'high');
});

test('the event log keeps each seq once, in order, after a replay', () => {
  const log = new EventLog(3);
  assert.equal(log.add({ seq: 1 }), true);
  assert.equal(log.add({ seq: 2 }), true);
  assert.equal(log.add({ seq: 2 }), false);
  assert.equal(log.add({ seq: 1 }), false);
  assert.equal(log.add({ seq: 3 }), true);
  assert.equal(log.add({ seq: 4 }), true);
  assert.deepEqual(log.events.map((e) => e.seq), [2, 3, 4]);
  assert.equal(log.lastSeq, 4);
  assert.equal(log.duplicates, 2);
  assert.equal(log.add({ seq: 'x' }), false);
});

test('clock reads m:ss, h:mm:ss, and a dash for nothing', () => {
  assert.equal(clock(0), '0:00');
  assert.equal(clock(59.9), '0:59');
  assert.equal(clock(61), '1:01');
  assert.equal(clock(3725), '1:02:05');
  assert.equal(clock(-5), '−0:05');
  assert.equal(clock(null), '–');
});

test('the chart window drops old samples and restarts with the station clock', () => {
  const s = new Series(10, ['a', 'b']);
  s.push(0, { a: 1, b: 2 });
  s.push(5, { a: 3 });
  s.push(5, { a: 9 });
  s.push(12, { a: 4, b: 5 });
  assert.deepEqual(s.data('a'), [[5, 12], [3, 4]]);
  assert.deepEqual(s.data('b'), [[5, 12], [null, 5]]);
  s.push(1, { a: 7 });
  assert.deepEqual(s.data('a'), [[1], [7]]);
});

test('API errors read as text', () => {
  assert.equal(detailText({ detail: 'no' }, 403), 'no');
  assert.equal(detailText({ detail: [{ loc: ['body', 'user'], msg: 'required' }] }, 422), 'user: required');
  assert.equal(detailText(null, 500), 'the station answered 500');
});

test('session chart ticks are round times on a clock, from 0:00', () => {
  assert.deepEqual([0, 30, 60, 90, 120, 600].map(tickClock), ['0:00', '0:30', '1:00', '1:30', '2:00', '10:00']);
  // every tick step divides a minute or is whole minutes: no ticks at 88, 188, 288
  for (const step of TIME_INCRS) assert.ok(60 % step === 0 || step % 60 === 0, String(step));
});
