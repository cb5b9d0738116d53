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
import { join } from 'node:path';
import { launch, helpers, phonePage, viewerOptions, viewerURL } from './lib.mjs';

const opt = viewerOptions('drain_event.mjs', { needToken: true });
const STEP = Number(opt.timeout);
const { waitState, waitPlaying } = helpers(STEP);
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
  const page = await phonePage(browser, result.logs);

  result.step = 'viewer plays: WebSocket on a, video on b';
  await page.goto(viewerURL(opt));
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
