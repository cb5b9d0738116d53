// Browser driver for hls_fallback_test.go: the viewer page, in a network
// namespace where UDP and TCP to the WebRTC port are dropped, must fall back
// to LL-HLS by itself, say "delayed stream" and play.
// Prints one JSON result line prefixed "E2E_RESULT ".
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { launch } from './lib.mjs';

const { values: opt } = parseArgs({
  options: {
    base: { type: 'string', default: '' },
    room: { type: 'string', default: 'e2e' },
    token: { type: 'string', default: '' },
    out: { type: 'string', default: 'artifacts' },
    chromium: { type: 'string', default: process.env.CHROMIUM || '/usr/bin/chromium' },
    timeout: { type: 'string', default: '30000' },
    expect: { type: 'string', default: 'hls' }, // 'webrtc': the control run, nothing blocked
  },
});
if (!opt.base) {
  console.error('usage: node hls_fallback.mjs --base URL --room ROOM [--token VIEWER] [--out DIR]');
  process.exit(2);
}
const STEP = Number(opt.timeout);
mkdirSync(opt.out, { recursive: true });
const result = { ok: false, step: 'launch', logs: [] };
let browser;

async function main() {
  browser = await launch(opt.chromium);
  const ctx = await browser.newContext({ viewport: { width: 360, height: 740 } });
  const page = await ctx.newPage();
  page.on('console', (m) => { if (m.type() !== 'debug') result.logs.push(`console.${m.type()}: ${m.text()}`); });
  page.on('pageerror', (e) => result.logs.push(`pageerror: ${e.message}`));

  result.step = 'viewer opens the room';
  const t0 = Date.now();
  await page.goto(`${opt.base}/r/${encodeURIComponent(opt.room)}#token=${encodeURIComponent(opt.token)}`);

  if (opt.expect === 'webrtc') {
    result.step = 'nothing blocked: the page plays over WebRTC';
    await page.waitForFunction(() => {
      const v = document.querySelector('#video');
      const pc = window.liveroom && window.liveroom.pc;
      return pc && pc.connectionState === 'connected' && v && v.videoWidth > 0;
    }, null, { timeout: STEP, polling: 100 });
    await page.waitForTimeout(6000); // past the fallback clock
    result.engine = await page.evaluate(() => (window.liveroom.hls ? 'hls' : 'webrtc'));
    result.step = 'done';
    result.ok = true;
    return;
  }

  result.step = 'the page falls back to HLS';
  await page.waitForFunction(() => window.liveroom && window.liveroom.hls, null, { timeout: STEP, polling: 100 });
  result.fallbackMs = Date.now() - t0;

  result.step = 'HLS plays';
  await page.waitForFunction(() => {
    const v = document.querySelector('#video');
    return v && v.videoWidth > 0 && v.currentTime > 0.5 && document.body.dataset.state === 'live';
  }, null, { timeout: STEP, polling: 200 });
  const read = () => page.evaluate(() => {
    const v = document.querySelector('#video');
    const h = window.liveroom.hls;
    return {
      t: v.currentTime, w: v.videoWidth, engine: h.engine, latency: h.latency,
      message: document.getElementById('message').textContent,
      pill: document.getElementById('status').textContent,
      // the playhead's EXT-X-PROGRAM-DATE-TIME is the room clock (an access
      // unit's arrival at the seam, for a WHIP source): now minus it is
      // seam-to-screen, on this host's one clock.
      behindMs: h.hls && h.hls.playingDate ? Date.now() - h.hls.playingDate.getTime() : -1,
      // the audio the playlist names (mp4a.* when the server transcodes
      // Opus to AAC) and whether the element decoded any (Chromium counts
      // bytes, Firefox says whether it has audio)
      audioCodec: h.hls && h.hls.levels && h.hls.levels.length ? (h.hls.levels[0].audioCodec || '') : '',
      audioDecoded: typeof v.webkitAudioDecodedByteCount === 'number' ? v.webkitAudioDecodedByteCount > 0
        : (typeof v.mozHasAudio === 'boolean' ? v.mozHasAudio : null),
    };
  });
  const a = await read();
  // currentTime must advance by a second (a stall on the loaded VM may
  // hold it for a moment: wait up to a step for it).
  await page.waitForFunction((t) => document.querySelector('#video').currentTime > t + 1, a.t, { timeout: STEP, polling: 200 }).catch(() => {});
  const b = await read();
  Object.assign(result, {
    engine: b.engine, message: b.message, pill: b.pill, seamToScreenMs: b.behindMs, videoWidth: b.w, timeBefore: a.t, timeAfter: b.t,
    latency: Number.isFinite(b.latency) ? b.latency : -1,
    audioCodec: b.audioCodec, audioDecoded: b.audioDecoded,
    timeline: await page.evaluate(() => (window.liveroom.timeline || [])),
    userAgent: await page.evaluate(() => navigator.userAgent),
  });
  await page.screenshot({ path: join(opt.out, 'hls-fallback-viewer.png') });
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
  process.exit(result.ok ? 0 : 1);
}
