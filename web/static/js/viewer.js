// Viewer: plays the room over WHEP and reconnects by itself with backoff.
import { negotiate, endSession, closeSession, HTTPError } from './whip.js';
import { roomFromPath, takeToken, Status, el } from './page.js';

const room = roomFromPath();
const token = takeToken(`liveroom.viewer.${room}`); // optional: private rooms
const video = el('video');
const unmuteBtn = el('unmute');
const status = new Status(el('status'), el('message'), {
  offline: 'Offline', connecting: 'Connecting', live: 'Live',
});

const MEDIA_STALE_MS = 4000;   // no new frames/packets for this long = host offline
const DISCONNECT_GRACE_MS = 5000;
const MAX_BACKOFF_MS = 15000;

let pc = null;
let session = '';
let iceServers = [];
let attempt = 0;
let retryTimer = 0;
let graceTimer = 0;
let lastCount = -1;
let lastMediaAt = 0;

window.liveroom = { get pc() { return pc; }, get state() { return status.state; }, get session() { return session; } };

el('room').textContent = room || '(no room)';
document.title = room ? `${room} · liveroom` : 'liveroom';

// ---- sound ----

function showUnmute() {
  unmuteBtn.textContent = video.muted ? 'Tap to unmute' : 'Mute';
}

unmuteBtn.addEventListener('click', () => {
  video.muted = !video.muted;
  video.play().catch(() => {});
  showUnmute();
});
showUnmute();

// ---- connection ----

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

function drop() {
  clearTimeout(graceTimer);
  closeSession(pc, session, token);
  pc = null;
  session = '';
  lastCount = -1;
}

async function connect() {
  clearTimeout(retryTimer);
  retryTimer = 0;
  drop();
  if (!room) {
    status.set('offline', 'No room in the address.', 'error');
    return;
  }
  status.set('connecting', attempt ? 'Reconnecting…' : 'Connecting…');
  const conn = new RTCPeerConnection({ iceServers, bundlePolicy: 'max-bundle' });
  pc = conn;
  conn.addTransceiver('video', { direction: 'recvonly' });
  conn.addTransceiver('audio', { direction: 'recvonly' });
  const media = new MediaStream();
  conn.addEventListener('track', (ev) => {
    media.addTrack(ev.track);
    video.srcObject = media;
    video.play().catch(() => {});
  });
  conn.addEventListener('connectionstatechange', () => onConnState(conn));
  try {
    const res = await negotiate(`/whep/${encodeURIComponent(room)}`, conn, { token });
    if (pc !== conn) {
      closeSession(conn, res.location, token);
      return;
    }
    session = res.location;
    if (res.iceServers.length) iceServers = res.iceServers;
  } catch (err) {
    if (pc === conn) retry(describe(err));
  }
}

function onConnState(conn) {
  if (pc !== conn) return;
  clearTimeout(graceTimer);
  switch (conn.connectionState) {
    case 'connected':
      attempt = 0;
      update();
      break;
    case 'disconnected':
      status.set('connecting', 'Connection unstable…');
      graceTimer = setTimeout(() => {
        if (pc === conn && conn.connectionState !== 'connected') retry('The connection was lost.');
      }, DISCONNECT_GRACE_MS);
      break;
    case 'failed':
    case 'closed':
      retry('The connection was lost.');
      break;
  }
}

function retry(reason) {
  drop();
  const base = Math.min(MAX_BACKOFF_MS, 1000 * 2 ** attempt);
  const delay = Math.round(base * (0.75 + Math.random() * 0.5));
  attempt++;
  status.set('offline', `${reason} Retrying in ${Math.ceil(delay / 1000)} s.`, 'error');
  retryTimer = setTimeout(connect, delay);
}

// ---- live or waiting: judged by media actually arriving ----

async function update() {
  const conn = pc;
  if (!conn || conn.connectionState !== 'connected') return;
  let count = 0;
  try {
    const stats = await conn.getStats();
    stats.forEach((s) => {
      if (s.type !== 'inbound-rtp') return;
      count += s.kind === 'video' ? (s.framesDecoded || 0) : (s.packetsReceived || 0);
    });
  } catch {
    return;
  }
  if (conn !== pc) return;
  const now = Date.now();
  if (count > lastCount && lastCount >= 0) lastMediaAt = now;
  lastCount = count;
  if (now - lastMediaAt < MEDIA_STALE_MS) status.set('live', '');
  else status.set('offline', 'Waiting for the host to go live…');
}

setInterval(update, 1000);

// Back online: do not wait out the backoff.
addEventListener('online', () => {
  if (retryTimer) connect();
});

addEventListener('pagehide', () => {
  if (session) endSession(session, token, { keepalive: true });
  session = '';
});

addEventListener('pageshow', (ev) => {
  if (ev.persisted) connect(); // restored from the back/forward cache
});

connect();
