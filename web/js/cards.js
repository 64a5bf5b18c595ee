// The model cards of the Gallery view (the list layout is the same cards drawn as rows):
// name, rating in half stars, the key facts on one line, the fit badge, the install area and
// "Details"; models of one `family` on the page share one card with a variant picker.
import { h, dom_idPart, dom_set } from './dom.js';
import { t, fmtNumber, i18n_intl } from './i18n.js';
import { format_gb } from './format.js';
import { install_area } from './install.js';
import { machine_fitOf } from './machine.js';

const cards_choice = new Map();   // family -> the model id picked in its card

// cards_group(models): [[model, ...variants]] in the order of the answer; a model without a
// family is a group of its own.
export function cards_group(models) {
  const groups = [];
  const byFamily = new Map();
  for (const m of models) {
    const fam = typeof m.family === 'string' && m.family ? m.family.toLowerCase() : null;
    if (fam && byFamily.has(fam)) { byFamily.get(fam).push(m); continue; }
    const g = [m];
    if (fam) byFamily.set(fam, g);
    groups.push(g);
  }
  return groups;
}

// cards_card(group, onDetails): a new <article> for a group of variants.
export function cards_card(group, onDetails) {
  const fam = group.length > 1 ? group[0].family.toLowerCase() : null;
  const picked = fam ? group.find((m) => m.id === cards_choice.get(fam)) || group[0] : group[0];
  const el = h('article', { class: 'card' });
  cards_fill(el, picked, group, onDetails);
  return el;
}

function cards_fill(el, m, group, onDetails) {
  const titleId = `card-${dom_idPart(m.id)}`;
  el.dataset.modelId = m.id;
  el.setAttribute('aria-labelledby', titleId);
  dom_set(el,
    h('div', { class: 'card-head' },
      h('h3', { id: titleId, class: 'card-title', text: m.name }),
      cards_rating(m.rating)),
    h('p', { class: 'card-facts', text: cards_facts(m) }),
    h('div', { class: 'card-badges' }, cards_fitBadge(m)),
    m.description ? h('p', { class: 'card-desc', text: m.description }) : null,
    group.length > 1 ? cards_picker(el, m, group, onDetails) : null,
    h('div', { class: 'card-actions' },
      install_area(m),
      h('button', { type: 'button', class: 'btn btn-small details-btn',
        'aria-label': t('card.detailsLabel', { name: m.name }), onclick: () => onDetails(m) }, t('card.details'))));
}

// "7B · Q4_K_M · 4.1 GB · 8,192 tokens"
export function cards_facts(m) {
  const parts = [];
  if (m.parameters) parts.push(m.parameters);
  if (m.quantization) parts.push(m.quantization);
  if (Number.isFinite(m.sizeGb)) parts.push(format_gb(m.sizeGb));
  if (Number.isFinite(m.contextLength)) parts.push(t('card.contextValue', { tokens: fmtNumber(m.contextLength) }));
  return parts.join(' · ');
}

function cards_picker(el, m, group, onDetails) {
  const id = `variant-${dom_idPart(group[0].id)}`;
  const select = h('select', { id, class: 'variant-select' },
    group.map((v) => h('option', { value: v.id, selected: v.id === m.id,
      text: [v.quantization || v.name, Number.isFinite(v.sizeGb) ? format_gb(v.sizeGb) : null].filter(Boolean).join(' · ') })));
  select.addEventListener('change', () => {
    const next = group.find((v) => v.id === select.value);
    if (!next) return;
    cards_choice.set(group[0].family.toLowerCase(), next.id);
    cards_fill(el, next, group, onDetails);
    const again = el.querySelector('.variant-select');
    if (again) again.focus();
  });
  return h('div', { class: 'field variant' },
    h('label', { for: id, text: t('card.variants', { count: fmtNumber(group.length) }) }), select);
}

export function cards_fitBadge(m) {
  const f = machine_fitOf(m);
  if (!f) return null;
  const text = `${t(`fit.${f.fit}`)}${f.estimated ? ` ${t('fit.estimated')}` : ''}`;
  return h('span', { class: `badge badge-fit fit-${f.fit}`, dataset: { fit: f.fit },
    title: t('card.fit') }, h('span', { class: 'sr-only', text: `${t('card.fit')}: ` }), text);
}

// Five stars, each full, half or empty (4.5: four full and a half).
export function cards_rating(rating) {
  if (!Number.isFinite(rating)) return h('p', { class: 'rating muted', text: t('card.noRating') });
  const halves = Math.round(Math.max(0, Math.min(5, rating)) * 2);
  const stars = [];
  for (let i = 0; i < 5; i++) {
    const kind = halves >= 2 * i + 2 ? 'full' : halves === 2 * i + 1 ? 'half' : 'empty';
    stars.push(h('span', { class: `star star-${kind}`, text: '★' }));
  }
  const label = t('card.rating', { rating: fmtNumber(rating, 1) });
  return h('p', { class: 'rating', title: label },
    h('span', { class: 'stars', 'aria-hidden': 'true' }, stars),
    h('span', { class: 'sr-only', text: label }),
    h('span', { class: 'rating-num', 'aria-hidden': 'true', text: fmtNumber(rating, 1) }));
}

export function cards_langName(code) {
  try {
    const name = i18n_intl(Intl.DisplayNames, { type: 'language' }).of(code);
    return name && name !== code ? name : code;
  } catch { return code; }
}
