// What the browser drivers share: launching Chromium, the flags and page of
// a room's viewer (viewerOptions, viewerURL, phonePage), the waiting
// helpers, and the end that prints the result (finish).
import { mkdirSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { chromium } from 'playwright-core';

// launch starts headless Chromium with a fake camera and microphone.
export function launch(executablePath) {
  return chromium.launch({
    executablePath,
    headless: true,
    args: [
      '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream',
      '--autoplay-policy=no-user-gesture-required',
    ],
  });
}

// viewerOptions parses the flags of a driver that opens a room's viewer
// page (--base, --room, --token, --out, --chromium, --timeout: each wait's
// limit in ms, timeout by default) and the driver's own (extra). Without
// --base, or without --token when needToken, it prints the usage and exits
// 2; it makes the --out folder.
export function viewerOptions(script, { timeout = '30000', needToken = false, extra = {} } = {}) {
  const { values: opt } = parseArgs({
    options: {
      base: { type: 'string', default: '' },
      room: { type: 'string', default: 'e2e' },
      token: { type: 'string', default: '' },
      out: { type: 'string', default: 'artifacts' },
      chromium: { type: 'string', default: process.env.CHROMIUM || '/usr/bin/chromium' },
      timeout: { type: 'string', default: timeout },
      ...extra,
    },
  });
  if (!opt.base || (needToken && !opt.token)) {
    const token = needToken ? '--token VIEWER' : '[--token VIEWER]';
    console.error(`usage: node ${script} --base URL --room ROOM ${token} [--out DIR]`);
    process.exit(2);
  }
  mkdirSync(opt.out, { recursive: true });
  return opt;
}

// viewerURL is the room's viewer page, with the token in the fragment.
export function viewerURL(opt) {
  return `${opt.base}/r/${encodeURIComponent(opt.room)}#token=${encodeURIComponent(opt.token)}`;
}

// collectLogs adds the page's console messages (debug ones only with
// keepDebug) and uncaught errors to logs.
export function collectLogs(page, logs, keepDebug) {
  page.on('console', (m) => { if (keepDebug || m.type() !== 'debug') logs.push(`console.${m.type()}: ${m.text()}`); });
  page.on('pageerror', (e) => logs.push(`pageerror: ${e.message}`));
}

// phonePage opens a phone-sized page in browser (Chromium, from launch)
// whose console messages, but debug ones, and errors go to logs.
export async function phonePage(browser, logs) {
  const ctx = await browser.newContext({ viewport: { width: 360, height: 740 } });
  const page = await ctx.newPage();
  collectLogs(page, logs, false);
  return page;
}

// helpers returns the waiting helpers with step as each wait's timeout (ms).
export function helpers(step) {
  const STEP = step;
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
        rtp: {}, // the inbound video's receive counters, for a failure's diagnosis
      };
      const pc = window.liveroom && window.liveroom.pc;
      if (pc) {
        out.connectionState = pc.connectionState;
        const stats = await pc.getStats();
        stats.forEach((s) => {
          if (s.kind !== 'video') return;
          if (s.type === 'inbound-rtp') {
            out.framesDecoded += s.framesDecoded || 0;
            for (const k of ['packetsReceived', 'packetsLost', 'nackCount', 'pliCount', 'firCount', 'framesReceived',
              'framesDropped', 'keyFramesDecoded', 'freezeCount', 'totalFreezesDuration']) {
              if (typeof s[k] === 'number') out.rtp[k] = (out.rtp[k] || 0) + s[k];
            }
          }
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
      rtpBefore: before.rtp,
      rtpAfter: after.rtp,
    };
  }

  return { pageState, waitState, waitPlaying, sample };
}

// finish runs a driver's main, closes the browser that browser() returns
// (if any), prints result as the one "E2E_RESULT {json}" line the Go test
// reads and exits 0 if result.ok, else 1. What main throws goes in
// result.error.
export async function finish(result, main, browser) {
  try {
    await main();
  } catch (err) {
    result.error = String((err && err.stack) || err);
  } finally {
    const b = browser();
    if (b) await b.close().catch(() => {});
    console.log(`E2E_RESULT ${JSON.stringify(result)}`);
    process.exit(result.ok ? 0 : 1);
  }
}
