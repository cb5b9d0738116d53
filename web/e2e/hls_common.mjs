// What the two HLS fallback drivers share: hls_fallback.mjs (Chromium over
// playwright-core) and hls_firefox.mjs (Firefox over puppeteer-core). The
// wait for the fallback and for HLS to play, what they read from the
// player, and the run that prints the one "E2E_RESULT " line (their flags
// are lib.mjs viewerOptions).
//
// The two libraries order page.waitForFunction's arguments differently
// (playwright: fn, arg, options; puppeteer: fn, options, ...args), so the
// drivers pass a waitFor(fn, arg, options) in playwright's order.
import { finish } from './lib.mjs';

// waitFallback waits for the page to switch to HLS by itself and records
// how long after t0 it did.
export async function waitFallback(waitFor, step, result, t0) {
  result.step = 'the page falls back to HLS';
  await waitFor(() => window.liveroom && window.liveroom.hls, null, { timeout: step, polling: 100 });
  result.fallbackMs = Date.now() - t0;
}

// checkHLSPlays waits for HLS to play, reads the player twice (currentTime
// must advance by a second between) and adds what it read to result.
export async function checkHLSPlays(page, waitFor, step, result) {
  result.step = 'HLS plays';
  await waitFor(() => {
    const v = document.querySelector('#video');
    return v && v.videoWidth > 0 && v.currentTime > 0.5 && document.body.dataset.state === 'live';
  }, null, { timeout: step, polling: 200 });
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
  await waitFor((t) => document.querySelector('#video').currentTime > t + 1, a.t, { timeout: step, polling: 200 }).catch(() => {});
  const b = await read();
  Object.assign(result, {
    engine: b.engine, message: b.message, pill: b.pill, seamToScreenMs: b.behindMs, videoWidth: b.w, timeBefore: a.t, timeAfter: b.t,
    latency: Number.isFinite(b.latency) ? b.latency : -1,
    audioCodec: b.audioCodec, audioDecoded: b.audioDecoded,
  });
}

// runDriver runs main(result, held), main keeping the browser it launches
// in held.browser, and finishes (lib.mjs): the browser closed, result
// printed, exit 0 if main returned, 1 if it threw.
export async function runDriver(main) {
  const result = { ok: false, step: 'launch', logs: [] };
  const held = { browser: null };
  await finish(result, async () => {
    await main(result, held);
    result.step = 'done';
    result.ok = true;
  }, () => held.browser);
}
