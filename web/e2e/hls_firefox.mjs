// Browser driver for TestBrowserFirefoxHLSFallback: Firefox ESR, driven by
// puppeteer-core over WebDriver BiDi, without the OpenH264 plugin (it offers
// only VP8/VP9/AV1 over WebRTC), opens an H264 room: WHEP answers
// codec_unsupported and the page plays the room through the HLS fallback
// (hls.js over MSE, which decodes H264 with the system's decoder).
// Prints one JSON result line prefixed "E2E_RESULT ".
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import puppeteer from 'puppeteer-core';

const { values: opt } = parseArgs({
  options: {
    base: { type: 'string', default: '' },
    room: { type: 'string', default: 'e2e' },
    token: { type: 'string', default: '' },
    out: { type: 'string', default: 'artifacts' },
    firefox: { type: 'string', default: process.env.FIREFOX || '/usr/bin/firefox-esr' },
    timeout: { type: 'string', default: '40000' },
  },
});
if (!opt.base) {
  console.error('usage: node hls_firefox.mjs --base URL --room ROOM [--token VIEWER] [--out DIR]');
  process.exit(2);
}
const STEP = Number(opt.timeout);
mkdirSync(opt.out, { recursive: true });
const result = { ok: false, step: 'launch', logs: [] };
let browser;

async function main() {
  browser = await puppeteer.launch({
    browser: 'firefox',
    protocol: 'webDriverBiDi',
    executablePath: opt.firefox,
    headless: true,
    extraPrefsFirefox: {
      'media.gmp-gmpopenh264.enabled': false, // the case under test: no H264 over WebRTC
      'media.gmp-gmpopenh264.autoupdate': false,
      'media.autoplay.default': 0,
      'media.autoplay.blocking_policy': 0,
    },
  });
  const page = await browser.newPage();
  await page.setViewport({ width: 360, height: 740 });
  page.on('console', (m) => result.logs.push(`console.${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => result.logs.push(`pageerror: ${e.message}`));
  result.userAgent = await browser.version();

  result.step = 'viewer opens the H264 room';
  const t0 = Date.now();
  await page.goto(`${opt.base}/r/${encodeURIComponent(opt.room)}#token=${encodeURIComponent(opt.token)}`);

  result.step = 'the page falls back to HLS';
  await page.waitForFunction(() => window.liveroom && window.liveroom.hls, { timeout: STEP, polling: 100 });
  result.fallbackMs = Date.now() - t0;
  result.whepOutcome = await page.evaluate(() => (window.liveroom.timeline || []).map((x) => x[1]).join(' | '));

  result.step = 'HLS plays';
  await page.waitForFunction(() => {
    const v = document.querySelector('#video');
    return v && v.videoWidth > 0 && v.currentTime > 0.5 && document.body.dataset.state === 'live';
  }, { timeout: STEP, polling: 200 });
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
  await page.waitForFunction((t) => document.querySelector('#video').currentTime > t + 1, { timeout: STEP, polling: 200 }, a.t).catch(() => {});
  const b = await read();
  Object.assign(result, {
    engine: b.engine, message: b.message, pill: b.pill, seamToScreenMs: b.behindMs, videoWidth: b.w, timeBefore: a.t, timeAfter: b.t,
    latency: Number.isFinite(b.latency) ? b.latency : -1,
    audioCodec: b.audioCodec, audioDecoded: b.audioDecoded,
  });
  await page.screenshot({ path: join(opt.out, 'hls-firefox-viewer.png') });
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
