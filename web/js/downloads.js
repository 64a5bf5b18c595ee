// The Downloads view: every running or waiting job (install, update, verify) with status,
// progress, speed and time left, and Pause / Resume / Cancel; below it the history of ended
// jobs (GET /api/models/jobs, newest first) with the reason of every failure. Rows are kept
// per job and updated in place, so keyboard focus stays where it was. A job of a model this
// page has not seen shows its id until names.js finds the name; then its rows are redrawn.
import { api, api_paths } from './api.js';
import { h, $, announce, dom_set } from './dom.js';
import { t, fmtNumber } from './i18n.js';
import { errors_text, errors_jobText } from './errors.js';
import { format_bytes, format_speed, format_duration, format_percent, format_date } from './format.js';
import { jobs_all, jobs_apply, jobs_isActive, jobs_onChange, jobs_connState, jobs_onConnection, jobs_nameOf } from './jobs.js';
import { names_want, names_onFound } from './names.js';

const downloads_pageSize = 20;
let downloads_history = null;     // the last GET /api/models/jobs answer
let downloads_limit = downloads_pageSize;
let downloads_timer = null;
const downloads_rows = new Map(); // job_id -> row element of a running job

function downloads_visible() { return !$('#panel-downloads').hidden; }

export async function downloads_refresh() {
  try {
    downloads_history = await api(`${api_paths.jobs}?limit=${downloads_limit}`);
  } catch (e) {
    downloads_history = { error: e };
  }
  downloads_render();
}

export function downloads_render() {
  const box = $('#downloads-content');
  const active = jobs_all().filter(jobs_isActive);
  $('#downloads-count').textContent = active.length ? fmtNumber(active.length) : '';
  if (!downloads_visible()) return;
  const focusKey = downloads_focusKey();
  downloads_rows.clear();
  dom_set(box,
    h('section', { class: 'dl-section', 'aria-labelledby': 'dl-active-title' },
      h('h3', { id: 'dl-active-title', text: t('downloads.active') }),
      active.length ? h('ul', { class: 'dl-list' }, active.map(downloads_activeRow))
        : h('p', { class: 'muted', text: t('downloads.none') })),
    h('section', { class: 'dl-section', 'aria-labelledby': 'dl-history-title' },
      h('h3', { id: 'dl-history-title', text: t('downloads.history') }),
      downloads_historyList()));
  downloads_refocus(focusKey);
  const ended = downloads_history && Array.isArray(downloads_history.jobs) ? downloads_history.jobs : [];
  names_want([...active, ...ended].map((j) => j.model_id));
}

// A name found for modelId: its rows are drawn again, focus stays on the same button.
function downloads_renamed(modelId) {
  if (!downloads_visible()) return;
  const focusKey = downloads_focusKey();
  const rows = document.querySelectorAll(`#downloads-content li[data-model-id="${CSS.escape(modelId)}"]`);
  for (const row of rows) {
    const id = row.dataset.jobId;
    const past = !!row.closest('.dl-history');
    const job = past ? ((downloads_history && downloads_history.jobs) || []).find((j) => j.job_id === id)
      : jobs_all().find((j) => j.job_id === id && jobs_isActive(j));
    if (!job) continue;
    row.replaceWith(past ? downloads_historyRow(job) : downloads_activeRow(job));
    if (focusKey && focusKey.job === id) downloads_refocus(focusKey);
  }
}

function downloads_focusKey() {
  const el = document.activeElement;
  const row = el && el.closest ? el.closest('#downloads-content li[data-job-id]') : null;
  return row ? { job: row.dataset.jobId, cls: el.className.split(' ').pop() } : null;
}

function downloads_refocus(key) {
  if (!key) return;
  const row = document.querySelector(`#downloads-content li[data-job-id="${CSS.escape(key.job)}"]`);
  const target = row && (row.querySelector(`button.${CSS.escape(key.cls)}:not([aria-disabled="true"])`) || row.querySelector('button'));
  if (target) target.focus();
  else { const title = $('#dl-active-title'); title.tabIndex = -1; title.focus(); }
}

function downloads_activeRow(job) {
  const name = jobs_nameOf(job.model_id);
  const row = h('li', { class: 'dl-row', dataset: { jobId: job.job_id, modelId: job.model_id, status: job.status } },
    h('div', { class: 'dl-head' },
      h('span', { class: 'dl-name', text: name }),
      h('span', { class: 'dl-kind muted', text: t(`kind.${job.kind || 'install'}`) }),
      h('span', { class: 'dl-status', text: t(`status.${job.status}`) })),
    h('progress', { max: '100', 'aria-label': t('install.progressLabel', { name }) }),
    h('p', { class: 'progress-detail' }),
    h('div', { class: 'row-actions' }, downloads_buttons(job, name)));
  downloads_rows.set(job.job_id, row);
  downloads_update(row, job);
  return row;
}

