// Tiny DOM helpers: h() builds elements from data without innerHTML (no markup injection),
// the banner for page-wide messages, the confirmation dialog, screen-reader announcements.
import { t } from './i18n.js';

// h(tag, attrs, ...children): attrs keys: class, text, on{Event} handlers, dataset
// (object), boolean true/false attributes, anything else via setAttribute.
// Children may be nodes, strings, numbers, null/false (skipped) or arrays of those.
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === 'class') el.className = value;
    else if (key === 'text') el.textContent = value;
    else if (key === 'dataset') Object.assign(el.dataset, value);
    else if (key.startsWith('on') && typeof value === 'function') el.addEventListener(key.slice(2).toLowerCase(), value);
    else if (value === true) el.setAttribute(key, '');
    else el.setAttribute(key, String(value));
  }
  dom_append(el, children);
  return el;
}

function dom_append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) dom_append(el, child);
    else el.append(child instanceof Node ? child : String(child));
  }
}

// dom_set(el, ...children): replaces the children; null/false skipped, arrays flattened.
export function dom_set(el, ...children) {
  el.replaceChildren();
  dom_append(el, children);
}

export function $(selector, root = document) { return root.querySelector(selector); }

// Announces text to screen readers through the page's polite live region.
export function announce(text) {
  const region = document.getElementById('sr-live');
  if (!region) return;
  region.textContent = '';
  setTimeout(() => { region.textContent = text; }, 30);
}

// A safe fragment of an id for element ids.
export function dom_idPart(id) {
  return String(id).replace(/[^A-Za-z0-9_-]/g, '_');
}

// Shows a message in the page's banner (role=alert); kind 'error' or 'warn' or 'info'.
// A message with the same key replaces the earlier one; banner_clear(key) removes it. An
// 'info' notice closes itself after banner_infoMs.
export const banner_infoMs = 8000;
export function banner(text, kind = 'error', key = text) {
  const box = document.getElementById('banner');
  if (!box) return;
  banner_clear(key);
  const item = h('div', { class: `notice notice-${kind}`, dataset: { key } },
    h('p', { text }),
    h('button', { type: 'button', class: 'notice-close', 'data-i18n-aria-label': 'error.dismiss',
      'aria-label': t('error.dismiss'), onclick: () => banner_clear(key) }, '×'));
  box.append(item);
  box.hidden = false;
  if (kind === 'info') setTimeout(() => { if (item.isConnected) banner_remove(item); }, banner_infoMs);
}

// Removes one notice; focus inside it goes to the main area rather than the page body.
function banner_remove(item) {
  const box = item.parentNode;
  const hadFocus = item.contains(document.activeElement);
  item.remove();
  if (box) box.hidden = !box.querySelector('.notice');
  if (hadFocus) document.getElementById('main').focus();
}

export function banner_clear(key) {
  const box = document.getElementById('banner');
  if (!box) return;
  for (const el of box.querySelectorAll('.notice')) if (el.dataset.key === key) banner_remove(el);
  box.hidden = !box.querySelector('.notice');
}

// Asks for confirmation in the page's <dialog>; resolves true when confirmed.
export function confirm_ask(title, text, okLabel, cancelLabel) {
  const dlg = document.getElementById('confirm');
  dlg.querySelector('#confirm-title').textContent = title;
  dlg.querySelector('#confirm-text').textContent = text;
  dlg.querySelector('button[value=ok]').textContent = okLabel;
  dlg.querySelector('button[value=cancel]').textContent = cancelLabel;
  const opener = document.activeElement;
  dlg.returnValue = '';
  dlg.showModal();
  dlg.querySelector('button[value=cancel]').focus();
  return new Promise((resolve) => {
    dlg.addEventListener('close', () => {
      if (opener && opener.isConnected) opener.focus();
      resolve(dlg.returnValue === 'ok');
    }, { once: true });
  });
}
