// openapi.test.mjs - docs/openapi.yaml as a client developer's tools take it, without a
// server: a standard OpenAPI 3 validator (@apidevtools/swagger-parser) accepts it; every
// operation has an operationId; every parameter and every answer with a body has an example,
// and every example validates against its schema (ajv); every object schema with properties
// says whether it takes other keys (additionalProperties), so that a fixed shape is strict.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import SwaggerParser from '@apidevtools/swagger-parser';
import { documentPath, examplesOf, loadDocument, makeAjv, operations, walkSchemas } from './oas.mjs';

describe('docs/openapi.yaml', () => {
  let doc;

  it('is valid OpenAPI 3 for a standard validator', async () => {
    try {
      ({ doc } = await loadDocument());
    } catch (e) {
      const lines = String(e.message).split('\n');
      assert.fail(`${documentPath()} is rejected (${lines.length - 1} errors):\n${lines.slice(0, 40).join('\n')}`);
    }
    assert.match(doc.openapi, /^3\.0\.\d+$/);
  });

  it('names every operation (operationId, unique) and sums it up', async () => {
    doc ??= await SwaggerParser.dereference(documentPath());
    const ids = new Map();
    for (const o of operations(doc)) {
      assert.ok(o.op.operationId, `${o.key}: no operationId`);
      assert.ok(o.op.summary, `${o.key}: no summary`);
      assert.ok(!ids.has(o.op.operationId), `${o.key}: operationId ${o.op.operationId} also used by ${ids.get(o.op.operationId)}`);
      ids.set(o.op.operationId, o.key);
    }
  });

  it('has an example for every parameter and every answer with a body, each valid', async () => {
    doc ??= await SwaggerParser.dereference(documentPath());
    const ajv = makeAjv();
    const problems = [];
    for (const o of operations(doc)) {
      for (const p of o.parameters) {
        const ex = examplesOf(p);
        if (!Object.keys(ex).length) problems.push(`${o.key}: parameter ${p.name} has no example`);
        for (const [name, v] of Object.entries(ex)) {
          for (const e of ajv.check(p.schema, v)) problems.push(`${o.key}: parameter ${p.name} example '${name}': ${e}`);
        }
      }
      for (const [status, r] of Object.entries(o.op.responses)) {
        for (const [type, media] of Object.entries(r.content || {})) {
          const ex = examplesOf(media);
          if (!Object.keys(ex).length) problems.push(`${o.key} ${status} ${type}: no example`);
          for (const [name, v] of Object.entries(ex)) {
            for (const e of ajv.check(media.schema, v)) problems.push(`${o.key} ${status} ${type} example '${name}': ${e}`);
          }
        }
      }
    }
    assert.deepEqual(problems, []);
  });

  it('says of every object schema with properties whether it takes other keys', async () => {
    doc ??= await SwaggerParser.dereference(documentPath());
    const open = [];
    walkSchemas(doc, (s, where) => {
      if (s.properties && !('additionalProperties' in s)) open.push(where);
    });
    assert.deepEqual(open, [], 'object schemas without additionalProperties (false where the shape is fixed)');
  });
});
