// Browser driver for failover_test.go: three liveroom nodes behind haproxy.
// The studio goes live through the "hosts" frontend (node a while it is up);
// a signed-in viewer plays through the "viewers" frontend (nodes b and c),
// holds a flash-sale reservation and reads the host's chat. Then:
//   1. the viewer's video node is killed (SIGKILL): the page moves by itself;
//   2. the killed node comes back and the viewer's new node is drained
//      (SIGTERM): the page moves before the node exits;
//   3. the host's node is killed: the studio republishes through the
//      balancer and the viewer keeps its session.
// For each, the longest gap between presented frames (requestVideoFrameCallback)
// is measured. The Go test does the killing: this script asks for it with a
// line "E2E_ASK {json}" on stdout and reads one JSON line back on stdin.
// Prints one JSON result line prefixed "E2E_RESULT ".
import { createInterface } from 'node:readline';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { launch, helpers } from './lib.mjs';

const { values: opt } = parseArgs({
  options: {
    viewers: { type: 'string', default: '' },
    hosts: { type: 'string', default: '' },
    room: { type: 'string', default: 'e2e' },
    token: { type: 'string', default: '' },
    'viewer-token': { type: 'string', default: '' },
    out: { type: 'string', default: 'artifacts' },
    chromium: { type: 'string', default: process.env.CHROMIUM || '/usr/bin/chromium' },
    timeout: { type: 'string', default: '30000' },
  },
});
if (!opt.viewers || !opt.hosts || !opt.token || !opt['viewer-token']) {
  console.error('usage: node failover.mjs --viewers URL --hosts URL --room ROOM --token HOST --viewer-token T [--out DIR]');
  process.exit(2);
}
const STEP = Number(opt.timeout);
const { waitState, waitPlaying } = helpers(STEP);
mkdirSync(opt.out, { recursive: true });
const result = { ok: false, step: 'launch', logs: [] };
let browser;

const stdin = createInterface({ input: process.stdin });
const replies = stdin[Symbol.asyncIterator]();
// ask has the Go test do something to the nodes (kill, term, start, wait).
async function ask(op, node) {
  console.log(`E2E_ASK ${JSON.stringify({ op, node })}`);
  const { value, done } = await replies.next();
  if (done) throw new Error(`no answer to ${op} ${node}`);
  const r = JSON.parse(value);
  if (!r.ok) throw new Error(`${op} ${node}: ${r.error}`);
  return r;
}

function watch(page, name) {
  page.on('console', (m) => { if (m.type() !== 'debug') result.logs.push(`${name} console.${m.type()}: ${m.text()}`); });
  page.on('pageerror', (e) => result.logs.push(`${name} pageerror: ${e.message}`));
}

// record notes the time of every presented frame of #video, and what
// the room socket delivers (chat texts, welcomes with node and cart).
async function record(page) {
  await page.evaluate(() => {
    const v = document.querySelector('#video');
    window.__frames = [];
    const cb = (now) => {
      window.__frames.push(now);
      if (window.__frames.length > 20000) window.__frames.splice(0, 10000);
      v.requestVideoFrameCallback(cb);
    };
    v.requestVideoFrameCallback(cb);
    window.__chat = new Set();
    window.__welcomes = [];
    const ws = window.liveroom.ws;
    ws.on('chat.message', (ev) => window.__chat.add(ev.message.text));
    ws.on('sale.started', (ev) => { window.__sale = ev.sale.id; });
    ws.on('welcome', (ev) => window.__welcomes.push({ node: ev.node, cart: ev.cart || [], resumed: !!ev.resumed }));
  });
}

// timelineSince: the player's recovery steps after t0, in ms from t0.
async function timelineSince(page, t0) {
  return page.evaluate((t0) => window.liveroom.timeline.filter(([t]) => t >= t0).map(([t, w]) => `+${Math.round(t - t0)} ms ${w}`), t0);
}

