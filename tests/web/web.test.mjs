// web.test.mjs - unit tests of the web UI's plain modules under Node (node --test, no
// browser, no packages): the formats of sizes, durations and percentages at their
// boundaries, the REST client api() against a real HTTP server in this process (its errors
// as ApiError with the server's status, code, message and parameter, the fallbacks when an
// answer has no message or no JSON, the token sent with changes only, the paths), and how
// jobs_apply merges job documents and progress messages (no step back, a restart accepted,
// nothing after the end), and how names_want looks up the names of unknown models (once per
// id, at most 3 at a time, the exact id only, no endless retries).
// The browser tests (tests/e2e) cover the views.
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, test } from 'node:test';

// What the modules read from the browser at load time: the language, stored settings and
// the window object.
const store = new Map();
globalThis.localStorage = {
  getItem: (k) => (store.has(k) ? store.get(k) : null),
  setItem: (k, v) => store.set(k, String(v)),
  removeItem: (k) => store.delete(k),
};
Object.defineProperty(globalThis, 'navigator', {
  value: { language: 'en-US', languages: ['en-US'] }, configurable: true,
});
// window: where boot.js leaves the first search's answer (none here)
globalThis.window = globalThis;

const { format_bytes, format_gb, format_duration, format_percent, format_date } =
  await import('../../web/js/format.js');
const { api, api_paths, api_setToken, ApiError } = await import('../../web/js/api.js');
const { t } = await import('../../web/js/i18n.js');
const { jobs_apply, jobs_forModel, jobs_isActive, jobs_onChange, jobs_nameOf, jobs_setName } =
  await import('../../web/js/jobs.js');
const { names_want, names_onFound } = await import('../../web/js/names.js');

describe('format_bytes: decimal units, 1000 steps', () => {
  const cases = [
    [0, '0 B'], [1, '1 B'], [999, '999 B'], [1000, '1 kB'], [1500, '1.5 kB'],
    [9994, '9.99 kB'], [12345, '12.3 kB'], [99949, '99.9 kB'], [123456, '123 kB'],
    [999999, '1,000 kB'], [1e6, '1 MB'], [1e9, '1 GB'], [2.5e9, '2.5 GB'], [1e12, '1 TB'],
    [1e15, '1,000 TB'], [-1, '–'], [NaN, '–'], [Infinity, '–'],
  ];
  for (const [n, want] of cases) test(`${n} → ${want}`, () => assert.equal(format_bytes(n), want));
  test('format_gb scales by 10^9', () => {
    assert.equal(format_gb(1.5), '1.5 GB');
    assert.equal(format_gb(0.0005), '500 kB');
    assert.equal(format_gb(undefined), '–');
  });
});

describe('format_duration: s, min s, h min', () => {
  const cases = [
    [0, '1 s'], [0.4, '1 s'], [1, '1 s'], [59, '59 s'], [59.4, '59 s'], [59.5, '1 min'],
    [60, '1 min'], [61, '1 min 1 s'], [119, '1 min 59 s'], [3599, '59 min 59 s'],
    [3600, '1 h'], [3660, '1 h 1 min'], [7199, '1 h 59 min'], [86400, '24 h'],
    [-1, '–'], [NaN, '–'], [Infinity, '–'],
  ];
  for (const [s, want] of cases) test(`${s} → ${want}`, () => assert.equal(format_duration(s), want));
});

describe('format_percent: one decimal under 10 %', () => {
  const cases = [[0, '0%'], [5.5, '5.5%'], [9.94, '9.9%'], [10, '10%'], [42.4, '42%'],
    [99.6, '100%'], [100, '100%'], [null, '0%'], ['x', '0%']];
  for (const [p, want] of cases) test(`${p} → ${want}`, () => assert.equal(format_percent(p), want));
});

test('format_date: a dash for what is not a date', () => {
  assert.equal(format_date(''), '–');
  assert.equal(format_date('not a date'), '–');
  assert.match(format_date('2026-11-28T10:00:00+00:00', false), /2026/);
});

