// stack.mjs - what the browser tests run against: the shared stack of tests/lib/stack.mjs
// (download server + deploy/up in a temp root) plus the headless Debian Chromium driven by
// playwright-core. stop() closes the browser, then stops the stack. axeCheck(page, what) runs
// axe-core (pinned in package-lock.json) in the page and fails on any violation of critical,
// serious or moderate impact.
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';
import { Stack as BaseStack } from '../lib/stack.mjs';

export { REPO, binDir, freePort, makeFile, until } from '../lib/stack.mjs';

export const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

export function chromiumPath() {
  for (const p of [process.env.MG_CHROMIUM, '/usr/bin/chromium', '/usr/bin/chromium-browser']) {
    if (p && fs.existsSync(p)) return p;
  }
  throw new Error('Debian\'s chromium is not installed (apt-get install chromium)');
}

const AXE_SOURCE = fs.readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

// Runs through the DevTools protocol (page.evaluate), so the page's CSP does not block it.
export async function axeCheck(page, what) {
  if (!(await page.evaluate(() => !!window.axe))) await page.evaluate(AXE_SOURCE);
  const violations = await page.evaluate(async () => {
    const res = await window.axe.run(document, { resultTypes: ['violations'] });
    return res.violations.filter((v) => ['critical', 'serious', 'moderate'].includes(v.impact))
      .map((v) => `${v.impact} ${v.id}: ${v.help} — ${v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join(' | ')}`);
  });
  assert.deepEqual(violations, [], `axe-core on ${what}`);
}

export class Stack extends BaseStack {
  constructor() {
    super('mg-e2e-');
    this.context = null;
  }

  async browser({ locale = 'en-US', viewport = { width: 1280, height: 900 } } = {}) {
    const profile = fs.mkdtempSync(path.join(this.tmp, 'profile-'));
    this.context = await chromium.launchPersistentContext(profile, {
      executablePath: chromiumPath(), headless: true, args: CHROMIUM_ARGS, locale, viewport,
      timeout: 30000,
    });
    return this.context;
  }

  async stop() {
    if (this.context) {
      const ctx = this.context;
      this.context = null;
      await ctx.close().catch(() => {});
    }
    this.stopSync();
  }
}
