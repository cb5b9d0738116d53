// Browser driver for TestBrowserFirefoxHLSFallback: Firefox ESR, driven by
// puppeteer-core over WebDriver BiDi, without the OpenH264 plugin (it offers
// only VP8/VP9/AV1 over WebRTC), opens an H264 room: WHEP answers
// codec_unsupported and the page plays the room through the HLS fallback
// (hls.js over MSE, which decodes H264 with the system's decoder).
// Prints one JSON result line prefixed "E2E_RESULT ".
import { join } from 'node:path';
import puppeteer from 'puppeteer-core';
import { collectLogs, viewerOptions, viewerURL } from './lib.mjs';
import { checkHLSPlays, runDriver, waitFallback } from './hls_common.mjs';

const opt = viewerOptions('hls_firefox.mjs', {
  timeout: '40000',
  extra: { firefox: { type: 'string', default: process.env.FIREFOX || '/usr/bin/firefox-esr' } },
});
const STEP = Number(opt.timeout);

await runDriver(async (result, held) => {
  held.browser = await puppeteer.launch({
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
  const page = await held.browser.newPage();
  await page.setViewport({ width: 360, height: 740 });
  collectLogs(page, result.logs, true);
  // puppeteer takes the options before the function's argument
  const waitFor = (fn, arg, options) => page.waitForFunction(fn, options, arg);
  result.userAgent = await held.browser.version();

  result.step = 'viewer opens the H264 room';
  const t0 = Date.now();
  await page.goto(viewerURL(opt));

  await waitFallback(waitFor, STEP, result, t0);
  result.whepOutcome = await page.evaluate(() => (window.liveroom.timeline || []).map((x) => x[1]).join(' | '));

  await checkHLSPlays(page, waitFor, STEP, result);
  await page.screenshot({ path: join(opt.out, 'hls-firefox-viewer.png') });
});
