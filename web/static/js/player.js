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

const MEDIA_STALE_MS = 4000; // no new frames for this long = host offline
const MAX_BACKOFF_MS = 15000;
// A replacement session takes over once it has decoded video, or after this
// long connected (a room whose host is offline sends no video at all).
const SWAP_AFTER_MS = 2500;
const SWAP_POLL_MS = 50;

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
    this.switches = 0; // sessions replaced without a reload (tests read it)
    setInterval(() => this.update(), 1000);
    addEventListener('online', () => { if (this.retryTimer) this.connect(); });
    addEventListener('pagehide', () => {
      if (this.session) endSession(this.session, this.token, { keepalive: true });
      if (this.next && this.next.session) endSession(this.next.session, this.token, { keepalive: true });
      this.session = '';
    });
    addEventListener('pageshow', (ev) => { if (ev.persisted) this.connect(); });
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
    this.replace(kind === 'drain' ? 'The server is moving you…' : 'The video connection was lost.');
  }

  // replace negotiates a new session while the current one stays on screen.
  replace(reason) {
    if (this.next || this.retryTimer) return; // already on it
    if (!this.pc) {
      this.connect();
      return;
    }
    if (reason) this.set('retrying', reason);
    this.open(true);
  }

  async connect() {
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
      if (!keep) {
        this.session = res.location;
        this.node = res.node;
      }
      if (res.iceServers.length) this.iceServers = res.iceServers;
      if (keep) this.swapWhenReady(slot);
    } catch (err) {
      if (!keep) {
        if (this.pc === conn) this.retry(describe(err));
      } else if (this.next === slot) {
        this.dropNext();
        if (this.pc && this.pc.connectionState === 'connected') this.retryReplace();
        else this.retry(describe(err));
      }
    }
  }

  // retryReplace tries the replacement again later while the current session
  // still plays (a draining node's video runs until it exits).
  retryReplace() {
    const delay = this.backoff();
    this.retryTimer = setTimeout(() => {
      this.retryTimer = 0;
      this.replace('');
    }, delay);
  }

  attach(media) {
    this.video.srcObject = media;
    this.video.play().catch(() => {});
  }

  // swapWhenReady puts the replacement on screen once it has decoded video
  // (or has been connected a while: an offline room has no video to wait for).
  async swapWhenReady(slot) {
    let connectedAt = 0;
    for (;;) {
      await new Promise((r) => setTimeout(r, SWAP_POLL_MS));
      if (this.next !== slot) return;
      const st = slot.conn.connectionState;
      if (st === 'failed' || st === 'closed') return; // onConnState retries
      if (st !== 'connected') continue;
      if (!connectedAt) connectedAt = Date.now();
      if ((await framesDecoded(slot.conn)) > 0 || Date.now() - connectedAt > SWAP_AFTER_MS) break;
    }
    if (this.next !== slot) return;
    const old = { conn: this.pc, session: this.session };
    this.next = null;
    this.pc = slot.conn;
    this.session = slot.session;
    this.node = slot.node;
    this.lastCount = -1;
    this.attempt = 0;
    this.switches++;
    this.attach(slot.media);
    closeSession(old.conn, old.session, this.token); // its node may be gone: errors are ignored
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

  backoff() {
    const base = Math.min(MAX_BACKOFF_MS, 1000 * 2 ** this.attempt);
    this.attempt++;
    return Math.round(base * (0.75 + Math.random() * 0.5));
  }

  retry(reason) {
    this.drop();
    const delay = this.backoff();
    this.set('retrying', `${reason} Retrying in ${Math.ceil(delay / 1000)} s.`);
    this.retryTimer = setTimeout(() => this.connect(), delay);
  }

  async update() {
    const conn = this.pc;
    if (!conn || conn.connectionState !== 'connected') return;
    const count = await framesDecoded(conn);
    if (count < 0 || conn !== this.pc) return;
    const now = Date.now();
    if (count > this.lastCount && this.lastCount >= 0) this.lastMediaAt = now;
    this.lastCount = count;
    if (now - this.lastMediaAt < MEDIA_STALE_MS) this.set('live', '');
    else if (!this.next) this.set('offline', 'Waiting for the host to go live…');
  }
}

// framesDecoded sums the video frames a connection decoded; -1 if unknown.
async function framesDecoded(conn) {
  let count = 0;
  try {
    const stats = await conn.getStats();
    stats.forEach((s) => {
      if (s.type === 'inbound-rtp' && s.kind === 'video') count += s.framesDecoded || 0;
    });
  } catch {
    return -1;
  }
  return count;
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
    case 503:
      return `The server is busy: ${msg}.`;
    default:
      return err.status >= 500 ? `The server had a problem: ${msg}.` : `${msg}.`;
  }
}
