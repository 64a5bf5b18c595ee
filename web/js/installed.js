// The Installed view and the registry it shows (GET /api/models/installed):
// status badges, size, install time, delete with confirmation.
import { api, api_paths } from './api.js';
import { h, $, announce, banner, banner_clear, confirm_ask } from './dom.js';
import { t, tn } from './i18n.js';
import { format_bytes, format_date } from './format.js';

let installed_models = {};          // id -> registry entry (with status)
let installed_loaded = false;
let installed_node = null;          // the node whose models these are (deletes go there)
let installed_stamp = 0;            // Date.now() when the registry was last read
let installed_galleryNames = null;  // id -> name from the gallery, for unregistered files
const installed_listeners = new Set();

export function installed_onChange(fn) { installed_listeners.add(fn); }

export function installed_status(id) {
  const m = installed_models[id];
  return m ? m.status || 'installed' : null;
}

export function installed_loadedAt() { return installed_stamp; }

// installed_loadNames: the gallery's names, read once and only when an entry has none (an
// unregistered file); the gallery is large, so the Gallery view never needs it.
async function installed_loadNames() {
  if (installed_galleryNames || Object.values(installed_models).every((m) => m && m.name)) return;
  installed_galleryNames = {};
  try {
    const body = await api(api_paths.gallery);
    for (const m of (Array.isArray(body && body.models) ? body.models : [])) {
      if (m && typeof m.id === 'string' && typeof m.name === 'string') installed_galleryNames[m.id] = m.name;
    }
  } catch { /* the ids are shown instead */ }
}

// installed_refresh: reloads the registry; resolves when the view is drawn.
export async function installed_refresh() {
  try {
    const started = Date.now();
    const body = await api(api_paths.installed);
    installed_stamp = started;
    installed_models = (body && body.models && typeof body.models === 'object') ? body.models : {};
    installed_node = (body && typeof body.node === 'string') ? body.node : null;
    installed_loaded = true;
    banner_clear('installed');
    await installed_loadNames();
  } catch (e) {
    banner(t('error.installedLoad', { message: e.message }), 'error', 'installed');
  }
  installed_render();
  installed_listeners.forEach((fn) => fn(installed_models));
}

function installed_name(entry, id) {
  return entry.name || (installed_galleryNames && installed_galleryNames[id]) || id;
}

function installed_sorted() {
  return Object.entries(installed_models)
    .map(([id, entry]) => ({ ...entry, id: entry.id || id }))
    .sort((a, b) => installed_name(a, a.id).localeCompare(installed_name(b, b.id), undefined, { sensitivity: 'base' }));
}

export function installed_render() {
  const panel = $('#installed-content');
  const summary = $('#installed-summary');
  const count = $('#installed-count');
  if (!panel) return;
  const rows = installed_sorted();
  count.textContent = installed_loaded ? String(rows.length) : '';
  summary.textContent = installed_loaded ? tn('installed.summary', rows.length) : '';
  panel.replaceChildren(rows.length ? installed_table(rows) : installed_empty());
}

function installed_empty() {
  if (!installed_loaded) return h('p', { class: 'muted', text: '…' });
  return h('div', { class: 'empty' },
    h('p', { class: 'empty-title', text: t('installed.empty') }),
    h('p', { class: 'muted', text: t('installed.emptyHint') }),
    h('button', { type: 'button', class: 'btn', onclick: () =>
      document.dispatchEvent(new CustomEvent('mg:show-view', { detail: 'gallery' })) }, t('installed.toGallery')));
}

function installed_table(rows) {
  const head = ['installed.name', 'installed.status', 'installed.size', 'installed.installedAt', 'installed.file', 'installed.actions'];
  return h('table', { class: 'installed-table' },
    h('caption', { class: 'sr-only', text: t('tab.installed') }),
    h('thead', {}, h('tr', {}, head.map((k) => h('th', { scope: 'col', text: t(k) })))),
    h('tbody', {}, rows.map(installed_row)));
}

function installed_row(entry) {
  const name = installed_name(entry, entry.id);
  const status = entry.status || 'installed';
  return h('tr', { dataset: { modelId: entry.id, status } },
    h('th', { scope: 'row', 'data-label': t('installed.name') },
      h('span', { class: 'model-name', text: name }),
      name !== entry.id ? h('span', { class: 'model-id', text: entry.id }) : null),
    h('td', { 'data-label': t('installed.status') },
      h('span', { class: `badge badge-${status}`, text: t(`badge.${status}`) })),
    h('td', { class: 'nowrap', 'data-label': t('installed.size'), text: Number.isFinite(entry.size) ? format_bytes(entry.size) : '–' }),
    h('td', { 'data-label': t('installed.installedAt'), text: entry.installedAt ? format_date(entry.installedAt) : '–' }),
    h('td', { 'data-label': t('installed.file') }, h('code', { text: entry.path || '–' })),
    h('td', { 'data-label': t('installed.actions') },
      h('button', { type: 'button', class: 'btn btn-danger', 'aria-label': t('installed.deleteLabel', { name }),
        onclick: () => installed_delete(entry, name) }, t('installed.delete'))));
}

async function installed_delete(entry, name) {
  const ok = await confirm_ask(t('confirm.title'),
    t('confirm.text', { name, path: entry.path || entry.id }), t('confirm.ok'), t('confirm.cancel'));
  if (!ok) return;
  try {
    await api(api_paths.model(entry.id), { method: 'DELETE', node: installed_node });
    banner_clear(`delete:${entry.id}`);
    announce(t('announce.deleted', { name }));
    banner(t('delete.done', { name }), 'info', `delete:${entry.id}`);
  } catch (e) {
    banner(t('delete.failed', { name, message: e.message }), 'error', `delete:${entry.id}`);
  }
  await installed_refresh();
  const summary = $('#installed-summary');
  if (summary) summary.focus();
}
