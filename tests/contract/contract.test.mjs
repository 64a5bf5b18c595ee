// contract.test.mjs - every operation of docs/openapi.yaml against the live stack: each row of
// cases.mjs (and the generic row of each shared response an operation lists) is sent as a real
// request, and the answer must be documented for its status, carry a documented content type,
// validate against that response's schema (ajv; `additionalProperties: false` makes an
// undocumented field fail), carry its required headers, and have the shape of the example it
// names. At the end every operation, documented status and example must have been exercised.
// Run: node --test tests/contract/  (MG_BIN_DIR = the CMake build; MG_OPENAPI = another copy
// of the document).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { CASES, FIXTURES, GENERIC } from './cases.mjs';
import { request, sseData, websocket } from './http.mjs';
import { examplesOf, loadDocument, makeAjv, operations, pathMethods, shapeDiff } from './oas.mjs';
import { ContractStack } from './stack.mjs';

const { doc } = await loadDocument();
const ajv = makeAjv();
const OPS = operations(doc);

// Fails with `what` and the problems found, one a line (no diff of arrays).
function none(problems, what) {
  if (problems.length) assert.fail(`${what}:\n  ${problems.join('\n  ')}`);
}

const seenStatus = new Set();          // "op status" answered as documented
const seenExample = new Map();         // media type object -> names of examples compared
const failedOps = new Set();           // operations whose rows failed (reported there)

let stack;
const fixtures = new Map();            // name -> promise of its result

function fixture(name) {
  if (!FIXTURES[name]) throw new Error(`no fixture '${name}' in cases.mjs`);
  if (!fixtures.has(name)) fixtures.set(name, FIXTURES[name](stack));
  return fixtures.get(name);
}

// A row with every function value replaced by its value for the fixtures' results `fx`.
function resolve(v, fx) {
  if (typeof v === 'function') return v(fx);
  if (v && typeof v === 'object' && !Array.isArray(v)) {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, resolve(x, fx)]));
  }
  return v;
}

// The request of `row` for operation `o`: method, raw path with query, headers.
function buildRequest(o, row) {
  const params = { ...row.params };
  const query = typeof row.query === 'string' ? null : new URLSearchParams();
  const headers = { ...row.headers };
  for (const p of o.parameters) {
    const ex = examplesOf(p);
    const named = row.example && row.example in ex ? ex[row.example] : undefined;
    if (p.in === 'path' && params[p.name] === undefined) params[p.name] = named ?? ex[''] ?? Object.values(ex)[0];
    if (p.in === 'query' && query && named !== undefined && !(row.query && p.name in row.query)) query.set(p.name, String(named));
    if (p.in === 'header' && named !== undefined && !(p.name in headers)) headers[p.name] = String(named);
  }
  if (query) for (const [k, v] of Object.entries(row.query || {})) query.set(k, String(v));
  let path = o.path.replace(/\{([^}]+)\}/g, (_, name) => {
    if (params[name] === undefined) throw new Error(`${o.key}: no value for path parameter ${name}`);
    return String(params[name]);
  });
  const qs = query ? query.toString() : row.query;
  if (qs) path += `?${qs}`;
  return { method: (row.method || o.method).toUpperCase(), path, headers, body: row.body, from: row.from };
}

function describeRow(req, row) {
  const extra = [row.config && `settings: ${row.config}`, Object.keys(req.headers).length && `headers: ${JSON.stringify(req.headers)}`];
  return `${req.method} ${req.path.length > 120 ? `${req.path.slice(0, 120)}...` : req.path}${extra.filter(Boolean).map((x) => ` (${x})`).join('')}`;
}

// The documented media type of an answer, and the parsed body (for JSON and event streams).
function checkContent(response, ans, what) {
  const content = response.content || {};
  if (!Object.keys(content).length) {
    assert.equal(ans.body, '', `${what}: the document lists no content for ${ans.status}, the answer has a body`);
    return null;
  }
  const type = (ans.headers['content-type'] || '').split(';')[0].trim();
  assert.ok(type in content, `${what}: Content-Type '${type}' is not documented for ${ans.status} (${Object.keys(content).join(', ')})`);
  const media = content[type];
  if (type === 'application/json') {
    ans.json = JSON.parse(ans.body);
    none(ajv.check(media.schema, ans.json), `${what}: the answer does not match the schema (answer: ${ans.body.slice(0, 1500)})`);
    return { media, values: [ans.json] };
  }
  if (type === 'text/event-stream') {
    ans.events = sseData(ans.body).map((d) => JSON.parse(d));
    for (const ev of ans.events) {
      none(ajv.check(media.schema, ev), `${what}: an event does not match the schema (event: ${JSON.stringify(ev)})`);
    }
    return { media, values: ans.events };
  }
  none(ajv.check(media.schema, ans.body), `${what}: the answer does not match the schema`);
  return { media, values: [] };
}

function checkHeaders(response, ans, what) {
  for (const [name, h] of Object.entries(response.headers || {})) {
    const v = ans.headers[name.toLowerCase()];
    if (v === undefined) {
      assert.ok(!h.required, `${what}: the required header ${name} is missing`);
      continue;
    }
    const value = h.schema?.type === 'integer' || h.schema?.type === 'number' ? Number(v) : v;
    none(ajv.check(h.schema || {}, value), `${what}: header ${name}: ${v}`);
  }
}

