// Texts and number/date formats in the chosen language (German or English).
// The language comes from localStorage, else from navigator.language; setLang switches it.
import de from '../i18n/de.js';
import en from '../i18n/en.js';

const i18n_tables = { de, en };
const i18n_storageKey = 'mg.lang';
const i18n_listeners = new Set();
let i18n_lang = i18n_initial();

function i18n_initial() {
  let stored = null;
  try { stored = localStorage.getItem(i18n_storageKey); } catch { /* storage blocked */ }
  if (stored && i18n_tables[stored]) return stored;
  const browser = (navigator.languages && navigator.languages[0]) || navigator.language || 'en';
  return browser.toLowerCase().startsWith('de') ? 'de' : 'en';
}

export function lang() { return i18n_lang; }

// t(key, params): the text for key with {name} replaced by params.name.
export function t(key, params = {}) {
  const text = i18n_tables[i18n_lang][key] ?? en[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (m, name) => (name in params ? String(params[name]) : m));
}

// t_has(key): whether the current language (or English) has a text for key.
export function t_has(key) {
  return key in i18n_tables[i18n_lang] || key in en;
}

// tn(key, count, params): picks key.one / key.other by the plural rules of the language.
export function tn(key, count, params = {}) {
  const form = i18n_intl(Intl.PluralRules).select(count) === 'one' ? 'one' : 'other';
  return t(`${key}.${form}`, { count: fmtNumber(count), ...params });
}

export function setLang(next) {
  if (!i18n_tables[next] || next === i18n_lang) return;
  i18n_lang = next;
  try { localStorage.setItem(i18n_storageKey, next); } catch { /* storage blocked */ }
  i18n_apply(document);
  i18n_listeners.forEach((fn) => fn(next));
}

export function onLangChange(fn) { i18n_listeners.add(fn); }

// i18n_apply: fills every element marked data-i18n (text), data-i18n-placeholder,
// data-i18n-aria-label, data-i18n-title below root.
export function i18n_apply(root) {
  document.documentElement.lang = i18n_lang;
  document.title = t('app.title');
  root.querySelectorAll('[data-i18n]').forEach((el) => { el.textContent = t(el.dataset.i18n); });
  for (const attr of ['placeholder', 'aria-label', 'title']) {
    const data = `data-i18n-${attr}`;
    root.querySelectorAll(`[${data}]`).forEach((el) => el.setAttribute(attr, t(el.getAttribute(data))));
  }
}

// i18n_intl(kind, options): an Intl formatter for the current language, made once (making
// one costs far more than using it).
const i18n_intlCache = new Map();
export function i18n_intl(Kind, options = {}) {
  const key = `${Kind.name}|${i18n_lang}|${JSON.stringify(options)}`;
  let f = i18n_intlCache.get(key);
  if (!f) { f = new Kind(i18n_lang, options); i18n_intlCache.set(key, f); }
  return f;
}

export function fmtNumber(n, digits = 0) {
  return i18n_intl(Intl.NumberFormat, { maximumFractionDigits: digits }).format(n);
}
