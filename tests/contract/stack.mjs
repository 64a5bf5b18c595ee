// stack.mjs - the stack the contract and client tests run against: tests/lib/stack.mjs
// (download server + deploy/up in a temp root) with the repository's seed gallery, whose
// download URLs point at the local download server, so that the ids in the document's
// examples are real. A few models get small files (installed in a moment), one a larger file
// served slowly (a job to cancel), one an impossible size (507). The settings file can be
// switched between named states while the stack runs (mg-fcgi reads it on every change).
import fs from 'node:fs';
import path from 'node:path';
import { REPO, Stack, makeFile, until } from '../lib/stack.mjs';
import { request } from './http.mjs';

export const TOKEN = 'contract-test-token-0123456789';

// Model ids of the seed gallery with a role in the tests.
export const MODELS = {
  quick: 'tinyllama-1.1b-chat-v1.0-q4-k-m',       // 64 KiB: installs at once
  spare: 'qwen2.5-0.5b-instruct-q8-0',            // 64 KiB: installed to be deleted
  client: 'smollm2-1.7b-instruct-q8-0',           // 64 KiB: the generated client installs it
  other: 'qwen3-0.6b-q8-0',                       // 64 KiB: installed with the token
  slow: 'llama-3.2-1b-instruct-q4-k-m',           // 4 MiB at SLOW_RATE: cancelled while running
  slow2: 'qwen2.5-1.5b-instruct-q8-0',            // the same: cancelled while the installer is stopped
  huge: 'meta-llama-3.1-8b-instruct-q4-k-m',      // a petabyte: 507
  update: 'qwen3-1.7b-q4-k-m',                    // 64 KiB: installed, then its entry made stale
  verify: 'qwen2.5-coder-1.5b-instruct-q4-k-m',   // 64 KiB: installed, then verified
  pause: 'phi-3-mini-4k-instruct-q4',             // slow: paused while running
  resume: 'phi-3.5-mini-instruct-q4-k-m',         // slow: paused, then resumed
  vanished: 'gemma-3-1b-it-q4-k-m',               // an entry whose file is gone: 409
};
const SMALL = 65536;
const SLOW_BYTES = 4 * 1024 * 1024;
export const SLOW_RATE = 16384;

// config/server.json of each state (a string is written as it is).
const CONFIGS = {
  open: { allow_http: true },
  token: { allow_http: true, api_token: TOKEN },
  broken: '{"allow_http": true, "api_token": ',
  // Redis mode whose Redis cannot be reached (nothing listens on port 1): takes a restart
  redis_down: { allow_http: true, redis_url: 'redis://127.0.0.1:1' },
};

export class ContractStack extends Stack {
  constructor() {
    super('mg-contract-');
    this.config = null;
  }

  // Starts the download server and the stack on the seed gallery.
  async start() {
    await this.startDownloads(0);
    const seed = JSON.parse(fs.readFileSync(path.join(REPO, 'config', 'models_gallery.json'), 'utf8'));
    const sizes = { [MODELS.quick]: SMALL, [MODELS.spare]: SMALL, [MODELS.client]: SMALL, [MODELS.other]: SMALL,
      [MODELS.slow]: SLOW_BYTES, [MODELS.slow2]: SLOW_BYTES, [MODELS.update]: SMALL, [MODELS.verify]: SMALL,
      [MODELS.pause]: SLOW_BYTES, [MODELS.resume]: SLOW_BYTES };
    for (const m of seed.models) {
      const name = `${m.id}.gguf`;
      m.downloadUrl = this.fileUrl(name);
      const size = sizes[m.id];
      if (size) {
        m.checksum = `sha256:${makeFile(this.files, name, size)}`;
        m.sizeBytes = size;
        m.sizeGb = size / 1e9;
      } else if (m.id === MODELS.huge) {
        m.sizeBytes = 1e15;
        m.sizeGb = 1e6;
      }
    }
    this.writeJson('config/models_gallery.json', seed);
    this.setConfig('open');
    await this.startStack();
  }

