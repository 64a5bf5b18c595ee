// Install jobs: one current job per model, fed by GET /api/models/jobs, by install
// answers and by the progress WebSocket (which reconnects with backoff by itself;
// while it is down, active jobs are polled instead). The installer sends a downloading
// job's state at least every second: when the open socket stays silent about one for
// longer (nchan lost Redis, with several nodes), the state is "stale" and jobs are polled
// until messages come again. Requests about a job name its node (X-MG-Node).
import { api, api_paths, api_token } from './api.js';

// queued, paused and downloading share a rank: a job may be paused and resumed.
const jobs_rank = { queued: 1, paused: 1, downloading: 1, verifying: 2, cancelling: 2.5, installed: 3, failed: 3, cancelled: 3 };
const jobs_byModel = new Map();      // model_id -> job
const jobs_finished = new Set();     // job_ids known to have ended
const jobs_ended = new Map();        // model_id -> the newest ended job (the history)
const jobs_listeners = new Set();    // fn(modelId, job, {terminal, fresh})
const jobs_connListeners = new Set();

export function jobs_isActive(job) {
  return !!job && jobs_rank[job.status] !== undefined && jobs_rank[job.status] < 3;
}

function jobs_isTerminal(status) { return jobs_rank[status] === 3; }

export function jobs_forModel(modelId) { return jobs_byModel.get(modelId) || null; }

export function jobs_onChange(fn) { jobs_listeners.add(fn); }

// The newest job of the model that ended (installed, failed or cancelled), or null.
export function jobs_lastEnded(modelId) { return jobs_ended.get(modelId) || null; }

// Model names by id, as the cards and the registry know them (jobs carry only ids).
const jobs_names = new Map();
export function jobs_setName(id, name) { if (id && name) jobs_names.set(id, name); }
export function jobs_nameOf(id) { return jobs_names.get(id) || id; }
export function jobs_hasName(id) { return jobs_names.has(id); }

// Every job this page follows (one per model), for the downloads panel.
export function jobs_all() { return [...jobs_byModel.values()]; }

function jobs_noteEnded(job) {
  const cur = jobs_ended.get(job.model_id);
  if (!cur || String(job.created_at || '') >= String(cur.created_at || '')) jobs_ended.set(job.model_id, job);
}

// jobs_apply(msg): merges one job document or progress message; stale or replayed
// messages (an ended job, a status going backwards) are ignored.
export function jobs_apply(msg) {
  if (!msg || typeof msg !== 'object' || !msg.model_id || !msg.job_id || !(msg.status in jobs_rank)) return;
  if (jobs_finished.has(msg.job_id)) return;
  const cur = jobs_byModel.get(msg.model_id);
  const sameJob = cur && cur.job_id === msg.job_id;
  if (sameJob && jobs_rank[msg.status] < jobs_rank[cur.status]) return;
  if (sameJob && jobs_behind(cur, msg)) return;
  const terminal = jobs_isTerminal(msg.status);
  if (terminal) {
    jobs_finished.add(msg.job_id);
    jobs_noteEnded({ ...(sameJob ? cur : {}), ...msg });
  }
  if (!sameJob && terminal) {
    // The end of a job this page never saw running: only tell (the registry may have changed).
    jobs_listeners.forEach((fn) => fn(msg.model_id, cur || null, { terminal: true, foreign: true }));
    return;
  }
  if (!sameJob && jobs_isActive(cur)) {
    // Another active job for the same model: keep the newer one.
    if (cur.created_at && msg.created_at && msg.created_at < cur.created_at) return;
  }
  const job = { ...(sameJob ? cur : {}), ...msg, seen_at: Date.now() };
  jobs_byModel.set(msg.model_id, job);
  jobs_listeners.forEach((fn) => fn(msg.model_id, job, { terminal, fresh: !sameJob }));
}

// An older snapshot of the same job (a job document read while newer progress messages
// had already arrived, or a replayed message) must not move the bar back a little; a
// download that really starts over (a server without Range support) falls back a lot.
function jobs_behind(cur, msg) {
  const was = Number(cur.downloaded) || 0;
  const now = Number(msg.downloaded) || 0;
  return msg.status === cur.status && now < was && now >= was / 2;
}

// jobs_load: fetches every job once (page open, after a reconnect); ended jobs are only
// remembered so their replayed messages are ignored.
export async function jobs_load() {
  const body = await api(api_paths.jobs);
  const list = Array.isArray(body && body.jobs) ? body.jobs.slice() : [];
  list.sort((a, b) => String(a.created_at || '').localeCompare(String(b.created_at || '')));
  for (const job of list) {
    const cur = jobs_byModel.get(job.model_id);
    if (jobs_isTerminal(job.status) && !(cur && cur.job_id === job.job_id && jobs_isActive(cur))) {
      jobs_finished.add(job.job_id);
      jobs_noteEnded(job);
    } else {
      jobs_apply(job);
    }
  }
}

