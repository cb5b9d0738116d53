// Browser driver for auction_test.go: two viewers bid on a live auction.
//   - The host (a signed-in page) starts an auction; both viewers see the
//     card with time left and quick-bid buttons.
//   - Ann taps the first quick bid: "You're winning". Bob taps a higher one:
//     Ann sees "outbid". Ann bids again: winning.
//   - At the end Ann sees that she won and the order (no cart step: the
//     order is created with the close); Bob sees the sale to Ann.
// Prints one JSON result line prefixed "E2E_RESULT ".
//
//   node auction.mjs --base URL --room ROOM --host T --ann T --bob T --sku SKU
import { parseArgs } from 'node:util';
import { launch } from './lib.mjs';

const { values: opt } = parseArgs({
  options: {
    base: { type: 'string', default: '' },
    room: { type: 'string', default: 'e2e' },
    host: { type: 'string', default: '' },
    ann: { type: 'string', default: '' },
    bob: { type: 'string', default: '' },
    cat: { type: 'string', default: '' },
    mod: { type: 'string', default: '' },
    dan: { type: 'string', default: '' },
    sku: { type: 'string', default: 'lamp' },
    chromium: { type: 'string', default: process.env.CHROMIUM || '/usr/bin/chromium' },
    timeout: { type: 'string', default: '20000' },
  },
});
if (!opt.base || !opt.host || !opt.ann || !opt.bob || !opt.cat || !opt.mod || !opt.dan) {
  console.error('usage: node auction.mjs --base URL --room ROOM --host T --ann T --bob T --cat T --mod T --dan T --sku SKU');
  process.exit(2);
}
const STEP = Number(opt.timeout);
const result = { ok: false, step: 'launch', logs: [] };
let browser;

async function open(name, token, path = 'r', vp = { width: 390, height: 844 }, skewMS = 0) {
  const phone = vp.width < 500;
  const ctx = await browser.newContext({ viewport: vp, isMobile: phone, hasTouch: phone });
  if (skewMS) {
    // This page's clock is off by skewMS: Date and Date.now, not the server.
    await ctx.addInitScript((skew) => {
      const Real = Date;
      const realNow = Real.now.bind(Real);
      class Skewed extends Real {
        constructor(...a) { if (a.length === 0) super(realNow() + skew); else super(...a); }
        static now() { return realNow() + skew; }
      }
      globalThis.Date = Skewed;
    }, skewMS);
  }
  await ctx.grantPermissions(['camera', 'microphone'], { origin: opt.base.replace(/\/$/, '') });
  const page = await ctx.newPage();
  page.on('console', (m) => { if (m.type() === 'error') result.logs.push(`${name} console.${m.type()}: ${m.text()}`); });
  page.on('pageerror', (e) => result.logs.push(`${name} pageerror: ${e.message}`));
  await page.goto(`${opt.base.replace(/\/$/, '')}/${path}/${encodeURIComponent(opt.room)}#token=${encodeURIComponent(token)}`);
  await page.waitForFunction(() => window.liveroom && window.liveroom.ws && window.liveroom.ws.welcomed && window.liveroomAuction, null, { timeout: STEP });
  return page;
}

const stateOf = (page) => page.evaluate(() => ({
  state: document.getElementById('auction').dataset.state || '',
  text: document.getElementById('auction-state').textContent,
  amount: document.getElementById('auction-amount').textContent,
  clock: document.getElementById('auction-clock').textContent,
  buttons: [...document.querySelectorAll('#auction-quick button')].map((b) => Number(b.dataset.cents)),
}));

async function waitAuctionState(page, want, what) {
  try {
    await page.waitForFunction((w) => document.getElementById('auction').dataset.state === w, want, { timeout: STEP, polling: 100 });
  } catch {
    throw new Error(`${what}: auction state never became "${want}" (${JSON.stringify(await stateOf(page))})`);
  }
}

