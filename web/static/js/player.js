// Player plays a room over WHEP and reconnects by itself with backoff. It
// judges "live" by media actually arriving, not by signalling.
import { negotiate, endSession, closeSession, HTTPError } from './whip.js';

const MEDIA_STALE_MS = 4000; // no new frames for this long = host offline
const DISCONNECT_GRACE_MS = 5000;
const MAX_BACKOFF_MS = 15000;

export class Player {
  // onState(state, message): state is connecting, live, offline or retrying.
  constructor(video, room, token, onState) {
    this.video = video;
    this.room = room;
    this.token = token;
    this.onState = onState;
    this.pc = null;
    this.session = '';
    this.iceServers = [];
    this.attempt = 0;
    this.retryTimer = 0;
    this.graceTimer = 0;
    this.lastCount = -1;
    this.lastMediaAt = 0;
    this.everConnected = false;
    setInterval(() => this.update(), 1000);
    addEventListener('online', () => { if (this.retryTimer) this.connect(); });
    addEventListener('pagehide', () => {
      if (this.session) endSession(this.session, this.token, { keepalive: true });
      this.session = '';
    });
    addEventListener('pageshow', (ev) => { if (ev.persisted) this.connect(); });
  }

  set(state, message = '') {
    this.state = state;
    this.onState(state, message);
  }

  drop() {
    clearTimeout(this.graceTimer);
    closeSession(this.pc, this.session, this.token);
    this.pc = null;
    this.session = '';
    this.lastCount = -1;
  }

  async connect() {
    clearTimeout(this.retryTimer);
    this.retryTimer = 0;
    this.drop();
    this.set('connecting', this.attempt ? 'Reconnecting the video…' : 'Connecting…');
    const conn = new RTCPeerConnection({ iceServers: this.iceServers, bundlePolicy: 'max-bundle' });
    this.pc = conn;
    conn.addTransceiver('video', { direction: 'recvonly' });
    conn.addTransceiver('audio', { direction: 'recvonly' });
    const media = new MediaStream();
    conn.addEventListener('track', (ev) => {
      media.addTrack(ev.track);
      this.video.srcObject = media;
      this.video.play().catch(() => {});
    });
    conn.addEventListener('connectionstatechange', () => this.onConnState(conn));
    try {
      const res = await negotiate(`/whep/${encodeURIComponent(this.room)}`, conn, { token: this.token });
      if (this.pc !== conn) {
        closeSession(conn, res.location, this.token);
        return;
      }
      this.session = res.location;
      if (res.iceServers.length) this.iceServers = res.iceServers;
    } catch (err) {
      if (this.pc === conn) this.retry(describe(err));
    }
  }

  onConnState(conn) {
    if (this.pc !== conn) return;
    clearTimeout(this.graceTimer);
    switch (conn.connectionState) {
      case 'connected':
        this.attempt = 0;
        this.everConnected = true;
        this.update();
        break;
      case 'disconnected':
        this.set('retrying', 'The video connection is unstable…');
        this.graceTimer = setTimeout(() => {
          if (this.pc === conn && conn.connectionState !== 'connected') this.retry('The video connection was lost.');
        }, DISCONNECT_GRACE_MS);
        break;
      case 'failed':
      case 'closed':
        this.retry('The video connection was lost.');
        break;
    }
  }

  retry(reason) {
    this.drop();
    const base = Math.min(MAX_BACKOFF_MS, 1000 * 2 ** this.attempt);
    const delay = Math.round(base * (0.75 + Math.random() * 0.5));
    this.attempt++;
    this.set('retrying', `${reason} Retrying in ${Math.ceil(delay / 1000)} s.`);
    this.retryTimer = setTimeout(() => this.connect(), delay);
  }

  async update() {
    const conn = this.pc;
    if (!conn || conn.connectionState !== 'connected') return;
    let count = 0;
    try {
      const stats = await conn.getStats();
      stats.forEach((s) => {
        if (s.type === 'inbound-rtp' && s.kind === 'video') count += s.framesDecoded || 0;
      });
    } catch {
      return;
    }
    if (conn !== this.pc) return;
    const now = Date.now();
    if (count > this.lastCount && this.lastCount >= 0) this.lastMediaAt = now;
    this.lastCount = count;
    if (now - this.lastMediaAt < MEDIA_STALE_MS) this.set('live', '');
    else this.set('offline', 'Waiting for the host to go live…');
  }
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
    default:
      return err.status >= 500 ? `The server had a problem: ${msg}.` : `${msg}.`;
  }
}
