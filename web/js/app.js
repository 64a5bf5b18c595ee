// Entry point of the web UI: language, the Models tab's two views (Gallery, Installed),
// the connection indicator, and start-up (gallery, registry, running jobs, progress socket).
import { api, api_paths } from './api.js';
import { $, banner } from './dom.js';
import { t, lang, setLang, onLangChange, i18n_apply } from './i18n.js';
import { gallery_init, gallery_relabel } from './gallery.js';
import { installed_refresh, installed_render } from './installed.js';
import { jobs_load, jobs_connect, jobs_onConnection, jobs_dropSocket } from './jobs.js';

const app_views = ['gallery', 'installed'];

function app_showView(view, { focus = false } = {}) {
  if (!app_views.includes(view)) view = 'gallery';
  for (const v of app_views) {
    const tab = $(`#tab-${v}`);
    const selected = v === view;
    tab.setAttribute('aria-selected', String(selected));
    tab.tabIndex = selected ? 0 : -1;
    $(`#panel-${v}`).hidden = !selected;
  }
  if (focus) $(`#tab-${view}`).focus();
  const q = new URLSearchParams(location.search);
  if (view === 'gallery') q.delete('view'); else q.set('view', view);
  const search = q.toString();
  history.replaceState(history.state, '', `${location.pathname}${search ? `?${search}` : ''}${location.hash}`);
  if (view === 'installed') installed_refresh();
}

// Tabs as in the WAI-ARIA pattern: arrows, Home and End move between them.
function app_bindTabs() {
  for (const v of app_views) $(`#tab-${v}`).addEventListener('click', () => app_showView(v));
  $('#tablist').addEventListener('keydown', (ev) => {
    const current = app_views.findIndex((v) => $(`#tab-${v}`).getAttribute('aria-selected') === 'true');
    let next = null;
    if (ev.key === 'ArrowRight') next = (current + 1) % app_views.length;
    else if (ev.key === 'ArrowLeft') next = (current - 1 + app_views.length) % app_views.length;
    else if (ev.key === 'Home') next = 0;
    else if (ev.key === 'End') next = app_views.length - 1;
    if (next === null) return;
    ev.preventDefault();
    app_showView(app_views[next], { focus: true });
  });
  document.addEventListener('mg:show-view', (ev) => app_showView(ev.detail, { focus: true }));
  $('#installed-refresh').addEventListener('click', () => installed_refresh());
}

function app_bindLang() {
  const buttons = document.querySelectorAll('#lang button[data-lang]');
  const mark = () => buttons.forEach((b) => b.setAttribute('aria-pressed', String(b.dataset.lang === lang())));
  buttons.forEach((b) => b.addEventListener('click', () => setLang(b.dataset.lang)));
  mark();
  onLangChange(() => {
    mark();
    gallery_relabel();
    installed_render();
    app_connection(app_lastConn);
  });
}

let app_lastConn = { state: 'connecting', retryIn: 0 };

function app_connection(c) {
  app_lastConn = c;
  const el = $('#conn');
  el.dataset.state = c.state;
  if (c.state === 'open') el.textContent = t('conn.open');
  else if (c.state === 'retry') el.textContent = t('conn.retry', { seconds: c.retryIn });
  else if (c.state === 'stale') el.textContent = t('conn.stale');
  else el.textContent = t('conn.connecting');
}

async function app_health() {
  try {
    const body = await api(api_paths.health);
    if (body && body.installer === 'down') banner(t('health.installerDown'), 'warn', 'health');
  } catch { /* the other requests report an unreachable server */ }
}

async function app_start() {
  i18n_apply(document);
  app_bindLang();
  app_bindTabs();
  const view = new URLSearchParams(location.search).get('view') || 'gallery';
  app_showView(view);
  jobs_onConnection(app_connection);
  await installed_refresh();
  try { await jobs_load(); } catch { /* shown by the socket state; retried on connect */ }
  jobs_connect();
  await gallery_init();
  app_health();
  document.body.dataset.ready = 'true';
}

// For the end-to-end test: simulate a dropped socket.
window.mgDebug = { dropSocket: jobs_dropSocket };

app_start();
