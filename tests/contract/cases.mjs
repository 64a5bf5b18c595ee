// cases.mjs - the requests of the contract tests: one table per operation of
// docs/openapi.yaml ("method path" as the document spells it), one row per request. A new
// endpoint adds its table here; a new status adds a row. contract.test.mjs sends every row
// to the live stack and checks the answer against the document; it fails when an operation
// or a documented status has no row (the generic rows below count), or a row's status is not
// documented.
//
// A row:
//   status    the status the server must answer
//   example   the name of a documented example: parameters that have examples.<name> make
//             the request, and the answer must have the shape of the response's
//             examples.<name> (a response with one example is compared with it anyway)
//   params    path parameters (default: the parameter's example); query: {name: value} or a
//             raw query string; headers; method (default: the operation's); body (a string)
//   given     fixtures to set up first (FIXTURES below; each runs once); any value above may
//             be a function of the fixtures' results, fx => ...
//   config    the settings state while the row runs: open (default), token, broken
//   error     {code, parameter}: what the error object must say (parameter null: absent)
//   from      the local address to send from (127.0.0.2: a client other than 127.0.0.1)
//   before, after   (stack, fx) => set-up and tear-down around the request
//   check     (answer, fx) => more assertions; answer = {status, headers, body, json, frames}
//   websocket true: a WebSocket handshake (answer.frames: the first text frames)
import assert from 'node:assert/strict';
import { MODELS, TOKEN } from './stack.mjs';

const BEARER = { Authorization: `Bearer ${TOKEN}` };

// Set-up that rows ask for by name; each runs once, in the order the rows need them.
export const FIXTURES = {
  etag: async (s) => (await s.api('GET', '/api/models/gallery')).headers.etag,
  installed: (s) => s.install(MODELS.quick),
  spare: (s) => s.install(MODELS.spare),
  running: (s) => s.installSlowly(MODELS.slow),
  running2: (s) => s.installSlowly(MODELS.slow2),
  running3: (s) => s.installSlowly(MODELS.pause),
  paused: async (s) => s.pauseJob((await s.installSlowly(MODELS.resume)).job_id),
  stale: async (s) => {
    const job = await s.install(MODELS.update);
    s.editEntry(MODELS.update, (e) => ({ ...e, checksum: `sha256:${'0'.repeat(64)}` }));
    return job;
  },
  verifiable: (s) => s.install(MODELS.verify),
};

// Waits (up to 20 s) until no verify or update job is live: the tests write the registry
// without its lock, so a registry write of such a job finishing meanwhile would drop a
// planted entry.
const LIVE = ['queued', 'downloading', 'verifying', 'cancelling'];
const quiet = async (s) => {
  for (let i = 0; i < 400; i++) {
    const r = await s.api('GET', '/api/models/jobs?limit=1000');
    if (!r.json?.jobs?.some((j) => j.kind !== 'install' && LIVE.includes(j.status))) return;
    await new Promise((res) => setTimeout(res, 50));
  }
};

// before/after of a row that needs a registry entry planted for it (and removed after).
const planted = (id, withFile = true) => ({
  before: async (s) => { await quiet(s); s.unplant = s.plantEntry(id, withFile); },
  after: (s) => s.unplant(),
});

// Rows that every operation gets, on top of its own table, for each shared response of the
// document (components/responses) it lists: the status it lists it under, and this request.
export const GENERIC = {
  ForbiddenOrigin: { headers: { Origin: 'http://evil.example' }, error: { code: 'forbidden_origin', parameter: null } },
  Unauthorized: { config: 'token', error: { code: 'unauthorized', parameter: null } },
  MethodNotAllowed: { method: 'PUT', error: { code: 'method_not_allowed', parameter: null } },
  PayloadTooLarge: { body: 'x'.repeat(65 * 1024 + 1), error: { code: 'payload_too_large', parameter: null } },
  UriTooLong: { query: `q=${'x'.repeat(8200)}`, error: { code: 'uri_too_long', parameter: null } },
  Misdirected: { example: 'misdirected_request', headers: { Host: 'evil.example' }, error: { code: 'misdirected_request', parameter: null } },
  ConfigUnavailable: { config: 'broken', error: { code: 'config_unavailable', parameter: null } },
};