// Compares the answer with the example the row names (or the response's only example).
function checkExample(found, row, what) {
  if (!found) return;
  const ex = examplesOf(found.media);
  const names = Object.keys(ex);
  let name = null;
  if (row.example && names.includes(row.example)) name = row.example;
  else if (names.length === 1) [name] = names;
  if (name === null) return;
  if (!seenExample.has(found.media)) seenExample.set(found.media, new Set());
  seenExample.get(found.media).add(name);
  for (const v of found.values) {
    none(shapeDiff(found.media.schema, ex[name], v).slice(0, 10),
      `${what}: the answer's shape differs from example '${name || '(the example)'}' (answer: ${JSON.stringify(v).slice(0, 1500)})`);
  }
}

async function runRow(o, row) {
  const fx = {};
  for (const name of row.given || []) fx[name] = await fixture(name);
  const r = resolve({ ...row, check: undefined, before: undefined, after: undefined }, fx);
  const req = buildRequest(o, r);
  const what = `${o.key}: ${describeRow(req, r)}`;
  stack.setConfig(r.config || 'open');
  if (row.before) await row.before(stack, fx);
  let ans;
  try {
    ans = row.websocket ? await websocket(stack.port, req) : await request(stack.port, { ...req, stream: 1000 });
  } finally {
    if (row.after) await row.after(stack, fx);
  }
  assert.equal(ans.status, r.status, `${what}: status ${ans.status}, expected ${r.status}\nanswer: ${ans.body.slice(0, 1000)}`);
  const response = o.op.responses[String(ans.status)] || o.op.responses.default;
  assert.ok(response, `${what}: status ${ans.status} is not documented for this operation`);
  const found = checkContent(response, ans, what);
  checkHeaders(response, ans, what);
  if (response['x-message-schema']) {
    for (const f of ans.frames || []) {
      none(ajv.check(response['x-message-schema'], JSON.parse(f)), `${what}: a message does not match x-message-schema (message: ${f})`);
    }
  }
  checkExample(found, r, what);
  if (r.error) {
    assert.equal(ans.json?.error?.code, r.error.code, `${what}: error.code\nanswer: ${ans.body}`);
    if (r.error.parameter === null) assert.ok(!('parameter' in ans.json.error), `${what}: error.parameter should be absent\nanswer: ${ans.body}`);
    else if (r.error.parameter !== undefined) assert.equal(ans.json.error.parameter, r.error.parameter, `${what}: error.parameter\nanswer: ${ans.body}`);
  }
  if (ans.status === 405) {
    const allow = new Set((ans.headers.allow || '').split(',').map((m) => m.trim()).filter(Boolean));
    const want = new Set(pathMethods(doc, o.path).flatMap((m) => (m === 'GET' ? ['GET', 'HEAD'] : [m])));
    assert.deepEqual([...allow].sort(), [...want].sort(), `${what}: Allow lists the path's documented methods`);
  }
  if (row.check) await row.check(ans, fx);
  seenStatus.add(`${o.key} ${ans.status}`);
}

// The rows of operation `o`: its table, then the generic row of each shared response it
// lists (the same object once $refs are resolved), with the status it lists it under.
function rowsOf(o) {
  const own = CASES[o.key] || [];
  const generic = [];
  for (const [name, row] of Object.entries(GENERIC)) {
    const shared = doc.components.responses[name];
    assert.ok(shared, `cases.mjs: GENERIC.${name} is not a response of components/responses`);
    for (const [status, r] of Object.entries(o.op.responses)) {
      if (r === shared) generic.push({ ...row, status: Number(status) });
    }
  }
  return [...own, ...generic];
}

describe('the live answers match docs/openapi.yaml', () => {
  before(async () => {
    stack = new ContractStack();
    await stack.start();
  });

  after(async () => {
    if (stack) await stack.stop();
  });

  for (const o of OPS) {
    it(o.key, async (t) => {
      try {
        for (const row of rowsOf(o)) await runRow(o, row);
      } catch (e) {
        failedOps.add(o.key);
        stack.failed = true;
        t.diagnostic(stack.logs(15));
        throw e;
      } finally {
        stack.setConfig('open');
      }
    });
  }

  it('every operation has a table, every documented status and example was exercised', () => {
    const keys = new Set(OPS.map((o) => o.key));
    const stray = Object.keys(CASES).filter((k) => !keys.has(k));
    none(stray, 'tables in cases.mjs for operations the document does not have');
    const missing = [];
    for (const o of OPS.filter((x) => !failedOps.has(x.key))) {
      if (!CASES[o.key]) missing.push(`${o.key}: no table in cases.mjs`);
      for (const status of Object.keys(o.op.responses)) {
        if (status !== 'default' && !seenStatus.has(`${o.key} ${status}`)) missing.push(`${o.key}: no row answered ${status}`);
      }
      for (const [status, r] of Object.entries(o.op.responses)) {
        for (const [type, media] of Object.entries(r.content || {})) {
          for (const name of Object.keys(examplesOf(media))) {
            if (!seenExample.get(media)?.has(name)) missing.push(`${o.key} ${status} ${type}: example '${name}' was not compared with an answer`);
          }
        }
      }
    }
    none(missing, 'what the document lists but no request exercised');
  });
});
