// Page helpers shared by the browser drivers (run.mjs, cluster.mjs).
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

  return { pageState, waitState, waitPlaying, sample };
}
