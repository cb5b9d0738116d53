// Player plays a room over WHEP and reconnects by itself. It judges "live" by
// media actually arriving, not by signalling.
//
// A node that dies or drains is noticed early: ICE going `disconnected`, or
// the page's room WebSocket to the same node closing (nodeLost). The player
// then negotiates a new session through the same URL at once, so a load
// balancer picks a live node, and keeps the old picture on screen until the
// new session delivers video (make before break). Backoff, with jitter, only
// follows an attempt that failed, so a node's viewers do not stampede.
import { negotiate, endSession, closeSession, HTTPError } from './whip.js';
import { HLSFallback } from './hls-fallback.js';

const MEDIA_STALE_MS = 4000; // no new frames for this long = host offline
const MAX_BACKOFF_MS = 15000;
// A replacement session takes over once it has decoded video, or after this
// long connected (a room whose host is offline sends no video at all).
const SWAP_AFTER_MS = 2500;
const SWAP_POLL_MS = 50;
// The session on screen counts as stalled after this long without a new
// frame: the replacement then goes on screen as soon as it is connected.
const OLD_STALLED_MS = 300;
// WebRTC that has not connected this long after the first answer is taken
// as blocked (UDP and TCP to the media port): the player falls back to the
// room's LL-HLS (hls-fallback.js), as it does at once for codec_unsupported.
const WHEP_FALLBACK_MS = 5000;
// A connected session with no decoded video this long after the room went
// live is re-offered: a browser that cannot decode the room's codec then
// gets codec_unsupported (and falls back).
const LIVE_NO_VIDEO_MS = 5000;

export class Player {
  // onState(state, message): state is connecting, live, offline or retrying.
  constructor(video, room, token, onState) {
    this.video = video;
    this.room = room;
    this.token = token;
    this.onState = onState;
    this.pc = null; // the session on screen
    this.session = '';
    this.node = ''; // the node holding it (X-Liveroom-Node)
    this.next = null; // a replacement being set up: {conn, session, node, media}
    this.iceServers = [];
    this.attempt = 0;
    this.retryTimer = 0;
    this.lastCount = -1;
    this.lastMediaAt = 0;
    this.everConnected = false;
    this.videoPaused = false; // the server paused video (too slow; quality.js): audio plays on
    this.switches = 0; // sessions replaced without a reload (tests read it)
    this.timeline = []; // [ms since page load, what] of recovery steps, the last 50
    this.hls = null; // the HLS fallback once WebRTC gave up (hls-fallback.js)
    this.fallbackTimer = 0;
    setInterval(() => this.update(), 1000);
    addEventListener('online', () => { if (this.retryTimer) this.connect(); });
    addEventListener('pagehide', () => {
      if (this.session) endSession(this.session, this.token, { keepalive: true });
      if (this.next && this.next.session) endSession(this.next.session, this.token, { keepalive: true });
      this.session = '';
    });
    addEventListener('pageshow', (ev) => { if (ev.persisted) this.connect(); });
  }

  mark(what) {
    this.timeline.push([Math.round(performance.now()), what]);
    if (this.timeline.length > 50) this.timeline.shift();
  }

  set(state, message = '') {
    this.state = state;
    this.onState(state, message);
  }

  drop() {
    closeSession(this.pc, this.session, this.token);
    this.pc = null;
    this.session = '';
    this.node = '';
    this.lastCount = -1;
    this.dropNext();
  }

  dropNext() {
    const n = this.next;
    this.next = null;
    if (n) closeSession(n.conn, n.session, this.token);
  }

  // nodeLost is told that the node serving the page's room WebSocket went
  // away: kind 'dead' (closed without a word) or 'drain' (it asked clients to
  // move). If the video comes from the same node (or it is not known which),
  // the video moves too.
  nodeLost(node, kind) {
    if (!this.pc || !this.session) return; // not playing: the retry loop has it
    if (node && this.node && node !== this.node) return;
    this.mark(`node ${node || '?'} lost (${kind})`);
    this.replace(kind === 'drain' ? 'The server is moving you…' : 'The video connection was lost.');
  }

  // replace negotiates a new session while the current one stays on screen.
  replace(reason) {
    if (this.next || this.retryTimer || this.hls) return; // already on it
    if (!this.pc) {
      this.connect();
      return;
    }
    if (reason) this.set('retrying', reason);
    this.mark('replacing');
    this.open(true);
  }

