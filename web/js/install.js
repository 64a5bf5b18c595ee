// The install area of a gallery card (and of the detail dialog): Install button, then a live
// progress bar (percent, bytes, speed, time left; no speed while live updates are down) with
// Cancel, then "Installed" or the error in the user's words. Keyboard focus stays in the area
// when its buttons are replaced (Install -> Cancel -> Install or Try again). A failed
// install's message comes from the job history, so it survives a reload.
import { api, api_paths } from './api.js';
import { h, announce, dom_idPart } from './dom.js';
import { t } from './i18n.js';
import { errors_text, errors_jobText } from './errors.js';
import { format_bytes, format_speed, format_duration, format_percent } from './format.js';
import { jobs_apply, jobs_forModel, jobs_isActive, jobs_onChange, jobs_lastEnded, jobs_connState, jobs_onConnection, jobs_setName } from './jobs.js';
import { installed_status, installed_onChange, installed_refresh, installed_loadedAt } from './installed.js';

const install_areas = new Map();   // model id -> Set of {el, model} (card and dialog)
const install_notes = new Map();   // model id -> {kind: 'error'|'info', text}
const install_milestone = new Map(); // model id -> last announced quarter

// install_area(model): a new element that keeps itself up to date; borrowed model.
export function install_area(model) {
  const el = h('div', { class: 'install', dataset: { modelId: model.id } });
  if (!install_areas.has(model.id)) install_areas.set(model.id, new Set());
  const area = { el, model };
  jobs_setName(model.id, model.name);
  install_areas.get(model.id).add(area);
  install_drawArea(area);
  return el;
}

// Forget areas whose card left the page.
export function install_prune() {
  for (const [id, set] of install_areas) {
    for (const area of set) if (!area.el.isConnected) set.delete(area);
    if (!set.size) install_areas.delete(id);
  }
}

function install_draw(modelId) {
  const set = install_areas.get(modelId);
  if (set) for (const area of set) install_drawArea(area);
}

function install_drawArea(area) {
  const hadFocus = area.el.contains(document.activeElement);
  install_drawState(area, jobs_forModel(area.model.id));
  // Keeps keyboard focus inside the card when its buttons were replaced.
  if (hadFocus && !area.el.contains(document.activeElement)) {
    const target = area.el.querySelector('button:not([disabled]), [tabindex="-1"]');
    if (target) target.focus();
  }
}

function install_drawState(area, job) {
  const modelId = area.model.id;
  if (jobs_isActive(job)) return install_drawProgress(area, job);
  // Installed per the registry, or by a job that ended after the registry was read.
  const justInstalled = job && job.status === 'installed' && job.seen_at > installed_loadedAt();
  const status = installed_status(modelId);
  if (status === 'installed' || status === 'corrupt' || justInstalled) {
    area.el.dataset.state = 'installed';
    area.el.replaceChildren(h('p', { class: 'badge badge-installed badge-large', tabindex: '-1' },
      h('span', { 'aria-hidden': 'true', text: '✓ ' }), t('install.installed')));
    return;
  }
  install_drawButton(area);
}

function install_drawButton(area) {
  const { model, el } = area;
  delete el.dataset.jobId;
  const note = install_notes.get(model.id) || install_historyNote(model.id);
  el.dataset.state = note && note.kind === 'error' ? 'error' : 'idle';
  const retry = note && note.kind === 'error';
  const button = h('button', { type: 'button', class: 'btn btn-primary install-btn',
    'aria-label': t(retry ? 'install.retryLabel' : 'install.buttonLabel', { name: model.name }),
    onclick: (ev) => install_start(model, ev.currentTarget) },
  retry ? t('install.retry') : t('install.button'));
  if (!note) return el.replaceChildren(button);
  el.replaceChildren(button, h('p', { class: `install-note note-${note.kind}`,
    role: note.kind === 'error' ? 'alert' : 'status', text: note.text }));
}

// The last install job of the model failed (per the job history read on page open): its
// message, so that it is still there after a reload.
function install_historyNote(modelId) {
  const job = jobs_lastEnded(modelId);
  if (!job || job.status !== 'failed' || (job.kind && job.kind !== 'install')) return null;
  return { kind: 'error', text: t('install.failed', { message: errors_jobText(job) }) };
}

// A button that is busy keeps keyboard focus (a disabled one would drop it to the page).
function install_busy(button) {
  if (button.getAttribute('aria-disabled') === 'true') return true;
  button.setAttribute('aria-disabled', 'true');
  return false;
}

