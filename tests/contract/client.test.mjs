// client.test.mjs - the document is usable by a client generator: openapi-typescript (pinned)
// turns docs/openapi.yaml into TypeScript types, tsc (pinned, strict) compiles client/client.ts
// against them with openapi-fetch, and the compiled client runs with node against a real
// stack: health, search, install, the job, the job list, a refused cancel, the installed
// list, a search error and the delete, each answer used through the generated types.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { documentPath } from './oas.mjs';
import { ContractStack, MODELS } from './stack.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const BIN = path.join(HERE, 'node_modules', '.bin');

// Runs a program to its end; fails with its output unless it exits 0. Returns stdout.
function run(what, cmd, args, timeout = 120000) {
  const r = spawnSync(cmd, args, { cwd: HERE, encoding: 'utf8', timeout });
  assert.equal(r.status, 0, `${what} exited ${r.status ?? r.signal}:\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

describe('a client generated from docs/openapi.yaml', () => {
  let out;
  let stack;

  before(() => {
    fs.mkdirSync(path.join(HERE, '.out'), { recursive: true });
    // Inside tests/contract, so that the compiled client finds openapi-fetch in node_modules.
    out = fs.mkdtempSync(path.join(HERE, '.out', 'client-'));
  });

  after(async () => {
    if (stack) await stack.stop();
    fs.rmSync(out, { recursive: true, force: true });
  });

  it('generates TypeScript types with openapi-typescript', () => {
    run('openapi-typescript', path.join(BIN, 'openapi-typescript'), [documentPath(), '-o', path.join(out, 'api.ts')]);
    const types = fs.readFileSync(path.join(out, 'api.ts'), 'utf8');
    assert.match(types, /"\/api\/models\/gallery\/search"/);
  });

  it('compiles the client against them with tsc --strict', () => {
    fs.copyFileSync(path.join(HERE, 'client', 'client.ts'), path.join(out, 'client.ts'));
    fs.writeFileSync(path.join(out, 'tsconfig.json'), JSON.stringify({
      compilerOptions: {
        target: 'es2022', module: 'nodenext', moduleResolution: 'nodenext', strict: true,
        noUncheckedIndexedAccess: true, noEmitOnError: true, skipLibCheck: true,   // the generated api.ts is checked
        types: ['node'], typeRoots: [path.join(HERE, 'node_modules', '@types')],
        outDir: out, rootDir: out,
      },
      files: ['client.ts', 'api.ts'],
    }, null, 1));
    run('tsc', path.join(BIN, 'tsc'), ['-p', path.join(out, 'tsconfig.json')]);
    assert.ok(fs.existsSync(path.join(out, 'client.js')));
  });

  it('calls search, install and the jobs endpoints of a real stack', async () => {
    assert.ok(fs.existsSync(path.join(out, 'client.js')), 'the client did not compile (above)');
    stack = new ContractStack();
    await stack.start();
    const text = run('client.js', process.execPath, [path.join(out, 'client.js'), stack.url(''), MODELS.client], 60000);
    assert.match(text, /client: all calls answered as typed/);
  });
});