// gapSince: the longest gap between presented frames from t0 (page clock)
// until now, counting the wait for the first frame after t0.
async function gapSince(page, t0) {
  return page.evaluate((t0) => {
    const f = window.__frames.filter((x) => x >= t0 - 1000);
    let prev = t0;
    let max = 0;
    for (const x of f) {
      if (x < t0) { prev = x; continue; }
      max = Math.max(max, x - prev);
      prev = x;
    }
    return { maxGapMs: Math.round(max), framesAfter: f.filter((x) => x > t0).length, lastFrameAgoMs: Math.round(performance.now() - prev) };
  }, t0);
}

// waitFrames waits until the page has presented n frames after t0.
async function waitFrames(page, t0, n, what) {
  try {
    await page.waitForFunction(([t0, n]) => window.__frames.filter((x) => x > t0).length >= n, [t0, n], { timeout: STEP, polling: 100 });
  } catch {
    const s = await page.evaluate(() => ({ state: document.body.dataset.state, msg: document.getElementById('message')?.textContent, pc: window.liveroom.pc?.connectionState }));
    throw new Error(`${what}: video did not come back (${JSON.stringify(s)})`);
  }
}

const now = (page) => page.evaluate(() => performance.now());

// openViewer opens the viewer page through the balancer until its video is
// served by another node than avoid (round robin: a few tries at most).
async function openViewer(ctx, room, avoid) {
  for (let i = 0; ; i++) {
    const page = await ctx.newPage();
    watch(page, `viewer${i}`);
    await page.goto(`${opt.viewers}/r/${room}#token=${encodeURIComponent(opt['viewer-token'])}`);
    await waitPlaying(page, 'viewer');
    await waitState(page, 'live', 'viewer');
    await page.waitForFunction(() => window.liveroom.ws && window.liveroom.ws.state === 'open', null, { timeout: STEP });
    const node = await page.evaluate(() => window.liveroom.videoNode);
    if (node && node !== avoid) return page;
    if (i >= 8) throw new Error(`the viewer's video kept landing on ${node}`);
    await page.close();
    await ctx.clearCookies(); // the balancer's stickiness cookie: try another node
  }
}

