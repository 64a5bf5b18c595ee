// The Gallery view: search box (debounced), filters, "fits this machine", sort, paging,
// model cards; the filter state lives in the URL so a search can be shared.
import { api, api_paths, api_token, api_setToken } from './api.js';
import { h, $, banner, banner_clear, dom_idPart } from './dom.js';
import { t, tn, lang, fmtNumber } from './i18n.js';
import { format_gb, format_date } from './format.js';
import { install_area, install_prune } from './install.js';

export const GALLERY_PAGE = 12;
const gallery_defaults = {
  query: '', category: '', language: '', min_rating: '', min_size_gb: '', max_size_gb: '',
  sort: 'rating', order: '', fits: '', offset: '0', limit: String(GALLERY_PAGE),
};
const gallery_machineKey = 'mg.machine';
// Form fields by the API parameter they feed (to mark the one the server names in an error).
const gallery_fieldFor = {
  query: 'f-query', category: 'f-category', language: 'f-language', min_rating: 'f-rating',
  min_size_gb: 'f-min-size', max_size_gb: 'f-max-size', sort: 'f-sort', order: 'f-order',
  max_ram_gb: 'm-ram', max_vram_gb: 'm-vram',
};

let gallery_state = { ...gallery_defaults };
let gallery_options = { categories: [], languages: [] };
let gallery_last = null;          // last search answer
let gallery_seq = 0;              // answers to older requests are dropped
let gallery_abort = null;
let gallery_timer = null;

// ---- state <-> URL ----

function gallery_fromUrl() {
  const q = new URLSearchParams(location.search);
  const s = { ...gallery_defaults };
  for (const key of Object.keys(gallery_defaults)) if (q.has(key)) s[key] = q.get(key);
  return s;
}

function gallery_toUrl() {
  const q = new URLSearchParams(location.search);
  for (const [key, def] of Object.entries(gallery_defaults)) {
    const v = gallery_state[key];
    if (v === '' || v === def) q.delete(key); else q.set(key, v);
  }
  const search = q.toString();
  history.replaceState(history.state, '', `${location.pathname}${search ? `?${search}` : ''}${location.hash}`);
}

// ---- the machine (RAM/VRAM kept in localStorage) ----

function gallery_machine() {
  try {
    const m = JSON.parse(localStorage.getItem(gallery_machineKey) || '{}');
    return { ram: m.ram ?? '', vram: m.vram ?? '' };
  } catch { return { ram: '', vram: '' }; }
}

function gallery_saveMachine() {
  const m = { ram: $('#m-ram').value.trim(), vram: $('#m-vram').value.trim() };
  try { localStorage.setItem(gallery_machineKey, JSON.stringify(m)); } catch { /* storage blocked */ }
}

// ---- the form ----

function gallery_fillForm() {
  const s = gallery_state;
  $('#f-query').value = s.query;
  gallery_fillSelect($('#f-category'), gallery_options.categories.map((c) => [c, c]), s.category);
  gallery_fillSelect($('#f-language'), gallery_options.languages.map((l) => [l, gallery_langName(l)]), s.language);
  gallery_fillSelect($('#f-rating'), ['1', '2', '3', '4', '4.5'].map((r) =>
    [r, t('filters.ratingOption', { rating: `${fmtNumber(Number(r), 1)} ★` })]), s.min_rating);
  $('#f-min-size').value = s.min_size_gb;
  $('#f-max-size').value = s.max_size_gb;
  $('#f-sort').value = s.sort;
  $('#f-order').value = s.order;
  $('#f-fits').checked = s.fits === '1';
  const m = gallery_machine();
  $('#m-ram').value = m.ram;
  $('#m-vram').value = m.vram;
  $('#m-token').value = api_token();
}

// Options with an "Any" first; a value from a shared URL that is not known stays selectable.
function gallery_fillSelect(select, pairs, value) {
  const all = [['', t('filters.any')], ...pairs];
  if (value && !pairs.some(([v]) => v === value)) all.push([value, value]);
  select.replaceChildren(...all.map(([v, label]) => h('option', { value: v, text: label })));
  select.value = value;
}

