// Browser driver for e2e_test.go: a host goes live from the studio over
// WHIP; viewers play over WHEP, chat, send hearts, see the pinned product and
// buy in a flash sale; a moderator deletes a message and times the viewer
// out. Markup in product titles, names and chat must stay text. Saves
// screenshots and prints one JSON result line prefixed with "E2E_RESULT ".
//
//   node run.mjs --base http://127.0.0.1:8080 --room e2e --token HOST \
//     --viewer-token VIEWER --mod-token MOD --out DIR
//
// Env fallbacks: LIVEROOM_BASE, LIVEROOM_ROOM, LIVEROOM_TOKEN,
// LIVEROOM_ARTIFACTS, CHROMIUM (browser executable).
import { launch, helpers } from './lib.mjs';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const { values: opt } = parseArgs({
  options: {
    base: { type: 'string', default: process.env.LIVEROOM_BASE || '' },
    room: { type: 'string', default: process.env.LIVEROOM_ROOM || 'e2e' },
    token: { type: 'string', default: process.env.LIVEROOM_TOKEN || '' },
    'viewer-token': { type: 'string', default: process.env.LIVEROOM_VIEWER_TOKEN || '' },
    'mod-token': { type: 'string', default: process.env.LIVEROOM_MOD_TOKEN || '' },
    'extra-token': { type: 'string', default: process.env.LIVEROOM_EXTRA_TOKEN || '' }, // a second viewer, over a bare WebSocket
    out: { type: 'string', default: process.env.LIVEROOM_ARTIFACTS || 'artifacts' },
    chromium: { type: 'string', default: process.env.CHROMIUM || '/usr/bin/chromium' },
    timeout: { type: 'string', default: '20000' }, // per step, ms
  },
});
opt.viewerToken = opt['viewer-token'];
opt.modToken = opt['mod-token'];
opt.extraToken = opt['extra-token'];
if (!opt.base || !opt.token || !opt.viewerToken || !opt.modToken) {
  console.error('usage: node run.mjs --base URL --room ROOM --token HOST_TOKEN --viewer-token T --mod-token T [--out DIR]');
  process.exit(2);
}
const STEP = Number(opt.timeout);
const { pageState, waitState, waitPlaying, sample } = helpers(STEP);
mkdirSync(opt.out, { recursive: true });

const result = { ok: false, step: 'launch', logs: [], http: [] };
let browser;

