// The Installed view and the registry it shows (GET /api/models/installed): status
// badges (installed, missing, corrupt, partial, not registered, update available), size,
// install time, a live note while an update or verification runs, the actions update
// (repair), verify and delete, and the cleanup of leftovers (preview, then remove).
import { api, api_paths } from './api.js';
import { h, $, announce, banner, banner_clear, confirm_ask, dom_set } from './dom.js';
import { t, tn } from './i18n.js';
import { errors_text, errors_jobText } from './errors.js';
import { format_bytes, format_date, format_percent } from './format.js';
import { jobs_apply, jobs_forModel, jobs_isActive, jobs_onChange, jobs_setName } from './jobs.js';

let installed_models = {};          // id -> registry item (with status)
let installed_loaded = false;
let installed_node = null;          // the node whose models these are (deletes go there)
let installed_stamp = 0;            // Date.now() when the registry was last read
let installed_galleryNames = null;  // id -> name from the gallery, for unregistered files
let installed_cleanup = null;       // the cleanup preview {items, bytes}, or null
const installed_listeners = new Set();

export function installed_onChange(fn) { installed_listeners.add(fn); }

export function installed_status(id) {
  const m = installed_models[id];
  return m ? m.status || 'installed' : null;
}

export function installed_loadedAt() { return installed_stamp; }

// installed_loadNames: names of entries that have none (unregistered files), looked up by a
// search for each id (never the whole gallery, which is large).
async function installed_loadNames() {
  installed_galleryNames = installed_galleryNames || {};
  const ids = Object.entries(installed_models).filter(([id, m]) => !(m && m.name) && !(id in installed_galleryNames))
    .map(([id]) => id).slice(0, 20);
  await Promise.all(ids.map(async (id) => {
    installed_galleryNames[id] = null;
    try {
      const body = await api(api_paths.search(new URLSearchParams({ query: id, limit: '20' })));
      const m = (body.models || []).find((x) => x.id === id);
      if (m) installed_galleryNames[id] = m.name;
    } catch { /* the id is shown instead */ }
  }));
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
    for (const [id, m] of Object.entries(installed_models)) if (m && m.name) jobs_setName(id, m.name);
    banner_clear('installed');
    await installed_loadNames();
  } catch (e) {
    banner(t('error.installedLoad', { message: errors_text(e) }), 'error', 'installed');
  }
  installed_render();
  installed_listeners.forEach((fn) => fn(installed_models));
}

// A job of a listed model changed: its row shows it; the end of an update or a
// verification reloads the list (the entry changed).
jobs_onChange((modelId, job, info) => {
  if (!(modelId in installed_models)) return;
  if (info && info.terminal) {
    if (job && job.status === 'failed' && job.kind !== 'install') installed_jobFailed(modelId, job);
    installed_refresh();
    return;
  }
  const cell = document.querySelector(`#installed-content tr[data-model-id="${CSS.escape(modelId)}"] .row-job`);
  if (cell) dom_set(cell, installed_jobNote(job));
});

function installed_jobFailed(modelId, job) {
  const name = installed_name(installed_models[modelId] || {}, modelId);
  const key = job.kind === 'verify' ? 'verify.failed' : 'update.failed';
  banner(t(key, { name, message: errors_jobText(job) }), 'error', `job:${modelId}`);
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
  panel.replaceChildren(rows.length ? installed_table(rows) : installed_empty(), installed_cleanupBox());
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
      h('span', { class: `badge badge-${status}`, text: t(`badge.${status}`) }),
      entry.update_available ? h('span', { class: 'badge badge-update', text: t('badge.update') }) : null,
      h('div', { class: 'row-job', 'aria-live': 'polite' }, installed_jobNote(jobs_forModel(entry.id)))),
    h('td', { class: 'nowrap', 'data-label': t('installed.size'), text: Number.isFinite(entry.size) ? format_bytes(entry.size) : '–' }),
    h('td', { 'data-label': t('installed.installedAt'), text: entry.installedAt ? format_date(entry.installedAt) : '–' }),
    h('td', { 'data-label': t('installed.file') }, h('code', { text: entry.path || '–' })),
    h('td', { 'data-label': t('installed.actions') },
      h('div', { class: 'row-actions' }, installed_actions(entry, name))));
}

// "Updating… 42 %" while a job of the model runs; nothing otherwise.
function installed_jobNote(job) {
  if (!jobs_isActive(job)) return null;
  const what = job.kind === 'verify' ? 'job.verifying' : job.kind === 'update' ? 'job.updating' : 'job.installing';
  const pct = Number.isFinite(job.progress) ? ` ${format_percent(job.progress)}` : '';
  return h('span', { class: 'muted job-note', text: `${t(what)}${job.status === 'paused' ? ` (${t('status.paused')})` : pct}` });
}