function gallery_langName(code) {
  try {
    const name = new Intl.DisplayNames([lang()], { type: 'language' }).of(code);
    return name && name !== code ? `${name} (${code})` : code;
  } catch { return code; }
}

function gallery_readForm() {
  return {
    query: $('#f-query').value.trim(),
    category: $('#f-category').value,
    language: $('#f-language').value,
    min_rating: $('#f-rating').value,
    min_size_gb: $('#f-min-size').value.trim(),
    max_size_gb: $('#f-max-size').value.trim(),
    sort: $('#f-sort').value,
    order: $('#f-order').value,
    fits: $('#f-fits').checked ? '1' : '',
  };
}

// A change of the filters: back to the first page; text waits for a pause in typing.
function gallery_changed(delay) {
  gallery_state = { ...gallery_state, ...gallery_readForm(), offset: '0' };
  gallery_toUrl();
  clearTimeout(gallery_timer);
  if (delay > 0) gallery_timer = setTimeout(gallery_search, delay);
  else gallery_search();
}

function gallery_bindForm() {
  const form = $('#filters');
  form.addEventListener('submit', (ev) => { ev.preventDefault(); gallery_changed(0); });
  $('#f-query').addEventListener('input', () => gallery_changed(300));
  for (const id of ['#f-min-size', '#f-max-size']) $(id).addEventListener('input', () => gallery_changed(500));
  for (const id of ['#f-category', '#f-language', '#f-rating', '#f-sort', '#f-order', '#f-fits']) {
    $(id).addEventListener('change', () => gallery_changed(0));
  }
  for (const id of ['#m-ram', '#m-vram']) {
    $(id).addEventListener('input', () => {
      gallery_saveMachine();
      if ($('#f-fits').checked) gallery_changed(500);
    });
  }
  $('#m-token').addEventListener('change', (ev) => api_setToken(ev.target.value.trim()));
  $('#f-reset').addEventListener('click', () => {
    gallery_state = { ...gallery_defaults, limit: gallery_state.limit };
    gallery_fillForm();
    gallery_toUrl();
    gallery_search();
    $('#f-query').focus();
  });
  $('#pager-prev').addEventListener('click', () => gallery_page(-1));
  $('#pager-next').addEventListener('click', () => gallery_page(1));
}

function gallery_limit() {
  const n = Number(gallery_state.limit);
  return Number.isInteger(n) && n > 0 ? n : GALLERY_PAGE;
}

function gallery_page(step) {
  const offset = Math.max(0, (Number(gallery_state.offset) || 0) + step * gallery_limit());
  gallery_state = { ...gallery_state, offset: String(offset) };
  gallery_toUrl();
  gallery_search().then(() => $('#results-summary').focus());
}

// ---- searching ----

function gallery_params() {
  const s = gallery_state;
  const p = new URLSearchParams();
  for (const key of ['query', 'category', 'language', 'min_rating', 'min_size_gb', 'max_size_gb', 'sort', 'order']) {
    if (s[key] !== '') p.set(key, s[key]);
  }
  const hint = $('#fits-hint');
  hint.textContent = '';
  if (s.fits === '1') {
    const m = gallery_machine();
    if (m.ram !== '') p.set('max_ram_gb', m.ram);
    if (m.vram !== '') p.set('max_vram_gb', m.vram);
    if (m.ram === '' && m.vram === '') {
      hint.textContent = t('machine.missing');
      $('#machine').open = true;
    } else if (m.ram !== '' && m.vram !== '') hint.textContent = t('machine.using', m);
    else hint.textContent = m.ram !== '' ? t('machine.usingRam', m) : t('machine.usingVram', m);
  }
  p.set('limit', s.limit || String(GALLERY_PAGE));
  p.set('offset', s.offset || '0');
  return p;
}

