// The REST client: every call goes through api(); errors become ApiError with the
// server's plain-words message ({"error": {code, message, parameter}}).
import { t } from './i18n.js';

const api_tokenKey = 'mg.token';

export class ApiError extends Error {
  constructor(status, code, message, parameter = null) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.parameter = parameter;
  }
}

export function api_token() {
  try { return localStorage.getItem(api_tokenKey) || ''; } catch { return ''; }
}

export function api_setToken(token) {
  try {
    if (token) localStorage.setItem(api_tokenKey, token);
    else localStorage.removeItem(api_tokenKey);
  } catch { /* storage blocked */ }
}

// api(path, {method, signal, node}): resolves to the parsed JSON body, rejects with ApiError.
// An aborted request rejects with the AbortError unchanged. `node` (a job's or the installed
// list's node) goes as X-MG-Node, so that a load balancer in front of several nodes sends the
// request to the node that holds the job or the model (another node refuses it: 421).
export async function api(path, { method = 'GET', signal, node } = {}) {
  const headers = { Accept: 'application/json' };
  const token = api_token();
  if (token && method !== 'GET') headers.Authorization = `Bearer ${token}`;
  if (typeof node === 'string' && node) headers['X-MG-Node'] = node;
  let res;
  try {
    res = await ((method === 'GET' && api_preloaded(path)) ||
      fetch(path, { method, headers, signal, cache: 'no-cache' })); // revalidates (ETag)
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new ApiError(0, 'network', t('error.network'));
  }
  const text = await res.text();
  let body = null;
  try { body = text ? JSON.parse(text) : null; } catch { body = null; }
  if (!res.ok) throw api_errorFrom(res.status, body);
  return body;
}

// The answer boot.js asked for before the UI loaded, taken once when the path is the same.
function api_preloaded(path) {
  const pre = window.mgPreload;
  if (!pre || pre.path !== path) return null;
  window.mgPreload = null;
  return pre.res;
}

function api_errorFrom(status, body) {
  const e = body && typeof body === 'object' ? body.error : null;
  if (status === 401 && !(e && e.message)) return new ApiError(401, 'unauthorized', t('error.auth'));
  if (e && typeof e.message === 'string' && e.message) {
    const message = status === 401 ? `${e.message} – ${t('error.auth')}` : e.message;
    return new ApiError(status, e.code || `http_${status}`, message, e.parameter || null);
  }
  return new ApiError(status, `http_${status}`, t('error.http', { status }));
}

export const api_paths = {
  gallery: '/api/models/gallery',
  search: (params) => `/api/models/gallery/search?${params}`,
  facets: (params) => `/api/models/gallery/facets?${params}`,
  install: (id) => `/api/models/gallery/${encodeURIComponent(id)}/install`,
  jobs: '/api/models/jobs',
  job: (jobId) => `/api/models/jobs/${encodeURIComponent(jobId)}`,
  installed: '/api/models/installed',
  model: (id) => `/api/models/${encodeURIComponent(id)}`,
  health: '/api/models/health',
  progressSocket: '/api/models/ws/progress',
};
