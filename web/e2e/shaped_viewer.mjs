// A WHEP viewer in headless Chromium for the constrained-link tests
// (shaped_test.go, issue 16). The test runs it inside a network namespace
// (ip netns exec) and does the WHEP POST itself from the root namespace:
//
//   stdout  E2E_OFFER "<sdp>"            the offer (ICE gathered), JSON string
//   stdin   "<sdp>"                      the answer, one JSON string line
//   stdout  E2E_STATS {...}              every --every ms, for --seconds
//                                        (or until stdin is closed)
//   stdout  E2E_RESULT {...}             at the end
//
// Stats are the inbound video/audio getStats figures (freezeCount,
// totalFreezesDuration, framesDecoded, frameWidth, ...) plus when the first
// frame was presented (requestVideoFrameCallback, epoch ms).
import readline from 'node:readline';
import { launch } from './lib.mjs';

const args = Object.fromEntries(
  process.argv.slice(2).reduce((acc, a, i, all) => (a.startsWith('--') ? [...acc, [a.slice(2), all[i + 1]]] : acc), []),
);
const seconds = Number(args.seconds || 20);
const every = Number(args.every || 1000);

const lines = readline.createInterface({ input: process.stdin });
const nextLine = () => new Promise((resolve, reject) => {
  lines.once('line', resolve);
  lines.once('close', () => reject(new Error('stdin closed before the answer')));
});

const browser = await launch(process.env.CHROMIUM);
let ok = false;
let error = '';
const samples = [];
try {
  const page = await browser.newPage();
  await page.setContent('<video id="video" autoplay muted playsinline style="width:640px;height:360px"></video>');
  const offer = await page.evaluate(async () => {
    const pc = new RTCPeerConnection();
    window.pc = pc;
    window.firstFrameAt = 0;
    const ms = new MediaStream();
    const v = document.getElementById('video');
    pc.addTransceiver('video', { direction: 'recvonly' });
    pc.addTransceiver('audio', { direction: 'recvonly' });
    pc.ontrack = (e) => {
      ms.addTrack(e.track);
      v.srcObject = ms;
      v.play().catch(() => {});
    };
    const onFrame = (now, meta) => {
      if (!window.firstFrameAt) window.firstFrameAt = performance.timeOrigin + meta.presentationTime;
      v.requestVideoFrameCallback(onFrame);
    };
    v.requestVideoFrameCallback(onFrame);
    await pc.setLocalDescription(await pc.createOffer());
    await new Promise((resolve) => {
      if (pc.iceGatheringState === 'complete') return resolve();
      pc.onicegatheringstatechange = () => pc.iceGatheringState === 'complete' && resolve();
      setTimeout(resolve, 3000);
    });
    return pc.localDescription.sdp;
  });
  console.log('E2E_OFFER ' + JSON.stringify(offer));
  const answer = JSON.parse(await nextLine());
  await page.evaluate((sdp) => window.pc.setRemoteDescription({ type: 'answer', sdp }), answer);

  // stdin closed after the answer: the test is done early; close Chromium
  // (and its connections) normally rather than be killed.
  let stop = false;
  lines.once('close', () => { stop = true; });
  const start = Date.now();
  while (!stop && Date.now() - start < seconds * 1000) {
    await page.waitForTimeout(every);
    const s = await page.evaluate(async () => {
      const out = { t: Date.now(), state: window.pc.connectionState, firstFrameAt: window.firstFrameAt, video: {}, audio: {}, remote: '' };
      const stats = await window.pc.getStats();
      let pairId = '';
      stats.forEach((r) => {
        if (r.type === 'transport' && r.selectedCandidatePairId) pairId = r.selectedCandidatePairId;
      });
      stats.forEach((r) => {
        if (r.type === 'inbound-rtp' && r.kind === 'video') {
          out.video = {
            framesDecoded: r.framesDecoded || 0, framesDropped: r.framesDropped || 0,
            frameWidth: r.frameWidth || 0, frameHeight: r.frameHeight || 0,
            freezeCount: r.freezeCount || 0, totalFreezesDuration: r.totalFreezesDuration || 0,
            pauseCount: r.pauseCount || 0, totalPausesDuration: r.totalPausesDuration || 0,
            bytesReceived: r.bytesReceived || 0, packetsLost: r.packetsLost || 0,
            keyFramesDecoded: r.keyFramesDecoded || 0, pliCount: r.pliCount || 0,
            jitterBufferDelay: r.jitterBufferDelay || 0, jitterBufferEmittedCount: r.jitterBufferEmittedCount || 0,
          };
        }
        if (r.type === 'inbound-rtp' && r.kind === 'audio') {
          out.audio = { packetsReceived: r.packetsReceived || 0, bytesReceived: r.bytesReceived || 0, concealedSamples: r.concealedSamples || 0, totalSamplesReceived: r.totalSamplesReceived || 0 };
        }
        if (r.id === pairId && r.remoteCandidateId) {
          const c = stats.get(r.remoteCandidateId);
          if (c) out.remote = (c.address || c.ip || '') + (c.protocol ? ' ' + c.protocol : '');
        }
      });
      return out;
    });
    samples.push(s);
    console.log('E2E_STATS ' + JSON.stringify(s));
  }
  ok = true;
} catch (err) {
  error = String(err && err.stack || err);
} finally {
  await browser.close().catch(() => {});
  lines.close();
}
console.log('E2E_RESULT ' + JSON.stringify({ ok, error, samples: samples.length }));
process.exit(ok ? 0 : 1);
