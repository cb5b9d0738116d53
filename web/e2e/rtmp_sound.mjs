// Browser driver for rtmp_sound_test.go: the viewer page plays a room fed by
// ffmpeg over RTMP (H264 + 440 Hz AAC); an AnalyserNode on the video
// element's MediaStream must hear the tone within 10 s of the picture.
// Prints one JSON result line prefixed "E2E_RESULT ".
import { join } from 'node:path';
import { launch, helpers, finish, phonePage, viewerOptions, viewerURL } from './lib.mjs';

const opt = viewerOptions('rtmp_sound.mjs', { needToken: true });
const STEP = Number(opt.timeout);
const { waitState, waitPlaying } = helpers(STEP);
const result = { ok: false, step: 'launch', logs: [] };
let browser;

async function main() {
  browser = await launch(opt.chromium);
  const page = await phonePage(browser, result.logs);

  result.step = 'viewer plays the RTMP-fed room';
  await page.goto(viewerURL(opt));
  await waitPlaying(page, 'viewer');
  await waitState(page, 'live', 'viewer');

  result.step = 'analyser hears the tone';
  const heard = await page.evaluate(async () => {
    const v = document.querySelector('#video');
    const stream = v.srcObject instanceof MediaStream ? v.srcObject : v.captureStream();
    if (stream.getAudioTracks().length === 0) return { error: 'the video element has no audio track' };
    const ac = new AudioContext();
    await ac.resume();
    const an = ac.createAnalyser();
    an.fftSize = 8192;
    an.smoothingTimeConstant = 0;
    ac.createMediaStreamSource(stream).connect(an);
    const freq = new Float32Array(an.frequencyBinCount);
    const time = new Float32Array(an.fftSize);
    const t0 = performance.now();
    let last = { rms: 0, peakHz: 0, peakDb: -Infinity };
    while (performance.now() - t0 < 10000) {
      await new Promise((r) => setTimeout(r, 250));
      an.getFloatTimeDomainData(time);
      let sum = 0;
      for (const x of time) sum += x * x;
      const rms = Math.sqrt(sum / time.length);
      an.getFloatFrequencyData(freq);
      let best = 0;
      for (let i = 1; i < freq.length; i++) if (freq[i] > freq[best]) best = i;
      last = { rms, peakHz: (best * ac.sampleRate) / an.fftSize, peakDb: freq[best], sampleRate: ac.sampleRate };
      if (rms > 0.01) {
        // The tone has started: let the analyser's window fill with it.
        await new Promise((r) => setTimeout(r, 500));
        an.getFloatFrequencyData(freq);
        best = 0;
        for (let i = 1; i < freq.length; i++) if (freq[i] > freq[best]) best = i;
        an.getFloatTimeDomainData(time);
        sum = 0;
        for (const x of time) sum += x * x;
        return { rms: Math.sqrt(sum / time.length), peakHz: (best * ac.sampleRate) / an.fftSize, peakDb: freq[best], heardMs: Math.round(performance.now() - t0) };
      }
    }
    return { ...last, error: 'no signal within 10 s' };
  });
  if (heard.error) throw new Error(`${heard.error} (${JSON.stringify(heard)})`);
  Object.assign(result, heard);
  await page.screenshot({ path: join(opt.out, 'rtmp-sound-viewer.png') });
  result.step = 'done';
  result.ok = true;
}

await finish(result, main, () => browser);
