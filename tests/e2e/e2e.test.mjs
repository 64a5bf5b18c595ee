// e2e.test.mjs - the web UI in headless Debian Chromium (playwright-core) against the real
// stack (deploy/up in a temp root) and a throttled local download server: language switch,
// filters and shareable URLs, search errors, install with a moving progress bar (across a
// dropped WebSocket), verify (a damaged file turns the badge to damaged, Repair downloads it
// again), a partial download and its cleanup, a running job shown on page open, cancel,
// install errors in the user's words (also in German, without English or API names), a
// failure message that survives a reload, focus after install/cancel, Back/Forward through
// filters and pages, the detail dialog with preflight, variants, the downloads view with
// pause/resume and the names of jobs whose model is on another page, the reconnect
// countdown, axe-core on every view (no serious or moderate violation), and the badges of a
// missing file, of a file without an entry and of an update.
// Run: node --test tests/e2e/  (MG_BIN_DIR = the CMake build; ctest sets it).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Stack, makeFile, until, axeCheck } from './stack.mjs';

const THROTTLE = 250000;                 // bytes/s per download
const ALPHA_BYTES = 2000000;             // ~8 s at THROTTLE
const BRAVO_BYTES = 8000000;             // ~32 s: cancelled long before the end

let stack;
let page;
const cspErrors = [];                    // console errors about the Content-Security-Policy

function gallery(sums) {
  const base = (id, extra) => ({
    id, checksum: `sha256:${'0'.repeat(64)}`, downloadUrl: stack.fileUrl(`${id}.gguf`),
    updatedAt: '2025-06-01T00:00:00Z', ...extra,
  });
  return {
    version: 1, generatedAt: '2025-06-01T00:00:00Z',
    models: [
      base('e2e-alpha', { name: 'Alpha Chat', checksum: `sha256:${sums.alpha}`, sizeGb: ALPHA_BYTES / 1e9,
        rating: 4.5, categories: ['chat'], languages: ['en', 'de'], tags: ['tiny', 'test'],
        parameters: '1B', quantization: 'Q4_K_M', contextLength: 4096, license: 'apache-2.0',
        description: 'A tiny chat model for the browser test.',
        recommendedHardware: { cpu: 'any x86-64', gpu: null, ramGb: 2, vramGb: 0 } }),
      base('e2e-bravo', { name: 'Bravo Coder', checksum: `sha256:${sums.bravo}`, sizeGb: BRAVO_BYTES / 1e9,
        rating: 4.0, categories: ['code'], languages: ['en'], tags: ['coder'], parameters: '3B',
        quantization: 'Q5_K_M', contextLength: 16384, license: 'mit', description: 'Writes code, slowly.',
        recommendedHardware: { cpu: 'any', gpu: 'any', ramGb: 8, vramGb: 4 } }),
      base('e2e-charlie', { name: 'Charlie Deutsch', sizeGb: 0.5, rating: 3.0,
        downloadUrl: stack.fileUrl('not-there.gguf'), categories: ['chat', 'multilingual'], languages: ['de'],
        description: 'Its file is missing on the server (404).',
        recommendedHardware: { ramGb: 16, vramGb: 0 } }),
      base('e2e-delta', { name: 'Delta Giant', sizeGb: 50000, rating: 2.0, categories: ['chat'],
        languages: ['en'], description: 'Far larger than any disk here (507).',
        recommendedHardware: { ramGb: 64, vramGb: 48 } }),
      base('e2e-echo', { name: 'Echo Embed', sizeGb: 0.3, categories: ['embedding'], languages: ['en', 'fr'],
        description: 'No rating, no hardware figures.' }),
    ],
  };
}

async function api(method, p) {
  const res = await fetch(stack.url(p), { method });
  return { status: res.status, body: await res.json() };
}

const card = (id) => `article[data-model-id="${id}"]`;

async function cardNames() {
  return page.$$eval('#cards:not([aria-busy]) article .card-title', (els) => els.map((e) => e.textContent));
}

async function expectCards(names, what) {
  await until(async () => JSON.stringify(await cardNames()) === JSON.stringify(names),
    `${what}: cards ${JSON.stringify(names)}`, 10000);
}

async function open(query = '') {
  await page.goto(stack.url(`/${query}`));
  await page.waitForSelector('body[data-ready="true"]', { timeout: 15000 });
}

// it() whose failure also prints the stack's logs, the jobs and the page's text.
function step(name, fn) {
  it(name, async () => {
    try {
      await fn();
    } catch (e) {
      stack.failed = true;
      let jobs = '';
      try { jobs = JSON.stringify((await api('GET', '/api/models/jobs')).body); } catch (x) { jobs = String(x); }
      let text = '';
      try { text = (await page.textContent('main')).replace(/\s+/g, ' ').slice(0, 1500); } catch { /* no page */ }
      process.stderr.write(`\n--- failed: ${name}\njobs: ${jobs}\npage: ${text}\n${stack.logs()}\n`);
      throw e;
    }
  });
}

