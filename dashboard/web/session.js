// The guided start (SPEC section 6): who, screening (and clearance), the checklist, the pain
// score before, today's target from the plan; then the live view. The tap that starts the
// session also turns the alarm sound on (phones block audio until a gesture).

import { get, post } from './api.js';
import { $, fill, h, painPicker, toast } from './dom.js';
import { clock } from './logic.js';

const STEPS = ['user', 'screening', 'checklist', 'pain', 'target'];
const STEP_TITLE = {
  user: 'Who is inverting?',
  screening: 'Health screening',
  checklist: 'Before you go down',
  pain: 'Pain now',
  target: "Today's target",
};

export class GuidedSession {
  constructor({ me, sound, onStarted }) {
    this.me = me;
    this.sound = sound;
    this.onStarted = onStarted;
    this.root = $('#view-session');
    this.reset();
  }

  reset() {
    this.step = 'user';
    this.user = null;
    this.checklist = null;
    this.items = {};
    this.contraindications = {};
    this.pain = null;
    this.reasons = [];
  }

  async show() {
    if (!this.checklist) {
      const data = await get('/api/checklist');
      this.checklist = data.checklist;
      this.contraindications = data.contraindications;
    }
    await this.render();
  }

  go(step) {
    this.step = step;
    this.render().catch((err) => toast(err.message, 'error'));
  }

  frame(...body) {
    const index = STEPS.indexOf(this.step);
    fill(
      this.root,
      h(
        'div',
        { class: 'card wizard', dataset: { step: this.step } },
        h('p', { class: 'step-count' }, `Step ${index + 1} of ${STEPS.length}${this.user ? ` · ${this.user.name}` : ''}`),
        h('h1', { tabindex: '-1', class: 'step-title' }, STEP_TITLE[this.step]),
        ...body,
      ),
    );
    this.root.querySelector('h1').focus({ preventScroll: true });
  }

  back() {
    return h('button', { type: 'button', class: 'btn', onclick: () => this.go(STEPS[STEPS.indexOf(this.step) - 1]) }, '← Back');
  }

  async render() {
    const step = this.step;
    if (step === 'user') return this.renderUser();
    if (step === 'screening') return this.renderScreening();
    if (step === 'checklist') return this.renderChecklist();
    if (step === 'pain') return this.renderPain();
    return this.renderTarget();
  }

  // -- 1. user ----------------------------------------------------------------------------

  async renderUser() {
    const users = await get('/api/users');
    const pick = (user) => {
      this.user = user;
      this.go('screening');
    };
    const canAdd = this.me.role === 'owner' || this.me.role === 'clinician';
    const form = h(
      'form',
      {
        class: 'add-user',
        onsubmit: async (e) => {
          e.preventDefault();
          const data = new FormData(e.target);
          const body = { name: String(data.get('name')).trim(), profile: String(data.get('profile')) };
          const age = String(data.get('age'));
          if (age) body.age = Number(age);
          try {
            await post('/api/users', body);
            toast(`Added ${body.name}`);
            const added = (await get('/api/users')).find((u) => u.name === body.name);
            pick(added);
          } catch (err) {
            toast(`Not added: ${err.message}`, 'error');
          }
        },
      },
      h('h2', {}, 'Add a user'),
      h('label', {}, 'Name', h('input', { name: 'name', required: true, maxlength: 64, autocomplete: 'off' })),
      h('label', {}, 'Age (for the heart-rate limit)', h('input', { name: 'age', type: 'number', min: 1, max: 129, inputmode: 'numeric' })),
      h(
        'label',
        {},
        'Profile',
        h('select', { name: 'profile' }, h('option', { value: 'beginner' }, 'beginner'), h('option', { value: 'standard' }, 'standard')),
      ),
      h('button', { type: 'submit', class: 'btn primary' }, 'Add user'),
    );
    this.frame(
      users.length
        ? h(
            'ul',
            { class: 'choices' },
            users.map((u) =>
              h(
                'li',
                {},
                h(
                  'button',
                  { type: 'button', class: 'btn choice', dataset: { user: u.name }, onclick: () => pick(u) },
                  h('strong', {}, u.name),
                  h('small', {}, ` ${u.profile}${u.age ? ` · ${u.age} y` : ''}${u.screening ? '' : ' · not screened'}`),
                ),
              ),
            ),
          )
        : h('p', {}, 'No users yet.'),
      canAdd ? form : h('p', { class: 'hint' }, 'An owner or a clinician adds users.'),
    );
  }

