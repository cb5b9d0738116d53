// Browser driver for hls_fallback_test.go: the viewer page, in a network
// namespace where UDP and TCP to the WebRTC port are dropped, must fall back
// to LL-HLS by itself, say "delayed stream" and play.
// Prints one JSON result line prefixed "E2E_RESULT ".
import { join } from 'node:path';
import { launch, phonePage, viewerOptions, viewerURL } from './lib.mjs';
import { checkHLSPlays, runDriver, waitFallback } from './hls_common.mjs';

const opt = viewerOptions('hls_fallback.mjs', {
  extra: { expect: { type: 'string', default: 'hls' } }, // 'webrtc': the control run, nothing blocked
});
const STEP = Number(opt.timeout);

await runDriver(async (result, held) => {
  held.browser = await launch(opt.chromium);
  const page = await phonePage(held.browser, result.logs);
  const waitFor = (fn, arg, options) => page.waitForFunction(fn, arg, options);

  result.step = 'viewer opens the room';
  const t0 = Date.now();
  await page.goto(viewerURL(opt));

  if (opt.expect === 'webrtc') {
    result.step = 'nothing blocked: the page plays over WebRTC';
    await page.waitForFunction(() => {
      const v = document.querySelector('#video');
      const pc = window.liveroom && window.liveroom.pc;
      return pc && pc.connectionState === 'connected' && v && v.videoWidth > 0;
    }, null, { timeout: STEP, polling: 100 });
    await page.waitForTimeout(6000); // past the fallback clock
    result.engine = await page.evaluate(() => (window.liveroom.hls ? 'hls' : 'webrtc'));
    return;
  }

  await waitFallback(waitFor, STEP, result, t0);
  await checkHLSPlays(page, waitFor, STEP, result);
  result.timeline = await page.evaluate(() => (window.liveroom.timeline || []));
  result.userAgent = await page.evaluate(() => navigator.userAgent);
  await page.screenshot({ path: join(opt.out, 'hls-fallback-viewer.png') });
});
