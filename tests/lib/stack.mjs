// stack.mjs - the real Model Gallery stack for the Node test suites (tests/e2e, tests/contract):
// the local download server (tests/integration/dlserver.py) and deploy/up with MG_ROOT a temp
// dir, MG_PORT a free port and MG_BIN_DIR the CMake build. Everything started here is stopped
// by stop(), by pid and by deploy/down, also when a test failed or the process exits.
// Node built-ins only, so that every suite can import it whatever its node_modules hold.
import { spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const REPO = path.resolve(process.env.MG_SRC_DIR || path.join(HERE, '..', '..'));

export function binDir() {
  if (process.env.MG_BIN_DIR) return path.resolve(process.env.MG_BIN_DIR);
  for (const cand of ['build', 'build-deploy']) {
    const p = path.join(REPO, cand);
    if (fs.existsSync(path.join(p, 'mg-fcgi'))) return p;
  }
  throw new Error('MG_BIN_DIR is not set and no build with mg-fcgi was found');
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

// A file of `size` random bytes in dir; returns its sha256 hex.
export function makeFile(dir, name, size) {
  const data = randomBytes(size);
  fs.writeFileSync(path.join(dir, name), data);
  return createHash('sha256').update(data).digest('hex');
}

// Polls fn until it returns a truthy value (returned); fails with `what` after `timeout` ms.
export async function until(fn, what, timeout = 10000, interval = 100) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
      last = v;
    } catch (e) { last = e; }
    if (Date.now() > deadline) {
      const seen = last instanceof Error ? last.message : JSON.stringify(last);
      throw new Error(`timed out waiting for ${what} (last: ${seen})`);
    }
    await new Promise((r) => setTimeout(r, interval));
  }
}

export class Stack {
  // prefix names the temp dir (mg-e2e-, mg-contract-, ...).
  constructor(prefix = 'mg-stack-') {
    this.tmp = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
    // deploy/up as root runs the stack as its service user, which must pass through here
    fs.chmodSync(this.tmp, 0o711);
    this.root = path.join(this.tmp, 'root');
    this.files = path.join(this.tmp, 'files');
    fs.mkdirSync(path.join(this.root, 'config'), { recursive: true });
    fs.mkdirSync(this.files);
    this.dl = null;
    this.dlPort = 0;
    this.port = 0;
    this.up = false;
    this.failed = false;                  // keeps the temp dir for a look afterwards
    this.exitHook = () => this.stopSync();
    process.on('exit', this.exitHook);
  }

  fileUrl(name) { return `http://127.0.0.1:${this.dlPort}/${name}`; }

  url(p = '/') { return `http://127.0.0.1:${this.port}${p}`; }

  // Writes a JSON file under the data root atomically (temp file, rename), so that a
  // process reading it never sees half of it and a new inode marks the change.
  writeJson(rel, obj) { this.writeText(rel, `${JSON.stringify(obj, null, 1)}\n`); }

  writeText(rel, text) {
    const p = path.join(this.root, rel);
    fs.mkdirSync(path.dirname(p), { recursive: true });
    fs.writeFileSync(`${p}.tmp`, text);
    fs.renameSync(`${p}.tmp`, p);
  }

  // The download server, throttled to `throttle` bytes/s per response (0: no throttle).
  async startDownloads(throttle = 0) {
    const portFile = path.join(this.tmp, 'dlserver.port');
    this.dl = spawn('python3', [path.join(REPO, 'tests', 'integration', 'dlserver.py'),
      '--dir', this.files, '--throttle', String(throttle), '--port-file', portFile],
    { stdio: ['ignore', 'ignore', 'inherit'] });
    const deadline = Date.now() + 10000;
    while (!fs.existsSync(portFile)) {
      if (this.dl.exitCode !== null) throw new Error(`dlserver.py exited with ${this.dl.exitCode}`);
      if (Date.now() > deadline) throw new Error('dlserver.py did not start within 10 s');
      await new Promise((r) => setTimeout(r, 50));
    }
    this.dlPort = Number(fs.readFileSync(portFile, 'utf8').trim());
  }

  // Changes the download server's settings (POST /_control).
  async downloads(settings) {
    const res = await fetch(`http://127.0.0.1:${this.dlPort}/_control`, {
      method: 'POST', body: JSON.stringify(settings), headers: { 'Content-Type': 'application/json' },
    });
    if (!res.ok) throw new Error(`dlserver /_control: ${res.status}`);
  }

  env() {
    return { ...process.env, MG_ROOT: this.root, MG_PORT: String(this.port), MG_BIN_DIR: binDir() };
  }

  // deploy/up; throws with its output when it fails.
  async startStack() {
    this.port = await freePort();
    this.up = true;
    const r = spawnSync(path.join(REPO, 'deploy', 'up'), [], { env: this.env(), encoding: 'utf8', timeout: 120000 });
    if (r.status !== 0) {
      throw new Error(`deploy/up exited ${r.status ?? r.signal}:\n${r.stdout}\n${r.stderr}`);
    }
  }

  // The last lines of the stack's logs, for a failure message.
  logs(lines = 30) {
    const out = [];
    for (const name of ['nginx-error', 'fcgi', 'installer']) {
      const p = path.join(this.root, 'run', `${name}.log`);
      if (!fs.existsSync(p)) continue;
      out.push(`--- ${p} ---`, ...fs.readFileSync(p, 'utf8').split('\n').slice(-lines));
    }
    return out.join('\n');
  }

  async stop() { this.stopSync(); }

  // Synchronous, so that it can run from process.on('exit') too.
  stopSync() {
    if (this.up) {
      this.up = false;
      const r = spawnSync(path.join(REPO, 'deploy', 'down'), [], { env: this.env(), encoding: 'utf8', timeout: 60000 });
      if (r.status !== 0) process.stderr.write(`deploy/down exited ${r.status}: ${r.stdout}${r.stderr}\n`);
    }
    if (this.dl && this.dl.exitCode === null && this.dl.pid) {
      try { process.kill(this.dl.pid, 'SIGTERM'); } catch { /* gone */ }
    }
    this.dl = null;
    if (process.env.MG_KEEP_ROOT === '1' || this.failed) process.stderr.write(`kept ${this.tmp}\n`);
    else fs.rmSync(this.tmp, { recursive: true, force: true });
    process.removeListener('exit', this.exitHook);
  }
}
