// The live stream: server-sent events from /api/stream. Alarm events carry the store's seq;
// the page keeps the last one it saw, drops any it has seen, and after a break opens the
// stream again with ?after=lastSeq, so the station sends exactly what was missed.

import { EventLog, HEARTBEAT_LOST_MS } from './logic.js';

const RETRY_MS = 1000;
const REOPEN_QUIET_MS = 6000;

export class LiveStream {
  /**
   * @param {object} handlers onAlarm(event, replayed: boolean), onState(state), onLink(up: boolean)
   */
  constructor({ onAlarm, onState, onLink }, url = '/api/stream') {
    this.url = url;
    this.onAlarm = onAlarm;
    this.onState = onState;
    this.onLink = onLink;
    this.log = new EventLog();
    this.source = null;
    this.heardAt = performance.now();
    this.up = null;
    this.opens = 0;
    this.retry = null;
  }

  start() {
    this.open();
    this.watch = setInterval(() => this.check(), 250);
  }

  /** Close for good (this device is no longer paired). */
  stop() {
    clearInterval(this.watch);
    clearTimeout(this.retry);
    this.retry = 'stopped';
    if (this.source) this.source.close();
    this.source = null;
  }

  open() {
    clearTimeout(this.retry);
    this.retry = null;
    if (this.source) this.source.close();
    const source = new EventSource(`${this.url}?after=${this.log.lastSeq}`);
    this.source = source;
    this.opens += 1;
    this.caughtUp = false; // the station sends what was missed, then the state
    source.addEventListener('alarm', (e) => this.alarm(e));
    source.addEventListener('state', (e) => this.state(e));
    source.addEventListener('error', () => {
      // Our own reconnect, with ?after=, rather than the browser's: the server prefers the
      // query over Last-Event-ID, and a closed source (an HTTP error) never comes back.
      if (this.source !== source || this.retry === 'stopped') return;
      source.close();
      this.retry = setTimeout(() => this.open(), RETRY_MS);
    });
  }

  alarm(e) {
    this.heardAt = performance.now();
    const event = JSON.parse(e.data);
    if (event.seq === undefined) event.seq = Number(e.lastEventId);
    if (this.log.add(event)) this.onAlarm(event, !this.caughtUp);
  }

  state(e) {
    this.heardAt = performance.now();
    this.caughtUp = true;
    this.link(true);
    this.onState(JSON.parse(e.data));
  }

  link(up) {
    if (this.up === up) return;
    this.up = up;
    this.onLink(up);
  }

  check() {
    const quiet = performance.now() - this.heardAt;
    if (quiet >= HEARTBEAT_LOST_MS) this.link(false);
    // Connected but silent (a half-open socket): start again rather than wait for TCP.
    if (quiet >= REOPEN_QUIET_MS && this.retry === null) {
      this.heardAt = performance.now() - HEARTBEAT_LOST_MS;
      this.open();
    }
  }
}
