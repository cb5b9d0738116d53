// Browser driver for e2e_test.go: publishes from the studio page over WHIP,
// plays the room on viewer pages over WHEP, samples decoded frames, saves
// screenshots, and prints one JSON result line prefixed with "E2E_RESULT ".
//
//   node run.mjs --base http://127.0.0.1:8080 --room e2e --token T --out DIR
//
// Env fallbacks: LIVEROOM_BASE, LIVEROOM_ROOM, LIVEROOM_TOKEN,
// LIVEROOM_ARTIFACTS, CHROMIUM (browser executable).
import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const { values: opt } = parseArgs({
  options: {
    base: { type: 'string', default: process.env.LIVEROOM_BASE || '' },
    room: { type: 'string', default: process.env.LIVEROOM_ROOM || 'e2e' },
    token: { type: 'string', default: process.env.LIVEROOM_TOKEN || '' },
    out: { type: 'string', default: process.env.LIVEROOM_ARTIFACTS || 'artifacts' },
    chromium: { type: 'string', default: process.env.CHROMIUM || '/usr/bin/chromium' },
    timeout: { type: 'string', default: '20000' }, // per step, ms
  },
});
if (!opt.base || !opt.token) {
  console.error('usage: node run.mjs --base URL --room ROOM --token TOKEN [--out DIR]');
  process.exit(2);
}
const STEP = Number(opt.timeout);
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

// pageState reads what the page shows: state, message, and the peer's stats.
async function pageState(page, videoSel) {
  return page.evaluate(async (sel) => {
    const v = document.querySelector(sel);
    const out = {
      state: document.body.dataset.state || '',
      message: document.getElementById('message')?.textContent || '',
      videoWidth: v ? v.videoWidth : 0,
      videoHeight: v ? v.videoHeight : 0,
      totalVideoFrames: v && v.getVideoPlaybackQuality ? v.getVideoPlaybackQuality().totalVideoFrames : 0,
      framesDecoded: 0,
      framesSent: 0,
      codec: '',
      connectionState: '',
    };
    const pc = window.liveroom && window.liveroom.pc;
    if (pc) {
      out.connectionState = pc.connectionState;
      const stats = await pc.getStats();
      stats.forEach((s) => {
        if (s.kind !== 'video') return;
        if (s.type === 'inbound-rtp') out.framesDecoded += s.framesDecoded || 0;
        if (s.type === 'outbound-rtp') out.framesSent += s.framesSent || 0;
        if ((s.type === 'inbound-rtp' || s.type === 'outbound-rtp') && s.codecId) {
          const c = stats.get(s.codecId);
          if (c) out.codec = c.mimeType;
        }
      });
    }
    return out;
  }, videoSel);
}

async function waitState(page, want, what) {
  try {
    await page.waitForFunction((w) => document.body.dataset.state === w, want, { timeout: STEP, polling: 200 });
  } catch (err) {
    const msg = await page.locator('#message').textContent().catch(() => '');
    throw new Error(`${what}: state never became "${want}" (shows "${msg}")`);
  }
}

async function waitPlaying(page, what) {
  try {
    await page.waitForFunction(() => {
      const v = document.querySelector('#video');
      return v && v.videoWidth > 0;
    }, null, { timeout: STEP, polling: 200 });
  } catch {
    const s = await pageState(page, '#video');
    throw new Error(`${what}: no video (state "${s.state}", "${s.message}", pc ${s.connectionState}, framesDecoded ${s.framesDecoded})`);
  }
}

// sample reads frame counters twice, two seconds apart.
async function sample(page) {
  const before = await pageState(page, '#video');
  await page.waitForTimeout(2000);
  const after = await pageState(page, '#video');
  return {
    videoWidth: after.videoWidth,
    videoHeight: after.videoHeight,
    framesBefore: before.framesDecoded,
    framesAfter: after.framesDecoded,
    totalVideoFramesBefore: before.totalVideoFrames,
    totalVideoFramesAfter: after.totalVideoFrames,
    codec: after.codec,
    state: after.state,
  };
}

async function main() {
  const base = opt.base.replace(/\/$/, '');
  const room = encodeURIComponent(opt.room);
  browser = await chromium.launch({
    executablePath: opt.chromium,
    headless: true,
    args: [
      '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream',
      '--autoplay-policy=no-user-gesture-required',
    ],
  });
  // A phone-sized viewport: the pages must read at 360 px.
  const context = await browser.newContext({ viewport: { width: 360, height: 740 } });
  await context.grantPermissions(['camera', 'microphone'], { origin: base });

  // A viewer that arrives before the host is live must start playing
  // when the host goes live, without a reload.
  result.step = 'early viewer';
  const early = await context.newPage();
  watch(early, 'early');
  await early.goto(`${base}/r/${room}`);
  await early.waitForFunction(() => ['offline', 'connecting'].includes(document.body.dataset.state), null, { timeout: STEP });

  result.step = 'studio';
  const studio = await context.newPage();
  watch(studio, 'studio');
  await studio.goto(`${base}/studio/${room}#token=${encodeURIComponent(opt.token)}`);
  await studio.waitForFunction(() => document.getElementById('preview').videoWidth > 0, null, { timeout: STEP });
  result.tokenStrippedFromURL = !studio.url().includes('token=');
  await studio.getByRole('button', { name: 'Go live' }).click();
  await waitState(studio, 'live', 'studio');
  const sent = await pageState(studio, '#preview');
  result.studio = { state: sent.state, codec: sent.codec, framesSent: sent.framesSent };

  result.step = 'viewer';
  const viewer = await context.newPage();
  watch(viewer, 'viewer');
  await viewer.goto(`${base}/r/${room}`);
  await waitPlaying(viewer, 'viewer');
  result.viewer = await sample(viewer);
  await waitState(viewer, 'live', 'viewer');
  result.viewer.state = 'live';

  result.step = 'early viewer playing';
  await waitPlaying(early, 'early viewer');
  result.early = await sample(early);

  result.step = 'screenshots';
  await viewer.bringToFront();
  await viewer.screenshot({ path: join(opt.out, 'viewer.png') });
  await studio.bringToFront();
  await studio.screenshot({ path: join(opt.out, 'studio.png') });

  result.step = 'end';
  await studio.getByRole('button', { name: 'End' }).click();
  await waitState(studio, 'idle', 'studio after End');
  // Give the DELETE a moment to be recorded.
  await studio.waitForTimeout(500);
  result.ok = true;
  result.step = 'done';
}

const guard = setTimeout(() => {
  result.error = `driver timed out in step "${result.step}"`;
  finish(1);
}, 8 * STEP);

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