function install_drawProgress(area, job) {
  const { model, el } = area;
  let bar = el.querySelector('progress');
  if (!bar || el.dataset.jobId !== job.job_id) {
    const pid = `progress-${dom_idPart(model.id)}`;
    el.dataset.jobId = job.job_id;
    el.replaceChildren(
      h('div', { class: 'progress-head' },
        h('span', { class: 'progress-status', role: 'status' }),
        h('span', { class: 'progress-percent', 'aria-hidden': 'true' })),
      h('progress', { id: pid, max: '100', 'aria-label': t('install.progressLabel', { name: model.name }) }),
      h('p', { class: 'progress-detail' }),
      h('button', { type: 'button', class: 'btn btn-small install-cancel',
        'aria-label': t('install.cancelLabel', { name: model.name }),
        onclick: (ev) => install_cancel(model, ev.currentTarget) }, t('install.cancel')));
    bar = el.querySelector('progress');
  }
  el.dataset.state = job.status;
  const status = el.querySelector('.progress-status');
  const statusText = t(`status.${job.status}`);
  if (status.textContent !== statusText) status.textContent = statusText;
  const pct = Math.max(0, Math.min(100, Number(job.progress) || 0));
  if (job.status === 'queued') bar.removeAttribute('value');
  else bar.value = job.status === 'verifying' ? 100 : pct;
  el.querySelector('.progress-percent').textContent = job.status === 'queued' ? '' : format_percent(pct);
  el.querySelector('.progress-detail').textContent = install_detail(job);
  install_announceMilestone(model, job, pct);
}

function install_detail(job) {
  const parts = [];
  const total = Number(job.total) || 0;
  const done = Number(job.downloaded) || 0;
  if (total > 0) parts.push(t('progress.bytes', { done: format_bytes(done), total: format_bytes(total) }));
  else if (done > 0) parts.push(format_bytes(done));
  const bps = Number(job.bytes_per_second) || 0;
  if (job.status === 'downloading' && bps > 0 && jobs_connState() === 'open') {
    parts.push(format_speed(bps));
    if (total > done) parts.push(t('progress.left', { time: format_duration((total - done) / bps) }));
  }
  return parts.join(' · ');
}

function install_announceMilestone(model, job, pct) {
  if (job.status !== 'downloading') return;
  const quarter = Math.floor(pct / 25);
  if (quarter > (install_milestone.get(model.id) ?? 0) && quarter < 4) {
    install_milestone.set(model.id, quarter);
    announce(t('announce.progress', { name: model.name, percent: format_percent(quarter * 25) }));
  }
}

async function install_start(model, button) {
  if (install_busy(button)) return;
  install_notes.delete(model.id);
  install_milestone.set(model.id, 0);
  try {
    const body = await api(api_paths.install(model.id), { method: 'POST' });
    jobs_apply({ model_id: model.id, progress: 0, downloaded: 0, total: 0, ...body, status: body.status || 'queued' });
  } catch (e) {
    if (e.code === 'already_installed') await installed_refresh();
    install_notes.set(model.id, { kind: 'error', text: t('install.startFailed', { message: errors_text(e) }) });
  }
  button.removeAttribute('aria-disabled');
  install_draw(model.id);
}

async function install_cancel(model, button) {
  const job = jobs_forModel(model.id);
  if (!job || install_busy(button)) return;
  try {
    const body = await api(api_paths.job(job.job_id), { method: 'DELETE', node: job.node });
    // 200 cancelled, or 202 cancelling until the installer confirms (the socket says when)
    jobs_apply({ ...job, ...(body && body.job_id ? body : {}), status: (body && body.status) || 'cancelled' });
  } catch (e) {
    install_notes.set(model.id, { kind: 'error', text: t('install.cancelFailed', { message: errors_text(e) }) });
    button.removeAttribute('aria-disabled');
  }
  install_draw(model.id);
}

function install_onJob(modelId, job, { terminal, foreign }) {
  if (terminal) {
    const set = install_areas.get(modelId);
    const name = set && set.size ? [...set][0].model.name : modelId;
    // updates and verifications report in the Installed view
    const other = job && job.kind && job.kind !== 'install';
    if (other) {
      install_notes.delete(modelId);
    } else if (!foreign && job.status === 'failed') {
      install_notes.set(modelId, { kind: 'error', text: t('install.failed', { message: errors_jobText(job) }) });
      announce(t('announce.failed', { name }));
    } else if (!foreign && job.status === 'cancelled') {
      install_notes.set(modelId, { kind: 'info', text: t('install.cancelled') });
      announce(t('announce.cancelled', { name }));
    } else if (!foreign && job.status === 'installed') {
      install_notes.delete(modelId);
      announce(t('announce.installed', { name }));
    }
    installed_refresh();
  }
  install_draw(modelId);
}

jobs_onChange(install_onJob);
installed_onChange(() => { for (const id of install_areas.keys()) install_draw(id); });
// Speed and time left are hidden while live updates are down (they would be frozen).
jobs_onConnection(() => { for (const id of install_areas.keys()) install_draw(id); });

// After a language switch.
export function install_relabel() { for (const id of install_areas.keys()) install_draw(id); }
