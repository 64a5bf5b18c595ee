// The Gallery view: search box (debounced), filters filled from the facets endpoint (one
// option per value, with counts), "fits this machine", sort, numbered paging, cards or list,
// the detail dialog. The filter state lives in the URL; every filter or page change is a
// history entry, and Back/Forward restore it (gallery_fromHistory).
import { api, api_paths, api_token, api_setToken } from './api.js';
import { h, $ } from './dom.js';
import { t, tn, fmtNumber } from './i18n.js';
import { errors_text } from './errors.js';
import { install_prune } from './install.js';
import { cards_group, cards_card, cards_langName } from './cards.js';
import { detail_open, detail_close, detail_current, detail_redraw } from './detail.js';
import { machine_load, machine_server, machine_override, machine_saveOverride, machine_isOwn, machine_effective } from './machine.js';
import { format_bytes } from './format.js';
import { QUERY_PAGE, query_defaults, query_facetFields, query_fits, query_fromUrl, query_filters, query_search, query_searchPath } from './query.js';

const gallery_defaults = query_defaults;
const gallery_facetFields = query_facetFields;
const gallery_fits = query_fits;
// Form fields by the API parameter they feed (to mark the one the server names in an error).
const gallery_fieldFor = {
  query: 'f-query', category: 'f-category', language: 'f-language', quantization: 'f-quantization',
  license: 'f-license', min_rating: 'f-rating', min_size_gb: 'f-min-size', max_size_gb: 'f-max-size',
  sort: 'f-sort', order: 'f-order', max_ram_gb: 'm-ram', max_vram_gb: 'm-vram', fit: 'f-fits',
};
const gallery_layoutKey = 'mg.layout';

let gallery_state = { ...gallery_defaults };
let gallery_facets = null;        // last facets answer's "facets"
let gallery_facetKey = '';        // the filters that answer was for
let gallery_last = null;          // last search answer
let gallery_seq = 0;              // answers to older requests are dropped
let gallery_abort = null;
let gallery_timer = null;
let gallery_detailPushed = false; // the open detail dialog has a history entry of its own
let gallery_firstCards = false;

// ---- state <-> URL ----

function gallery_fromUrl() { return query_fromUrl(location.search); }

// Writes the state to the URL: a new history entry when push and the URL changes.
function gallery_toUrl(push, extra = {}) {
  const q = new URLSearchParams(location.search);
  for (const [key, def] of Object.entries(gallery_defaults)) {
    const v = gallery_state[key];
    if (v === '' || v === def) q.delete(key); else q.set(key, v);
  }
  for (const [key, v] of Object.entries(extra)) if (v) q.set(key, v); else q.delete(key);
  const search = q.toString();
  const url = `${location.pathname}${search ? `?${search}` : ''}${location.hash}`;
  if (push && url !== `${location.pathname}${location.search}${location.hash}`) history.pushState(null, '', url);
  else history.replaceState(history.state, '', url);
}

// Back/Forward: the state comes from the URL again.
export function gallery_fromHistory() {
  const next = gallery_fromUrl();
  const changed = JSON.stringify(next) !== JSON.stringify(gallery_state);
  gallery_state = next;
  if (changed) {
    gallery_fillForm();
    gallery_search();
  }
  gallery_syncDetail();
}

// ---- the form ----

function gallery_fillForm() {
  const s = gallery_state;
  $('#f-query').value = s.query;
  for (const f of gallery_facetFields) gallery_fillFacet(f);
  gallery_fillSelect($('#f-rating'), ['1', '2', '3', '4', '4.5'].map((r) =>
    [r, t('filters.ratingOption', { rating: `${fmtNumber(Number(r), 1)} ★` })]), s.min_rating);
  $('#f-min-size').value = s.min_size_gb;
  $('#f-max-size').value = s.max_size_gb;
  $('#f-sort').value = s.sort;
  $('#f-order').value = s.order;
  $('#f-fits').checked = s.fits === '1';
  const m = machine_override();
  $('#m-ram').value = m.ram;
  $('#m-vram').value = m.vram;
  $('#m-token').value = api_token();
  gallery_activeCount();
}