describe('api() against a real server', () => {
  let server;
  let base;
  const seen = [];
  // path -> [status, body text (undefined: none), content type]
  const answers = {
    '/ok': [200, '{"a":1}', 'application/json'],
    '/empty': [200, '', 'application/json'],
    '/missing': [404, '{"error":{"code":"model_not_found","message":"no model x","parameter":"id"}}',
      'application/json'],
    '/noparam': [409, '{"error":{"code":"job_finished","message":"already finished"}}', 'application/json'],
    '/html': [502, '<html>bad gateway</html>', 'text/html'],
    '/nomessage': [500, '{"error":{"code":"x"}}', 'application/json'],
    '/auth-bare': [401, '', 'application/json'],
    '/auth': [401, '{"error":{"code":"unauthorized","message":"a token is needed"}}', 'application/json'],
  };

  before(async () => {
    server = http.createServer((req, res) => {
      seen.push({ method: req.method, url: req.url, auth: req.headers.authorization ?? null });
      const [status, body, type] = answers[req.url] ?? [404, '{}', 'application/json'];
      res.writeHead(status, { 'Content-Type': type });
      res.end(body);
    });
    await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${server.address().port}`;
  });
  after(() => new Promise((resolve) => server.close(resolve)));

  const failure = async (path, opts) => {
    try {
      await api(base + path, opts);
    } catch (e) {
      return e;
    }
    assert.fail(`${path} did not fail`);
  };

  test('answers are parsed; an empty body is null', async () => {
    assert.deepEqual(await api(`${base}/ok`), { a: 1 });
    assert.equal(await api(`${base}/empty`), null);
  });

  test('an error answer becomes ApiError with status, code, message and parameter', async () => {
    const e = await failure('/missing');
    assert.ok(e instanceof ApiError);
    assert.deepEqual([e.status, e.code, e.message, e.parameter],
      [404, 'model_not_found', 'no model x', 'id']);
    const f = await failure('/noparam', { method: 'DELETE' });
    assert.deepEqual([f.status, f.code, f.message, f.parameter],
      [409, 'job_finished', 'already finished', null]);
  });

  test('an answer without the server\'s words says the status', async () => {
    for (const [path, status] of [['/html', 502], ['/nomessage', 500]]) {
      const e = await failure(path);
      assert.deepEqual([e.status, e.code, e.message],
        [status, `http_${status}`, t('error.http', { status })]);
    }
  });

  test('401: the server\'s words and how to give a token', async () => {
    const bare = await failure('/auth-bare', { method: 'POST' });
    assert.deepEqual([bare.status, bare.code, bare.message], [401, 'unauthorized', t('error.auth')]);
    const e = await failure('/auth', { method: 'POST' });
    assert.equal(e.code, 'unauthorized');
    assert.equal(e.message, `a token is needed – ${t('error.auth')}`);
  });

  test('no server: a network error', async () => {
    const closed = http.createServer();
    await new Promise((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = closed.address().port;
    await new Promise((resolve) => closed.close(resolve));
    let e;
    try { await api(`http://127.0.0.1:${port}/x`); } catch (err) { e = err; }
    assert.deepEqual([e.status, e.code, e.message], [0, 'network', t('error.network')]);
  });

  test('an aborted request rejects with the AbortError itself', async () => {
    const ctl = new AbortController();
    ctl.abort();
    await assert.rejects(api(`${base}/ok`, { signal: ctl.signal }), { name: 'AbortError' });
  });

  test('the token goes with changes only', async () => {
    api_setToken('s3cret');
    try {
      seen.length = 0;
      await api(`${base}/ok`);
      await api(`${base}/ok`, { method: 'POST' });
      await api(`${base}/ok`, { method: 'DELETE' });
      assert.deepEqual(seen.map((s) => [s.method, s.auth]),
        [['GET', null], ['POST', 'Bearer s3cret'], ['DELETE', 'Bearer s3cret']]);
    } finally {
      api_setToken('');
    }
    seen.length = 0;
    await api(`${base}/ok`, { method: 'POST' });
    assert.equal(seen[0].auth, null);
  });

  test('paths encode ids as one segment', () => {
    assert.equal(api_paths.install('a/b c'), '/api/models/gallery/a%2Fb%20c/install');
    assert.equal(api_paths.model('x?y'), '/api/models/x%3Fy');
    assert.equal(api_paths.job('0123456789abcdef'), '/api/models/jobs/0123456789abcdef');
    assert.equal(api_paths.search('a=1&b=2'), '/api/models/gallery/search?a=1&b=2');
  });
});

