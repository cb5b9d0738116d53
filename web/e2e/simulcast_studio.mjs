// Browser driver for simulcast_test.go: the studio page goes live from
// headless Chromium's fake camera (asked for 1280x720) with three simulcast
// layers over WHIP; a viewer page plays, chooses "Low" and is served the
// lowest layer that arrives, and the studio shows viewers per layer.
// Chrome drops layers at small sizes and under CPU load, so the driver only
// reports how many arrive. Prints one JSON line prefixed "E2E_RESULT ".
import { parseArgs } from 'node:util';
import { launch, helpers } from './lib.mjs';

const { values: opt } = parseArgs({
  options: {
    base: { type: 'string', default: '' },
    room: { type: 'string', default: 'e2e' },
    token: { type: 'string', default: '' },
    chromium: { type: 'string', default: process.env.CHROMIUM || '/usr/bin/chromium' },
    timeout: { type: 'string', default: '30000' },
  },
});
const STEP = Number(opt.timeout);
const { waitState, waitPlaying, pageState } = helpers(STEP);
const result = { ok: false, step: 'launch', logs: [] };
let browser;

async function main() {
  const base = opt.base.replace(/\/$/, '');
  browser = await launch(opt.chromium);
  const ctx = await browser.newContext();
  const watch = (p, name) => {
    p.on('console', (m) => { if (m.type() !== 'debug') result.logs.push(`${name} console.${m.type()}: ${m.text()}`); });
    p.on('pageerror', (e) => result.logs.push(`${name} pageerror: ${e.message}`));
  };
  result.step = 'studio goes live';
  const studio = await ctx.newPage();
  watch(studio, 'studio');
  await studio.goto(`${base}/studio/${opt.room}#token=${encodeURIComponent(opt.token)}`);
  await studio.waitForFunction(() => document.getElementById('preview').videoWidth > 0, null, { timeout: STEP });
  result.camera = await studio.evaluate(() => {
    const v = document.getElementById('preview');
    return `${v.videoWidth}x${v.videoHeight}`;
  });
  await studio.getByRole('button', { name: 'Go live' }).click();
  await waitState(studio, 'live', 'studio');
  result.offeredRids = await studio.evaluate(() => {
    const sdp = window.liveroom.pc.localDescription.sdp;
    return [...sdp.matchAll(/^a=rid:(\S+) send/gm)].map((m) => m[1]);
  });

  result.step = 'viewer plays';
  const viewer = await ctx.newPage();
  watch(viewer, 'viewer');
  await viewer.goto(`${base}/r/${opt.room}`);
  await waitPlaying(viewer, 'viewer');
  await viewer.waitForFunction(() => window.liveroom.quality && window.liveroom.quality.layer !== undefined,
    null, { timeout: STEP, polling: 200 });
  // Let the browser's encoder bring up what layers it can.
  await viewer.waitForTimeout(3000);
  await viewer.waitForFunction(() => window.liveroom.quality, null, { timeout: STEP });
  result.before = await viewer.evaluate(() => window.liveroom.quality);

  result.step = 'viewer chooses Low';
  if ((result.before.layers || []).length >= 2) {
    await viewer.selectOption('#quality-select', 'low');
    await viewer.waitForFunction(() => {
      const q = window.liveroom.quality;
      return q && q.quality === 'low' && q.layer === q.layers[q.layers.length - 1];
    }, null, { timeout: STEP, polling: 200 });
    await viewer.waitForTimeout(1500);
    result.lowFrames = await viewer.evaluate(() => document.querySelector('#video').getVideoPlaybackQuality().totalVideoFrames);
    await viewer.waitForTimeout(1500);
    result.lowFramesAfter = await viewer.evaluate(() => document.querySelector('#video').getVideoPlaybackQuality().totalVideoFrames);
  }
  result.after = await viewer.evaluate(() => window.liveroom.quality);
  result.codec = (await pageState(viewer, '#video')).codec;

  result.step = 'studio shows viewers per layer';
  await studio.waitForFunction(() => {
    const el = document.getElementById('layers');
    return el && !el.hidden && el.dataset.layers && JSON.parse(el.dataset.layers).layers.some((l) => l.viewers > 0);
  }, null, { timeout: STEP, polling: 250 });
  result.studioLayers = await studio.evaluate(() => document.getElementById('layers').textContent);
  result.ok = true;
}

try {
  await main();
} catch (err) {
  result.error = String(err && err.stack ? err.stack : err);
} finally {
  if (browser) await browser.close().catch(() => {});
  console.log('E2E_RESULT ' + JSON.stringify(result));
  process.exit(result.ok ? 0 : 1);
}