export async function gallery_search() {
  clearTimeout(gallery_timer);
  if (gallery_abort) gallery_abort.abort();
  gallery_abort = new AbortController();
  const seq = ++gallery_seq;
  const cards = $('#cards');
  cards.setAttribute('aria-busy', 'true');
  $('#results-summary').textContent = t('results.loading');
  gallery_markInvalid(null);
  try {
    const body = await api(api_paths.search(gallery_params()), { signal: gallery_abort.signal });
    if (seq !== gallery_seq) return;
    gallery_last = body;
    banner_clear('search');
    gallery_render();
  } catch (e) {
    if (e.name === 'AbortError' || seq !== gallery_seq) return;
    gallery_last = null;
    gallery_markInvalid(e.parameter);
    gallery_renderError(e);
  } finally {
    if (seq === gallery_seq) cards.removeAttribute('aria-busy');
  }
}

function gallery_markInvalid(parameter) {
  document.querySelectorAll('#filters [aria-invalid], #machine [aria-invalid]').forEach((el) => el.removeAttribute('aria-invalid'));
  const id = parameter && gallery_fieldFor[parameter];
  if (id) $(`#${id}`).setAttribute('aria-invalid', 'true');
}

function gallery_renderError(e) {
  $('#results-summary').textContent = '';
  $('#cards').replaceChildren(h('div', { class: 'empty error-box', role: 'alert' },
    h('p', { class: 'empty-title', text: t('error.search', { message: e.message }) })));
  $('#pager').hidden = true;
}

// ---- drawing ----

export function gallery_render() {
  const body = gallery_last;
  if (!body) return;
  const models = Array.isArray(body.models) ? body.models : [];
  const total = Number(body.total) || 0;
  const offset = Number(body.offset) || 0;
  const summary = $('#results-summary');
  summary.textContent = total === 0 ? '' : `${tn('results.summary', total)}${total > models.length
    ? ` · ${t('results.range', { from: fmtNumber(offset + 1), to: fmtNumber(offset + models.length) })}` : ''}`;
  $('#cards').replaceChildren(...(models.length ? models.map(gallery_card) : [gallery_empty()]));
  install_prune();
  gallery_renderPager(total, offset, Number(body.limit) || gallery_limit());
}

function gallery_empty() {
  return h('div', { class: 'empty', role: 'status' },
    h('p', { class: 'empty-title', text: t('results.empty') }),
    h('p', { class: 'muted', text: t('results.emptyHint') }),
    h('button', { type: 'button', class: 'btn', onclick: () => $('#f-reset').click() }, t('filters.reset')));
}

function gallery_renderPager(total, offset, limit) {
  const pages = Math.ceil(total / limit);
  const page = Math.floor(offset / limit) + 1;
  $('#pager').hidden = pages <= 1 && offset === 0;
  $('#pager-status').textContent = t('pager.status', { page: fmtNumber(page), pages: fmtNumber(Math.max(pages, 1)) });
  $('#pager-prev').disabled = offset <= 0;
  $('#pager-next').disabled = offset + limit >= total;
}

function gallery_card(m) {
  const titleId = `card-${dom_idPart(m.id)}`;
  return h('article', { class: 'card', 'aria-labelledby': titleId, dataset: { modelId: m.id } },
    h('header', { class: 'card-head' },
      h('h3', { id: titleId, class: 'card-title', text: m.name }),
      gallery_rating(m.rating)),
    m.description ? h('p', { class: 'card-desc', text: m.description }) : null,
    h('dl', { class: 'facts' },
      gallery_fact('card.parameters', m.parameters),
      gallery_fact('card.quantization', m.quantization),
      gallery_fact('card.size', Number.isFinite(m.sizeGb) ? format_gb(m.sizeGb) : null),
      gallery_fact('card.context', Number.isFinite(m.contextLength)
        ? t('card.contextValue', { tokens: fmtNumber(m.contextLength) }) : null),
      gallery_fact('card.license', m.license),
      gallery_fact('card.hardware', gallery_hardware(m.recommendedHardware), 'wide'),
      m.fit ? gallery_fact('card.fit', `${t(`fit.${m.fit}`)}${m.fit_estimated ? ` ${t('fit.estimated')}` : ''}`) : null,
      gallery_fact('card.languages', gallery_list(m.languages, gallery_langName), 'wide'),
      m.updatedAt ? gallery_fact('card.updated', format_date(m.updatedAt, false)) : null),
    gallery_chips('card.categories', m.categories, 'chip-cat'),
    gallery_chips('card.tags', m.tags, 'chip-tag'),
    install_area(m));
}