const ALL = ['Alpha Chat', 'Bravo Coder', 'Charlie Deutsch', 'Delta Giant', 'Echo Embed'];

describe('web UI against the real stack', { timeout: 240000 }, () => {
  before(async () => {
    stack = new Stack();
    const sums = { alpha: makeFile(stack.files, 'e2e-alpha.gguf', ALPHA_BYTES),
      bravo: makeFile(stack.files, 'e2e-bravo.gguf', BRAVO_BYTES) };
    await stack.startDownloads(THROTTLE);
    stack.writeJson('config/models_gallery.json', gallery(sums));
    stack.writeJson('config/server.json', { allow_http: true });
    await stack.startStack();
    const ctx = await stack.browser({ locale: 'de-DE' });
    page = ctx.pages()[0] || await ctx.newPage();
    page.setDefaultTimeout(15000);
    page.on('pageerror', (e) => process.stderr.write(`page error: ${e.message}\n`));
    page.on('console', (m) => {
      if (m.type() === 'error' && /Content.Security.Policy/i.test(m.text())) cspErrors.push(m.text());
    });
  });

  after(async () => {
    if (stack) await stack.stop();
  });

  step('speaks German to a German browser and switches to English, kept on reload', async () => {
    await open();
    assert.equal(await page.getAttribute('html', 'lang'), 'de');
    assert.equal((await page.textContent('#tab-gallery')).trim(), 'Galerie');
    assert.equal(await page.getAttribute('#lang button[data-lang="de"]', 'aria-pressed'), 'true');
    await expectCards(ALL, 'German start');
    await page.click('#lang button[data-lang="en"]');
    assert.equal((await page.textContent('#tab-gallery')).trim(), 'Gallery');
    assert.equal(await page.getAttribute('html', 'lang'), 'en');
    assert.match(await page.textContent(`${card('e2e-alpha')} .install-btn`), /Install/);
    await open();
    assert.equal((await page.textContent('#tab-gallery')).trim(), 'Gallery');
    assert.equal(await page.getAttribute('#lang button[data-lang="en"]', 'aria-pressed'), 'true');
  });

  step('is served with a strict Content-Security-Policy and runs without violating it', async () => {
    const res = await page.goto(stack.url('/'));
    const csp = res.headers()['content-security-policy'] || '';
    assert.match(csp, /default-src 'self'/);
    assert.match(csp, /frame-ancestors 'none'/);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
    assert.equal(res.headers()['x-content-type-options'], 'nosniff');
    assert.equal(res.headers()['referrer-policy'], 'no-referrer');
    await page.waitForSelector('body[data-ready="true"]', { timeout: 15000 });
    // the progress WebSocket is same-origin and passes the origin rule
    await until(async () => (await page.getAttribute('#conn', 'data-state')) === 'open', 'the progress socket open');
    assert.deepEqual(cspErrors, []);
  });

  step('filters, search, sort and "fits this machine" change the cards; the URL keeps them', async () => {
    await open();
    await expectCards(ALL, 'no filter (rating, descending; unrated last)');
    assert.doesNotMatch(await page.textContent('#cards'), /\b(null|undefined|NaN)\b/);
    // a 4.5 rating: four full stars and a half
    assert.deepEqual(await page.$$eval(`${card('e2e-alpha')} .star`, (els) => els.map((e) => e.className.replace('star star-', ''))),
      ['full', 'full', 'full', 'full', 'half']);
    const cats = await page.$$eval('#f-category option', (o) => o.map((x) => x.value));
    assert.deepEqual(cats, ['', 'chat', 'code', 'embedding', 'multilingual']);

    await page.selectOption('#f-category', 'code');
    await expectCards(['Bravo Coder'], 'category code');
    assert.match(page.url(), /category=code/);
    await open(new URL(page.url()).search);   // a shared link
    await expectCards(['Bravo Coder'], 'the shared URL');
    assert.equal(await page.inputValue('#f-category'), 'code');
    await page.selectOption('#f-category', '');

    await page.selectOption('#f-language', 'de');
    await expectCards(['Alpha Chat', 'Charlie Deutsch'], 'language de');
    await page.selectOption('#f-language', '');

    await page.selectOption('#f-rating', '4');
    await expectCards(['Alpha Chat', 'Bravo Coder'], 'rating 4+');
    await page.selectOption('#f-rating', '');

    await page.fill('#f-max-size', '0.01');
    await expectCards(['Alpha Chat', 'Bravo Coder'], 'size up to 0.01 GB');
    await page.fill('#f-min-size', '0.005');
    await expectCards(['Bravo Coder'], 'size 0.005-0.01 GB');
    await page.fill('#f-min-size', '');
    await page.fill('#f-max-size', '');

    await page.type('#f-query', 'coder', { delay: 30 });   // debounced
    await until(async () => /query=coder/.test(page.url()), 'the query in the URL');
    await expectCards(['Bravo Coder'], 'query coder');
    await page.fill('#f-query', 'nothing-like-this');
    await until(async () => /No model matches/.test(await page.textContent('#cards')), 'the empty state');
    await page.click('#cards .empty button');                 // "Reset filters"
    await expectCards(ALL, 'after reset');
    assert.equal(new URL(page.url()).search, '');

    await page.selectOption('#f-sort', 'name');
    await expectCards(ALL, 'name, ascending by default');
    await page.selectOption('#f-order', 'desc');
    await expectCards([...ALL].reverse(), 'name, descending');
    await page.click('#f-reset');

    // fits this server (its own RAM, no GPU here): all but the giant; the count beside the box
    await page.check('#f-fits');
    await until(async () => /Fitting this server/.test(await page.textContent('#fits-hint')), 'the hint with the server\'s figures');
    await expectCards(['Alpha Chat', 'Bravo Coder', 'Charlie Deutsch', 'Echo Embed'], 'fits this server');
    assert.match(page.url(), /fits=1/);
    // the user's own figures: the badges and the filter follow them
    await page.click('#machine summary');
    assert.match(await page.textContent('#machine-profile'), /Server RAM.*GB/);
    await page.fill('#m-ram', '8');
    await page.fill('#m-vram', '4');
    await expectCards(['Alpha Chat', 'Bravo Coder'], 'fits 8 GB RAM / 4 GB VRAM');
    assert.equal(await page.getAttribute(`${card('e2e-alpha')} .badge-fit`, 'data-fit'), 'full_gpu');
    await open('?fits=1');                                    // the figures are remembered
    assert.equal(await page.inputValue('#m-ram'), '8');
    await expectCards(['Alpha Chat', 'Bravo Coder'], 'fits after reload');
    await page.click('#machine summary');
    await page.fill('#m-ram', '');
    await page.fill('#m-vram', '');
    await page.click('#f-reset');
    await expectCards(ALL, 'after reset');
    await until(async () => (await page.getAttribute(`${card('e2e-delta')} .badge-fit`, 'data-fit')) === 'too_large', 'the server\'s fit again');
  });

  step('filter options come from the facets: one per value, with counts', async () => {
    await open();
    await until(async () => (await page.$$eval('#f-category option', (o) => o.length)) === 5, 'the category options');
    const opts = await page.$$eval('#f-category option', (o) => o.map((x) => x.textContent));
    assert.deepEqual(opts, ['Any', 'chat (3)', 'code (1)', 'embedding (1)', 'multilingual (1)']);
    await page.selectOption('#f-language', 'de');
    await expectCards(['Alpha Chat', 'Charlie Deutsch'], 'language de');
    // the counts follow the other filters
    await until(async () => (await page.textContent('#f-category option[value="chat"]')) === 'chat (2)', 'chat counted within German');
    await page.click('#f-reset');
  });

  step('Back and Forward go through filter and page changes', async () => {
    await open('?limit=2');
    await expectCards(['Alpha Chat', 'Bravo Coder'], 'page 1');
    await page.click('#pager-pages button[data-page="2"]');
    await expectCards(['Charlie Deutsch', 'Delta Giant'], 'page 2 by its number');
    assert.equal(await page.getAttribute('#pager-pages button[data-page="2"]', 'aria-current'), 'page');
    await page.selectOption('#f-category', 'chat');
    await expectCards(['Alpha Chat', 'Charlie Deutsch'], 'chat, page 1');
    await page.goBack();
    await expectCards(['Charlie Deutsch', 'Delta Giant'], 'Back: page 2 without the filter');
    assert.equal(await page.inputValue('#f-category'), '');
    await page.goBack();
    await expectCards(['Alpha Chat', 'Bravo Coder'], 'Back: page 1');
    await page.goForward();
    await expectCards(['Charlie Deutsch', 'Delta Giant'], 'Forward: page 2');
    await page.goForward();
    await expectCards(['Alpha Chat', 'Charlie Deutsch'], 'Forward: chat');
    assert.equal(await page.inputValue('#f-category'), 'chat');
  });

  step('the detail dialog shows every field and the preflight answer', async () => {
    await open();
    await page.click(`${card('e2e-alpha')} .details-btn`);
    await page.waitForSelector('#detail[open]');
    assert.equal(await page.evaluate(() => document.activeElement.id), 'detail-title');
    assert.match(page.url(), /model=e2e-alpha/);
    await until(async () => /Disk: needs .* free\./.test(await page.textContent('#preflight-body')), 'the preflight answer');
    const text = await page.textContent('#detail');
    for (const want of ['e2e-alpha', 'Q4_K_M', 'apache-2.0', 'tiny', 'English (en)', 'sha256:']) assert.ok(text.includes(want), want);
    assert.ok(await page.$('#detail .install-btn'), 'it can be installed from the dialog');
    await axeCheck(page, 'the detail dialog');
    await page.goBack();                                      // Back closes it
    await until(async () => !(await page.$('#detail[open]')), 'the dialog to close');
    await page.goForward();
    await page.waitForSelector('#detail[open]');
    await page.click('#detail-close');
    await until(async () => !(await page.$('#detail[open]')), 'the dialog to close');
    // closing goes back in the history: the URL changes when that navigation has run
    await until(async () => !/model=/.test(page.url()), 'the URL without the model');
    assert.equal(await page.evaluate(() => document.activeElement.className), 'btn btn-small details-btn');
  });

  step('pages through the results; the page is in the URL', async () => {
    await open('?limit=2');
    await expectCards(['Alpha Chat', 'Bravo Coder'], 'page 1 of 3');
    assert.match(await page.textContent('#pager-status'), /Page 1 of 3/);
    assert.ok(await page.isDisabled('#pager-prev'));
    await page.click('#pager-next');
    await expectCards(['Charlie Deutsch', 'Delta Giant'], 'page 2');
    assert.match(page.url(), /offset=2/);
    await page.click('#pager-next');
    await expectCards(['Echo Embed'], 'page 3');
    assert.ok(await page.isDisabled('#pager-next'));
    assert.match(await page.textContent('#results-summary'), /5 models · showing 5–5/);
    await open(new URL(page.url()).search);
    await expectCards(['Echo Embed'], 'page 3 from the URL');
  });

  step('says a refused search in its own words, and catches an inverted range before asking', async () => {
    const direct = await api('GET', '/api/models/gallery/search?min_size_gb=5&max_size_gb=1');
    assert.equal(direct.status, 400);
    assert.equal(direct.body.error.parameter, 'min_size_gb');
    await open('?min_size_gb=5&max_size_gb=1');
    const alert = await page.waitForSelector('#cards [role="alert"]');
    assert.match(await alert.textContent(), /The search failed: The smallest size must not be above the largest size\./);
    assert.doesNotMatch(await alert.textContent(), /max_size_gb|min_size_gb/);
    assert.equal(await page.getAttribute('#f-min-size', 'aria-invalid'), 'true');
    await page.click('#f-reset');
    await expectCards(ALL, 'after reset');
    // typed in the form: no request goes out, the fields say why
    const searches = [];
    const onRequest = (r) => { if (r.url().includes('/gallery/search')) searches.push(r.url()); };
    page.on('request', onRequest);
    await page.fill('#f-max-size', '1');
    await page.fill('#f-min-size', '5');
    await until(async () => /smallest size must not be above/.test(await page.textContent('#size-error')), 'the field error');
    await new Promise((r) => setTimeout(r, 700));
    page.off('request', onRequest);
    assert.ok(searches.every((u) => !u.includes('min_size_gb=5')), `no search with the inverted range: ${searches}`);
    assert.equal(await page.getAttribute('#f-max-size', 'aria-invalid'), 'true');
    await page.click('#f-reset');
    await expectCards(ALL, 'after reset');
    assert.equal(await page.textContent('#size-error'), '');
  });

  step('installs with a moving progress bar, survives a dropped socket, ends installed', async () => {
    await open();
    await page.focus(`${card('e2e-alpha')} .install-btn`);
    await page.keyboard.press('Enter');                     // focus moves to Cancel
    await until(async () => page.evaluate(() => document.activeElement.classList.contains('install-cancel')),
      'focus on Cancel after Install');
    const values = [];
    let dropped = false;
    let shown = null;  // what the card showed when the socket was dropped (checked below:
                       // an assertion inside until() would only make it try again)
    await until(async () => {
      const v = await page.$eval(card('e2e-alpha'), (el) => {
        const bar = el.querySelector('progress');
        return bar ? (bar.hasAttribute('value') ? bar.value : -1) : null;
      });
      if (v !== null && v > 0 && values[values.length - 1] !== v) values.push(v);
      if (!dropped && v > 15) {                       // drop the socket in the middle
        dropped = true;
        shown = await page.$eval(card('e2e-alpha'), (el) => ({
          bar: el.querySelector('progress').value,
          percent: el.querySelector('.progress-percent').textContent,
          detail: el.querySelector('.progress-detail').textContent,
        }));
        await page.evaluate(() => window.mgDebug.dropSocket());
        await until(async () => (await page.getAttribute('#conn', 'data-state')) !== 'open', 'the socket state to drop', 3000, 20);
        const down = await page.textContent(`${card('e2e-alpha')} .progress-detail`);
        assert.doesNotMatch(down, /\/s|left/, `no frozen speed or time left while disconnected: ${down}`);
      }
      return (await page.$(`${card('e2e-alpha')} .badge-installed`)) !== null;
    }, 'Alpha Chat to be installed', 60000, 150);
    assert.ok(values.length >= 3, `the bar moved: ${JSON.stringify(values)}`);
    for (let i = 1; i < values.length; i++) assert.ok(values[i] > values[i - 1], `progress rises: ${values}`);
    assert.ok(dropped, 'the socket was dropped during the download');
    assert.match(shown.detail, /of .*·.*\/s.*left/, `progress detail: ${shown.detail}`);
    assert.ok(Math.abs(shown.bar - parseFloat(shown.percent)) <= 1,
      `the bar (${shown.bar}) shows the percentage (${shown.percent})`);
    await until(async () => (await page.getAttribute('#conn', 'data-state')) === 'open', 'the socket to reconnect', 20000);

    await page.click('#tab-installed');
    const row = await page.waitForSelector('#installed-content tr[data-model-id="e2e-alpha"]');
    assert.equal(await row.getAttribute('data-status'), 'installed');
    assert.match(await row.textContent(), /Alpha Chat.*installed.*2(\.00)? MB/s);
  });

  step('verifies, marks a damaged file, repairs it, and cleans up a partial download', async () => {
    const row = '#installed-content tr[data-model-id="e2e-alpha"]';
    const status = () => page.getAttribute(row, 'data-status');
    await open('?view=installed');
    await page.click(`${row} .verify-btn`);
    await until(async () => {
      const jobs = (await api('GET', '/api/models/jobs?status=installed')).body.jobs;
      return jobs.some((j) => j.model_id === 'e2e-alpha' && j.kind === 'verify');
    }, 'the verification to pass', 20000);
    await until(async () => (await status()) === 'installed' && !(await page.$(`${row} .job-note`)), 'the row after it');

    const file = path.join(stack.root, 'models', 'llm', 'e2e-alpha.gguf');
    const fd = fs.openSync(file, 'r+');
    fs.writeSync(fd, Buffer.from('XYZ'), 0, 3, 1000);
    fs.closeSync(fd);
    await page.click(`${row} .verify-btn`);
    await until(async () => (await status()) === 'corrupt', 'the damaged badge', 20000);
    assert.match(await page.textContent(`${row} .badge-corrupt`), /damaged/);
    assert.match(await page.textContent('#banner'), /The check of Alpha Chat failed: The downloaded file is damaged: its checksum does not match/);

    fs.mkdirSync(path.join(stack.root, 'models', '.partial'), { recursive: true });
    fs.writeFileSync(path.join(stack.root, 'models', '.partial', 'e2e-left.gguf.part'), Buffer.alloc(4096));
    await page.click('#installed-refresh');
    const partial = await page.waitForSelector('#installed-content tr[data-model-id="e2e-left"]');
    assert.equal(await partial.getAttribute('data-status'), 'partial');
    assert.match(await partial.textContent(), /partial download/);
    await page.click('.cleanup-scan');
    await page.waitForSelector('.cleanup-items li[data-kind="partial"]');
    assert.match(await page.textContent('.cleanup-items'), /models\/.partial\/e2e-left\.gguf\.part/);
    await page.click('.cleanup-run');
    await until(async () => /Removed 1 items/.test(await page.textContent('#banner')), 'the cleanup note');
    await until(async () => !(await page.$('#installed-content tr[data-model-id="e2e-left"]')), 'the row to go');
    assert.ok(!fs.existsSync(path.join(stack.root, 'models', '.partial', 'e2e-left.gguf.part')));

    await stack.downloads({ throttle: 0 });
    try {
      assert.match(await page.textContent(`${row} .update-btn`), /Repair/);
      await page.click(`${row} .update-btn`);
      await until(async () => (await status()) === 'installed', 'the repaired file', 30000);
    } finally {
      await stack.downloads({ throttle: THROTTLE });
    }
    assert.equal((await api('GET', '/api/models/installed')).body.models['e2e-alpha'].status, 'installed');
    // the failed verification and the repair reported here, not as install errors on the card
    assert.equal(await page.$(`${card('e2e-alpha')} [role="alert"]`), null, 'no install error on the card');
    await until(async () => (await page.$(`${card('e2e-alpha')} .badge-installed`)) !== null, 'the card');
    // the card says how the model fits this server (from the search answer's fit)
    assert.match(await page.textContent(`${card('e2e-delta')} .badge-fit`), /On this server: (whole on the GPU|GPU and RAM|on the CPU|too large)/);
  });

  step('shows a job already running when the page opens, tells when its progress stops coming, and cancels it', async () => {
    const started = await api('POST', '/api/models/gallery/e2e-bravo/install');
    assert.equal(started.status, 202, JSON.stringify(started.body));
    await open();
    await until(async () => (await page.$eval(`${card('e2e-bravo')} progress`, (b) => b.value)) > 0,
      'the running job\'s progress on page open', 15000);
    // the installer stands still: the open socket says nothing of the download for 4 s
    const installer = Number(fs.readFileSync(path.join(stack.root, 'run', 'installer.pid'), 'utf8'));
    process.kill(installer, 'SIGSTOP');
    try {
      await until(async () => (await page.getAttribute('#conn', 'data-state')) === 'stale',
        'the delayed state', 10000, 100);
      assert.match(await page.textContent('#conn'), /verzögert|delayed/);
    } finally {
      process.kill(installer, 'SIGCONT');
    }
    await until(async () => (await page.getAttribute('#conn', 'data-state')) === 'open',
      'live updates again', 10000, 100);
    // the socket cannot come back: the countdown to the next try counts down
    let blocked = true;
    await page.routeWebSocket(/\/ws\/progress/, (ws) => { if (blocked) ws.close(); else ws.connectToServer(); });
    try {
      await page.evaluate(() => window.mgDebug.dropSocket());
      const seconds = async () => Number((/in (\d+) s/.exec(await page.textContent('#conn')) || [])[1]);
      await until(async () => (await seconds()) >= 3, 'a countdown of 3 s or more', 20000, 100);
      const first = await seconds();
      await until(async () => (await seconds()) === first - 1, `the countdown from ${first} to ${first - 1}`, 2500, 100);
      const detail = await page.textContent(`${card('e2e-bravo')} .progress-detail`);
      assert.doesNotMatch(detail, /\/s|left/, `no speed or time left while disconnected: ${detail}`);
    } finally {
      blocked = false;
    }
    await until(async () => (await page.getAttribute('#conn', 'data-state')) === 'open', 'live updates back', 20000, 100);
    // the downloads view: pause and resume, focus stays on the row's button
    await page.click('#tab-downloads');
    const row = '#downloads-content li[data-status]';
    await page.waitForSelector(`${row} .dl-pause`);
    await axeCheck(page, 'the downloads view with a running job');
    await page.focus(`${row} .dl-pause`);
    await page.keyboard.press('Enter');
    await until(async () => (await page.getAttribute(row, 'data-status')) === 'paused', 'paused', 10000);
    assert.equal((await api('GET', `/api/models/jobs/${started.body.job_id}`)).body.status, 'paused');
    await until(async () => page.evaluate(() => document.activeElement.classList.contains('dl-resume')), 'focus on Resume');
    await page.keyboard.press('Enter');
    await until(async () => ['queued', 'downloading'].includes(await page.getAttribute(row, 'data-status')), 'resumed', 10000);
    await page.click('#tab-gallery');
    // cancel with the keyboard: focus goes back to Install
    await page.waitForSelector(`${card('e2e-bravo')} .install-cancel`);
    await page.focus(`${card('e2e-bravo')} .install-cancel`);
    await page.keyboard.press('Space');
    await until(async () => /cancelled/.test(await page.textContent(card('e2e-bravo'))), 'the cancelled note');
    await until(async () => page.evaluate(() => document.activeElement.classList.contains('install-btn') &&
      document.activeElement.closest('article').dataset.modelId === 'e2e-bravo'), 'focus on Install after Cancel');
    assert.ok(await page.$(`${card('e2e-bravo')} .install-btn`), 'the Install button is back');
    assert.equal(await page.$(`${card('e2e-bravo')} progress`), null);
    const job = await until(async () => {
      const r = await api('GET', `/api/models/jobs/${started.body.job_id}`);
      return r.body.status === 'cancelled' && r.body;
    }, 'the job to be cancelled on the server');
    assert.equal(job.model_id, 'e2e-bravo');
  });

  step('shows install errors in plain words: no disk space, a failed download; the failure survives a reload', async () => {
    await open();
    const refused = await api('POST', '/api/models/gallery/e2e-delta/install');
    assert.equal(refused.status, 507, JSON.stringify(refused.body));
    assert.equal(refused.body.error.code, 'insufficient_storage');
    await page.click(`${card('e2e-delta')} .install-btn`);
    const alert = await page.waitForSelector(`${card('e2e-delta')} [role="alert"]`);
    assert.equal(await alert.textContent(), 'Could not start the install: There is not enough free disk space for this model.');

    await page.click(`${card('e2e-charlie')} .install-btn`);
    const failed = await page.waitForSelector(`${card('e2e-charlie')} [role="alert"]`, { timeout: 30000 });
    const jobs = await api('GET', '/api/models/jobs');
    const job = jobs.body.jobs.find((j) => j.model_id === 'e2e-charlie');
    assert.equal(job.status, 'failed');
    assert.equal(job.error_code, 'http_404');
    assert.equal(await failed.textContent(), 'The install failed: The file is not on the download server (HTTP 404).');
    const retry = `${card('e2e-charlie')} .install-btn`;
    assert.match(await page.textContent(retry), /Try again/);
    assert.equal(await page.getAttribute(retry, 'aria-label'), 'Try again to install Charlie Deutsch');
    await page.focus(retry);                                 // Try again: focus stays in the card
    await page.keyboard.press('Enter');
    await until(async () => /The install failed/.test(await page.textContent(card('e2e-charlie'))) &&
      page.evaluate(() => document.activeElement.closest('article')?.dataset.modelId === 'e2e-charlie'),
    'focus in the card after Try again', 30000);

    await open();                                             // the message is still there
    await until(async () => /The install failed: The file is not on the download server/.test(
      await page.textContent(card('e2e-charlie'))), 'the failure after a reload');
    // the downloads view lists it with its reason
    await page.click('#tab-downloads');
    await until(async () => /The file is not on the download server/.test(await page.textContent('#downloads-content')), 'the history');
    await axeCheck(page, 'the downloads view with history');

    // German: the same, without English words or API names
    await page.click('#lang button[data-lang="de"]');
    await page.click('#tab-gallery');
    await open('?min_size_gb=5&max_size_gb=1');
    await page.waitForSelector('#cards [role="alert"]');
    assert.match(await page.textContent('#cards [role="alert"]'), /Die kleinste Größe darf nicht über der größten liegen/);
    await page.click('#f-reset');
    await expectCards(ALL, 'German, after reset');
    await until(async () => /Installation ist fehlgeschlagen|fehlgeschlagen/.test(await page.textContent(card('e2e-charlie'))), 'the German failure');
    await page.click(`${card('e2e-delta')} .install-btn`);
    await until(async () => /Speicherplatz/.test(await page.textContent(card('e2e-delta'))), 'the German disk message');
    for (const view of ['gallery', 'downloads']) {
      await page.click(`#tab-${view}`);
      await page.waitForTimeout(300);
      const leftovers = await page.evaluate(() => {
        const main = document.querySelector('main').cloneNode(true);
        // the models' own data (names, descriptions, facts, languages of the gallery) is not UI text
        main.querySelectorAll('.card-title, .card-desc, .card-facts, .dl-name, option, .chip').forEach((el) => el.remove());
        const text = main.textContent.replace(/\s+/g, ' ');
        const words = /\b(the|and|failed|could not|install|search|page|filters|rating|cancel|try again|not found|error|min_size_gb|max_size_gb|invalid_parameter|insufficient_storage|http_404)\b/gi;
        return text.match(words) || [];
      });
      assert.deepEqual(leftovers, [], `English or API words in the German ${view} view`);
    }
    await page.click('#tab-gallery');
    await page.click('#lang button[data-lang="en"]');
  });

  step('names the jobs of a model that is not on the loaded page, asking for it once', async () => {
    const asked = [];
    const onRequest = (r) => { if (/\/api\/models\/gallery\/search\?.*query=e2e-charlie/.test(r.url())) asked.push(r.url()); };
    page.on('request', onRequest);
    try {
      await open('?limit=2');
      await expectCards(['Alpha Chat', 'Bravo Coder'], 'the first page of two');
      const ids = (await api('GET', '/api/models/jobs')).body.jobs.filter((j) => j.model_id === 'e2e-charlie').map((j) => j.job_id);
      assert.ok(ids.length >= 1, 'Charlie\'s failed jobs');
      const names = () => page.$$eval('#downloads-content li[data-job-id]', (rows, want) => rows
        .filter((r) => want.includes(r.dataset.jobId)).map((r) => r.querySelector('.dl-name').textContent), ids);
      await page.click('#tab-downloads');
      await until(async () => { const n = await names(); return n.length === ids.length && n.every((x) => x === 'Charlie Deutsch'); },
        'Charlie Deutsch, not e2e-charlie, on every row of its jobs', 10000);
      await page.click('#tab-gallery');
      await page.click('#tab-downloads');
      await until(async () => (await names()).length === ids.length, 'the history again');
      assert.deepEqual(await names(), ids.map(() => 'Charlie Deutsch'));
      assert.equal(asked.length, 1, `one lookup of the name: ${asked.join(' ')}`);
    } finally {
      page.off('request', onRequest);
      await page.click('#tab-gallery');
    }
  });

  step('deletes an installed model after confirmation', async () => {
    await open('?view=installed');
    const del = `#installed-content tr[data-model-id="e2e-alpha"] .delete-btn`;
    await page.click(del);
    assert.ok(await page.isVisible('#confirm'));
    await page.click('#confirm button[value="cancel"]');
    assert.ok(!(await page.isVisible('#confirm')));
    assert.ok(await page.$('#installed-content tr[data-model-id="e2e-alpha"]'), 'kept after "Keep it"');
    await page.click(del);
    await page.click('#confirm button[value="ok"]');
    await until(async () => /No model is installed yet/.test(await page.textContent('#installed-content')), 'the empty state');
    assert.match(await page.textContent('#banner'), /Alpha Chat was deleted/);
    const reg = await api('GET', '/api/models/installed');
    assert.deepEqual(Object.keys(reg.body.models), []);
    await page.focus('#tab-installed');                      // keyboard: arrows move between tabs
    await page.keyboard.press('ArrowLeft');
    assert.ok(await page.isVisible('#panel-gallery'));
    assert.ok(await page.$(`${card('e2e-alpha')} .install-btn`), 'Alpha can be installed again');
    await until(async () => !/was deleted/.test(await page.textContent('#banner')), 'the delete notice to close itself', 12000, 200);
  });

  step('shows a missing file, a file without an entry and an update with their own badges', async () => {
    stack.writeJson('config/models.json', { models: {
      'e2e-echo': {
        id: 'e2e-echo', name: 'Echo Embed', path: 'models/llm/e2e-echo.gguf', size: 1000,
        installedAt: '2026-01-01T00:00:00+00:00', backend: 'gallery', active: false },
      // installed from an older gallery: the gallery's checksum is another now
      'e2e-charlie': {
        id: 'e2e-charlie', name: 'Charlie Deutsch', path: 'models/llm/e2e-charlie.gguf', size: 1,
        installedAt: '2026-01-01T00:00:00+00:00', backend: 'gallery', active: false,
        checksum: `sha256:${'1'.repeat(64)}` } } });
    stack.writeText('models/llm/stray.gguf', 'x');
    stack.writeText('models/llm/e2e-charlie.gguf', 'c');
    await open('?view=installed');
    const badge = async (id) => page.$eval(`#installed-content tr[data-model-id="${id}"]`, (tr) => {
      const b = tr.querySelector('.badge');
      return [tr.dataset.status, b.className, b.textContent];
    });
    await page.waitForSelector('#installed-content tr[data-model-id="stray"]');
    assert.deepEqual(await badge('e2e-echo'), ['missing', 'badge badge-missing', 'file missing']);
    assert.deepEqual(await badge('stray'), ['unregistered', 'badge badge-unregistered', 'not registered']);
    assert.deepEqual(await badge('e2e-charlie'), ['installed', 'badge badge-installed', 'installed']);
    const row = (id) => `#installed-content tr[data-model-id="${id}"]`;
    assert.equal(await page.textContent(`${row('e2e-charlie')} .badge-update`), 'update available');
    assert.equal(await page.textContent(`${row('e2e-charlie')} .update-btn`), 'Update');
    for (const id of ['e2e-echo', 'stray']) {
      assert.equal(await page.$(`${row(id)} .badge-update`), null, `${id}: no update badge`);
    }
    assert.match(await page.textContent(`${row('e2e-echo')} .update-btn`), /Repair/);
    assert.equal(await page.$(`${row('stray')} .update-btn`), null, 'no update of a file without an entry');
  });

  step('fits a phone screen: cards on the first screen, no sideways scrolling, in every view', async () => {
    await page.setViewportSize({ width: 360, height: 740 });
    await open();
    await expectCards(ALL, 'phone width');
    const firstCard = await page.$eval('#cards article', (el) => el.getBoundingClientRect().top);
    assert.ok(firstCard < 740, `a card on the first screen (top at ${firstCard}px)`);
    for (const view of ['gallery', 'installed', 'downloads']) {
      await page.click(`#tab-${view}`);
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      assert.ok(overflow <= 0, `${view}: no sideways scrolling (${overflow}px too wide)`);
    }
    await page.click('#tab-gallery');
    await page.setViewportSize({ width: 1280, height: 900 });
  });

  step('has no serious or moderate axe-core violation in any view, cards or list, both languages', async () => {
    await open();
    await expectCards(ALL, 'the gallery');
    await axeCheck(page, 'the gallery (cards)');
    await page.click('#layout button[data-layout="list"]');
    assert.ok(await page.$('#cards.list'));
    await axeCheck(page, 'the gallery (list)');
    await page.click('#layout button[data-layout="cards"]');
    await page.click('#tab-installed');
    await page.waitForSelector('#installed-content .cleanup');
    await axeCheck(page, 'the installed view');
    await page.click('#tab-downloads');
    await page.waitForSelector('#dl-history-title');
    await axeCheck(page, 'the downloads view');
    await page.click('#lang button[data-lang="de"]');
    await page.click('#tab-gallery');
    await axeCheck(page, 'the German gallery');
    await page.click('#lang button[data-lang="en"]');
  });

  step('violated the Content-Security-Policy nowhere in the whole session', async () => {
    assert.deepEqual(cspErrors, []);
  });
});
