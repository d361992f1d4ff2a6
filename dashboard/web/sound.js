// Alarm tones through Web Audio, by priority (SPEC section 7): high 10 pulses, medium 3,
// low 1, repeated while an alarm of that priority sounds. Phones allow audio only after a
// gesture, so `unlock()` is called from a tap (starting a session, or the sound banner).

import { PRIORITY_RANK, TONES } from './logic.js';

export class AlarmSound {
  constructor() {
    this.ctx = null;
    this.tone = null; // 'high' | 'medium' | 'low' | 'lost' | null
    this.nextAt = 0;
    this.bursts = { high: 0, medium: 0, low: 0, lost: 0 };
    this.onChange = () => {};
  }

  get unlocked() {
    return this.ctx !== null && this.ctx.state === 'running';
  }

  /** Create or resume the audio context: call this inside a tap's handler. Never throws:
   * a phone without audio must still send the tap's command. */
  unlock() {
    try {
      const Ctx = window.AudioContext || window.webkitAudioContext;
      if (!Ctx) return;
      if (this.ctx === null) {
        this.ctx = new Ctx();
        this.ctx.onstatechange = () => this.onChange();
        this.timer = setInterval(() => this.pump(), 100);
      }
      if (this.ctx.state !== 'running') this.ctx.resume().catch(() => {});
      // A silent blip: some mobile browsers unlock only once a sound started in the gesture.
      this.beep(this.ctx.currentTime, 440, 0.05, 0);
    } catch (err) {
      console.error('alarm sound unavailable', err);
    }
    this.onChange();
  }

  /** What should sound now: a priority, 'lost', or null. A more urgent one starts at once. */
  set(tone) {
    if (tone === this.tone) return;
    const rank = (t) => (t === 'lost' ? 4 : PRIORITY_RANK[t] || 0);
    if (rank(tone) > rank(this.tone)) this.nextAt = 0;
    this.tone = tone;
    this.onChange();
  }

  pump() {
    if (!this.tone || !this.unlocked) return;
    const now = this.ctx.currentTime;
    if (now < this.nextAt) return;
    const tone = TONES[this.tone];
    for (const offset of tone.offsets_s) this.beep(now + 0.05 + offset, tone.hz, tone.pulse_s, 0.4);
    this.bursts[this.tone] += 1;
    this.nextAt = now + tone.repeat_s;
  }

  beep(at, hz, length_s, volume) {
    const osc = this.ctx.createOscillator();
    const gain = this.ctx.createGain();
    osc.type = 'square';
    osc.frequency.value = hz;
    gain.gain.setValueAtTime(0, at);
    gain.gain.linearRampToValueAtTime(volume, at + 0.01);
    gain.gain.setValueAtTime(volume, at + Math.max(0.01, length_s - 0.02));
    gain.gain.linearRampToValueAtTime(0, at + length_s);
    osc.connect(gain).connect(this.ctx.destination);
    osc.start(at);
    osc.stop(at + length_s + 0.01);
  }
}