// One option per facet value ("chat (1,234)"); a value from a shared URL that the facets do
// not list stays selectable.
function gallery_fillFacet(field) {
  const list = gallery_facets && Array.isArray(gallery_facets[field]) ? gallery_facets[field] : [];
  const name = field === 'language' ? (v) => `${cards_langName(v)} (${v})` : (v) => v;
  const pairs = list.filter((x) => x && typeof x.value === 'string' && x.value)
    .map((x) => [x.value, t('filters.optionCount', { value: name(x.value), count: fmtNumber(Number(x.count) || 0) })]);
  const sel = `#f-${field}`;
  gallery_fillSelect($(sel), pairs, gallery_state[field].toLowerCase());
}

function gallery_fillSelect(select, pairs, value) {
  const all = [['', t('filters.any')], ...pairs];
  if (value && !pairs.some(([v]) => v === value)) all.push([value, value]);
  const same = select.options.length === all.length &&
    all.every(([v, label], i) => select.options[i].value === v && select.options[i].text === label);
  if (!same) select.replaceChildren(...all.map(([v, label]) => h('option', { value: v, text: label })));
  select.value = value;
}

function gallery_readForm() {
  const out = {
    query: $('#f-query').value.trim(),
    min_rating: $('#f-rating').value,
    min_size_gb: $('#f-min-size').value.trim(),
    max_size_gb: $('#f-max-size').value.trim(),
    sort: $('#f-sort').value,
    order: $('#f-order').value,
    fits: $('#f-fits').checked ? '1' : '',
  };
  for (const f of gallery_facetFields) out[f] = $(`#f-${f}`).value;
  return out;
}

function gallery_activeCount() {
  const s = gallery_state;
  const n = [...gallery_facetFields, 'min_rating', 'min_size_gb', 'max_size_gb'].filter((k) => s[k] !== '').length;
  $('#filters-active').textContent = n ? fmtNumber(n) : '';
}

// Filter mistakes caught before any request: a size that is not a number, or an inverted
// range. Returns true when the form is fine; marks the fields and says why otherwise.
function gallery_validate() {
  const min = $('#f-min-size');
  const max = $('#f-max-size');
  let msg = '';
  if (min.validity.badInput || max.validity.badInput) msg = t('err.sizeNumber');
  else if (min.value !== '' && Number(min.value) < 0) msg = t('err.sizeNegative');
  else if (max.value !== '' && Number(max.value) < 0) msg = t('err.sizeNegative');
  else if (min.value !== '' && max.value !== '' && Number(min.value) > Number(max.value)) msg = t('err.sizeRange');
  $('#size-error').textContent = msg;
  for (const el of [min, max]) if (msg) el.setAttribute('aria-invalid', 'true'); else el.removeAttribute('aria-invalid');
  if (msg) $('#more-filters').open = true;
  return !msg;
}

// A change of the filters: back to the first page, a history entry; text waits for a pause.
function gallery_changed(delay) {
  clearTimeout(gallery_timer);
  const run = () => {
    if (!gallery_validate()) return;
    const next = { ...gallery_state, ...gallery_readForm(), offset: '0' };
    if (JSON.stringify(next) === JSON.stringify(gallery_state)) return;
    gallery_state = next;
    gallery_toUrl(true);
    gallery_activeCount();
    gallery_search();
  };
  if (delay > 0) gallery_timer = setTimeout(run, delay); else run();
}

