// Viewer room: video over WHEP, the room WebSocket (chat, hearts, counts,
// the pinned product, flash sales, the bag), both reconnecting by themselves.
import { roomFromPath, takeToken, saveToken, Status, el, compact, toast } from './page.js';
import { Player } from './player.js';
import { QualityControl } from './quality.js';
import { RoomSocket, watchNetwork } from './room.js';
import { ChatView } from './chat.js';
import { Shop } from './shop.js';

const room = roomFromPath();
const tokenKey = `liveroom.viewer.${room}`;
let token = takeToken(tokenKey);

const video = el('video');
const status = new Status(el('status'), el('message'), {
  offline: 'Offline', connecting: 'Connecting', live: 'Live', retrying: 'Live',
});

el('room').textContent = room ? `@${room}` : '';
document.title = room ? `${room} · liveroom` : 'liveroom';

// ---- video ----

let wsState = 'connecting';
let roomLive = false;
const player = new Player(video, room, token, (state, message) => {
  status.set(state === 'retrying' && !player.everConnected ? 'connecting' : state, message);
  if (player.hls && status.state === 'live') el('status').textContent = 'Delayed'; // on the HLS fallback (hls-fallback.js); #message says why
  showPoster();
  showConn();
});

// Auto/High/Low and "video paused: connection too slow" (quality.js).
const quality = new QualityControl(el('video').parentElement, () => player.session, (paused) => { player.videoPaused = paused; });

function showPoster() {
  const playing = status.state === 'live';
  el('poster').hidden = playing;
  if (!playing) {
    el('poster-title').textContent = roomLive ? 'Connecting to the show…' : 'The show starts soon';
    el('poster-sub').textContent = roomLive ? 'Hang on, the video is on its way.' : 'Stay here: the video starts by itself.';
  }
}

// The banner says what is reconnecting, while it does.
function showConn() {
  let text = '';
  if (wsState === 'reconnecting') text = 'Reconnecting to the room…';
  else if (player.state === 'retrying' && player.everConnected) text = 'Reconnecting the video…';
  el('conn').hidden = !text;
  el('conn-text').textContent = text;
  document.body.dataset.reconnecting = text ? 'true' : 'false';
}

// ---- sound: one tap ----

const unmute = el('unmute');
function showSound() {
  el('unmute-text').textContent = video.muted ? 'Tap to unmute' : 'Sound on';
  el('unmute-x').style.display = video.muted ? '' : 'none';
  unmute.classList.toggle('on', !video.muted);
  unmute.setAttribute('aria-pressed', String(!video.muted));
}
unmute.addEventListener('click', () => {
  video.muted = !video.muted;
  video.play().catch(() => {});
  showSound();
});
// Browsers that block muted autoplay still allow play after any tap.
document.addEventListener('pointerdown', () => { if (video.paused && video.srcObject) video.play().catch(() => {}); }, { once: true });
showSound();

// ---- room socket ----

let sock = null;
let you = null;
let mutedUntil = 0;
const chat = new ChatView(el('chat'), el('jump'));
let shop = null;

window.liveroom = {
  get pc() { return player.pc; },
  get hls() { return player.hls; }, // the HLS fallback, null while on WebRTC
  get state() { return status.state; },
  get session() { return player.session; },
  get videoNode() { return player.node; },
  get switches() { return player.switches; },
  get timeline() { return player.timeline; },
  get quality() { return quality.state; },
  get ws() { return sock; },
  get you() { return you; },
};

function signedIn() {
  return !!(you && you.role && you.role !== 'guest');
}