// ---- the progress socket ----

const jobs_backoff = { first: 500, max: 15000 };
let jobs_socket = null;
let jobs_retryMs = jobs_backoff.first;
let jobs_retryTimer = null;
let jobs_pollTimer = null;
let jobs_state = { state: 'connecting', retryIn: 0 };

const jobs_staleMs = 4000;
const jobs_heard = new Map();        // job_id -> when the socket last told of it
let jobs_openedAt = 0;
let jobs_staleTimer = null;

export function jobs_onConnection(fn) { jobs_connListeners.add(fn); fn(jobs_state); }

// 'open', 'connecting', 'retry' or 'stale'.
export function jobs_connState() { return jobs_state.state; }

function jobs_setState(state, retryIn = 0) {
  jobs_state = { state, retryIn };
  jobs_connListeners.forEach((fn) => fn(jobs_state));
}

export function jobs_connect() {
  clearTimeout(jobs_retryTimer);
  const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
  let ws;
  try {
    // A browser WebSocket cannot send an Authorization header: the token goes as a parameter.
    const token = api_token();
    const query = token ? `?access_token=${encodeURIComponent(token)}` : '';
    ws = new WebSocket(`${proto}//${location.host}${api_paths.progressSocket}${query}`);
  } catch {
    jobs_scheduleReconnect();
    return;
  }
  jobs_socket = ws;
  jobs_setState('connecting');
  ws.addEventListener('open', () => {
    jobs_retryMs = jobs_backoff.first;
    jobs_openedAt = Date.now();
    jobs_setState('open');
    jobs_stopPolling();
    jobs_load().catch(() => {}); // catch up on what happened while disconnected
  });
  ws.addEventListener('message', (ev) => {
    if (typeof ev.data !== 'string') return;
    for (const line of ev.data.split('\n')) {
      if (!line.trim()) continue;
      try {
        const msg = JSON.parse(line);
        if (msg && msg.job_id) jobs_heard.set(msg.job_id, Date.now());
        jobs_apply(msg);
      } catch { /* not a progress message */ }
    }
  });
  ws.addEventListener('close', () => {
    if (jobs_socket !== ws) return;
    jobs_socket = null;
    jobs_scheduleReconnect();
  });
  ws.addEventListener('error', () => { /* close follows */ });
  if (!jobs_staleTimer) jobs_staleTimer = setInterval(jobs_checkStale, 1000);
}

// "stale" while the open socket has said nothing for jobs_staleMs about a job that is
// downloading; "open" again (and polling stops) once it speaks of them again.
function jobs_checkStale() {
  if (jobs_state.state !== 'open' && jobs_state.state !== 'stale') return;
  const now = Date.now();
  const quiet = [...jobs_byModel.values()].some((j) => j.status === 'downloading' &&
    now - Math.max(jobs_heard.get(j.job_id) || 0, jobs_openedAt) > jobs_staleMs);
  if (quiet && jobs_state.state === 'open') {
    jobs_setState('stale');
    jobs_startPolling();
  } else if (!quiet && jobs_state.state === 'stale') {
    jobs_setState('open');
    jobs_stopPolling();
  }
}

function jobs_scheduleReconnect() {
  const delay = Math.round(jobs_retryMs * (0.8 + Math.random() * 0.4));
  jobs_retryMs = Math.min(jobs_retryMs * 2, jobs_backoff.max);
  jobs_setState('retry', Math.ceil(delay / 1000));
  jobs_startPolling();
  clearTimeout(jobs_retryTimer);
  jobs_retryTimer = setTimeout(jobs_connect, delay);
}

// While the socket is down, active jobs are polled so progress still moves.
function jobs_startPolling() {
  if (jobs_pollTimer) return;
  jobs_pollTimer = setInterval(() => {
    const active = [...jobs_byModel.values()].filter(jobs_isActive);
    for (const job of active) {
      api(api_paths.job(job.job_id), { node: job.node }).then(jobs_apply).catch(() => {});
    }
  }, 2000);
}

function jobs_stopPolling() {
  clearInterval(jobs_pollTimer);
  jobs_pollTimer = null;
}

// For tests and debugging: drops the socket as if the network failed.
export function jobs_dropSocket() {
  if (jobs_socket) jobs_socket.close();
}