function gallery_bindForm() {
  const form = $('#filters');
  form.addEventListener('submit', (ev) => { ev.preventDefault(); gallery_changed(0); });
  $('#f-query').addEventListener('input', () => gallery_changed(300));
  for (const id of ['#f-min-size', '#f-max-size']) $(id).addEventListener('input', () => gallery_changed(500));
  for (const id of ['#f-category', '#f-language', '#f-quantization', '#f-license', '#f-rating', '#f-sort', '#f-order', '#f-fits']) {
    $(id).addEventListener('change', () => gallery_changed(0));
  }
  for (const id of ['#m-ram', '#m-vram']) {
    $(id).addEventListener('input', () => {
      machine_saveOverride($('#m-ram').value.trim(), $('#m-vram').value.trim());
      gallery_machineBrief();
      clearTimeout(gallery_timer);
      gallery_timer = setTimeout(() => (gallery_state.fits === '1' ? gallery_search() : gallery_render()), 500);
    });
  }
  $('#m-token').addEventListener('change', (ev) => api_setToken(ev.target.value.trim()));
  $('#f-reset').addEventListener('click', () => {
    gallery_state = { ...gallery_defaults, limit: gallery_state.limit };
    $('#f-min-size').value = '';
    $('#f-max-size').value = '';
    gallery_validate();
    gallery_fillForm();
    gallery_toUrl(true);
    gallery_search();
    $('#f-query').focus();
  });
  $('#pager-prev').addEventListener('click', () => gallery_page((Number(gallery_state.offset) || 0) - gallery_limit()));
  $('#pager-next').addEventListener('click', () => gallery_page((Number(gallery_state.offset) || 0) + gallery_limit()));
  for (const b of document.querySelectorAll('#layout button')) {
    b.addEventListener('click', () => gallery_setLayout(b.dataset.layout));
  }
  const wide = window.matchMedia('(min-width: 700px)');
  $('#more-filters').open = wide.matches;
}

function gallery_setLayout(layout) {
  try { localStorage.setItem(gallery_layoutKey, layout); } catch { /* storage blocked */ }
  gallery_showLayout();
}

function gallery_showLayout() {
  let layout = 'cards';
  try { layout = localStorage.getItem(gallery_layoutKey) === 'list' ? 'list' : 'cards'; } catch { /* storage blocked */ }
  $('#cards').classList.toggle('list', layout === 'list');
  for (const b of document.querySelectorAll('#layout button')) b.setAttribute('aria-pressed', String(b.dataset.layout === layout));
}

function gallery_limit() {
  const n = Number(gallery_state.limit);
  return Number.isInteger(n) && n > 0 ? n : QUERY_PAGE;
}

function gallery_page(offset) {
  gallery_state = { ...gallery_state, offset: String(Math.max(0, offset)) };
  gallery_toUrl(true);
  gallery_search().then(() => $('#results-summary').focus());
}

// ---- the machine ----

function gallery_machineBrief() {
  const eff = machine_effective();
  const srv = machine_server();
  $('#machine-brief').textContent = eff
    ? t(eff.own ? 'machine.briefOwn' : 'machine.brief', { ram: fmtNumber(eff.ram, 1), vram: fmtNumber(eff.vram, 1) }) : '';
  const fact = (key, value) => h('div', { class: 'fact' }, h('dt', { text: t(key) }), h('dd', { text: value }));
  $('#machine-profile').replaceChildren(...(srv ? [
    fact('machine.serverRam', format_bytes(Number(srv.ram_bytes))),
    fact('machine.serverVram', Number(srv.vram_bytes) > 0 ? format_bytes(Number(srv.vram_bytes)) : t('machine.noGpu')),
    fact('machine.gpus', Array.isArray(srv.gpus) && srv.gpus.length ? srv.gpus.map((g) => g.name).join(', ') : t('machine.noGpu')),
    fact('machine.cores', fmtNumber(Number(srv.cpu_cores) || 0)),
    fact('machine.disk', srv.disk ? t('machine.diskFree', { free: format_bytes(Number(srv.disk.free_bytes)) }) : '–'),
  ] : []));
  if (srv) {
    $('#m-ram').placeholder = fmtNumber(Number(srv.ram_bytes) / 1e9, 1);
    $('#m-vram').placeholder = fmtNumber(Number(srv.vram_bytes) / 1e9, 1);
  }
}

// ---- searching ----

// The filters of the current state; says under the "fits" box which figures it uses.
function gallery_filterParams() {
  const s = gallery_state;
  const eff = machine_effective();
  const hint = $('#fits-hint');
  hint.textContent = '';
  if (s.fits === '1' && eff) {
    hint.textContent = t(eff.own ? 'machine.usingOwn' : 'machine.using',
      { ram: fmtNumber(eff.ram, 1), vram: fmtNumber(eff.vram, 1) });
  }
  return query_filters(s, eff);
}

