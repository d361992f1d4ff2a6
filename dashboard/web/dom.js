// A few DOM helpers: build elements, show messages. No framework.

/** An element: h('button', { class: 'big', onclick: fn }, 'text', child, ...). */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith('on')) el.addEventListener(key.slice(2), value);
    else if (key === 'class') el.className = value;
    else if (key === 'dataset') Object.assign(el.dataset, value);
    else if (key === 'html') el.innerHTML = value;
    // through the CSSOM: the Content-Security-Policy refuses inline style attributes
    else if (key === 'style') el.style.cssText = String(value);
    else el.setAttribute(key, value === true ? '' : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** Replace an element's children. */
export function fill(el, ...children) {
  el.replaceChildren();
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export const $ = (selector, root = document) => root.querySelector(selector);

let toastTimer = null;

/** A short message at the bottom of the screen (also read out by screen readers). */
export function toast(text, kind = 'info') {
  const el = $('#toast');
  el.textContent = text;
  el.dataset.kind = kind;
  el.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => {
    el.hidden = true;
  }, 5000);
}

/** An inline SVG icon for a priority: octagon (high), triangle (medium), circle (low). */
export function priorityIcon(priority) {
  const shapes = {
    high: '<polygon points="7,1 17,1 23,7 23,17 17,23 7,23 1,17 1,7"/><text x="12" y="17.5">!</text>',
    medium: '<polygon points="12,1.5 23,22 1,22"/><text x="12" y="19.5">!</text>',
    low: '<circle cx="12" cy="12" r="11"/><text x="12" y="17.5">i</text>',
  };
  const span = h('span', { class: `icon icon-${priority}`, 'aria-hidden': 'true' });
  span.innerHTML = `<svg viewBox="0 0 24 24" width="1.4em" height="1.4em">${shapes[priority] || shapes.low}</svg>`;
  return span;
}

/** A row of 0-10 buttons for a pain score; resolves the chosen value through onpick. */
export function painPicker(name, onpick, value = null) {
  const group = h('div', { class: 'pain', role: 'radiogroup', 'aria-label': name });
  for (let n = 0; n <= 10; n += 1) {
    const button = h(
      'button',
      {
        type: 'button',
        role: 'radio',
        class: 'pain-n',
        'aria-checked': value === n ? 'true' : 'false',
        dataset: { pain: String(n) },
        onclick: () => {
          for (const b of group.children) b.setAttribute('aria-checked', 'false');
          button.setAttribute('aria-checked', 'true');
          onpick(n);
        },
      },
      String(n),
    );
    group.append(button);
  }
  return group;
}