  // Switches config/server.json to the state `name` (open, token, broken, redis_down).
  setConfig(name) {
    if (this.config === name) return;
    const c = CONFIGS[name];
    if (c === undefined) throw new Error(`no settings state '${name}'`);
    if (typeof c === 'string') this.writeText('config/server.json', c);
    else this.writeJson('config/server.json', c);
    this.config = name;
  }

  async api(method, p, headers = {}) {
    const res = await request(this.port, { method, path: p, headers });
    return { ...res, json: res.body ? JSON.parse(res.body) : null };
  }

  // Polls the job until `pred(job)`; returns the job.
  async waitJob(jobId, pred, what, timeout = 20000) {
    return until(async () => {
      const r = await this.api('GET', `/api/models/jobs/${jobId}`);
      return r.status === 200 && pred(r.json) ? r.json : null;
    }, what, timeout, 50);
  }

  // Installs `id` and waits until it is installed; returns the job.
  async install(id) {
    const r = await this.api('POST', `/api/models/gallery/${id}/install`);
    if (r.status !== 202) throw new Error(`install ${id}: ${r.status} ${r.body}`);
    return this.waitJob(r.json.job_id, (j) => j.status === 'installed', `${id} installed`);
  }

  readJson(rel) { return JSON.parse(fs.readFileSync(path.join(this.root, rel), 'utf8')); }

  // Changes the registry entry `id` (or adds one) by `fn(entry)`; null removes it.
  editEntry(id, fn) {
    let reg = { models: {} };
    try { reg = this.readJson('config/models.json'); } catch { /* none yet */ }
    const next = fn(reg.models[id] || null);
    if (next === null) delete reg.models[id];
    else reg.models[id] = next;
    this.writeJson('config/models.json', reg);
  }

  // Plants an entry of `id` with a file of three bytes and an old checksum; returns a
  // function that removes both.
  plantEntry(id, withFile = true) {
    const rel = `models/llm/${id}.gguf`;
    this.editEntry(id, () => ({ id, name: id, path: rel, size: 3, installedAt: '2026-11-28T09:58:05+00:00',
      backend: 'gallery', active: false, checksum: `sha256:${'0'.repeat(64)}`, gallery: 'default' }));
    if (withFile) this.writeText(rel, 'abc');
    return () => {
      this.editEntry(id, () => null);
      fs.rmSync(path.join(this.root, rel), { force: true });
    };
  }

  // Pauses job `jobId` and waits until the installer stopped it.
  async pauseJob(jobId) {
    const r = await this.api('POST', `/api/models/jobs/${jobId}/pause`);
    if (r.status !== 200) throw new Error(`pause ${jobId}: ${r.status} ${r.body}`);
    return this.waitJob(jobId, (j) => j.status === 'paused', `${jobId} paused`);
  }

  // Stops the installer (SIGSTOP, by its pid file) until resumeInstaller(): jobs stand still.
  pauseInstaller() { this.signalInstaller('SIGSTOP'); }

  resumeInstaller() { this.signalInstaller('SIGCONT'); }

  signalInstaller(sig) {
    const pid = Number(fs.readFileSync(path.join(this.root, 'run', 'installer.pid'), 'utf8').trim());
    if (!(pid > 0)) throw new Error('run/installer.pid names no process');
    process.kill(pid, sig);
  }

  // Starts the slow install and waits until bytes arrive; returns the running job.
  async installSlowly(id = MODELS.slow) {
    await this.downloads({ throttle: SLOW_RATE });
    try {
      const r = await this.api('POST', `/api/models/gallery/${id}/install`);
      if (r.status !== 202) throw new Error(`install ${id}: ${r.status} ${r.body}`);
      return await this.waitJob(r.json.job_id, (j) => j.status === 'downloading' && j.downloaded > 0,
        `${id} downloading`);
    } finally {
      await this.downloads({ throttle: 0 });   // a response keeps the rate it started with
    }
  }
}