function startSocket() {
  sock = new RoomSocket(room, token);
  sock.on('state', ({ state, detail }) => {
    wsState = state;
    showConn();
    if (state === 'closed') {
      el('conn').hidden = false;
      el('conn-text').textContent = detail;
      document.body.dataset.removed = 'true';
      setComposer();
    }
  });
  sock.on('welcome', onWelcome);
  // The node serving this socket died or drains: if it holds the video
  // too, the player moves it now instead of waiting for ICE to notice.
  sock.on('lost', ({ node, kind }) => player.nodeLost(node, kind));
  // A node serving this room drains: whoever's video is there moves now.
  sock.on('node.draining', (ev) => { if (ev.node && ev.node === player.node) player.nodeLost(ev.node, 'drain'); });
  sock.on('chat.message', (ev) => chat.add(ev.message));
  sock.on('chat.held', (ev) => {
    if (ev.message && you && ev.message.user && ev.message.user.id === you.id) {
      chat.add(ev.message, { held: true });
    }
  });
  sock.on('chat.deleted', (ev) => chat.remove(ev.message_id));
  sock.on('viewers', (ev) => { el('viewers').textContent = compact(ev.count); });
  sock.on('likes', (ev) => onLikes(ev.total));
  sock.on('stream.live', () => { roomLive = true; showPoster(); player.roomLive(); });
  sock.on('stream.offline', () => { roomLive = false; showPoster(); });
  sock.on('room.slow', (ev) => {
    slowS = ev.seconds || 0;
    chat.notice(slowS ? `Slow mode is on: one message every ${slowS} s.` : 'Slow mode is off.');
    setComposer();
  });
  sock.on('user.timeout', (ev) => {
    if (!you || ev.user_id !== you.id) return;
    mutedUntil = ev.until || 0;
    if (mutedUntil > sock.now()) chat.notice('A moderator timed you out of the chat.', 'warn');
    setComposer();
  });
  sock.on('user.banned', (ev) => {
    if (you && ev.user_id === you.id) chat.notice('You were banned from this room.', 'warn');
  });
  sock.on('sale.started', (ev) => { if (ev.sale) chat.notice('⚡ A flash sale just started!', 'sale'); });
  sock.on('error', (ev) => {
    if (ev.ref && sock.pending.has(ev.ref)) return; // the caller shows it
    if (ev.code === 'muted' || ev.code === 'slow_mode' || ev.code === 'rate_limited' || ev.code === 'forbidden' || ev.code === 'too_long') {
      toast(ev.message, 'warn');
    } else if (ev.code !== 'going_away' && ev.code !== 'draining') {
      toast(ev.message || ev.code, 'error');
    }
  });
  shop = new Shop(sock, { canBuy: signedIn, askSignIn: openSignIn });
  shop.loadCatalog(room, token);
  sock.connect();
}

let slowS = 0;

function onWelcome(ev) {
  you = ev.you || null;
  chat.youId = you ? you.id : '';
  const r = ev.room || {};
  el('title').textContent = r.title || room;
  el('avatar').textContent = (r.title || room || 'L').trim().charAt(0).toUpperCase();
  el('viewers').textContent = compact(r.viewers || 0);
  likesTotal = r.likes || 0;
  sentLikes = 0;
  showLikes();
  roomLive = !!r.live;
  slowS = r.slow_s || 0;
  guestChat = !!r.guest_chat;
  mutedUntil = ev.muted_until || 0;
  chat.history(ev.history);
  showPoster();
  setComposer();
}

// ---- chat composer ----

let guestChat = false;
const input = el('chat-input');

function setComposer() {
  const removed = document.body.dataset.removed === 'true';
  const canChat = !removed && (signedIn() || guestChat);
  el('composer').hidden = !canChat;
  el('signin-open').hidden = canChat || removed;
  const now = sock ? sock.now() : Date.now();
  const muted = mutedUntil > now;
  const note = el('mute-note');
  note.hidden = !muted;
  if (muted) note.textContent = `You're timed out of the chat for ${Math.ceil((mutedUntil - now) / 1000)} s.`;
  document.body.dataset.muted = muted ? 'true' : 'false';
  input.disabled = muted;
  input.placeholder = muted ? 'You are timed out' : slowS ? `Slow mode: 1 message / ${slowS} s` : 'Say something…';
}
setInterval(() => { if (mutedUntil) setComposer(); }, 1000);