async function main() {
  browser = await launch(opt.chromium);
  result.step = 'open pages';
  const host = await open('host', opt.host, 'studio', { width: 1280, height: 900 });
  const ann = await open('ann', opt.ann);
  const bob = await open('bob', opt.bob);
  const cat = await open('cat', opt.cat);
  const mod = await open('mod', opt.mod, 'mod');

  result.step = 'start the auction';
  // the studio's form: SKU, start price, duration, counter-bid time
  await host.fill('#af-sku', opt.sku);
  await host.fill('#af-start', '10');
  await host.fill('#af-duration', '12');
  await host.fill('#af-extend', '3');
  await host.locator('#auction-form button[type=submit]').click();
  await host.waitForSelector('#auction-stop:not([hidden])', { timeout: STEP });
  for (const p of [ann, bob]) await p.waitForSelector('#auction:not([hidden]) #auction-quick button', { timeout: STEP });
  result.started = await stateOf(ann);

  result.step = 'a page whose clock is 10 minutes behind';
  // Dan's clock is 10 minutes behind, and the node's offset from the
  // welcome is zeroed: as if the node's clock were the page's and the
  // auction's clock (Redis TIME) 10 minutes ahead of both. The countdown
  // must follow the auction's clock (its events' `now`), not the page's or
  // the node's.
  const dan = await open('dan', opt.dan, 'r', { width: 390, height: 844 }, -600000);
  await dan.evaluate(() => { window.liveroom.ws.offset = 0; });
  await dan.waitForSelector('#auction:not([hidden]) #auction-quick button', { timeout: STEP });
  await dan.waitForTimeout(300); // one tick of the countdown after the offset change
  const endsAt = await ann.evaluate(() => window.liveroomAuction.a.ends_at);
  const shown = await dan.evaluate(() => document.getElementById('auction-clock').textContent);
  const [mm, ss] = shown.split(':').map(Number);
  result.skew = { shown, shownS: mm * 60 + ss, leftS: (Date.parse(endsAt) - Date.now()) / 1000 };

  result.step = 'ann bids';
  await ann.locator('#auction-quick button').first().click();
  await waitAuctionState(ann, 'winning', 'ann after her bid');

  result.step = 'bob outbids';
  await bob.waitForFunction(() => document.querySelector('#auction-quick button').dataset.cents !== '1000', null, { timeout: STEP });
  await bob.locator('#auction-quick button').nth(1).click();
  await waitAuctionState(bob, 'winning', 'bob after his bid');
  await waitAuctionState(ann, 'outbid', 'ann after bob');
  result.outbid = await stateOf(ann);

  result.step = 'ann bids again';
  await ann.waitForFunction(() => !document.querySelector('#auction-quick button').disabled, null, { timeout: STEP });
  await ann.locator('#auction-quick button').first().click();
  await waitAuctionState(ann, 'winning', 'ann bids again');
  result.leading = await stateOf(ann);

  result.step = 'cat outbids, the moderator removes cat';
  await cat.waitForFunction(() => !document.querySelector('#auction-quick button').disabled && Number(document.querySelector('#auction-quick button').dataset.cents) > 1200, null, { timeout: STEP });
  await cat.locator('#auction-quick button').nth(2).click();
  await waitAuctionState(cat, 'winning', 'cat after her bid');
  await waitAuctionState(ann, 'outbid', 'ann after cat');
  await mod.waitForSelector('#auction-bids button[data-remove="cat"]', { timeout: STEP });
  result.modBids = await mod.evaluate(() => [...document.querySelectorAll('#auction-bids li')].map((li) => li.textContent));
  await mod.locator('#auction-bids button[data-remove="cat"]').first().click();
  await waitAuctionState(cat, 'removed', 'cat after the removal');
  await waitAuctionState(ann, 'winning', 'ann after the fallback');
  result.fallback = await stateOf(ann);

  result.step = 'the end';
  await ann.waitForFunction(() => /^You won! Order o_/.test(document.getElementById('auction-state').textContent), null, { timeout: STEP });
  result.won = await stateOf(ann);
  await bob.waitForFunction(() => /^Sold to /.test(document.getElementById('auction-state').textContent), null, { timeout: STEP });
  result.bobEnd = await stateOf(bob);
  result.order = await ann.evaluate(() => window.liveroomAuction.order);
  result.studioBids = await host.evaluate(() => [...document.querySelectorAll('#auction-bids li')].map((li) => li.textContent));
  result.studioState = await host.evaluate(() => document.getElementById('auction-state').textContent);
  await ann.screenshot({ path: process.env.E2E_ARTIFACTS ? `${process.env.E2E_ARTIFACTS}/auction-won.png` : '/dev/null' }).catch(() => {});
  result.ok = true;
}

try {
  await main();
} catch (err) {
  result.error = String(err && err.stack || err);
} finally {
  if (browser) await browser.close().catch(() => {});
  console.log('E2E_RESULT ' + JSON.stringify(result));
}