  async connect() {
    if (this.hls) return;
    clearTimeout(this.retryTimer);
    this.retryTimer = 0;
    this.drop();
    this.set('connecting', this.attempt ? 'Reconnecting the video…' : 'Connecting…');
    await this.open(false);
  }

  // open negotiates one session. Without keep it goes on screen at once;
  // with keep it is this.next until it delivers video (swap).
  async open(keep) {
    const conn = new RTCPeerConnection({ iceServers: this.iceServers, bundlePolicy: 'max-bundle' });
    const media = new MediaStream();
    const slot = { conn, session: '', node: '', media };
    if (keep) this.next = slot;
    else this.pc = conn;
    conn.addTransceiver('video', { direction: 'recvonly' });
    conn.addTransceiver('audio', { direction: 'recvonly' });
    conn.addEventListener('track', (ev) => {
      media.addTrack(ev.track);
      if (this.pc === conn) this.attach(media);
    });
    conn.addEventListener('connectionstatechange', () => this.onConnState(conn));
    try {
      const res = await negotiate(`/whep/${encodeURIComponent(this.room)}`, conn, { token: this.token });
      const current = keep ? this.next === slot : this.pc === conn;
      if (!current) {
        closeSession(conn, res.location, this.token);
        return;
      }
      slot.session = res.location;
      slot.node = res.node;
      this.armFallback();
      this.mark(`answered by ${res.node || '?'}`);
      if (!keep) {
        this.session = res.location;
        this.node = res.node;
      }
      if (res.iceServers.length) this.iceServers = res.iceServers;
      if (keep) this.swapWhenReady(slot);
    } catch (err) {
      if (err instanceof HTTPError && err.code === 'codec_unsupported') {
        this.fallback(err.message, 'this browser cannot play the real-time video of this room');
        return;
      }
      if (!keep) {
        if (this.pc === conn) this.retry(describe(err), err);
      } else if (this.next === slot) {
        this.dropNext();
        if (this.pc && this.pc.connectionState === 'connected') this.retryReplace(err);
        else this.retry(describe(err), err);
      }
    }
  }

  // armFallback starts the WHEP_FALLBACK_MS clock at the first answer: the
  // server is there and willing (a refusal, a cap or a 404 never falls
  // back), so a session that still has not connected when it runs out has
  // its media blocked on the way.
  armFallback() {
    if (this.everConnected || this.fallbackTimer) return;
    this.fallbackTimer = setTimeout(() => {
      if (!this.everConnected) this.fallback('WebRTC could not connect within a few seconds', 'your network blocks the real-time video');
    }, WHEP_FALLBACK_MS);
  }

  // fallback leaves WebRTC for the room's LL-HLS, for good on this page.
  fallback(reason, why) {
    if (this.hls) return;
    this.mark(`hls fallback: ${reason}`);
    clearTimeout(this.retryTimer);
    this.retryTimer = 0;
    this.drop();
    this.video.srcObject = null;
    this.hls = new HLSFallback(this.video, this.room, this.token, (state, message) => this.set(state, message), why);
    this.hls.start();
  }

  // roomLive is told that the room went live: a session that is connected
  // but shows no video a while later is re-offered (see LIVE_NO_VIDEO_MS).
  roomLive() {
    setTimeout(async () => {
      const conn = this.pc;
      if (this.hls || !conn || conn.connectionState !== 'connected') return;
      if ((await videoFrames(conn)).received === 0 && conn === this.pc) this.connect();
    }, LIVE_NO_VIDEO_MS);
  }