el('composer').addEventListener('submit', async (e) => {
  e.preventDefault();
  const text = input.value.trim();
  if (!text || !sock) return;
  input.value = '';
  try {
    await sock.request('chat.send', { text }, { settleMs: 1500 });
  } catch (err) {
    if (!input.value) input.value = text; // give the words back
    toast(err.message, 'warn');
  }
});

// ---- hearts: batched, at most one frame every 400 ms ----

let likesTotal = 0;
let pendingLikes = 0;
let likeTimer = 0;

function onLikes(total) {
  const delta = Math.max(0, total - likesTotal);
  likesTotal = total;
  // Our own hearts already floated when tapped; the rest are other people's.
  const mine = Math.min(sentLikes, delta);
  sentLikes -= mine;
  showLikes();
  const others = Math.min(6, delta - mine);
  for (let i = 0; i < others; i++) setTimeout(() => floatHeart(false), i * 120);
}
let sentLikes = 0; // sent, not yet in a total from the server

function showLikes() {
  el('likes').textContent = compact(likesTotal + pendingLikes + sentLikes);
}

el('heart').addEventListener('click', () => {
  floatHeart(true);
  pendingLikes++;
  showLikes();
  el('heart').classList.remove('pop');
  void el('heart').offsetWidth;
  el('heart').classList.add('pop');
  if (!likeTimer) likeTimer = setTimeout(flushLikes, 400);
});

function flushLikes() {
  likeTimer = 0;
  if (!pendingLikes || !sock) return;
  const n = Math.min(50, pendingLikes);
  if (sock.send('like', { count: n })) {
    pendingLikes -= n;
    sentLikes += n;
  }
  if (pendingLikes) likeTimer = setTimeout(flushLikes, 400);
}

const HEART_COLORS = ['#ff3d6e', '#ff7a59', '#ffb13d', '#ff5fa2', '#c86bff'];
function floatHeart(mine) {
  const layer = el('hearts');
  if (layer.childElementCount > 30) return;
  const s = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
  s.setAttribute('viewBox', '0 0 24 24');
  s.setAttribute('class', 'float-heart');
  const p = document.createElementNS('http://www.w3.org/2000/svg', 'path');
  p.setAttribute('d', 'M12 21s-7.5-4.6-9.5-9.2C1 8.3 3.2 4.5 7 4.5c2 0 3.4 1 5 2.9 1.6-1.9 3-2.9 5-2.9 3.8 0 6 3.8 4.5 7.3C19.5 16.4 12 21 12 21z');
  p.setAttribute('fill', mine ? '#ff3d6e' : HEART_COLORS[Math.floor(Math.random() * HEART_COLORS.length)]);
  s.append(p);
  s.style.setProperty('--dx', `${Math.round((Math.random() - 0.5) * 60)}px`);
  s.style.setProperty('--rot', `${Math.round((Math.random() - 0.5) * 40)}deg`);
  s.style.setProperty('--dur', `${(1.6 + Math.random() * 0.8).toFixed(2)}s`);
  layer.append(s);
  s.addEventListener('animationend', () => s.remove());
  setTimeout(() => s.remove(), 3000);
}

// ---- sign in ----

const signin = el('signin');
function openSignIn(why = '') {
  if (why) toast(why, 'info');
  if (!signin.open) signin.showModal();
  el('signin-token').focus();
}
el('signin-open').addEventListener('click', () => openSignIn());
signin.querySelector('[data-close]').addEventListener('click', () => signin.close());
el('signin-form').addEventListener('submit', (e) => {
  const t = el('signin-token').value.trim();
  if (!t) {
    e.preventDefault();
    return;
  }
  token = t;
  el('signin-token').value = '';
  saveToken(tokenKey, token);
  player.token = token;
  delete document.body.dataset.removed;
  sock.reauth(token);
});

// ---- start ----

if (!room) {
  status.set('offline', 'No room in the address.', 'error');
} else {
  startSocket();
  watchNetwork(sock);
  player.connect();
}
showPoster();
