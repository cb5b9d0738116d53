// Browser driver for giveaway_test.go: the host starts a giveaway from the
// studio; a signed-in viewer enters from the viewer page, sees the result,
// and opens "Verify the draw", which recomputes it in the browser
// (SubtleCrypto) and finds the viewer's own entry in the list. The same
// page with an entry that is not in the list must say the draw does not
// check out for it.
// Prints one JSON result line prefixed "E2E_RESULT ".
//
//   node giveaway.mjs --base URL --room ROOM --host HOST_TOKEN --viewer VIEWER_TOKEN --sku SKU
import { parseArgs } from 'node:util';
import { launch, finish } from './lib.mjs';

const { values: opt } = parseArgs({
  options: {
    base: { type: 'string', default: '' },
    room: { type: 'string', default: 'e2e' },
    host: { type: 'string', default: '' },
    viewer: { type: 'string', default: '' },
    sku: { type: 'string', default: '' },
    out: { type: 'string', default: '' },
    chromium: { type: 'string', default: process.env.CHROMIUM || '/usr/bin/chromium' },
    timeout: { type: 'string', default: '20000' },
  },
});
if (!opt.base || !opt.host || !opt.viewer || !opt.sku) {
  console.error('usage: node giveaway.mjs --base URL --room ROOM --host HOST_TOKEN --viewer VIEWER_TOKEN --sku SKU');
  process.exit(2);
}
const STEP = Number(opt.timeout);
const result = { ok: false, step: 'launch', logs: [] };
let browser;

function watch(page, name) {
  page.on('console', (m) => result.logs.push(`${name} console.${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => result.logs.push(`${name} pageerror: ${e.message}`));
}

async function verify(ctx, url, shot = '') {
  const page = await ctx.newPage();
  watch(page, 'verify');
  await page.goto(url);
  await page.waitForFunction(() => document.body.dataset.verified !== '', null, { timeout: STEP });
  const out = await page.evaluate(() => ({
    verified: document.body.dataset.verified,
    verdict: document.getElementById('verdict').textContent,
    checks: Array.from(document.querySelectorAll('#checks li'), (li) => ({ text: li.textContent, ok: li.dataset.ok === 'true' })),
  }));
  if (shot) await page.screenshot({ path: shot });
  await page.close();
  return out;
}

async function main() {
  const base = opt.base.replace(/\/$/, '');
  const room = encodeURIComponent(opt.room);
  browser = await launch(opt.chromium);
  const desk = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  await desk.grantPermissions(['camera', 'microphone'], { origin: base });
  const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });

  result.step = 'viewer opens the room';
  const viewer = await phone.newPage();
  watch(viewer, 'viewer');
  await viewer.goto(`${base}/r/${room}#token=${encodeURIComponent(opt.viewer)}`);
  await viewer.waitForFunction(() => window.liveroom.you && window.liveroom.you.role === 'viewer' && window.liveroom.giveaway, null, { timeout: STEP });

  result.step = 'host starts a giveaway from the studio';
  const studio = await desk.newPage();
  watch(studio, 'studio');
  await studio.goto(`${base}/studio/${room}#token=${encodeURIComponent(opt.host)}`);
  await studio.waitForSelector('#gw-form', { timeout: STEP });
  await studio.waitForFunction(() => window.liveroom.ws && window.liveroom.ws.you && window.liveroom.ws.you.role === 'host', null, { timeout: STEP });
  await studio.fill('#gw-form input[name=prize]', opt.sku);
  await studio.selectOption('#gw-form select[name=kind]', 'sku');
  await studio.fill('#gw-form input[name=entry_s]', '4');
  await studio.click('#gw-start');

  result.step = 'viewer enters';
  await viewer.waitForSelector('#gw-enter', { state: 'visible', timeout: STEP });
  result.prize = await viewer.locator('#gw-prize').textContent();
  result.winners = await viewer.locator('#gw-winners').textContent();
  await viewer.click('#gw-enter');
  await viewer.waitForSelector('#gw-entry', { timeout: STEP });
  result.entry = (await viewer.locator('#gw-entry').textContent()).split('entry ').pop().trim();

  result.step = 'the result shows';
  await viewer.waitForSelector('#gw-result', { timeout: STEP });
  result.resultText = await viewer.locator('#gw-result').textContent();
  result.won = (await viewer.locator('#gw-result').getAttribute('data-won')) === 'true';
  await studio.waitForSelector('#gw-result', { timeout: STEP });
  result.studioResult = await studio.locator('#gw-result').textContent();
  if (opt.out) await viewer.screenshot({ path: `${opt.out}/giveaway-viewer.png` });
  if (opt.out) await studio.screenshot({ path: `${opt.out}/giveaway-studio.png` });
  const href = await viewer.locator('#gw-verify').getAttribute('href');
  result.verifyHref = href;

  result.step = 'verify the draw';
  result.verify = await verify(phone, new URL(href, base).toString(), opt.out && `${opt.out}/giveaway-verify.png`);
  const tampered = new URL(href, base);
  tampered.searchParams.set('entry', 'e_0000000000000000');
  result.step = 'verify with an entry that is not listed';
  result.stranger = await verify(desk, tampered.toString());

  result.ok = true;
  result.step = 'done';
}

await finish(result, main, () => browser);