function gallery_params() {
  gallery_filterParams();
  return query_search(gallery_state, machine_effective());
}

// The facets for the current filters (each counted without its own filter), fetched only
// when the filters changed (not for another page). Resolves to a function that fills the
// options, called after the cards are drawn (the cards come first).
async function gallery_loadFacets(signal) {
  const p = gallery_filterParams();
  p.set('facet_limit', '100');
  const key = p.toString();
  if (key === gallery_facetKey && gallery_facets) return () => {};
  try {
    const body = await api(api_paths.facets(key), { signal });
    return () => {
      gallery_facets = (body && body.facets) || {};
      gallery_facetKey = key;
      gallery_fillFacets();
    };
  } catch (e) {
    if (e.name === 'AbortError') return () => {};
    return () => { gallery_facets = gallery_facets || {}; gallery_fillFacets(); };
  }
}

function gallery_fillFacets() {
  for (const f of gallery_facetFields) gallery_fillFacet(f);
  gallery_fitsCount();
}

function gallery_fitsCount() {
  const list = gallery_facets && Array.isArray(gallery_facets.fit) ? gallery_facets.fit : [];
  const n = list.filter((x) => x && gallery_fits.split(',').includes(x.value)).reduce((a, x) => a + (Number(x.count) || 0), 0);
  $('#fits-count').textContent = list.length && !machine_isOwn() ? t('filters.countOnly', { count: fmtNumber(n) }) : '';
}

export async function gallery_search() {
  clearTimeout(gallery_timer);
  if (gallery_abort) gallery_abort.abort();
  gallery_abort = new AbortController();
  const { signal } = gallery_abort;
  const seq = ++gallery_seq;
  const cards = $('#cards');
  cards.setAttribute('aria-busy', 'true');
  $('#results-summary').textContent = t('results.loading');
  gallery_markInvalid(null);
  const facets = gallery_loadFacets(signal);
  try {
    const body = await api(query_searchPath(gallery_params()), { signal });
    if (seq !== gallery_seq) return;
    gallery_last = body;
    gallery_render();
  } catch (e) {
    if (e.name === 'AbortError' || seq !== gallery_seq) return;
    gallery_last = null;
    gallery_markInvalid(e.parameter);
    gallery_renderError(e);
  } finally {
    if (seq === gallery_seq) cards.removeAttribute('aria-busy');
  }
  const fill = await facets;
  if (seq === gallery_seq) fill();
}

function gallery_markInvalid(parameter) {
  document.querySelectorAll('#filters [aria-invalid]').forEach((el) => {
    if (el.id !== 'f-min-size' && el.id !== 'f-max-size') el.removeAttribute('aria-invalid');
  });
  if (!parameter) { gallery_validate(); return; }
  const id = gallery_fieldFor[parameter];
  if (id) $(`#${id}`).setAttribute('aria-invalid', 'true');
}

function gallery_renderError(e) {
  $('#results-summary').textContent = '';
  $('#cards').replaceChildren(h('div', { class: 'empty error-box', role: 'alert' },
    h('p', { class: 'empty-title', text: t('error.search', { message: errors_text(e) }) })));
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
  const cards = $('#cards');
  const focused = document.activeElement && cards.contains(document.activeElement) ? document.activeElement : null;
  const focusKey = focused ? gallery_focusKey(focused) : null;
  cards.replaceChildren(...(models.length ? cards_group(models).map((g) => cards_card(g, gallery_details)) : [gallery_empty()]));
  if (focusKey) gallery_refocus(focusKey);
  install_prune();
  gallery_renderPager(total, offset, Number(body.limit) || gallery_limit());
  if (!gallery_firstCards && models.length) {
    gallery_firstCards = true;
    performance.mark('mg-first-cards');
  }
}

// Focus survives a redraw: the same control of the same model's card.
function gallery_focusKey(el) {
  const card = el.closest('article');
  return card ? { id: card.dataset.modelId, cls: el.className.split(' ').pop() } : null;
}