export const CASES = {
  'get /api/models/gallery': [
    { status: 200, example: 'gallery' },
    { status: 304, given: ['etag'], headers: { 'If-None-Match': (fx) => fx.etag } },
  ],
  'get /api/models/gallery/status': [
    { status: 200, example: 'local' },
    { status: 200, check: (a) => assert.equal(a.json.sources[0].signature, null) },
  ],
  'post /api/models/gallery/refresh': [
    { status: 202, example: 'accepted' },
    { status: 202, config: 'token', headers: BEARER },
    { status: 401, config: 'token', headers: { Authorization: 'Bearer wrong' }, error: { code: 'unauthorized', parameter: null } },
  ],
  'get /api/models/gallery/search': [
    { status: 200, example: 'search', check: (a) => assert.ok(a.json.total >= 1) },
    { status: 200, query: { query: 'no-such-model-anywhere' }, check: (a) => assert.equal(a.json.total, 0) },
    { status: 200, query: { category: 'code', sort: 'name', order: 'asc', limit: 2, offset: 1 } },
    { status: 400, example: 'invalid_parameter', query: { limit: '0' }, error: { code: 'invalid_parameter', parameter: 'limit' } },
    { status: 400, query: { min_size_gb: '3', max_size_gb: '1' }, error: { code: 'invalid_parameter', parameter: 'min_size_gb' } },
    { status: 400, query: { sort: 'Rating' }, error: { code: 'invalid_parameter', parameter: 'sort' } },
    { status: 400, query: { query: 'x'.repeat(65) }, error: { code: 'invalid_parameter', parameter: 'query' } },
    { status: 200, query: { fit: 'cpu,full_gpu,partial_gpu', limit: 1000 },
      check: (a) => assert.ok(a.json.models.every((m) => ['cpu', 'full_gpu', 'partial_gpu'].includes(m.fit))) },
    { status: 400, query: { fit: 'gpu' }, error: { code: 'invalid_parameter', parameter: 'fit' } },
  ],
  'get /api/models/gallery/facets': [
    { status: 200, example: 'chat', check: (a) => {
      assert.ok(a.json.total >= 1);
      assert.ok(a.json.facets.category.some((v) => v.value === 'chat'));
      // every model matching the filters has one fit class on this machine
      assert.equal(a.json.facets.fit.reduce((n, v) => n + v.count, 0), a.json.total);
    } },
    { status: 200, query: { fit: 'too_large' },
      check: (a) => assert.ok(a.json.facets.fit.length >= 1, 'its own filter does not apply to the fit facet') },
    { status: 200, query: { query: 'qwen', facet_limit: 2 },
      check: (a) => assert.ok(a.json.facets.language.length <= 2) },
    { status: 200, query: { family: 'no-such-family' }, check: (a) => assert.equal(a.json.total, 0) },
    { status: 400, example: 'invalid_parameter', query: { facet_limit: '0' },
      error: { code: 'invalid_parameter', parameter: 'facet_limit' } },
    { status: 400, query: { min_rating: 'x' }, error: { code: 'invalid_parameter', parameter: 'min_rating' } },
  ],
  'post /api/models/gallery/{id}/install': [
    { status: 202, example: 'queued', params: { id: MODELS.client } },
    { status: 202, config: 'token', headers: BEARER, params: { id: MODELS.other } },
    { status: 400, example: 'invalid_model_id', params: { id: '-bad' }, error: { code: 'invalid_model_id', parameter: 'id' } },
    { status: 404, example: 'model_not_found', params: { id: 'no-such-model' }, error: { code: 'model_not_found', parameter: 'id' } },
    { status: 409, example: 'already_installed', given: ['installed'], params: { id: MODELS.quick }, error: { code: 'already_installed', parameter: 'id' } },
    { status: 507, example: 'insufficient_storage', params: { id: MODELS.huge }, error: { code: 'insufficient_storage', parameter: null } },
  ],
  'get /api/models/gallery/{id}/preflight': [
    { status: 200, example: 'preflight', params: { id: MODELS.huge },
      check: (a) => assert.deepEqual(a.json.reasons.map((r) => r.code), ['insufficient_storage', 'too_large']) },
    { status: 200, given: ['installed'], params: { id: MODELS.quick },
      check: (a) => assert.equal(a.json.already_installed, true) },
    { status: 400, params: { id: '-bad' }, error: { code: 'invalid_model_id', parameter: 'id' } },
    { status: 404, example: 'model_not_found', params: { id: 'no-such-model' }, error: { code: 'model_not_found', parameter: 'id' } },
  ],
  'get /api/models/jobs': [
    { status: 200, example: 'jobs', given: ['installed'], check: (a) => assert.ok(a.json.jobs.length >= 1) },
    { status: 200, query: { status: 'cancelled', limit: 1000, offset: 5 }, check: (a) => assert.deepEqual(a.json.jobs, []) },
    { status: 400, example: 'invalid_parameter', query: { status: 'done' }, error: { code: 'invalid_parameter', parameter: 'status' } },
    { status: 400, query: { limit: '1001' }, error: { code: 'invalid_parameter', parameter: 'limit' } },
  ],
  'get /api/models/jobs/{job_id}': [
    { status: 200, example: 'installed', given: ['installed'], params: { job_id: (fx) => fx.installed.job_id } },
    { status: 200, given: ['installed'], params: { job_id: (fx) => fx.installed.job_id },
      check: (a) => assert.match(a.json.source_url, /^https?:\/\/127\.0\.0\.1:\d+\/.+/) },
    { status: 200, given: ['installed'], params: { job_id: (fx) => fx.installed.job_id },
      headers: { 'X-MG-Node': (fx) => fx.installed.node }, check: (a, fx) => assert.equal(a.json.node, fx.installed.node) },
    { status: 421, example: 'wrong_node', given: ['installed'], params: { job_id: (fx) => fx.installed.job_id },
      error: { code: 'wrong_node', parameter: null } },
    { status: 400, example: 'invalid_job_id', params: { job_id: 'not-a-job' }, error: { code: 'invalid_job_id', parameter: 'job_id' } },
    { status: 404, example: 'job_not_found', params: { job_id: '0000000000000000' }, error: { code: 'job_not_found', parameter: 'job_id' } },
  ],
  'delete /api/models/jobs/{job_id}': [
    { status: 200, example: 'cancelled', given: ['running'], params: { job_id: (fx) => fx.running.job_id },
      check: (a) => assert.equal(a.json.status, 'cancelled') },
    { status: 202, example: 'cancelling', given: ['running2'], params: { job_id: (fx) => fx.running2.job_id },
      before: (s) => s.pauseInstaller(), after: (s) => s.resumeInstaller(),
      check: (a) => assert.equal(a.json.status, 'cancelling') },
    { status: 400, params: { job_id: 'NOT-HEX' }, error: { code: 'invalid_job_id', parameter: 'job_id' } },
    { status: 404, params: { job_id: '0000000000000000' }, error: { code: 'job_not_found', parameter: 'job_id' } },
    { status: 409, example: 'job_finished', given: ['installed'], params: { job_id: (fx) => fx.installed.job_id },
      error: { code: 'job_finished', parameter: 'job_id' } },
  ],
  'post /api/models/jobs/{job_id}/pause': [
    { status: 200, example: 'paused', given: ['running3'], params: { job_id: (fx) => fx.running3.job_id },
      check: (a) => assert.equal(a.json.status, 'paused') },
    { status: 400, params: { job_id: 'NOT-HEX' }, error: { code: 'invalid_job_id', parameter: 'job_id' } },
    { status: 404, params: { job_id: '0000000000000000' }, error: { code: 'job_not_found', parameter: 'job_id' } },
    { status: 409, example: 'job_finished', given: ['installed'], params: { job_id: (fx) => fx.installed.job_id },
      error: { code: 'job_finished', parameter: 'job_id' } },
  ],
  'post /api/models/jobs/{job_id}/resume': [
    { status: 202, example: 'queued', given: ['paused'], params: { job_id: (fx) => fx.paused.job_id },
      check: (a) => assert.equal(a.json.status, 'queued') },
    { status: 400, params: { job_id: 'NOT-HEX' }, error: { code: 'invalid_job_id', parameter: 'job_id' } },
    { status: 404, params: { job_id: '0000000000000000' }, error: { code: 'job_not_found', parameter: 'job_id' } },
    { status: 409, example: 'job_finished', given: ['installed'], params: { job_id: (fx) => fx.installed.job_id },
      error: { code: 'job_finished', parameter: 'job_id' } },
  ],
  'get /api/models/installed': [
    { status: 200, example: 'installed', given: ['installed'] },
  ],
  'delete /api/models/{id}': [
    { status: 200, example: 'deleted', given: ['spare'], params: { id: MODELS.spare } },
    { status: 400, params: { id: '..' }, error: { code: 'invalid_model_id', parameter: 'id' } },
    { status: 404, example: 'not_installed', params: { id: 'gemma-2-2b-it-q6-k' }, error: { code: 'not_found', parameter: 'id' } },
    { status: 421, example: 'wrong_node', given: ['installed'], params: { id: MODELS.quick }, error: { code: 'wrong_node', parameter: null },
      after: async (s) => assert.equal((await s.api('GET', '/api/models/installed')).json.models[MODELS.quick].status, 'installed') },
  ],
  'post /api/models/{id}/update': [
    { status: 202, example: 'queued', given: ['stale'], params: { id: MODELS.update },
      check: (a) => assert.equal(a.json.kind, 'update') },
    { status: 400, params: { id: '..' }, error: { code: 'invalid_model_id', parameter: 'id' } },
    { status: 404, example: 'not_installed', params: { id: 'gemma-2-2b-it-q6-k' }, error: { code: 'not_installed', parameter: 'id' } },
    { status: 409, example: 'up_to_date', given: ['installed'], params: { id: MODELS.quick }, error: { code: 'up_to_date', parameter: 'id' } },
    { status: 507, example: 'insufficient_storage', params: { id: MODELS.huge }, ...planted(MODELS.huge),
      error: { code: 'insufficient_storage', parameter: null } },
  ],
  'post /api/models/{id}/verify': [
    { status: 202, example: 'queued', given: ['verifiable'], params: { id: MODELS.verify },
      check: (a) => assert.equal(a.json.kind, 'verify') },
    { status: 400, params: { id: '..' }, error: { code: 'invalid_model_id', parameter: 'id' } },
    { status: 404, example: 'not_installed', params: { id: 'gemma-2-2b-it-q6-k' }, error: { code: 'not_installed', parameter: 'id' } },
    { status: 409, example: 'file_missing', params: { id: MODELS.vanished }, ...planted(MODELS.vanished, false),
      error: { code: 'file_missing', parameter: 'id' } },
  ],
  'get /api/models/cleanup': [
    { status: 200, example: 'items', before: (s) => s.writeText('models/.partial/mistral-7b-instruct-v0.2-q4-k-s.gguf.part', 'x'.repeat(1000)),
      check: (a) => assert.ok(a.json.items.some((i) => i.kind === 'partial')) },
  ],
  'post /api/models/cleanup': [
    { status: 200, example: 'removed', before: (s) => s.writeText('models/llm/My model (copy).gguf', 'x'),
      check: (a) => assert.ok(a.json.items.some((i) => i.path === 'models/llm/My model (copy).gguf')) },
    { status: 200, query: 'include=', check: (a) => assert.deepEqual(a.json.failed, []) },
    { status: 400, example: 'invalid_parameter', query: { include: 'all' }, error: { code: 'invalid_parameter', parameter: 'include' } },
  ],
  'get /api/models/system': [
    { status: 200, example: 'profile', check: (a) => assert.ok(a.json.ram_bytes > 0 && a.json.cpu_cores >= 1) },
  ],
  'get /api/models/health': [
    { status: 200, example: 'ok', check: (a) => assert.deepEqual(a.json.progress, { store: 'memory', status: 'ok' }) },
  ],
  'get /metrics': [
    { status: 200, given: ['installed'], check: (a) => assert.match(a.body, /^mg_jobs\{status="installed"\} [1-9]/m) },
    { status: 403, from: '127.0.0.2', error: { code: 'forbidden', parameter: null } },
  ],
  'get /api/models/ws/progress': [
    { status: 200, given: ['installed'], headers: { Accept: 'text/event-stream' },
      check: (a) => assert.ok(a.events.length >= 1, 'replayed progress messages') },
    { status: 101, given: ['installed'], websocket: true,
      check: (a) => assert.ok(a.frames.length >= 1, 'replayed progress messages') },
    { status: 401, config: 'token', query: { access_token: 'wrong' }, headers: { Accept: 'text/event-stream' },
      error: { code: 'unauthorized', parameter: null } },
    { status: 200, config: 'token', query: { access_token: TOKEN }, headers: { Accept: 'text/event-stream' } },
    // Redis mode with no Redis to reach: the stack restarts with redis_url, and back
    { status: 503, example: 'progress_unavailable', config: 'redis_down', headers: { Accept: 'text/event-stream' },
      error: { code: 'progress_unavailable', parameter: null },
      before: (s) => s.startStack(),
      after: async (s) => { s.setConfig('open'); await s.startStack(); } },
  ],
};