describe('jobs_apply: one current job per model', () => {
  const events = [];
  jobs_onChange((modelId, job, how) => events.push([modelId, job && job.status, job && job.downloaded, how]));
  const msg = (over) => ({
    model_id: 'm', job_id: 'j1', status: 'downloading', downloaded: 0, total: 100, ...over,
  });
  const current = () => { const j = jobs_forModel('m'); return j && [j.job_id, j.status, j.downloaded]; };

  test('active statuses', () => {
    for (const s of ['queued', 'paused', 'downloading', 'verifying', 'cancelling']) {
      assert.equal(jobs_isActive({ status: s }), true, s);
    }
    for (const s of ['installed', 'failed', 'cancelled', 'bogus']) {
      assert.equal(jobs_isActive({ status: s }), false, s);
    }
    assert.equal(jobs_isActive(null), false);
  });

  test('progress moves forward; an older snapshot is ignored, a restart from far back is not', () => {
    jobs_apply(msg({ status: 'queued' }));
    assert.deepEqual(current(), ['j1', 'queued', 0]);
    assert.deepEqual(events.at(-1)[3], { terminal: false, fresh: true });
    jobs_apply(msg({ downloaded: 60 }));
    assert.deepEqual(current(), ['j1', 'downloading', 60]);
    assert.deepEqual(events.at(-1)[3], { terminal: false, fresh: false });
    jobs_apply(msg({ downloaded: 30 }));          // half of 60: an older snapshot
    assert.deepEqual(current(), ['j1', 'downloading', 60]);
    jobs_apply(msg({ downloaded: 29 }));          // under half: the download started over
    assert.deepEqual(current(), ['j1', 'downloading', 29]);
    jobs_apply(msg({ status: 'verifying', downloaded: 100 }));
    jobs_apply(msg({ status: 'downloading', downloaded: 100 }));   // a status going back
    assert.deepEqual(current(), ['j1', 'verifying', 100]);
  });

  test('the end of a job is final; messages replayed after it are ignored', () => {
    const before = events.length;
    jobs_apply(msg({ status: 'installed', downloaded: 100 }));
    assert.deepEqual(current(), ['j1', 'installed', 100]);
    assert.deepEqual(events.at(-1)[3], { terminal: true, fresh: false });
    jobs_apply(msg({ status: 'downloading', downloaded: 10 }));
    assert.deepEqual(current(), ['j1', 'installed', 100]);
    assert.equal(events.length, before + 1);
  });

  test('a new job of the model takes over; an older active one does not', () => {
    jobs_apply(msg({ job_id: 'j2', status: 'queued', created_at: '2026-01-02T00:00:00Z' }));
    assert.deepEqual(current(), ['j2', 'queued', 0]);
    jobs_apply(msg({ job_id: 'j0', downloaded: 5, created_at: '2026-01-01T00:00:00Z' }));
    assert.deepEqual(current(), ['j2', 'queued', 0]);
    jobs_apply(msg({ job_id: 'j3', status: 'failed' }));   // the end of a job never seen running
    assert.deepEqual(current(), ['j2', 'queued', 0]);
    assert.deepEqual(events.at(-1)[3], { terminal: true, foreign: true });
  });

  test('what is not a progress message is ignored', () => {
    const before = events.length;
    const bad = [null, 'x', {}, { model_id: 'm', job_id: 'j2' }, msg({ job_id: 'j2', status: 'done' }),
      msg({ model_id: '' })];
    for (const b of bad) jobs_apply(b);
    assert.equal(events.length, before);
    assert.deepEqual(current(), ['j2', 'queued', 0]);
  });
});