function gallery_refocus(key) {
  const card = document.querySelector(`#cards article[data-model-id="${CSS.escape(key.id)}"]`);
  const target = card && (card.querySelector(`.${CSS.escape(key.cls)}`) || card.querySelector('button'));
  if (target) target.focus();
}

function gallery_empty() {
  return h('div', { class: 'empty', role: 'status' },
    h('p', { class: 'empty-title', text: t('results.empty') }),
    h('p', { class: 'muted', text: t('results.emptyHint') }),
    h('button', { type: 'button', class: 'btn', onclick: () => $('#f-reset').click() }, t('filters.reset')));
}

// 1 … 4 5 6 … 834: the first, the last and two around the current page.
function gallery_renderPager(total, offset, limit) {
  const pages = Math.max(1, Math.ceil(total / limit));
  const page = Math.floor(offset / limit) + 1;
  $('#pager').hidden = pages <= 1 && offset === 0;
  $('#pager-status').textContent = t('pager.status', { page: fmtNumber(page), pages: fmtNumber(pages) });
  $('#pager-prev').disabled = offset <= 0;
  $('#pager-next').disabled = offset + limit >= total;
  const shown = [...new Set([1, page - 2, page - 1, page, page + 1, page + 2, pages])]
    .filter((n) => n >= 1 && n <= pages).sort((a, b) => a - b);
  const items = [];
  let prev = 0;
  for (const n of shown) {
    if (n > prev + 1) items.push(h('li', { class: 'pager-gap', 'aria-hidden': 'true', text: '…' }));
    items.push(h('li', {}, h('button', { type: 'button', class: 'btn pager-page', dataset: { page: String(n) },
      'aria-label': t('pager.page', { page: fmtNumber(n), pages: fmtNumber(pages) }),
      'aria-current': n === page ? 'page' : null,
      onclick: () => gallery_page((n - 1) * limit) }, fmtNumber(n))));
    prev = n;
  }
  $('#pager-pages').replaceChildren(...items);
}

// ---- the detail dialog ----

function gallery_details(m, opener = document.activeElement) {
  gallery_detailPushed = true;
  gallery_toUrl(true, { model: m.id });
  detail_open(m, { opener, onClose: gallery_detailClosed });
}

function gallery_detailClosed() {
  if (gallery_detailPushed) { gallery_detailPushed = false; history.back(); return; }
  gallery_toUrl(false, { model: '' });
}

// Opens or closes the dialog as the URL says (page open, Back/Forward).
async function gallery_syncDetail() {
  const id = new URLSearchParams(location.search).get('model');
  const cur = detail_current();
  if (!id) { gallery_detailPushed = false; if (cur) detail_close(); return; }
  if (cur && cur.id === id) return;
  let m = gallery_last && Array.isArray(gallery_last.models) ? gallery_last.models.find((x) => x.id === id) : null;
  if (!m) {
    try {
      const body = await api(api_paths.search(new URLSearchParams({ query: id, limit: '100' })));
      m = (body.models || []).find((x) => x.id === id) || null;
    } catch { m = null; }
  }
  if (m) detail_open(m, { opener: null, onClose: gallery_detailClosed });
}

// ---- start ----

// gallery_init: reads the URL and sends the first search at once (the filter options come
// from the facets answer beside it; the machine profile after it), then the detail dialog.
export async function gallery_init() {
  gallery_state = gallery_fromUrl();
  gallery_showLayout();
  const first = gallery_search();   // the requests go out before anything else is set up
  gallery_bindForm();
  gallery_fillForm();
  const machine = machine_load().then(() => {
    gallery_machineBrief();
    if (machine_isOwn() && gallery_last) gallery_render();
    if (gallery_state.fits === '1') gallery_filterParams();
  });
  await first;
  await machine;
  await gallery_syncDetail();
}

// After a language switch: labels of the options and the cards change.
export function gallery_relabel() {
  gallery_fillForm();
  gallery_filterParams();
  gallery_fitsCount();
  gallery_machineBrief();
  gallery_validate();
  if (gallery_last) gallery_render(); else if (gallery_state) gallery_search();
  detail_redraw();
}