  // -- 2. screening -----------------------------------------------------------------------

  async renderScreening() {
    const user = (await get('/api/users')).find((u) => u.name === this.user.name) || this.user;
    this.user = user;
    const screening = user.screening;
    const cleared = new Set(user.clearances.flatMap((c) => c.conditions));
    const blocked = screening ? screening.contraindications.filter((c) => !cleared.has(c)) : [];
    const name = (key) => this.contraindications[key] || key;

    const summary = [];
    if (screening) {
      summary.push(
        h(
          'p',
          { class: 'screen-last' },
          `Last screened ${screening.at.slice(0, 10)}: `,
          screening.contraindications.length ? screening.contraindications.map(name).join(', ') : 'none of the conditions apply',
          '.',
        ),
      );
    }
    if (user.clearances.length) {
      summary.push(
        h(
          'div',
          { class: 'clearances' },
          h('h2', {}, 'Clearances'),
          h(
            'ul',
            {},
            user.clearances.map((c) =>
              h('li', { class: 'clearance' }, `Cleared by ${c.clinician} on ${c.at.slice(0, 10)} for ${c.conditions.map(name).join(', ')}${c.note ? ` (${c.note})` : ''}`),
            ),
          ),
        ),
      );
    }
    if (blocked.length) {
      summary.push(
        h(
          'p',
          { class: 'blocked', role: 'alert' },
          `Inversion is not advised with ${blocked.map(name).join(', ')}. A clinician's clearance is needed before a session.`,
        ),
      );
      if (this.me.role === 'clinician') summary.push(this.clearanceForm(blocked));
    }

    const boxes = Object.entries(this.contraindications).map(([key, label]) =>
      h(
        'label',
        { class: 'check' },
        h('input', { type: 'checkbox', name: key, checked: screening ? screening.answers[key] : false }),
        ` ${label}`,
      ),
    );
    const form = h(
      'form',
      {
        class: 'screening',
        onsubmit: async (e) => {
          e.preventDefault();
          const conditions = Object.keys(this.contraindications).filter((k) => e.target.elements[k].checked);
          const body = conditions.length ? { conditions } : { none_apply: true };
          try {
            await post(`/api/users/${encodeURIComponent(user.name)}/screening`, body);
            toast('Screening recorded');
            this.go('screening');
          } catch (err) {
            toast(`Not recorded: ${err.message}`, 'error');
          }
        },
      },
      h('h2', {}, screening ? 'Answer again' : 'Do any of these apply to you?'),
      h('div', { class: 'checks' }, boxes),
      h('button', { type: 'submit', class: 'btn primary' }, 'Record the answers'),
    );
    const next = screening && !blocked.length
      ? h('button', { type: 'button', class: 'btn primary wide', dataset: { next: 'checklist' }, onclick: () => this.go('checklist') }, 'These answers are still true — next')
      : null;
    this.frame(...summary, next, screening ? h('details', {}, h('summary', {}, 'Change the answers'), form) : form, h('div', { class: 'row' }, this.back()));
  }

  clearanceForm(blocked) {
    return h(
      'form',
      {
        class: 'clearance-form',
        onsubmit: async (e) => {
          e.preventDefault();
          const note = e.target.elements.note.value;
          try {
            await post(`/api/users/${encodeURIComponent(this.user.name)}/clearance`, { conditions: blocked, note });
            toast('Clearance recorded');
            this.go('screening');
          } catch (err) {
            toast(`Not recorded: ${err.message}`, 'error');
          }
        },
      },
      h('h2', {}, 'Clear for these conditions (clinician)'),
      h('label', {}, 'Note', h('input', { name: 'note', maxlength: 500 })),
      h('button', { type: 'submit', class: 'btn' }, 'Record the clearance'),
    );
  }