describe('names_want: model names looked up by a search, bounded', () => {
  let server;
  let inFlight = 0;
  let most = 0;
  let lastAt = 0;
  const asked = [];                         // the query of every search
  const found = [];
  const realFetch = globalThis.fetch;
  names_onFound((id, name) => found.push([id, name]));

  // query -> the answer: a model and one whose id only contains it; 'gone' is not in the
  // gallery, 'bad' is refused, 'flaky' fails with 500.
  function answer(q) {
    if (q === 'bad') return [400, { error: { code: 'invalid_parameter', message: 'no', parameter: 'query' } }];
    if (q === 'flaky') return [500, { error: { code: 'internal', message: 'down' } }];
    if (q === 'gone') return [200, { total: 1, models: [{ id: 'gone-too', name: 'Another' }] }];
    return [200, { total: 2, models: [{ id: `${q}-v2`, name: `Not ${q}` }, { id: q, name: `Name of ${q}` }] }];
  }

  before(async () => {
    server = http.createServer((req, res) => {
      const url = new URL(req.url, 'http://x');
      assert.equal(url.pathname, '/api/models/gallery/search');
      const q = url.searchParams.get('query');
      asked.push(q);
      inFlight++;
      most = Math.max(most, inFlight);
      lastAt = Date.now();
      setTimeout(() => {
        const [status, body] = answer(q);
        inFlight--;
        lastAt = Date.now();
        res.writeHead(status, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify(body));
      }, 40);
    });
    await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
    const base = `http://127.0.0.1:${server.address().port}`;
    globalThis.fetch = (p, opts) => realFetch(new URL(p, base), opts);   // the page's origin
  });
  after(() => {
    globalThis.fetch = realFetch;
    return new Promise((resolve) => server.close(resolve));
  });

  // Resolves once no search has been running for 150 ms.
  const settled = async () => {
    for (;;) {
      await new Promise((resolve) => setTimeout(resolve, 30));
      if (!inFlight && Date.now() - lastAt > 150) return;
    }
  };
  const count = (q) => asked.filter((x) => x === q).length;

  test('each unknown id once, at most 3 at a time, the exact id\'s name', async () => {
    jobs_setName('known', 'Known');
    const ids = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'a', 'known', '', null];
    names_want(ids);
    names_want(ids);                        // again while the first lookups run
    await settled();
    names_want(ids);                        // and once all names are known
    await settled();
    assert.deepEqual([...asked].sort(), ['a', 'b', 'c', 'd', 'e', 'f', 'g']);
    assert.ok(most <= 3 && most >= 2, `${most} searches at once`);
    for (const id of ['a', 'b', 'c', 'd', 'e', 'f', 'g']) assert.equal(jobs_nameOf(id), `Name of ${id}`);
    assert.deepEqual(found.map(([id]) => id).sort(), ['a', 'b', 'c', 'd', 'e', 'f', 'g']);
    assert.equal(jobs_nameOf('known'), 'Known');
  });

  test('an id the gallery lacks or refuses is asked once; a failing one at most 3 times', async () => {
    for (let i = 0; i < 5; i++) {
      names_want(['gone', 'bad', 'flaky']);
      await settled();
    }
    assert.equal(count('gone'), 1);
    assert.equal(count('bad'), 1);
    assert.equal(count('flaky'), 3);
    assert.equal(jobs_nameOf('gone'), 'gone');
    assert.equal(jobs_nameOf('gone-too'), 'gone-too');   // other models found on the way are not taken
    assert.equal(jobs_nameOf('flaky'), 'flaky');
  });

  test('a long id is searched by its first 64 bytes and still matched exactly', async () => {
    const long = `x${'y'.repeat(99)}`;
    names_want([long]);
    await settled();
    assert.equal(asked.at(-1), long.slice(0, 64));
    assert.equal(jobs_nameOf(long), long);  // the server answered for the 64 bytes only
  });
});