async function main() {
  const room = encodeURIComponent(opt.room);
  browser = await launch(opt.chromium);
  const desk = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  await desk.grantPermissions(['camera', 'microphone'], { origin: opt.hosts });
  const phone = await browser.newContext({ viewport: { width: 360, height: 740 }, hasTouch: true });

  result.step = 'studio goes live through the balancer';
  const studio = await desk.newPage();
  watch(studio, 'studio');
  await studio.goto(`${opt.hosts}/studio/${room}#token=${encodeURIComponent(opt.token)}`);
  await studio.waitForFunction(() => document.getElementById('preview').videoWidth > 0, null, { timeout: STEP });
  await studio.getByRole('button', { name: 'Go live' }).click();
  await waitState(studio, 'live', 'studio');
  result.studioNode = await studio.evaluate(() => window.liveroom.node);

  result.step = 'viewer plays through the balancer';
  let viewer = await openViewer(phone, room, result.studioNode);
  await record(viewer);

  result.step = 'flash sale and a reservation';
  await studio.evaluate(() => window.liveroom.ws.request('sale.start',
    { sku: 'mug', price_cents: 1500, quantity: 10, per_user_limit: 2, starts_in_s: 0, duration_s: 600 }, { settleMs: 1500 }));
  await viewer.waitForFunction(() => window.__sale, null, { timeout: STEP });
  const held = await viewer.evaluate(async () => {
    const reply = await window.liveroom.ws.request('cart.add', { sale_id: window.__sale, qty: 1, key: 'failover-hold-1' });
    return (reply.items || []).map((i) => i.reservation_id);
  });
  result.heldBefore = held;

  // The host chats throughout; the viewer must see every message.
  await studio.evaluate(() => {
    window.__sent = 0;
    window.__pump = setInterval(() => {
      window.__sent++;
      window.liveroom.ws.send('chat.send', { text: `tick ${window.__sent}` });
    }, 1100); // the chat allows 1 message/s, burst 5
  });

  // ---- 1. the viewer's video node dies ----
  result.step = 'kill the viewer\'s node';
  await viewer.waitForTimeout(1500);
  const killed = await viewer.evaluate(() => window.liveroom.videoNode);
  result.killedNode = killed;
  result.wsNodeBefore = await viewer.evaluate(() => window.liveroom.ws.node);
  let t0 = await now(viewer);
  await ask('kill', killed);
  await waitFrames(viewer, t0, 30, 'after the kill');
  await viewer.waitForTimeout(2000);
  result.kill = await gapSince(viewer, t0);
  result.kill.newNode = await viewer.evaluate(() => window.liveroom.videoNode);
  result.kill.switches = await viewer.evaluate(() => window.liveroom.switches);
  result.kill.timeline = await timelineSince(viewer, t0);

  result.step = 'chat and cart after the kill';
  await viewer.waitForFunction(() => window.liveroom.ws.state === 'open', null, { timeout: STEP });
  // Messages before, across and after the kill: at least 8 in all.
  await studio.waitForFunction(() => window.__sent >= 8, null, { timeout: STEP });
  await studio.evaluate(() => clearInterval(window.__pump));
  const sent = await studio.evaluate(() => window.__sent);
  await viewer.waitForTimeout(1500);
  const got = await viewer.evaluate(() => [...window.__chat]);
  const gotSet = new Set(got);
  result.chat = { sent, missing: [] };
  for (let i = 1; i <= sent; i++) if (!gotSet.has(`tick ${i}`)) result.chat.missing.push(i);
  // The same tap again (same idempotency key): the same one reservation.
  result.heldAfter = await viewer.evaluate(async () => {
    const reply = await window.liveroom.ws.request('cart.add', { sale_id: window.__sale, qty: 1, key: 'failover-hold-1' });
    return (reply.items || []).map((i) => i.reservation_id);
  });
  const welcomes = await viewer.evaluate(() => window.__welcomes);
  result.kill.wsReconnects = welcomes.length;
  result.kill.wsNodeAfter = await viewer.evaluate(() => window.liveroom.ws.node);

  // ---- 2. the viewer's new node drains ----
  result.step = 'drain the viewer\'s node';
  await ask('start', killed);
  const draining = await viewer.evaluate(() => window.liveroom.videoNode);
  result.drainedNode = draining;
  t0 = await now(viewer);
  await ask('term', draining);
  await viewer.waitForFunction((n) => window.liveroom.videoNode && window.liveroom.videoNode !== n, draining, { timeout: STEP });
  await ask('wait-exit', draining);
  await waitFrames(viewer, t0, 30, 'after the drain');
  await viewer.waitForTimeout(1000);
  result.drain = await gapSince(viewer, t0);
  result.drain.newNode = await viewer.evaluate(() => window.liveroom.videoNode);
  result.drain.timeline = await timelineSince(viewer, t0);
  await ask('start', draining);

  // ---- 3. the host's node dies ----
  result.step = 'kill the host\'s node';
  const hostNode = await studio.evaluate(() => window.liveroom.node);
  if ((await viewer.evaluate(() => window.liveroom.videoNode)) === hostNode) {
    await viewer.close();
    viewer = await openViewer(phone, room, hostNode);
    await record(viewer);
  }
  result.hostNode = hostNode;
  const switchesBefore = await viewer.evaluate(() => window.liveroom.switches);
  t0 = await now(viewer);
  await ask('kill', hostNode);
  await studio.waitForFunction(() => window.liveroom.republishes > 0 && document.body.dataset.state === 'live', null, { timeout: STEP });
  result.host = { studioNode: await studio.evaluate(() => window.liveroom.node) };
  await waitFrames(viewer, t0, 30, 'after the host moved');
  await viewer.waitForTimeout(1000);
  Object.assign(result.host, await gapSince(viewer, t0));
  result.host.viewerSwitches = (await viewer.evaluate(() => window.liveroom.switches)) - switchesBefore;
  result.host.timeline = await timelineSince(viewer, t0);
  await viewer.screenshot({ path: join(opt.out, 'failover-viewer.png') });

  result.step = 'done';
  result.ok = true;
}

try {
  await main();
} catch (err) {
  result.error = String((err && err.stack) || err);
} finally {
  if (browser) await browser.close().catch(() => {});
  console.log(`E2E_RESULT ${JSON.stringify(result)}`);
  stdin.close();
  process.exit(result.ok ? 0 : 1);
}