// watch records console output, page errors and the signalling exchanges.
function watch(page, name) {
  page.on('console', (m) => result.logs.push(`${name} console.${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => result.logs.push(`${name} pageerror: ${e.message}`));
  page.on('requestfailed', (r) => result.logs.push(`${name} requestfailed: ${r.method()} ${r.url()} ${r.failure()?.errorText}`));
  page.on('response', (r) => {
    const path = new URL(r.url()).pathname;
    if (/^\/(whip|whep)\//.test(path) || r.request().method() === 'DELETE' || r.status() >= 400) {
      result.http.push({ page: name, method: r.request().method(), path, status: r.status() });
    }
  });
}

const XSS_TEXT = '<script>window.__xss=1</script> hello <img src=x onerror="window.__xss=1">';

// xssCheck reports whether any page ran injected script.
async function xssCheck(pages) {
  const out = {};
  for (const [name, p] of Object.entries(pages)) {
    out[name] = await p.evaluate(() => typeof window.__xss !== 'undefined' || !!document.querySelector('.msg img, .p-title img, .who img, script:not([src])')).catch(() => true);
  }
  return out;
}

async function textOf(page, sel) {
  return (await page.locator(sel).first().textContent({ timeout: STEP }).catch(() => '')) || '';
}

async function shot(page, name, fullPage = false) {
  await page.bringToFront();
  await page.waitForTimeout(150);
  await page.screenshot({ path: join(opt.out, name), fullPage });
}

async function main() {
  const base = opt.base.replace(/\/$/, '');
  const room = encodeURIComponent(opt.room);
  browser = await launch(opt.chromium);
  // Phones for the viewers (the pages must read at 360 px), a laptop for
  // the host and the moderator.
  const phone = await browser.newContext({ viewport: { width: 360, height: 740 }, deviceScaleFactor: 1, hasTouch: true });
  const desk = await browser.newContext({ viewport: { width: 1280, height: 800 }, deviceScaleFactor: 1 });
  await desk.grantPermissions(['camera', 'microphone'], { origin: base });
  // No request may leave this server (fonts, CDNs, product images elsewhere).
  for (const c of [phone, desk]) {
    await c.route((url) => !url.href.startsWith(base), (r) => {
      result.external = (result.external || []).concat(r.request().url());
      return r.abort();
    });
  }

  // A guest who arrives before the host is live must start playing when the
  // host goes live, without a reload.
  result.step = 'early viewer';
  const early = await phone.newPage();
  watch(early, 'early');
  await early.goto(`${base}/r/${room}`);
  await early.waitForFunction(() => ['offline', 'connecting'].includes(document.body.dataset.state), null, { timeout: STEP });

  result.step = 'studio';
  const studio = await desk.newPage();
  watch(studio, 'studio');
  await studio.goto(`${base}/studio/${room}#token=${encodeURIComponent(opt.token)}`);
  await studio.waitForFunction(() => document.getElementById('preview').videoWidth > 0, null, { timeout: STEP });
  result.tokenStrippedFromURL = !studio.url().includes('token=');
  await studio.getByRole('button', { name: 'Go live' }).click();
  await waitState(studio, 'live', 'studio');
  const sent = await pageState(studio, '#preview');
  result.studio = { state: sent.state, codec: sent.codec, framesSent: sent.framesSent };

  result.step = 'viewer';
  const viewer = await phone.newPage();
  watch(viewer, 'viewer');
  await viewer.goto(`${base}/r/${room}#token=${encodeURIComponent(opt.viewerToken)}`);
  await waitPlaying(viewer, 'viewer');
  result.viewer = await sample(viewer);
  await waitState(viewer, 'live', 'viewer');
  result.viewer.state = 'live';

  result.step = 'early viewer playing';
  await waitPlaying(early, 'early viewer');
  result.early = await sample(early);

  result.step = 'moderator console';
  const mod = await desk.newPage();
  watch(mod, 'mod');
  await mod.goto(`${base}/mod/${room}#token=${encodeURIComponent(opt.modToken)}`);
  await mod.waitForFunction(() => document.body.dataset.state === 'open', null, { timeout: STEP });

  // A product whose title is markup is pinned first: it must show as text.
  result.step = 'pin the hostile product';
  const pinBtn = (sku) => studio.locator(`#catalog li[data-sku="${sku}"] button`, { hasText: /^Pin/ });
  await pinBtn('xss-item').click();
  await viewer.waitForFunction(() => !document.getElementById('product').hidden && document.getElementById('product-title').textContent.includes('onerror'), null, { timeout: STEP });
  result.xssTitleShownAsText = (await textOf(viewer, '#product-title')).startsWith('<img');

  result.step = 'pin a product';
  await pinBtn('linen-shirt').click();
  await viewer.waitForFunction(() => document.getElementById('product-title').textContent === 'Washed linen shirt, sand', null, { timeout: STEP });
  await viewer.waitForFunction(() => { const i = document.querySelector('#product img'); return i && i.complete && i.naturalWidth > 0; }, null, { timeout: STEP });
  result.pinned = await textOf(viewer, '#product-title');

  result.step = 'chat';
  // Another viewer, on a bare WebSocket: the room is not just us.
  if (opt.extraToken) {
    await early.evaluate(async ({ room, token }) => {
      const ws = new WebSocket(`ws://${location.host}/ws/${room}?token=${encodeURIComponent(token)}`);
      await new Promise((resolve, reject) => { ws.onopen = resolve; ws.onerror = reject; });
      window.__other = ws;
      const say = (text) => ws.send(JSON.stringify({ type: 'chat.send', text }));
      say('Hi from Lisbon! First time here');
      await new Promise((r) => setTimeout(r, 250));
      say('Is the shirt true to size?');
      ws.send(JSON.stringify({ type: 'like', count: 12 }));
    }, { room, token: opt.extraToken });
  }
  await viewer.fill('#chat-input', XSS_TEXT);
  await viewer.press('#chat-input', 'Enter');
  await viewer.waitForTimeout(1100); // chat rate limit: one a second
  await viewer.fill('#chat-input', 'Love the colour! Does it come in navy?');
  await viewer.press('#chat-input', 'Enter');
  await studio.fill('#chat-input', "Yes, true to size: I'm wearing an M. Flash sale in a minute!");
  await studio.press('#chat-input', 'Enter');
  await mod.fill('#chat-input', 'Welcome in, everyone. Keep it kind!');
  await mod.press('#chat-input', 'Enter');
  for (const [p, what] of [[viewer, 'viewer'], [studio, 'studio'], [mod, 'mod']]) {
    await p.waitForFunction(() => ['navy', 'Keep it kind', 'wearing an M'].every((w) => [...document.querySelectorAll('#chat .msg .text')].some((n) => n.textContent.includes(w))), null, { timeout: STEP })
      .catch(() => { throw new Error(`${what}: the chat messages never all appeared`); });
  }
  result.chatText = await viewer.evaluate(() => [...document.querySelectorAll('#chat .msg .text')].map((n) => n.textContent).find((t) => t.includes('hello')) || '');

  result.step = 'hearts';
  for (let i = 0; i < 5; i++) {
    await viewer.click('#heart');
    await viewer.waitForTimeout(60);
  }
  await studio.waitForFunction(() => Number(document.getElementById('st-likes').textContent) >= 5, null, { timeout: STEP })
    .catch(() => { throw new Error('studio never counted the hearts'); });
  result.likes = Number(await textOf(studio, '#st-likes'));

  result.step = 'flash sale';
  await studio.locator('#catalog li[data-sku="linen-shirt"] button', { hasText: 'Flash sale' }).click();
  await studio.fill('#sf-qty', '12');
  await studio.getByRole('button', { name: 'Start flash sale' }).click();
  await viewer.waitForFunction(() => !document.getElementById('sale').hidden && !document.getElementById('sale-buy').disabled, null, { timeout: STEP });
  const clock1 = await textOf(viewer, '#sale-clock');
  // It must tick; a loaded machine may starve the page's timer for a while,
  // so wait for the change (bounded) instead of sampling once after 1.1 s.
  await viewer.waitForFunction((c) => document.getElementById('sale-clock').textContent !== c, clock1, { timeout: 5000 })
    .catch(() => {});
  const clock2 = await textOf(viewer, '#sale-clock');
  result.saleClock = [clock1, clock2];

  result.step = 'desktop viewer';
  const wide = await desk.newPage();
  watch(wide, 'wide');
  await wide.goto(`${base}/r/${room}#token=${encodeURIComponent(opt.viewerToken)}`);
  await waitState(wide, 'live', 'desktop viewer');
  await wide.waitForFunction(() => !document.getElementById('sale').hidden, null, { timeout: STEP });

  result.step = 'screenshots of the viewer';
  await viewer.waitForTimeout(300);
  await shot(viewer, 'viewer-360.png');
  await shot(wide, 'viewer-desktop.png');

  result.step = 'buy';
  await viewer.click('#sale-buy');
  await viewer.waitForFunction(() => document.getElementById('cart').open && document.querySelectorAll('#cart-items li').length === 1, null, { timeout: STEP })
    .catch(() => { throw new Error('the bag never showed the held item'); });
  result.holdText = await textOf(viewer, '#cart-items .hold-text');
  await shot(viewer, 'viewer-cart.png');
  await viewer.click('#checkout');
  await viewer.waitForFunction(() => !document.getElementById('order').hidden && document.getElementById('order-id').textContent.length > 0, null, { timeout: STEP })
    .catch(() => { throw new Error('no order confirmation'); });
  result.orderId = await textOf(viewer, '#order-id');
  result.orderTotal = await textOf(viewer, '#order-total');
  await shot(viewer, 'viewer-order.png');
  await viewer.click('#order [data-close]');
  await studio.waitForFunction(() => document.getElementById('st-orders').textContent === '1', null, { timeout: STEP })
    .catch(() => { throw new Error('the studio never counted the order'); });

  result.step = 'moderate';
  const modMsg = (text) => mod.locator('#chat .msg', { hasText: text });
  // No action the server would refuse: none on the host's or on one's own messages.
  result.modActsOnHigher = await modMsg('wearing an M').locator('button').count() + await modMsg('Keep it kind').locator('button').count();
  await modMsg('navy').getByRole('button', { name: /^Delete/ }).click();
  await viewer.waitForFunction(() => ![...document.querySelectorAll('#chat .msg .text')].some((n) => n.textContent.includes('navy')), null, { timeout: STEP })
    .catch(() => { throw new Error('the deleted message stayed on the viewer page'); });
  result.deletedOnViewer = true;
  await modMsg('hello').getByRole('button', { name: /^Time out/ }).click();
  await viewer.waitForFunction(() => document.body.dataset.muted === 'true' && !document.getElementById('mute-note').hidden, null, { timeout: STEP })
    .catch(() => { throw new Error('the viewer page never showed the timeout'); });
  result.muteNote = await textOf(viewer, '#mute-note');
  // Sending while timed out is refused by the server, and the page says so.
  await mod.waitForFunction(() => document.querySelectorAll('#audit li time').length >= 2, null, { timeout: STEP });
  result.audit = await mod.evaluate(() => [...document.querySelectorAll('#audit li .a-what')].map((n) => n.textContent));

  result.step = 'lobby';
  const lobby = await desk.newPage();
  watch(lobby, 'lobby');
  await lobby.goto(`${base}/`);
  await lobby.waitForFunction((r) => !!document.querySelector(`#live a[href="/r/${r}"]`), room, { timeout: STEP });
  result.lobbyCard = await textOf(lobby, '#live .room-card');
  await shot(lobby, 'lobby.png');

  result.step = 'script injection';
  result.xss = await xssCheck({ early, studio, viewer, mod, wide, lobby });

  result.step = 'screenshots of the studio and the console';
  await studio.evaluate(() => { document.getElementById('keybox').open = true; });
  await shot(studio, 'studio.png', true);
  await shot(mod, 'mod.png', true);
  await shot(viewer, 'viewer-timeout.png');
  // The consoles must read on a phone too (artifacts only).
  for (const [p, name] of [[studio, 'studio-360.png'], [mod, 'mod-360.png'], [lobby, 'lobby-360.png']]) {
    await p.setViewportSize({ width: 360, height: 740 });
    await shot(p, name);
  }

  result.step = 'end';
  await studio.click('#end');
  await studio.click('#end');
  await waitState(studio, 'idle', 'studio after End');
  await viewer.waitForFunction(() => document.getElementById('product').hidden, null, { timeout: STEP })
    .catch(() => { throw new Error('ending the show did not unpin the product'); });
  // Give the DELETE a moment to be recorded.
  await studio.waitForTimeout(300);
  result.ok = true;
  result.step = 'done';
}

const guard = setTimeout(() => {
  result.error = `driver timed out in step "${result.step}"`;
  finish(1);
}, 12 * STEP);

async function finish(code) {
  clearTimeout(guard);
  if (browser) {
    if (!result.ok) {
      // Best effort: what each page looked like when it failed.
      for (const [i, p] of browser.contexts().flatMap((c) => c.pages()).entries()) {
        await p.screenshot({ path: join(opt.out, `failure-${i}.png`), timeout: 3000 }).catch(() => {});
      }
    }
    await browser.close().catch(() => {});
  }
  console.log(`E2E_RESULT ${JSON.stringify(result)}`);
  process.exit(code);
}

main().then(() => finish(0), (err) => {
  result.error = String(err && err.message ? err.message : err).split('\n')[0];
  finish(1);
});
