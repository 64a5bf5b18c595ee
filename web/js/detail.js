// The detail view of one model: a modal dialog with every field, the install area and the
// preflight answer (GET /api/models/gallery/{id}/preflight: disk space and fit) — nothing
// is queued by opening it. detail_open(model, opener) shows it; closing gives focus back.
import { api } from './api.js';
import { h, $, dom_set } from './dom.js';
import { t, fmtNumber } from './i18n.js';
import { format_bytes, format_gb, format_date } from './format.js';
import { errors_text } from './errors.js';
import { install_area, install_prune } from './install.js';
import { cards_rating, cards_fitBadge, cards_langName } from './cards.js';

let detail_model = null;
let detail_opener = null;
let detail_onClose = null;

export function detail_current() { return detail_model; }

// detail_open(model, {opener, onClose}): borrowed model; onClose runs when the user closes it.
export function detail_open(model, { opener = null, onClose = null } = {}) {
  const dlg = $('#detail');
  detail_model = model;
  detail_opener = opener;
  detail_onClose = onClose;
  detail_draw();
  if (!dlg.open) dlg.showModal();
  $('#detail-title').focus();
  detail_preflight(model);
}

// Closes without calling onClose (Back in the browser).
export function detail_close() {
  const dlg = $('#detail');
  detail_onClose = null;
  if (dlg.open) dlg.close();
}

export function detail_redraw() {
  if (detail_model && $('#detail').open) { detail_draw(); detail_preflight(detail_model); }
}

function detail_draw() {
  const m = detail_model;
  const hw = m.recommendedHardware || {};
  const fact = (key, value) => h('div', { class: 'fact' }, h('dt', { text: t(key) }),
    h('dd', { class: value ? '' : 'muted', text: value || t('card.unknown') }));
  const list = (arr, map = (x) => x) => (Array.isArray(arr) && arr.length ? arr.map(map).join(', ') : null);
  const hwText = [Number.isFinite(hw.ramGb) ? t('card.ram', { gb: fmtNumber(hw.ramGb, 1) }) : null,
    Number.isFinite(hw.vramGb) ? t('card.vram', { gb: fmtNumber(hw.vramGb, 1) }) : null,
    hw.cpu ? `CPU: ${hw.cpu}` : null, hw.gpu ? `GPU: ${hw.gpu}` : null].filter(Boolean).join(' · ');
  dom_set($('#detail-body'),
    h('div', { class: 'card-head' },
      h('h2', { id: 'detail-title', tabindex: '-1', text: m.name }), cards_rating(m.rating)),
    h('div', { class: 'card-badges' }, cards_fitBadge(m)),
    m.description ? h('p', { class: 'card-desc', text: m.description }) : null,
    h('dl', { class: 'facts detail-facts' },
      fact('detail.id', m.id),
      fact('detail.family', m.family),
      fact('card.parameters', m.parameters),
      fact('card.quantization', m.quantization),
      fact('card.size', Number.isFinite(m.sizeGb) ? format_gb(m.sizeGb) : null),
      fact('card.context', Number.isFinite(m.contextLength) ? t('card.contextValue', { tokens: fmtNumber(m.contextLength) }) : null),
      fact('card.license', m.license),
      fact('card.languages', list(m.languages, (c) => `${cards_langName(c)} (${c})`)),
      fact('card.categories', list(m.categories)),
      fact('card.tags', list(m.tags)),
      fact('card.hardware', hwText || null),
      fact('card.updated', m.updatedAt ? format_date(m.updatedAt, false) : null),
      fact('detail.source', m.downloadUrl),
      fact('detail.checksum', m.checksum)),
    h('section', { class: 'preflight', 'aria-labelledby': 'preflight-title' },
      h('h3', { id: 'preflight-title', text: t('preflight.title') }),
      h('div', { id: 'preflight-body', 'aria-live': 'polite' }, h('p', { class: 'muted', text: t('preflight.loading') }))),
    install_area(m));
  install_prune();
}

async function detail_preflight(m) {
  let body;
  try {
    body = await api(`/api/models/gallery/${encodeURIComponent(m.id)}/preflight`);
  } catch (e) {
    if (detail_model === m) $('#preflight-body').replaceChildren(h('p', { class: 'note-error', text: errors_text(e) }));
    return;
  }
  if (detail_model !== m || !$('#preflight-body')) return;
  const fit = body.fit ? `${t(`fit.${body.fit}`)}${body.fit_estimated ? ` ${t('fit.estimated')}` : ''}` : t('card.unknown');
  const disk = t(body.disk_ok ? 'preflight.diskOk' : 'preflight.diskShort',
    { needs: format_bytes(Number(body.needs_bytes)), free: format_bytes(Number(body.free_bytes)) });
  const verdict = body.already_installed ? t('preflight.installed') : body.ok ? t('preflight.ok') : t('preflight.notOk');
  $('#preflight-body').replaceChildren(
    h('p', { class: `preflight-verdict ${body.ok ? 'ok' : 'bad'}`, text: verdict }),
    h('ul', { class: 'preflight-list' },
      h('li', { class: body.disk_ok ? '' : 'note-error', text: disk }),
      h('li', { text: t('preflight.fit', { fit }) })));
}

export function detail_bind() {
  const dlg = $('#detail');
  $('#detail-close').addEventListener('click', () => dlg.close());
  dlg.addEventListener('close', () => {
    detail_model = null;
    $('#detail-body').replaceChildren();
    install_prune();
    const fn = detail_onClose;
    detail_onClose = null;
    if (fn) fn();
    if (detail_opener && detail_opener.isConnected) detail_opener.focus();
    detail_opener = null;
  });
}