  // retryReplace tries the replacement again later while the current session
  // still plays (a draining node's video runs until it exits).
  retryReplace(err) {
    const delay = this.backoff(err);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = 0;
      this.replace('');
    }, delay);
  }

  attach(media) {
    this.video.srcObject = media;
    this.video.play().catch(() => {});
  }

  // swapWhenReady puts the replacement on screen once it receives video, at
  // once if the session on screen has stopped delivering, or after a while
  // connected (an offline room has no video to wait for).
  async swapWhenReady(slot) {
    let connectedAt = 0;
    let old = { count: -1, at: Date.now() };
    for (;;) {
      await new Promise((r) => setTimeout(r, SWAP_POLL_MS));
      if (this.next !== slot) return;
      const st = slot.conn.connectionState;
      if (st === 'failed' || st === 'closed') return; // onConnState retries
      if (st !== 'connected') continue;
      if (!connectedAt) {
        connectedAt = Date.now();
        this.mark('replacement connected');
      }
      const fresh = await videoFrames(slot.conn);
      if (fresh.received > 0 || fresh.decoded > 0) break;
      const cur = this.pc && this.pc.connectionState === 'connected' ? (await videoFrames(this.pc)).decoded : -1;
      if (cur !== old.count) old = { count: cur, at: Date.now() };
      if (cur < 0 || Date.now() - old.at > OLD_STALLED_MS) break; // nothing to keep on screen
      if (Date.now() - connectedAt > SWAP_AFTER_MS) break;
    }
    if (this.next !== slot) return;
    const prev = { conn: this.pc, session: this.session };
    this.next = null;
    this.pc = slot.conn;
    this.session = slot.session;
    this.node = slot.node;
    this.lastCount = -1;
    this.attempt = 0;
    this.switches++;
    this.mark(`swapped to ${slot.node || 'a new session'}`);
    this.attach(slot.media);
    closeSession(prev.conn, prev.session, this.token); // its node may be gone: errors are ignored
    this.update();
  }

  onConnState(conn) {
    const onScreen = this.pc === conn;
    if (!onScreen && !(this.next && this.next.conn === conn)) return;
    switch (conn.connectionState) {
      case 'connected':
        if (!onScreen) break; // the swap takes it from here
        this.attempt = 0;
        this.everConnected = true;
        this.update();
        break;
      case 'disconnected':
        this.mark(`ice disconnected (${onScreen ? 'on screen' : 'replacement'})`);
        // Consent checks went unanswered: the node (or the path to it) is
        // gone. A new session through the balancer costs one round of
        // signalling; waiting for ICE to give up costs seconds of frozen video.
        if (onScreen) this.replace('The video connection is unstable…');
        break;
      case 'failed':
      case 'closed':
        if (onScreen) {
          if (this.next) this.pc = null; // the replacement carries on
          else this.retry('The video connection was lost.');
        } else {
          this.dropNext();
          if (!this.pc || this.pc.connectionState !== 'connected') this.retry('The video connection was lost.');
        }
        break;
    }
  }

  // backoff is the wait before the next attempt: exponential with jitter,
  // and never sooner than a 429/503's Retry-After, spread over as long
  // again so that a crowd the node turned away does not come back at once.
  backoff(err) {
    const base = Math.min(MAX_BACKOFF_MS, 1000 * 2 ** this.attempt);
    this.attempt++;
    let delay = Math.round(base * (0.75 + Math.random() * 0.5));
    if (err instanceof HTTPError && (err.status === 429 || err.status === 503) && err.retryAfter > 0) {
      delay = Math.max(delay, Math.round(err.retryAfter * 1000 * (1 + Math.random())));
    }
    return delay;
  }

  retry(reason, err) {
    this.mark(`retry: ${reason}`);
    this.drop();
    const delay = this.backoff(err);
    this.set('retrying', `${reason} Retrying in ${Math.ceil(delay / 1000)} s.`);
    this.retryTimer = setTimeout(() => this.connect(), delay);
  }

  async update() {
    const conn = this.pc;
    if (!conn || conn.connectionState !== 'connected') return;
    const count = (await videoFrames(conn)).decoded;
    if (count < 0 || conn !== this.pc) return;
    const now = Date.now();
    if (count > this.lastCount && this.lastCount >= 0) this.lastMediaAt = now;
    this.lastCount = count;
    if (now - this.lastMediaAt < MEDIA_STALE_MS || this.videoPaused) this.set('live', '');
    else if (!this.next) this.set('offline', 'Waiting for the host to go live…');
  }
}

// videoFrames sums a connection's video frames received and decoded;
// {-1, -1} if unknown.
async function videoFrames(conn) {
  const out = { received: 0, decoded: 0 };
  try {
    const stats = await conn.getStats();
    stats.forEach((s) => {
      if (s.type === 'inbound-rtp' && s.kind === 'video') {
        out.received += s.framesReceived || 0;
        out.decoded += s.framesDecoded || 0;
      }
    });
  } catch {
    return { received: -1, decoded: -1 };
  }
  return out;
}

function describe(err) {
  if (!(err instanceof HTTPError)) return (err && err.message) || String(err);
  const msg = err.message.replace(/\.$/, '');
  switch (err.status) {
    case 404:
      return `This room was not found: ${msg}.`;
    case 401:
    case 403:
      return `This room is private: ${msg}.`;
    case 429:
      return 'Many viewers are joining from your network.';
    case 503:
      return `The server is busy: ${msg}.`;
    default:
      return err.status >= 500 ? `The server had a problem: ${msg}.` : `${msg}.`;
  }
}
