// Spotter's dashboard: boot (who am I), the live stream, the pages and the hash router.

import 'uplot/dist/uPlot.min.css';
import './style.css';

import { ApiError, get, setCsrf } from './api.js';
import { $, toast } from './dom.js';
import { GuidedSession } from './session.js';
import { History, renderSession } from './history.js';
import { LiveView } from './live.js';
import { Settings } from './settings.js';
import { AlarmSound } from './sound.js';
import { LiveStream } from './stream.js';

function showView(name) {
  document.body.dataset.view = name;
  for (const view of document.querySelectorAll('main > .view')) view.hidden = view.dataset.view !== name;
  for (const link of document.querySelectorAll('[data-nav]')) {
    if (link.dataset.nav === name || (name === 'summary' && link.dataset.nav === 'history')) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
}

const BOOT_RETRY_MS = 2000;

function unpaired() {
  showView('unpaired');
  document.body.dataset.link = 'unpaired';
  $('#lost').hidden = true;
  // The station's own CA is offered only when it serves HTTPS with one (no login needed).
  fetch('/ca.crt', { cache: 'no-store' })
    .then((r) => { $('#ca-link').hidden = !r.ok; })
    .catch(() => { $('#ca-link').hidden = true; });
}

async function boot() {
  let me;
  try {
    me = await get('/api/me');
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) {
      unpaired();
      return;
    }
    // The station is not answering (yet): say so, and keep trying.
    $('#lost').hidden = false;
    document.body.dataset.link = 'lost';
    setTimeout(() => boot().catch(failed), BOOT_RETRY_MS);
    return;
  }
  $('#lost').hidden = true;
  setCsrf(me.csrf);
  document.body.dataset.role = me.role;
  $('#station-name').textContent = `Spotter · ${me.station}`;
  document.title = `Spotter · ${me.station}`;

  const sound = new AlarmSound();
  const banner = () => {
    $('#sound-banner').hidden = sound.unlocked || !(window.AudioContext || window.webkitAudioContext);
    document.body.dataset.sound = sound.unlocked ? sound.tone || 'off' : 'locked';
  };
  sound.onChange = banner;
  $('#unlock-sound').addEventListener('click', () => sound.unlock());
  banner();
  get('/api/settings')
    .then((s) => { $('#plain-http').hidden = !s.plain_http_on_lan; })
    .catch((err) => console.warn('settings not loaded for the plain-HTTP banner', err));

  const go = (hash) => {
    if (location.hash === hash) route();
    else location.hash = hash;
  };
  const live = new LiveView({
    sound,
    onSessionEnded: (id) => go(id ? `#/summary/${id}` : '#/history'),
  });
  const guided = new GuidedSession({ me, sound, onStarted: () => go('#/live') });
  const history = new History();
  const settings = new Settings({ me });

  const stream = new LiveStream({
    onAlarm: (event, replayed) => live.onAlarm(event, replayed),
    onState: (state) => live.onState(state),
    onLink: (up) => {
      if (!up) {
        // Lost because this device was logged out (or its login expired)?
        get('/api/me').catch((err) => {
          if (err instanceof ApiError && err.status === 401) {
            stream.stop();
            sound.set(null);
            unpaired();
          }
        });
      }
      $('#lost').hidden = up;
      document.body.dataset.link = up ? 'up' : 'lost';
      $('#link').textContent = up ? 'live' : 'CONNECTION LOST';
      if (!up) sound.set('lost');
      else if (sound.tone === 'lost') sound.set(null); // the next state says what sounds
    },
  });

  async function route() {
    const [, page = 'live', arg] = location.hash.split('/');
    try {
      if (page === 'session') {
        showView('session');
        await guided.show();
      } else if (page === 'summary' && arg) {
        showView('summary');
        await renderSession($('#view-summary'), arg, 'Session summary');
      } else if (page === 'history' && arg) {
        showView('summary');
        await renderSession($('#view-summary'), arg);
      } else if (page === 'history') {
        showView('history');
        await history.show();
      } else if (page === 'settings') {
        showView('settings');
        await settings.show();
      } else {
        showView('live');
      }
    } catch (err) {
      toast(err.message, 'error');
    }
    window.scrollTo(0, 0);
  }

  window.addEventListener('hashchange', route);
  await route();
  stream.start();
  // For people debugging on the station, and for the browser tests.
  window.spotter = { me, stream, sound, live };
  document.body.dataset.ready = 'true';
}

function failed(err) {
  toast(`The dashboard failed to start: ${err.message}`, 'error');
  throw err;
}

boot().catch(failed);
