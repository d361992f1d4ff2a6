// Settings: profiles and limits (changed here, with the owner's PIN unless a clinician), the
// owner's PIN itself (set, or changed with the old one),
// and what is shown read-only because it lives in the configuration file: calibration, push
// targets (already redacted by the station), sound and the dashboard itself.

import { get, post, put } from './api.js';
import { $, fill, h, toast } from './dom.js';

const LIMITS = [
  ['max_angle_deg', 'Angle limit', '°'],
  ['max_hold_s', 'Hold limit', 's'],
  ['min_rest_s', 'Rest between holds', 's'],
  ['max_session_inverted_s', 'Inverted per session', 's'],
  ['max_day_inverted_s', 'Inverted per day', 's'],
  ['hr_high_bpm', 'Heart rate high', 'bpm'],
  ['hr_low_bpm', 'Heart rate low', 'bpm'],
  ['spotter_required', 'Spotter required', ''],
];

function value(v) {
  if (v === null || v === undefined) return '–';
  if (typeof v === 'boolean') return v ? 'yes' : 'no';
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

function table(obj, className = 'kv') {
  const entries = Object.entries(obj || {});
  if (!entries.length) return h('p', { class: 'hint' }, 'none');
  return h('table', { class: className }, h('tbody', {}, entries.map(([k, v]) => h('tr', {}, h('th', { scope: 'row' }, k), h('td', {}, value(v))))));
}

const ROLE_WORDS = { owner: 'the owner', clinician: 'a clinician', viewer: 'a viewer (it watches, it changes nothing)' };

/** "This device is paired as the owner of station home." — its name only when it says more. */
export function deviceLine(me) {
  const named = me.name && me.name !== me.role ? ` (${me.name})` : '';
  return `This device${named} is paired as ${ROLE_WORDS[me.role] || me.role} of station ${me.station}.`;
}

export class Settings {
  constructor({ me }) {
    this.me = me;
    this.root = $('#view-settings');
  }

  async show() {
    const [s, users] = await Promise.all([get('/api/settings'), get('/api/users')]);
    const profiles = { active: s.station_profile, ...s.builtin_profiles };
    fill(
      this.root,
      h(
        'div',
        { class: 'card' },
        h('h1', {}, 'Settings'),
        h('p', { id: 'this-device' }, deviceLine(this.me)),
        h(
              'button',
              {
                type: 'button',
                class: 'btn',
                onclick: async () => {
                  try {
                    await post('/api/logout');
                    location.reload();
                  } catch (err) {
                    toast(`Still logged in: ${err.message}`, 'error');
                  }
                },
              },
              'Log this device out',
            ),
      ),
      h(
        'div',
        { class: 'card' },
        h('h2', {}, 'Profiles and limits'),
        h(
          'table',
          { class: 'limits' },
          h('thead', {}, h('tr', {}, h('th', {}, ''), Object.keys(profiles).map((name) => h('th', { scope: 'col' }, name === 'active' ? `now: ${s.station_profile.name}` : name)))),
          h(
            'tbody',
            {},
            LIMITS.map(([key, label, unit]) =>
              h('tr', {}, h('th', { scope: 'row' }, label), Object.values(profiles).map((p) => h('td', {}, `${value(p[key])}${unit && p[key] !== undefined ? ` ${unit}` : ''}`))),
            ),
          ),
        ),
        this.me.role === 'viewer' ? null : this.profileForm(users, [...Object.keys(s.builtin_profiles), ...(s.stored_profiles || [])], s.pin_set),
      ),
      this.me.role === 'owner' ? this.pinForm(s.pin_set) : null,
      h(
        'div',
        { class: 'card readonly' },
        h('h2', {}, 'From the configuration file'),
        h(
          'p',
          { class: 'config-note' },
          'Calibration, push targets, sound and the dashboard are edited in the configuration file ',
          h('code', {}, 'spotter.toml'),
          ' (check it with ',
          h('code', {}, 'spotter config check'),
          '; calibrate with ',
          h('code', {}, 'spotter calibrate'),
          '). They are shown here read-only.',
        ),
        h('h3', {}, 'Calibration'),
        table(s.calibration),
        h('h3', {}, 'Push targets'),
        s.push_targets && s.push_targets.length ? h('ul', { class: 'push' }, s.push_targets.map((u) => h('li', {}, h('code', {}, u)))) : h('p', { class: 'hint' }, 'none'),
        h('h3', {}, 'Sound'),
        table(s.sound),
        h('h3', {}, 'Dashboard'),
        table(s.dashboard),
      ),
      this.me.role === 'owner' ? this.pairing(s) : null,
    );
  }

  profileForm(users, builtins, pinSet) {
    const clinician = this.me.role === 'clinician';
    const result = h('p', { class: 'result', role: 'status' });
    return h(
      'form',
      {
        id: 'profile-form',
        class: 'profile-form',
        onsubmit: async (e) => {
          e.preventDefault();
          const f = e.target.elements;
          const body = { user: f.user.value, profile: f.profile.value.trim() };
          if (!clinician) body.pin = f.pin.value;
          try {
            const r = await put('/api/settings/profile', body);
            result.textContent = `${body.user} now uses ${r.profile.name} (from the next session).`;
            toast('Profile changed');
          } catch (err) {
            result.textContent = `Not changed: ${err.message}`;
          }
        },
      },
      h('h3', {}, "Change a person's profile"),
      h('label', {}, 'Person', h('select', { name: 'user', required: true }, users.map((u) => h('option', { value: u.name }, `${u.name} (now ${u.profile})`)))),
      h('label', {}, 'Profile (a built-in or stored profile, by name)', h('input', { name: 'profile', list: 'profile-names', required: true, value: builtins[0] || 'beginner' })),
      h('datalist', { id: 'profile-names' }, builtins.map((b) => h('option', { value: b }))),
      clinician
        ? h('p', { class: 'hint' }, 'As a clinician you change limits without the PIN.')
        : h('label', {}, "Owner's PIN", h('input', { name: 'pin', type: 'password', inputmode: 'numeric', autocomplete: 'off', maxlength: 12, required: true })),
      !clinician && !pinSet ? h('p', { class: 'hint' }, 'No PIN is set on this station yet: only a clinician can change limits (the owner sets one below, or with spotter pin set).') : null,
      h('button', { type: 'submit', class: 'btn primary' }, 'Change profile'),
      result,
    );
  }

  pinForm(pinSet) {
    const result = h('p', { class: 'result', role: 'status' });
    const pin = (name, label) => h('label', {}, label, h('input', { name, type: 'password', inputmode: 'numeric', autocomplete: 'off', pattern: '[0-9]{4,12}', minlength: 4, maxlength: 12, required: true }));
    return h(
      'div',
      { class: 'card' },
      h('h2', {}, "Owner's PIN"),
      h('p', { class: 'hint' }, pinSet ? 'A PIN is set. To change it, give the current one.' : 'No PIN is set yet: set one (4 to 12 digits).'),
      h(
        'form',
        {
          id: 'pin-form',
          class: 'profile-form',
          onsubmit: async (e) => {
            e.preventDefault();
            const f = e.target.elements;
            if (f.new.value !== f.again.value) {
              result.textContent = 'Not changed: the two new PINs differ.';
              return;
            }
            const body = { new: f.new.value };
            if (pinSet) body.old = f.old.value;
            try {
              await put('/api/settings/pin', body);
              toast('PIN set');
              await this.show(); // the form now asks for the current PIN to change it
              $('#pin-form .result').textContent = 'The PIN is set.';
            } catch (err) {
              result.textContent = `Not changed: ${err.message}`;
            }
          },
        },
        pinSet ? pin('old', 'Current PIN') : null,
        pin('new', 'New PIN'),
        pin('again', 'New PIN again'),
        h('button', { type: 'submit', class: 'btn primary' }, pinSet ? 'Change the PIN' : 'Set the PIN'),
        result,
      ),
    );
  }

  pairing(s) {
    const out = h('p', { class: 'pair-url' });
    return h(
      'div',
      { class: 'card' },
      h('h2', {}, 'Devices'),
      s.ca_url
        ? h('p', { class: 'hint', id: 'ca-hint' }, 'A new phone first installs ', h('a', { href: s.ca_url }, "the station's certificate"), ' (once; see docs/lan-https.md), then opens its pairing link.')
        : null,
      h(
        'form',
        {
          onsubmit: async (e) => {
            e.preventDefault();
            const f = e.target.elements;
            try {
              const r = await post('/api/pairings', { role: f.role.value, name: f.name.value || 'device' });
              fill(out, `Open this link on the other device within ${Math.round(r.expires_in_s / 60)} minutes (it works once): `, h('code', {}, r.url));
            } catch (err) {
              fill(out, `No link: ${err.message}`);
            }
          },
        },
        h(
          'label',
          {},
          'Role',
          h('select', { name: 'role' }, ['viewer', 'user', 'clinician', 'owner'].map((r) => h('option', { value: r }, r))),
        ),
        h('label', {}, 'Name', h('input', { name: 'name', maxlength: 64, placeholder: "e.g. spotter's phone" })),
        h('button', { type: 'submit', class: 'btn' }, 'Make a pairing link'),
      ),
      out,
    );
  }
}
