// HLS fallback: the room's LL-HLS output (/hls/{room}/index.m3u8) for
// viewers whose browser cannot use WebRTC here (UDP and TCP to the media
// port blocked) or cannot decode the room's codec over WebRTC (Firefox
// without OpenH264 and an H264 room: WHEP answers codec_unsupported). It is
// a few seconds behind the WebRTC picture; the page says so.
//
// Native HLS where the browser has it (Safari), else hls.js (vendored,
// loaded only when needed). A private room's URL carries a short-lived
// signed token (GET /api/v1/rooms/{room}/hls) because a native player cannot
// send an Authorization header; hls.js sends it as a header too.
import { errorFromResponse } from './whip.js';

const HLS_JS = '/static/vendor/hls.js/hls.min.js';
const STALL_MS = 6000; // no progress for this long = not playing
const RETRY_MS = 3000;

let hlsLib = null;
function loadHlsJs() {
  if (!hlsLib) {
    hlsLib = new Promise((resolve, reject) => {
      const s = document.createElement('script');
      s.src = HLS_JS;
      s.onload = () => (window.Hls ? resolve(window.Hls) : reject(new Error('hls.js did not load')));
      s.onerror = () => reject(new Error('hls.js did not load'));
      document.head.append(s);
    });
  }
  return hlsLib;
}

export function nativeHLS(video) {
  return video.canPlayType('application/vnd.apple.mpegurl') !== '';
}

export class HLSFallback {
  // onState(state, message): live, connecting or retrying, as the Player's.
  // why completes "Delayed stream: …" (why the real-time video is not used).
  constructor(video, room, token, onState, why) {
    this.why = why;
    this.video = video;
    this.room = room;
    this.token = token;
    this.onState = onState;
    this.hls = null;
    this.stopped = false;
    this.engine = ''; // 'native' or 'hls.js' (tests read it)
    this.lastTime = -1;
    this.lastProgress = 0;
    this.retryTimer = 0;
    this.tick = setInterval(() => this.check(), 1000);
  }

  // latency is how far behind the live edge the picture is, in seconds
  // (hls.js's estimate; native players do not say).
  get latency() {
    return this.hls ? this.hls.latency : NaN;
  }

  async start() {
    clearTimeout(this.retryTimer);
    this.teardown();
    this.onState('connecting', 'Switching to the delayed stream…');
    try {
      const url = await this.playlistURL();
      if (this.stopped) return;
      if (nativeHLS(this.video) && !window.MediaSource) {
        this.engine = 'native';
        this.video.src = url;
      } else {
        const Hls = await loadHlsJs();
        if (this.stopped) return;
        if (!Hls.isSupported()) {
          if (!nativeHLS(this.video)) throw new Error('this browser plays neither WebRTC nor HLS');
          this.engine = 'native';
          this.video.src = url;
        } else {
          this.engine = 'hls.js';
          const token = this.token;
          this.hls = new Hls({
            lowLatencyMode: true,
            enableWorker: false, // the page's CSP allows no blob: workers
            backBufferLength: 10,
            xhrSetup: token ? (xhr) => xhr.setRequestHeader('Authorization', `Bearer ${token}`) : undefined,
          });
          this.hls.on(Hls.Events.ERROR, (_, data) => {
            if (data.fatal) this.fail(`The delayed stream stopped (${data.details}).`);
          });
          this.hls.loadSource(url);
          this.hls.attachMedia(this.video);
        }
      }
      this.video.play().catch(() => {});
      this.lastProgress = Date.now();
    } catch (err) {
      this.fail(err && err.message ? err.message : String(err));
    }
  }

  // playlistURL asks the server for the room's playlist URL (signed for a
  // private room).
  async playlistURL() {
    const headers = this.token ? { Authorization: `Bearer ${this.token}` } : {};
    const res = await fetch(`/api/v1/rooms/${encodeURIComponent(this.room)}/hls`, { headers });
    if (!res.ok) throw await errorFromResponse(res);
    const body = await res.json();
    return body.url;
  }

  check() {
    if (this.stopped || this.retryTimer) return;
    const t = this.video.currentTime;
    const now = Date.now();
    if (t > this.lastTime && !this.video.paused) {
      this.lastTime = t;
      this.lastProgress = now;
      const lat = this.latency;
      const behind = Number.isFinite(lat) && lat > 0 ? ` (about ${lat.toFixed(1)} s behind)` : '';
      this.onState('live', `Delayed stream${behind}: ${this.why}.`);
    } else if (now - this.lastProgress > STALL_MS) {
      this.fail('The delayed stream is not playing.');
    }
  }

  fail(reason) {
    if (this.stopped) return;
    this.teardown();
    this.onState('retrying', `${reason} Retrying…`);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = 0;
      this.start();
    }, RETRY_MS * (0.75 + Math.random() * 0.5));
  }

  teardown() {
    if (this.hls) {
      this.hls.destroy();
      this.hls = null;
    }
    if (this.engine === 'native') this.video.removeAttribute('src');
    this.lastTime = -1;
  }

  stop() {
    this.stopped = true;
    clearInterval(this.tick);
    clearTimeout(this.retryTimer);
    this.teardown();
  }
}