function gallery_fact(key, value, extra = '') {
  return h('div', { class: `fact ${extra}` },
    h('dt', { text: t(key) }),
    h('dd', { class: value ? '' : 'muted', text: value || t('card.unknown') }));
}

function gallery_list(arr, map = (x) => x) {
  return Array.isArray(arr) && arr.length ? arr.map(map).join(', ') : null;
}

function gallery_hardware(hw) {
  if (!hw || typeof hw !== 'object') return null;
  const parts = [];
  if (Number.isFinite(hw.ramGb)) parts.push(t('card.ram', { gb: fmtNumber(hw.ramGb, 1) }));
  if (Number.isFinite(hw.vramGb)) parts.push(t('card.vram', { gb: fmtNumber(hw.vramGb, 1) }));
  if (hw.cpu) parts.push(`CPU: ${hw.cpu}`);
  if (hw.gpu) parts.push(`GPU: ${hw.gpu}`);
  return parts.length ? parts.join(' · ') : null;
}

function gallery_chips(labelKey, arr, cls) {
  if (!Array.isArray(arr) || !arr.length) return null;
  return h('div', { class: 'chips-row' },
    h('span', { class: 'sr-only', text: `${t(labelKey)}:` }),
    h('ul', { class: 'chips', 'aria-label': t(labelKey) }, arr.map((x) => h('li', { class: `chip ${cls}`, text: x }))));
}

function gallery_rating(rating) {
  if (!Number.isFinite(rating)) return h('p', { class: 'rating muted', text: t('card.noRating') });
  const full = Math.round(rating);
  return h('p', { class: 'rating', title: t('card.rating', { rating: fmtNumber(rating, 1) }) },
    h('span', { class: 'stars', 'aria-hidden': 'true', text: '★'.repeat(full) + '☆'.repeat(Math.max(0, 5 - full)) }),
    h('span', { class: 'sr-only', text: t('card.rating', { rating: fmtNumber(rating, 1) }) }),
    h('span', { class: 'rating-num', 'aria-hidden': 'true', text: fmtNumber(rating, 1) }));
}

// ---- start ----

// gallery_init: reads the URL, loads the filter options once (the category and language
// facets: GET /api/models/gallery/facets, a few hundred bytes), then runs the first search.
export async function gallery_init() {
  gallery_state = gallery_fromUrl();
  gallery_bindForm();
  gallery_fillForm();
  try {
    const body = await api(api_paths.facets('facet_limit=1000'));
    const facets = (body && body.facets) || {};
    const values = (f) => (Array.isArray(facets[f]) ? facets[f] : [])
      .map((x) => x && x.value).filter((v) => typeof v === 'string' && v);
    const sort = (a, b) => a.localeCompare(b, undefined, { sensitivity: 'base' });
    gallery_options = { categories: values('category').sort(sort), languages: values('language').sort(sort) };
    banner_clear('gallery');
  } catch (e) {
    banner(t('error.galleryLoad', { message: e.message }), 'error', 'gallery');
  }
  gallery_fillForm();
  await gallery_search();
}

// After a language switch: labels of the options and the cards change.
export function gallery_relabel() {
  gallery_fillForm();
  gallery_params();
  gallery_render();
}