function downloads_update(row, job) {
  const bar = row.querySelector('progress');
  const pct = Math.max(0, Math.min(100, Number(job.progress) || 0));
  if (job.status === 'queued') bar.removeAttribute('value'); else bar.value = pct;
  const parts = [];
  if (job.status !== 'queued') parts.push(format_percent(pct));
  const total = Number(job.total) || 0;
  const done = Number(job.downloaded) || 0;
  if (total > 0) parts.push(t('progress.bytes', { done: format_bytes(done), total: format_bytes(total) }));
  const bps = Number(job.bytes_per_second) || 0;
  if (job.status === 'downloading' && bps > 0 && jobs_connState() === 'open') {
    parts.push(format_speed(bps));
    const eta = Number.isFinite(job.eta_s) ? job.eta_s : total > done ? (total - done) / bps : NaN;
    if (Number.isFinite(eta)) parts.push(t('progress.left', { time: format_duration(eta) }));
  }
  row.querySelector('.progress-detail').textContent = parts.join(' · ');
  row.querySelector('.dl-status').textContent = t(`status.${job.status}`);
}

function downloads_buttons(job, name) {
  const out = [];
  if (job.status === 'paused') {
    out.push(h('button', { type: 'button', class: 'btn btn-small dl-resume', 'aria-label': t('downloads.resumeLabel', { name }),
      onclick: (ev) => downloads_act(job, 'resume', ev.currentTarget) }, t('downloads.resume')));
  } else if (job.status === 'downloading' || job.status === 'queued') {
    out.push(h('button', { type: 'button', class: 'btn btn-small dl-pause', 'aria-label': t('downloads.pauseLabel', { name }),
      onclick: (ev) => downloads_act(job, 'pause', ev.currentTarget) }, t('downloads.pause')));
  }
  out.push(h('button', { type: 'button', class: 'btn btn-small btn-danger dl-cancel',
    'aria-disabled': job.status === 'cancelling' ? 'true' : null,
    'aria-label': t('install.cancelLabel', { name }),
    onclick: (ev) => downloads_act(job, 'cancel', ev.currentTarget) }, t('install.cancel')));
  return out;
}

async function downloads_act(job, action, button) {
  if (button.getAttribute('aria-disabled') === 'true') return;
  button.setAttribute('aria-disabled', 'true');
  const name = jobs_nameOf(job.model_id);
  try {
    const path = action === 'cancel' ? api_paths.job(job.job_id) : `${api_paths.job(job.job_id)}/${action}`;
    const body = await api(path, { method: action === 'cancel' ? 'DELETE' : 'POST', node: job.node });
    const status = (body && body.status) || (action === 'cancel' ? 'cancelled' : action === 'pause' ? 'paused' : 'queued');
    jobs_apply({ ...job, ...(body && body.job_id ? body : {}), status });
    announce(t(`downloads.${action}Done`, { name }));
  } catch (e) {
    button.removeAttribute('aria-disabled');
    const row = button.closest('li');
    if (row) {
      const old = row.querySelector('.dl-error');
      if (old) old.remove();
      row.append(h('p', { class: 'note-error dl-error', role: 'alert', text: t('downloads.actionFailed', { message: errors_text(e) }) }));
    }
    return;
  }
  downloads_render();
}

function downloads_historyList() {
  if (!downloads_history) return h('p', { class: 'muted', text: '…' });
  if (downloads_history.error) return h('p', { class: 'note-error', role: 'alert', text: t('downloads.loadFailed', { message: errors_text(downloads_history.error) }) });
  const ended = (downloads_history.jobs || []).filter((j) => !jobs_isActive(j));
  if (!ended.length) return h('p', { class: 'muted', text: t('downloads.noHistory') });
  const total = Number(downloads_history.total) || 0;
  return h('div', {},
    h('ul', { class: 'dl-list dl-history' }, ended.map(downloads_historyRow)),
    total > downloads_limit ? h('button', { type: 'button', class: 'btn dl-more', onclick: () => {
      downloads_limit += downloads_pageSize;
      downloads_refresh();
    } }, t('downloads.more')) : null);
}

function downloads_historyRow(j) {
  return h('li', { class: 'dl-row', dataset: { jobId: j.job_id, modelId: j.model_id, status: j.status } },
    h('div', { class: 'dl-head' },
      h('span', { class: 'dl-name', text: jobs_nameOf(j.model_id) }),
      h('span', { class: 'dl-kind muted', text: t(`kind.${j.kind || 'install'}`) }),
      h('span', { class: `badge badge-job-${j.status}`, text: t(`status.${j.status}`) }),
      h('span', { class: 'muted dl-date', text: format_date(j.updated_at || j.created_at) })),
    j.status === 'failed' ? h('p', { class: 'note-error dl-reason', text: errors_jobText(j) }) : null);
}

// Live: progress updates the rows in place; a new or ended job redraws (and reloads the
// history a moment later).
jobs_onChange((modelId, job, info) => {
  if (!job) return;
  const row = downloads_rows.get(job.job_id);
  if (row && row.isConnected && row.dataset.status === job.status && !info.terminal) {
    downloads_update(row, job);
    return;
  }
  if (info.terminal) {
    clearTimeout(downloads_timer);
    downloads_timer = setTimeout(() => { if (downloads_visible()) downloads_refresh(); }, 300);
  }
  downloads_render();
});
jobs_onConnection(() => { for (const [id, row] of downloads_rows) {
  const job = jobs_all().find((j) => j.job_id === id);
  if (job && row.isConnected) downloads_update(row, job);
} });
names_onFound(downloads_renamed);
