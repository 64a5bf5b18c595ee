// oas.mjs - docs/openapi.yaml as the tests see it: loaded and validated by a standard
// OpenAPI validator (@apidevtools/swagger-parser), its operations, responses, examples and
// schemas; ajv (draft-04 semantics, as OpenAPI 3.0 schemas have, with `nullable`) validates
// answers and examples; shapeDiff compares an answer with an example key by key.
import path from 'node:path';
import SwaggerParser from '@apidevtools/swagger-parser';
import Ajv from 'ajv-draft-04';
import addFormats from 'ajv-formats';
import { REPO } from '../lib/stack.mjs';

export const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];

// The document under test: docs/openapi.yaml, or the file MG_OPENAPI names (a scratch copy).
export function documentPath() {
  return path.resolve(process.env.MG_OPENAPI || path.join(REPO, 'docs', 'openapi.yaml'));
}

// Validates the document with swagger-parser (throws with every error found) and returns it
// with every $ref resolved (shared objects: a schema used twice is the same object).
export async function loadDocument(file = documentPath()) {
  await SwaggerParser.validate(file);
  const doc = await SwaggerParser.dereference(file);
  return { doc, file };
}

// Keywords of OpenAPI 3.0 schemas that are documentation only.
const ANNOTATIONS = ['example', 'xml', 'externalDocs', 'deprecated', 'readOnly', 'writeOnly',
  'discriminator'];

// An ajv for OpenAPI 3.0 schemas: strict, every error, the formats of ajv-formats.
export function makeAjv() {
  const ajv = new Ajv({ strict: true, allErrors: true, strictTypes: false, validateFormats: true });
  addFormats(ajv);
  for (const kw of ANNOTATIONS) if (!ajv.getKeyword(kw)) ajv.addKeyword({ keyword: kw });
  const cache = new WeakMap();
  return {
    // Errors of `value` against `schema` as readable lines; [] when valid.
    check(schema, value) {
      let fn = cache.get(schema);
      if (!fn) {
        fn = ajv.compile(schema);
        cache.set(schema, fn);
      }
      if (fn(value)) return [];
      return fn.errors.map((e) => `${e.instancePath || '(top)'} ${e.message}` +
        (e.params && Object.keys(e.params).length ? ` ${JSON.stringify(e.params)}` : ''));
    },
  };
}

// Every operation: {key: "get /api/...", method, path, op, parameters (path-level ones too)}.
export function operations(doc) {
  const out = [];
  for (const [p, item] of Object.entries(doc.paths)) {
    for (const method of METHODS) {
      const op = item[method];
      if (!op) continue;
      const params = [...(item.parameters || [])];
      for (const q of op.parameters || []) {
        const i = params.findIndex((x) => x.in === q.in && x.name === q.name);
        if (i >= 0) params[i] = q; else params.push(q);
      }
      out.push({ key: `${method} ${p}`, method, path: p, op, parameters: params });
    }
  }
  return out;
}

// The methods a path documents, upper-case.
export function pathMethods(doc, p) {
  return METHODS.filter((m) => doc.paths[p][m]).map((m) => m.toUpperCase());
}

// The examples of a media type or parameter as {name: value}; a lone `example` is named ''.
export function examplesOf(obj) {
  if (!obj) return {};
  if (obj.examples) {
    return Object.fromEntries(Object.entries(obj.examples).map(([k, v]) => [k, v.value]));
  }
  return 'example' in obj ? { '': obj.example } : {};
}

// Calls fn(schema, where) for every schema object reachable from the document, once each.
export function walkSchemas(doc, fn) {
  const seen = new Set();
  const visit = (s, where) => {
    if (!s || typeof s !== 'object' || seen.has(s)) return;
    seen.add(s);
    fn(s, where);
    for (const k of ['items', 'not', 'additionalProperties']) visit(s[k], `${where}/${k}`);
    for (const k of ['allOf', 'anyOf', 'oneOf']) (s[k] || []).forEach((x, i) => visit(x, `${where}/${k}/${i}`));
    for (const [k, v] of Object.entries(s.properties || {})) visit(v, `${where}/properties/${k}`);
  };
  for (const [name, s] of Object.entries(doc.components?.schemas || {})) visit(s, `#/components/schemas/${name}`);
  for (const o of operations(doc)) {
    for (const p of o.parameters) visit(p.schema, `${o.key} parameter ${p.name}`);
    for (const [status, r] of Object.entries(o.op.responses || {})) {
      for (const [type, m] of Object.entries(r.content || {})) visit(m.schema, `${o.key} ${status} ${type}`);
    }
  }
}

function jsonType(v) {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  return typeof v;
}

// A schema whose keys are data (ids), not names: additionalProperties with a schema and no
// properties. Such objects are compared value by value, not key by key.
function isMap(schema) {
  return schema && !schema.properties && schema.additionalProperties &&
    typeof schema.additionalProperties === 'object';
}

// The differences in shape between an example and a live answer, as readable lines: the same
// JSON types and, for objects of fixed shape, the same keys. null on either side matches any
// type (nullable fields); an empty array matches any array; every element of a live array is
// compared with the example's first element; map values with the example's first value;
// keys that an open object's schema does not declare are not compared.
export function shapeDiff(schema, example, live, at = '') {
  if (example === null || live === null) return [];
  const te = jsonType(example);
  const tl = jsonType(live);
  if (te !== tl) return [`${at || '(top)'}: example is ${te}, answer is ${tl}`];
  if (te === 'array') {
    if (!example.length || !live.length) return [];
    return live.flatMap((v, i) => shapeDiff(schema?.items, example[0], v, `${at}/${i}`));
  }
  if (te !== 'object') return [];
  if (isMap(schema)) {
    const first = Object.values(example)[0];
    if (first === undefined) return [];
    return Object.entries(live).flatMap(([k, v]) => shapeDiff(schema.additionalProperties, first, v, `${at}/${k}`));
  }
  const out = [];
  // In an open object (a model as the gallery gives it) only the documented keys count.
  const open = schema?.properties && schema.additionalProperties !== false;
  const keys = [...new Set([...Object.keys(example), ...Object.keys(live)])]
    .filter((k) => !open || k in schema.properties);
  for (const k of keys) {
    if (!(k in live)) out.push(`${at}/${k}: in the example, not in the answer`);
    else if (!(k in example)) out.push(`${at}/${k}: in the answer, not in the example`);
    else out.push(...shapeDiff(schema?.properties?.[k], example[k], live[k], `${at}/${k}`));
  }
  return out;
}
