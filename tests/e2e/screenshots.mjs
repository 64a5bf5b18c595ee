// screenshots.mjs - takes docs/screenshots/<view>-<desktop|phone>.png of every view (gallery
// cards and list, the detail dialog, installed, downloads) from the running stack: the
// repository's gallery, one model downloading (from a local sparse file standing in for the
// real one, cancelled afterwards), one failed download (a missing file), and a registry with
// one model of each status (an update available, a file missing, a damaged one, a partial
// download, a file not registered), the cleanup box open. Run: MG_BIN_DIR=build node tests/e2e/screenshots.mjs  (npm run screenshots)
import fs from 'node:fs';
import path from 'node:path';
import { Stack, REPO } from './stack.mjs';

const OUT = process.env.MG_SCREENSHOT_DIR || path.join(REPO, 'docs', 'screenshots');
const WIDTHS = { desktop: { width: 1280, height: 900 }, phone: { width: 390, height: 844 } };

function firstInDefaultOrder(models) {
  const rating = (m) => (Number.isFinite(m.rating) ? m.rating : -Infinity);
  return [...models].sort((a, b) => rating(b) - rating(a) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))[0];
}

async function main() {
  const stack = new Stack();
  try {
    const seed = JSON.parse(fs.readFileSync(path.join(REPO, 'config', 'models_gallery.json'), 'utf8'));
    const demo = firstInDefaultOrder(seed.models);
    const bytes = demo.sizeBytes || Math.round(demo.sizeGb * 1e9);
    fs.closeSync(fs.openSync(path.join(stack.files, 'demo.gguf'), 'w'));
    fs.truncateSync(path.join(stack.files, 'demo.gguf'), bytes);  // sparse: no disk used
    await stack.startDownloads(Math.round(bytes / 80));             // ~80 s for the whole file
    demo.downloadUrl = stack.fileUrl('demo.gguf');
    const [a, b, c, d, e] = seed.models.filter((m) => m.id !== demo.id);
    e.downloadUrl = stack.fileUrl('missing.gguf');                  // fails: the history shows why
    const now = Date.now();
    const iso = (msAgo) => new Date(now - msAgo).toISOString().replace(/\.\d+Z$/, '+00:00');
    stack.writeJson('config/models.json', { models: {
      [a.id]: { id: a.id, name: a.name, path: `models/llm/${a.id}.gguf`, size: a.sizeBytes || 1,
        installedAt: iso(86400000 * 2), backend: 'gallery', active: true,
        checksum: `sha256:${'1'.repeat(64)}`, gallery: 'default' },
      [c.id]: { id: c.id, name: c.name, path: `models/llm/${c.id}.gguf`, size: c.sizeBytes || 1,
        installedAt: iso(86400000 * 5), backend: 'gallery', active: false, checksum: c.checksum,
        gallery: 'default', corrupt: true, verifiedAt: iso(3600000) },
      [b.id]: { id: b.id, name: b.name, path: `models/llm/${b.id}.gguf`, size: b.sizeBytes || 1,
        installedAt: iso(86400000 * 9), backend: 'gallery', active: false },
    } });
    stack.writeJson('config/models_gallery.json', seed);
    stack.writeJson('config/server.json', { allow_http: true });
    const llm = path.join(stack.root, 'models', 'llm');
    fs.mkdirSync(llm, { recursive: true });
    const partial = path.join(stack.root, 'models', '.partial');
    fs.mkdirSync(partial, { recursive: true });
    for (const [file, size] of [[path.join(llm, `${a.id}.gguf`), a.sizeBytes || 1],
      [path.join(llm, `${c.id}.gguf`), c.sizeBytes || 1], [path.join(llm, 'my-finetune.gguf'), 1234567890],
      [path.join(partial, `${d.id}.gguf.part`), Math.round((d.sizeBytes || 1e9) / 3)]]) {
      fs.closeSync(fs.openSync(file, 'w'));
      fs.truncateSync(file, size);
    }
    await stack.startStack();

    fs.mkdirSync(OUT, { recursive: true });
    const ctx = await stack.browser({ locale: 'en-US', viewport: WIDTHS.desktop });
    const page = ctx.pages()[0] || await ctx.newPage();
    page.on('pageerror', (err) => process.stderr.write(`page error: ${err.message}\n`));
    page.on('console', (m) => { if (m.type() === 'error') process.stderr.write(`console: ${m.text()}\n`); });
    let frames = 0;
    page.on('websocket', (ws) => ws.on('framereceived', () => { frames++; }));
    await fetch(stack.url(`/api/models/gallery/${encodeURIComponent(e.id)}/install`), { method: 'POST' });
    await page.goto(stack.url('/'));
    await page.waitForSelector('body[data-ready="true"]');
    await page.click(`article[data-model-id="${demo.id}"] .install-btn`);
    await page.waitForFunction((id) => {
      const bar = document.querySelector(`article[data-model-id="${id}"] progress`);
      return bar && bar.value > 15;
    }, demo.id, { timeout: 30000 });
    const shot = async (name) => {
      await page.mouse.move(0, 0);
      await page.evaluate(() => { if (!document.querySelector('dialog[open]')) document.activeElement.blur(); window.scrollTo(0, 0); });
      await page.waitForTimeout(200);
      const file = path.join(OUT, name);
      await page.screenshot({ path: file });
      return file;
    };
    for (const [width, viewport] of Object.entries(WIDTHS)) {
      await page.setViewportSize(viewport);
      await page.goto(stack.url('/'));                        // as a phone opens it: filters folded
      await page.waitForSelector('body[data-ready="true"]');
      await page.waitForSelector(`article[data-model-id="${demo.id}"] progress`);
      await page.click('#layout button[data-layout="cards"]');
      await shot(`gallery-${width}.png`);
      await page.click('#layout button[data-layout="list"]');
      await shot(`list-${width}.png`);
      await page.click('#layout button[data-layout="cards"]');
      await page.click(`article[data-model-id="${demo.id}"] .details-btn`);
      await page.waitForFunction(() => /Disk:/.test(document.querySelector('#preflight-body')?.textContent || ''));
      await shot(`detail-${width}.png`);
      await page.click('#detail-close');
      await page.click('#tab-downloads');
      await page.waitForSelector('#downloads-content .dl-history li');
      await shot(`downloads-${width}.png`);
      await page.click('#tab-installed');
      await page.waitForSelector('#installed-content table');
      if (!(await page.$('.cleanup-items'))) {
        await page.click('.cleanup-scan');
        await page.waitForSelector('.cleanup-items');
      }
      await shot(`installed-${width}.png`);
    }
    await page.click('#tab-gallery');
    await page.click(`article[data-model-id="${demo.id}"] .install-cancel`);
    process.stdout.write(`screenshots in ${OUT} (${frames} progress frames received)\n`);
  } finally {
    await stack.stop();
  }
}

main().catch((e) => { process.stderr.write(`${e.stack || e}\n`); process.exitCode = 1; });
