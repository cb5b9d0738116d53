// Browser driver for orders_pay_test.go: a signed-in viewer checks out an
// order that awaits payment; the page shows "Pay now" with the time left;
// the button opens pay_url in a new tab while the live keeps playing; the
// merchant reports the payment and the bar says so; the studio counts it. Prints one JSON result
// line prefixed "E2E_RESULT ".
//
//   node orders_pay.mjs --base URL --room ROOM --token VIEWER_TOKEN --admin-key KEY --host-token TOKEN
import { parseArgs } from 'node:util';
import { launch, helpers, finish } from './lib.mjs';

const { values: opt } = parseArgs({
  options: {
    base: { type: 'string', default: '' },
    room: { type: 'string', default: 'e2e' },
    token: { type: 'string', default: '' },
    'admin-key': { type: 'string', default: '' },
    'host-token': { type: 'string', default: '' },
    chromium: { type: 'string', default: process.env.CHROMIUM || '/usr/bin/chromium' },
    timeout: { type: 'string', default: '30000' },
  },
});
const STEP = Number(opt.timeout);
const { waitPlaying, pageState } = helpers(STEP);
const result = { ok: false, step: 'launch', logs: [] };
let browser;

async function main() {
  const base = opt.base.replace(/\/$/, '');
  browser = await launch(opt.chromium);
  const context = await browser.newContext();
  const page = await context.newPage();
  page.on('console', (m) => result.logs.push(`console.${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => result.logs.push(`pageerror: ${e.message}`));
  result.step = 'viewer page';
  await page.goto(`${base}/r/${encodeURIComponent(opt.room)}#token=${opt.token}`);
  await waitPlaying(page, 'viewer');
  const viewerURL = page.url();

  result.step = 'checkout';
  const order = await page.evaluate(async () => {
    const deadline = Date.now() + 10000;
    while (!(window.liveroom && window.liveroom.ws && window.liveroom.ws.state === 'open')) {
      if (Date.now() > deadline) throw new Error('the room socket never opened');
      await new Promise((r) => setTimeout(r, 100));
    }
    const ws = window.liveroom.ws;
    await ws.request('cart.add', { sku: 'bag', qty: 1, key: 'add-1' });
    const ev = await ws.request('cart.checkout', { key: 'pay-1' });
    return ev.order;
  });
  result.orderId = order.id;
  result.orderState = order.state;
  result.payURL = order.pay_url || '';

  result.step = 'pay now in the confirmation';
  const inDrawer = page.locator('#order-pay');
  await inDrawer.waitFor({ state: 'visible', timeout: STEP });
  result.drawerPayURL = await inDrawer.getAttribute('href');
  await page.locator('#order [data-close]').click(); // keep watching: the bar stays

  result.step = 'pay-now bar';
  const bar = page.locator(`#pay-dock .pay-bar[data-order="${order.id}"]`);
  await bar.waitFor({ state: 'visible', timeout: STEP });
  await page.waitForTimeout(1200); // the time left counts down
  result.barText = (await bar.textContent()) || '';

  result.step = 'pay in a new tab';
  const framesBefore = (await pageState(page, '#video')).framesDecoded;
  const [tab] = await Promise.all([
    context.waitForEvent('page', { timeout: STEP }),
    bar.getByRole('button', { name: 'Pay now' }).click({ timeout: STEP }).catch((e) => { result.logs.push('click: ' + e.message); throw e; }),
  ]);
  await tab.waitForLoadState('domcontentloaded');
  result.tabURL = tab.url();
  result.tabText = (await tab.locator('body').textContent()) || '';
  await page.waitForTimeout(2000);
  result.viewerURLAfter = page.url() === viewerURL ? 'unchanged' : page.url();
  result.framesBefore = framesBefore;
  result.framesAfter = (await pageState(page, '#video')).framesDecoded;

  result.step = 'pay-now bar after a reload';
  await page.reload();
  await bar.waitFor({ state: 'visible', timeout: STEP });
  result.barAfterReload = (await bar.textContent()) || '';

  result.step = 'merchant reports the payment';
  const res = await fetch(`${base}/api/v1/rooms/${encodeURIComponent(opt.room)}/orders/${order.id}/paid`, {
    method: 'POST', headers: { Authorization: `Bearer ${opt['admin-key']}` },
  });
  result.paidStatus = res.status;
  await page.waitForFunction((id) => {
    const b = document.querySelector(`#pay-dock .pay-bar[data-order="${id}"]`);
    return b && /Paid/.test(b.textContent);
  }, order.id, { timeout: STEP, polling: 100 });
  result.paidText = await bar.textContent();

  result.step = 'studio order figures';
  const studio = await context.newPage();
  await studio.goto(`${base}/studio/${encodeURIComponent(opt.room)}#token=${opt['host-token']}`);
  await studio.waitForFunction(() => {
    const b = document.getElementById('st-paid');
    return b && b.textContent === '1';
  }, null, { timeout: STEP, polling: 200 });
  result.studioPaid = await studio.locator('#st-paid').textContent();
  result.studioPaidRevenue = await studio.locator('#st-paid-revenue').textContent();
  result.studioAwaiting = await studio.locator('#st-awaiting_payment').textContent();
  result.ok = true;
}

await finish(result, main, () => browser);