function installed_actions(entry, name) {
  const hasEntry = !['unregistered', 'partial'].includes(entry.status);
  const busy = jobs_isActive(jobs_forModel(entry.id));
  const out = [];
  if (hasEntry && (entry.update_available || entry.status === 'corrupt' || entry.status === 'missing')) {
    const repair = !entry.update_available;
    out.push(h('button', { type: 'button', class: 'btn btn-small update-btn', disabled: busy,
      'aria-label': t(repair ? 'installed.repairLabel' : 'installed.updateLabel', { name }),
      onclick: () => installed_job(entry, name, 'update') }, t(repair ? 'installed.repair' : 'installed.update')));
  }
  if (hasEntry && entry.status !== 'missing') {
    out.push(h('button', { type: 'button', class: 'btn btn-small verify-btn', disabled: busy,
      'aria-label': t('installed.verifyLabel', { name }),
      onclick: () => installed_job(entry, name, 'verify') }, t('installed.verify')));
  }
  out.push(h('button', { type: 'button', class: 'btn btn-small btn-danger delete-btn',
    'aria-label': t('installed.deleteLabel', { name }), disabled: entry.id_valid === false,
    title: entry.id_valid === false ? t('installed.cleanupOnly') : null,
    onclick: () => installed_delete(entry, name) }, t('installed.delete')));
  return out;
}

// POSTs /api/models/{id}/update or /verify; the job's progress shows in the row.
async function installed_job(entry, name, action) {
  banner_clear(`job:${entry.id}`);
  try {
    const job = await api(`${api_paths.model(entry.id)}/${action}`, { method: 'POST' });
    jobs_apply({ ...job, progress: 0 });
    announce(t(action === 'verify' ? 'announce.verifying' : 'announce.updating', { name }));
    installed_render();
  } catch (e) {
    const key = e.code === 'up_to_date' ? 'update.upToDate' : action === 'verify' ? 'verify.failed' : 'update.failed';
    banner(t(key, { name, message: errors_text(e) }), e.code === 'up_to_date' ? 'info' : 'error', `job:${entry.id}`);
    await installed_refresh();
  }
}

async function installed_delete(entry, name) {
  const ok = await confirm_ask(t('confirm.title'),
    t('confirm.text', { name, path: entry.path || entry.id }), t('confirm.ok'), t('confirm.cancel'));
  if (!ok) return;
  try {
    await api(api_paths.model(entry.id), { method: 'DELETE', node: installed_node });
    announce(t('announce.deleted', { name }));
    banner(t('delete.done', { name }), 'info', 'delete');   // one notice; it closes itself
  } catch (e) {
    banner(t('delete.failed', { name, message: errors_text(e) }), 'error', 'delete');
  }
  await installed_refresh();
  const summary = $('#installed-summary');
  if (summary) summary.focus();
}

// ---- cleanup ----

function installed_cleanupBox() {
  const box = h('section', { class: 'cleanup', 'aria-labelledby': 'cleanup-title' },
    h('h3', { id: 'cleanup-title', text: t('cleanup.title') }),
    h('p', { class: 'muted', text: t('cleanup.hint') }));
  if (!installed_cleanup) {
    box.append(h('button', { type: 'button', class: 'btn cleanup-scan', onclick: installed_cleanupScan }, t('cleanup.scan')));
    return box;
  }
  const { items, bytes } = installed_cleanup;
  if (!items.length) {
    box.append(h('p', { class: 'cleanup-none', text: t('cleanup.none') }));
    return box;
  }
  const unregistered = items.some((i) => i.kind === 'unregistered');
  const include = unregistered ? h('input', { type: 'checkbox', id: 'cleanup-include' }) : null;
  box.append(
    h('ul', { class: 'cleanup-items' }, items.map((i) => h('li', { dataset: { kind: i.kind } },
      h('span', { class: `badge badge-${i.kind === 'unregistered' ? 'unregistered' : 'partial'}`, text: t(`cleanup.kind.${i.kind}`) }),
      ' ', h('code', { text: i.path }), ' ', h('span', { class: 'muted', text: format_bytes(i.bytes) })))),
    unregistered ? h('label', { class: 'cleanup-include' }, include, ' ', t('cleanup.includeUnregistered')) : null,
    h('button', { type: 'button', class: 'btn btn-danger cleanup-run',
      onclick: () => installed_cleanupRun(include && include.checked) },
    t('cleanup.run', { size: format_bytes(bytes) })));
  return box;
}

async function installed_cleanupScan() {
  try {
    installed_cleanup = await api('/api/models/cleanup');
    banner_clear('cleanup');
  } catch (e) {
    banner(t('cleanup.failed', { message: errors_text(e) }), 'error', 'cleanup');
  }
  installed_render();
}

async function installed_cleanupRun(includeUnregistered) {
  try {
    const done = await api(`/api/models/cleanup${includeUnregistered ? '?include=unregistered' : ''}`, { method: 'POST' });
    const text = t('cleanup.done', { count: done.items.length, size: format_bytes(done.bytes) });
    banner(text, done.failed && done.failed.length ? 'warn' : 'info', 'cleanup');
    announce(text);
  } catch (e) {
    banner(t('cleanup.failed', { message: errors_text(e) }), 'error', 'cleanup');
  }
  installed_cleanup = null;
  await installed_refresh();
}