  // -- 3. checklist -----------------------------------------------------------------------

  renderChecklist() {
    const items = Object.entries(this.checklist).map(([key, label]) =>
      h(
        'label',
        { class: 'check big-check' },
        h('input', {
          type: 'checkbox',
          name: key,
          checked: Boolean(this.items[key]),
          onchange: (e) => (this.items[key] = e.target.checked),
        }),
        ` ${label[0].toUpperCase()}${label.slice(1)}`,
      ),
    );
    this.frame(
      h('div', { class: 'checks' }, items),
      h('div', { class: 'row' }, this.back(), h('button', { type: 'button', class: 'btn primary', dataset: { next: 'pain' }, onclick: () => this.go('pain') }, 'Next')),
    );
  }

  // -- 4. pain before ---------------------------------------------------------------------

  renderPain() {
    this.frame(
      h('p', {}, 'How much pain do you have now? 0 is none, 10 the worst.'),
      painPicker('Pain before the session', (n) => (this.pain = n), this.pain),
      h(
        'div',
        { class: 'row' },
        this.back(),
        h('button', { type: 'button', class: 'btn primary', dataset: { next: 'target' }, onclick: () => this.go('target') }, this.pain === null ? 'Skip' : 'Next'),
      ),
    );
    this.root.querySelector('.pain').addEventListener('click', () => {
      this.root.querySelector('[data-next]').textContent = 'Next';
    });
  }

  // -- 5. target and start ----------------------------------------------------------------

  async renderTarget() {
    const progress = await get(`/api/progress?user=${encodeURIComponent(this.user.name)}`);
    const plan = progress.plan;
    const t = plan.target;
    const reasons = h('ul', { class: 'reasons', role: 'alert' }, this.reasons.map((r) => h('li', {}, r)));
    this.frame(
      h(
        'dl',
        { class: 'target' },
        h('dt', {}, 'Angle'),
        h('dd', {}, `${t.angle_deg}°`),
        h('dt', {}, 'Each hold'),
        h('dd', {}, clock(t.hold_s)),
        h('dt', {}, 'Whole session'),
        h('dd', {}, clock(t.session_s)),
      ),
      h('p', {}, `Step ${plan.step} of the plan · ${plan.days_this_week} day(s) this week.`),
      plan.proposal ? h('p', { class: 'proposal' }, `Proposed: ${plan.proposal}`) : null,
      plan.notes.length ? h('ul', { class: 'notes' }, plan.notes.map((n) => h('li', {}, n))) : null,
      reasons,
      h(
        'div',
        { class: 'row' },
        this.back(),
        h('button', { id: 'start-session', type: 'button', class: 'btn primary big-btn', onclick: (e) => this.start(e.target) }, 'Start session'),
      ),
      h('p', { class: 'hint' }, 'Starting turns the alarm sound on for this phone.'),
    );
  }

  async start(button) {
    this.sound.unlock(); // inside the tap: the one gesture phones accept for audio
    button.disabled = true;
    const body = { user: this.user.name, pain_before: this.pain };
    for (const key of Object.keys(this.checklist)) body[key] = Boolean(this.items[key]);
    if (body.pain_before === null) delete body.pain_before;
    try {
      const result = await post('/api/session/start', body);
      const what = result.claimed ? `The running session is now ${this.user.name}'s` : 'Session started';
      toast(`${what}: up to ${result.target.angle_deg}° for ${clock(result.target.hold_s)}`);
      this.reset();
      this.onStarted(result);
    } catch (err) {
      this.reasons = err.body && err.body.reasons ? err.body.reasons : [err.message];
      button.disabled = false;
      await this.renderTarget();
    }
  }
}
