// Browser driver for replay_test.go: the replay page of a recorded show
// plays (currentTime advances, videoWidth > 0), lists the chapters, shows
// the product pinned at a chapter after seeking to it, and buys it through
// the room's checkout. Prints one JSON result line prefixed "E2E_RESULT ".
//
//   node replay.mjs --base URL --room ROOM --show SHOW --token VIEWER_TOKEN
import { parseArgs } from 'node:util';
import { launch, finish } from './lib.mjs';

const { values: opt } = parseArgs({
  options: {
    base: { type: 'string', default: '' },
    room: { type: 'string', default: '' },
    show: { type: 'string', default: '' },
    token: { type: 'string', default: '' },
    out: { type: 'string', default: '' },
    chromium: { type: 'string', default: process.env.CHROMIUM || '/usr/bin/chromium' },
    timeout: { type: 'string', default: '30000' },
  },
});
const STEP = Number(opt.timeout);
const result = { ok: false, step: 'launch', logs: [] };
let browser;

async function main() {
  const base = opt.base.replace(/\/$/, '');
  browser = await launch(opt.chromium);
  // A phone: the page must work at 360 px.
  const ctx = await browser.newContext({ viewport: { width: 360, height: 740 }, isMobile: true, hasTouch: true });
  const page = await ctx.newPage();
  page.on('console', (m) => result.logs.push(`console.${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => result.logs.push(`pageerror: ${e.message}`));
  result.step = 'lobby link';
  await page.goto(`${base}/`);
  const href = `[href="/replay/${opt.room}/${opt.show}"]`;
  await page.waitForSelector(`#replays a${href}`, { timeout: STEP });
  result.step = 'room page link';
  await page.goto(`${base}/r/${opt.room}`);
  await page.waitForSelector(`a#replay-link${href}`, { timeout: STEP });
  result.links = true;
  result.step = 'replay page';
  await page.goto(`${base}/replay/${opt.room}/${opt.show}#token=${opt.token}`);
  result.step = 'playing';
  await page.waitForFunction(() => {
    const v = document.querySelector('#video');
    return v && v.currentTime > 1 && v.videoWidth > 0;
  }, null, { timeout: STEP });
  result.videoWidth = await page.evaluate(() => document.querySelector('#video').videoWidth);
  result.overflow = await page.evaluate(() => document.documentElement.scrollWidth > window.innerWidth + 1);
  result.step = 'chapters';
  result.chapters = await page.$$eval('#chapters button', (bs) => bs.map((b) => ({ t: Number(b.dataset.t), text: b.textContent })));
  result.step = 'seek to the last chapter';
  await page.locator('#chapters button').last().click();
  const want = result.chapters.length ? result.chapters[result.chapters.length - 1] : null;
  await page.waitForFunction(() => document.body.dataset.card === 'bag' && !document.querySelector('#card').hidden, null, { timeout: STEP });
  result.card = await page.evaluate(() => ({
    sku: document.body.dataset.card,
    title: document.querySelector('#card-title').textContent,
    price: document.querySelector('#card-price').textContent,
    was: document.querySelector('#card-was').textContent,
    at: document.querySelector('#video').currentTime,
  }));
  result.wantAt = want ? want.t : -1;
  if (opt.out) await page.screenshot({ path: `${opt.out}/replay-360.png` });
  result.step = 'buy';
  await page.waitForFunction(() => document.querySelector('#card-buy').dataset.sale !== undefined, null, { timeout: STEP });
  await page.locator('#card-buy').click();
  await page.waitForFunction(() => !!document.body.dataset.order, null, { timeout: STEP });
  result.order = await page.evaluate(() => document.body.dataset.order);
  result.chat = await page.$$eval('#chat li', (ls) => ls.map((l) => l.textContent));
  result.ok = true;
}

await finish(result, main, () => browser);
