// Browser driver for webcaps_retry_test.go: a viewer page whose first WHEP
// offer is refused (429 + Retry-After) retries by itself, no sooner than
// Retry-After, and plays. Prints one JSON result line prefixed "E2E_RESULT ".
//
//   node webcaps_retry.mjs --base http://127.0.0.1:8080 --room ROOM
import { parseArgs } from 'node:util';
import { launch, helpers, finish } from './lib.mjs';

const { values: opt } = parseArgs({
  options: {
    base: { type: 'string', default: '' },
    room: { type: 'string', default: 'e2e' },
    chromium: { type: 'string', default: process.env.CHROMIUM || '/usr/bin/chromium' },
    timeout: { type: 'string', default: '30000' },
  },
});
const { waitPlaying } = helpers(Number(opt.timeout));
const result = { ok: false, step: 'launch', logs: [], whep: [] };
let browser;

async function main() {
  const base = opt.base.replace(/\/$/, '');
  browser = await launch(opt.chromium);
  const page = await (await browser.newContext()).newPage();
  page.on('console', (m) => result.logs.push(`console.${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => result.logs.push(`pageerror: ${e.message}`));
  // Every WHEP offer the page posts and the answer it got, timed.
  page.on('request', (r) => {
    if (r.method() === 'POST' && r.url().includes('/whep/')) result.whep.push({ postedAt: Date.now(), status: 0 });
  });
  page.on('response', (r) => {
    const req = r.request();
    if (req.method() !== 'POST' || !req.url().includes('/whep/')) return;
    const last = result.whep.findLast((w) => w.status === 0);
    if (last) Object.assign(last, { status: r.status(), answeredAt: Date.now(), retryAfter: r.headers()['retry-after'] || '' });
  });
  result.step = 'viewer page';
  await page.goto(`${base}/r/${encodeURIComponent(opt.room)}`);
  result.step = 'playing after the refusal';
  await waitPlaying(page, 'viewer');
  result.message = await page.locator('#message').textContent().catch(() => '');
  result.ok = true;
}

await finish(result, main, () => browser);
