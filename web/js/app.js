// Entry point of the web UI: language, the Models tab's three views (Gallery, Installed,
// Downloads), Back/Forward, the connection indicator with its reconnect countdown, and
// start-up: the first search goes out at once, the registry, jobs and socket beside it.
import { api, api_paths } from './api.js';
import { $, banner } from './dom.js';
import { t, lang, setLang, onLangChange, i18n_apply } from './i18n.js';
import { gallery_init, gallery_relabel, gallery_fromHistory } from './gallery.js';
import { detail_bind } from './detail.js';
import { install_relabel } from './install.js';
import { downloads_refresh, downloads_render } from './downloads.js';
import { installed_refresh, installed_render } from './installed.js';
import { jobs_load, jobs_connect, jobs_onConnection, jobs_dropSocket } from './jobs.js';

const app_views = ['gallery', 'installed', 'downloads'];

function app_showView(view, { focus = false, push = false } = {}) {
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
  const url = `${location.pathname}${search ? `?${search}` : ''}${location.hash}`;
  if (push && url !== `${location.pathname}${location.search}${location.hash}`) history.pushState(null, '', url);
  else history.replaceState(history.state, '', url);
  if (view === 'installed') installed_refresh();
  if (view === 'downloads') { downloads_render(); downloads_refresh(); }
}

// Tabs as in the WAI-ARIA pattern: arrows, Home and End move between them.
function app_bindTabs() {
  for (const v of app_views) $(`#tab-${v}`).addEventListener('click', () => app_showView(v, { push: true }));
  $('#tablist').addEventListener('keydown', (ev) => {
    const current = app_views.findIndex((v) => $(`#tab-${v}`).getAttribute('aria-selected') === 'true');
    let next = null;
    if (ev.key === 'ArrowRight') next = (current + 1) % app_views.length;
    else if (ev.key === 'ArrowLeft') next = (current - 1 + app_views.length) % app_views.length;
    else if (ev.key === 'Home') next = 0;
    else if (ev.key === 'End') next = app_views.length - 1;
    if (next === null) return;
    ev.preventDefault();
    app_showView(app_views[next], { focus: true, push: true });
  });
  document.addEventListener('mg:show-view', (ev) => app_showView(ev.detail, { focus: true, push: true }));
  window.addEventListener('popstate', () => {
    app_showView(new URLSearchParams(location.search).get('view') || 'gallery');
    gallery_fromHistory();
  });
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
    install_relabel();
    installed_render();
    downloads_render();
    app_connection(app_lastConn);
  });
}

let app_lastConn = { state: 'connecting', retryIn: 0 };
let app_retryAt = 0;              // when the next reconnect is due (Date.now() ms)
let app_tick = null;

// The indicator; while reconnecting, the countdown goes down every second.
function app_connection(c) {
  if (c !== app_lastConn) {
    app_lastConn = c;
    app_retryAt = c.state === 'retry' ? Date.now() + c.retryIn * 1000 : 0;
  }
  clearInterval(app_tick);
  app_tick = null;
  const el = $('#conn');
  el.dataset.state = c.state;
  if (c.state === 'open') el.textContent = t('conn.open');
  else if (c.state === 'retry') {
    app_drawCountdown();
    app_tick = setInterval(app_drawCountdown, 1000);
  } else if (c.state === 'stale') el.textContent = t('conn.stale');
  else el.textContent = t('conn.connecting');
}

function app_drawCountdown() {
  const left = Math.max(0, Math.ceil((app_retryAt - Date.now()) / 1000));
  $('#conn').textContent = left > 0 ? t('conn.retry', { seconds: left }) : t('conn.connecting');
}

async function app_health() {
  try {
    const body = await api(api_paths.health);
    if (body && body.installer === 'down') banner(t('health.installerDown'), 'warn', 'health');
  } catch { /* the other requests report an unreachable server */ }
}

async function app_start() {
  const gallery = gallery_init();   // first: the search request goes out at once
  i18n_apply(document);
  app_bindLang();
  app_bindTabs();
  const view = new URLSearchParams(location.search).get('view') || 'gallery';
  app_showView(view);
  detail_bind();
  jobs_onConnection(app_connection);
  const installed = installed_refresh();
  try { await jobs_load(); } catch { /* shown by the socket state; retried on connect */ }
  install_relabel();              // a failed install's message from the job history
  jobs_connect();
  await installed;
  await gallery;
  downloads_render();
  app_health();
  document.body.dataset.ready = 'true';
}

// For the end-to-end test: simulate a dropped socket.
window.mgDebug = { dropSocket: jobs_dropSocket };

app_start();
