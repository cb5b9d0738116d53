// Browser driver for drain_event_test.go: a viewer page whose room WebSocket
// is on node a and whose video is on node b (the test's proxy routes WHEP
// offers to b while b is ready). b is drained (SIGTERM): the WebSocket on a
// stays open, so the room event node.draining is all the page hears, and it
// must move its video to a before b stops serving it. The longest gap
// between presented frames (requestVideoFrameCallback) is measured.
// The Go test sends the signal: this script asks with a line
// "E2E_ASK {json}" on stdout and reads one JSON line back on stdin.
// Prints one JSON result line prefixed "E2E_RESULT ".
import { createInterface } from 'node:readline';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { launch, helpers } from './lib.mjs';

const { values: opt } = parseArgs({
  options: {
    base: { type: 'string', default: '' },
    room: { type: 'string', default: 'e2e' },
    token: { type: 'string', default: '' },
    out: { type: 'string', default: 'artifacts' },
    chromium: { type: 'string', default: process.env.CHROMIUM || '/usr/bin/chromium' },
    timeout: { type: 'string', default: '30000' },
  },
});
if (!opt.base || !opt.token) {
  console.error('usage: node drain_event.mjs --base URL --room ROOM --token VIEWER [--out DIR]');
  process.exit(2);
}
const STEP = Number(opt.timeout);
const { waitState, waitPlaying } = helpers(STEP);
mkdirSync(opt.out, { recursive: true });
const result = { ok: false, step: 'launch', logs: [] };
let browser;

const stdin = createInterface({ input: process.stdin });
const replies = stdin[Symbol.asyncIterator]();
async function ask(op, node) {
  console.log(`E2E_ASK ${JSON.stringify({ op, node })}`);
  const { value, done } = await replies.next();
  if (done) throw new Error(`no answer to ${op} ${node}`);
  const r = JSON.parse(value);
  if (!r.ok) throw new Error(`${op} ${node}: ${r.error}`);
  return r;
}

async function main() {
  browser = await launch(opt.chromium);
  const ctx = await browser.newContext({ viewport: { width: 360, height: 740 } });
  const page = await ctx.newPage();
  page.on('console', (m) => { if (m.type() !== 'debug') result.logs.push(`console.${m.type()}: ${m.text()}`); });
  page.on('pageerror', (e) => result.logs.push(`pageerror: ${e.message}`));

  result.step = 'viewer plays: WebSocket on a, video on b';
  await page.goto(`${opt.base}/r/${encodeURIComponent(opt.room)}#token=${encodeURIComponent(opt.token)}`);
  await waitPlaying(page, 'viewer');
  await waitState(page, 'live', 'viewer');
  await page.waitForFunction(() => window.liveroom.ws && window.liveroom.ws.state === 'open', null, { timeout: STEP });
  result.before = await page.evaluate(() => ({ video: window.liveroom.videoNode, ws: window.liveroom.ws.node }));
  if (result.before.video !== 'b' || result.before.ws !== 'a') {
    throw new Error(`want video on b and the WebSocket on a, got ${JSON.stringify(result.before)}`);
  }
  await page.evaluate(() => {
    const v = document.querySelector('#video');
    window.__frames = [];
    const cb = (now) => { window.__frames.push(now); v.requestVideoFrameCallback(cb); };
    v.requestVideoFrameCallback(cb);
    window.__events = [];
    window.__welcomes = 0;
    window.liveroom.ws.on('node.draining', (ev) => window.__events.push({ at: performance.now(), node: ev.node }));
    window.liveroom.ws.on('welcome', () => { window.__welcomes++; });
  });
  await page.waitForTimeout(1000);

  result.step = 'drain b';
  const t0 = await page.evaluate(() => performance.now());
  await ask('term', 'b');
  await page.waitForFunction(() => window.liveroom.videoNode === 'a', null, { timeout: STEP });
  await page.waitForFunction((t0) => window.__frames.filter((x) => x > t0).length >= 30 && performance.now() - t0 > 1000, t0, { timeout: STEP });
  await ask('wait-exit', 'b');
  await page.waitForTimeout(1000);

  result.step = 'figures';
  Object.assign(result, await page.evaluate((t0) => {
    let prev = t0;
    let max = 0;
    for (const x of window.__frames) {
      if (x < t0) { prev = x; continue; }
      max = Math.max(max, x - prev);
      prev = x;
    }
    return {
      maxGapMs: Math.round(max),
      events: window.__events.map((e) => ({ afterMs: Math.round(e.at - t0), node: e.node })),
      wsReconnects: window.__welcomes,
      after: { video: window.liveroom.videoNode, ws: window.liveroom.ws.node },
      switches: window.liveroom.switches,
      timeline: window.liveroom.timeline.filter(([t]) => t >= t0).map(([t, w]) => `+${Math.round(t - t0)} ms ${w}`),
    };
  }, t0));
  await page.screenshot({ path: join(opt.out, 'drain-event-viewer.png') });
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
