// Studio: camera + mic preview and publishing to the room over WHIP.
import { negotiate, endSession, closeSession, preferVideoCodecs, HTTPError, simulcastInit } from './whip.js';
import { watchLayers } from './quality.js';
import { roomFromPath, takeToken, saveToken, Status, el } from './page.js';
import { startLive } from './studio-live.js';

const room = roomFromPath();
const tokenKey = `liveroom.studio.${room}`;
let token = takeToken(tokenKey);

const preview = el('preview');
const goliveBtn = el('golive');
const endBtn = el('end');
const flipBtn = el('flip');
const cameraSel = el('camera');
const micSel = el('mic');
const keybox = el('keybox');
const keyform = el('keyform');
const keyInput = el('key');
const status = new Status(el('status'), el('message'), {
  idle: 'Preview', connecting: 'Connecting', live: 'Live', error: 'Error',
});

let stream = new MediaStream();
let facing = 'user';
let pc = null;
let session = '';          // WHIP resource URL, for DELETE
let senders = {};          // kind -> RTCRtpSender while publishing
let pcNode = '';           // the node holding the session (X-Liveroom-Node)
let republishing = false;
let republishTimer = 0;
let republishAttempt = 0;
let republishes = 0;       // sessions replaced without a reload (tests read it)
let iceServers = [];       // from the last response's Link headers
let wakeLock = null;
let live = null;            // the room side: stats, chat, products

// The browser test reads the peer connection and the state from here.
window.liveroom = {
  get pc() { return pc; }, get state() { return status.state; }, get session() { return session; },
  get node() { return pcNode; }, get republishes() { return republishes; },
};

el('room').textContent = room || '(no room)';
showTokenState();

// Viewers per video layer, under the preview (quality.js).
const layersLine = document.createElement('p');
layersLine.id = 'layers';
layersLine.className = 'message';
layersLine.hidden = true;
el('message').after(layersLine);
watchLayers(layersLine, () => session, () => token);

// A stream key ("sk_…", what the encoder uses) publishes but signs in to
// nothing else: the room socket, the products and the orders need the host
// token from the host link. Such a host is told so, and may still go live.
function isStreamKey(t) {
  return /^sk_[0-9a-f]+$/.test(t);
}

// roomToken is what the room side signs in with: never a stream key.
function roomToken() {
  return isStreamKey(token) ? '' : token;
}

function showTokenState() {
  const keyOnly = isStreamKey(token);
  el('key-note').hidden = !keyOnly;
  keybox.open = !token || keyOnly;
  if (keyOnly) status.set(status.state || 'idle', 'This is a stream key: it works in your encoder. The studio needs your host link for chat, products and sales.', 'error');
  if (live) live.setToken(roomToken());
}

keyform.addEventListener('submit', (ev) => {
  ev.preventDefault();
  token = keyInput.value.trim();
  keyInput.value = '';
  saveToken(tokenKey, token);
  showTokenState();
  const busy = status.state === 'live' || status.state === 'connecting';
  if (!isStreamKey(token)) status.set(busy ? status.state : 'idle', token ? 'Key saved.' : 'Key cleared.');
});

// ---- camera and microphone ----

function videoConstraints(deviceId) {
  const c = { width: { ideal: 1280 }, height: { ideal: 720 }, frameRate: { ideal: 30 } };
  if (deviceId) c.deviceId = { exact: deviceId };
  else c.facingMode = { ideal: facing };
  return c;
}

function audioConstraints(deviceId) {
  const c = { echoCancellation: true, noiseSuppression: true, autoGainControl: true };
  if (deviceId) c.deviceId = { exact: deviceId };
  return c;
}

function mediaError(err) {
  switch (err && err.name) {
    case 'NotAllowedError':
    case 'SecurityError':
      return 'Camera and microphone access was denied. Allow it in the browser settings, then reload.';
    case 'NotFoundError':
      return 'No camera or microphone was found.';
    case 'NotReadableError':
      return 'The camera or microphone is in use by another app.';
    case 'OverconstrainedError':
      return 'That camera cannot be used with these settings.';
    default:
      return `Camera error: ${(err && err.message) || err}`;
  }
}

async function openPreview() {
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    status.set('error', 'This page needs HTTPS (or localhost) to use the camera.', 'error');
    return;
  }
  try {
    stream = await navigator.mediaDevices.getUserMedia({ video: videoConstraints(), audio: audioConstraints() });
  } catch (err) {
    if (err.name === 'NotAllowedError' || err.name === 'SecurityError') {
      status.set('error', mediaError(err), 'error');
      return;
    }
    // One of the two may be missing or busy: keep whichever opens.
    const tracks = [];
    for (const [kind, c] of [['video', videoConstraints()], ['audio', audioConstraints()]]) {
      try {
        const s = await navigator.mediaDevices.getUserMedia({ [kind]: c });
        tracks.push(...s.getTracks());
      } catch { /* that device is unavailable */ }
    }
    if (!tracks.length) {
      status.set('error', mediaError(err), 'error');
      return;
    }
    stream = new MediaStream(tracks);
    status.set('idle', tracks[0].kind === 'video' ? 'No microphone: going live without sound.' : 'No camera: going live with sound only.');
  }
  showPreview();
  await listDevices();
}

function showPreview() {
  preview.srcObject = stream;
  const v = stream.getVideoTracks()[0];
  const mode = v && v.getSettings ? v.getSettings().facingMode : '';
  preview.classList.toggle('mirror', mode !== 'environment');
}

async function listDevices() {
  let devices = [];
  try {
    devices = await navigator.mediaDevices.enumerateDevices();
  } catch {
    return;
  }
  fillSelect(cameraSel, devices.filter((d) => d.kind === 'videoinput'), stream.getVideoTracks()[0], 'Camera');
  fillSelect(micSel, devices.filter((d) => d.kind === 'audioinput'), stream.getAudioTracks()[0], 'Microphone');
  flipBtn.hidden = devices.filter((d) => d.kind === 'videoinput').length < 2;
}

function fillSelect(select, devices, track, noun) {
  const current = track && track.getSettings ? track.getSettings().deviceId : '';
  select.replaceChildren(...devices.map((d, i) => {
    const opt = document.createElement('option');
    opt.value = d.deviceId;
    opt.textContent = d.label || `${noun} ${i + 1}`;
    opt.selected = d.deviceId === current;
    return opt;
  }));
  select.disabled = devices.length === 0;
}

// switchTrack replaces the camera or the microphone, on air if live.
async function switchTrack(kind, constraints) {
  const old = kind === 'video' ? stream.getVideoTracks()[0] : stream.getAudioTracks()[0];
  // Phones often cannot open two cameras at once: release the old one first.
  if (old) {
    old.stop();
    stream.removeTrack(old);
  }
  let track;
  try {
    const s = await navigator.mediaDevices.getUserMedia({ [kind]: constraints });
    track = s.getTracks()[0];
  } catch (err) {
    status.set(status.state, mediaError(err), 'error');
    return;
  }
  stream.addTrack(track);
  if (senders[kind]) {
    try {
      await senders[kind].replaceTrack(track);
    } catch (err) {
      status.set(status.state, `Could not switch on air: ${err.message}`, 'error');
    }
  }
  showPreview();
  await listDevices();
}

cameraSel.addEventListener('change', () => switchTrack('video', videoConstraints(cameraSel.value)));
micSel.addEventListener('change', () => switchTrack('audio', audioConstraints(micSel.value)));
flipBtn.addEventListener('click', () => {
  const v = stream.getVideoTracks()[0];
  const mode = v && v.getSettings ? v.getSettings().facingMode : facing;
  facing = mode === 'environment' ? 'user' : 'environment';
  return switchTrack('video', videoConstraints());
});
if (navigator.mediaDevices) navigator.mediaDevices.addEventListener('devicechange', listDevices);

// ---- publishing ----

function describe(err) {
  if (!(err instanceof HTTPError)) return (err && err.message) || String(err);
  switch (err.status) {
    case 409:
      return `Someone else is already live in this room. End that stream first, then try again. (${err.message})`;
    case 401:
    case 403:
      return `Your stream key or token was refused: ${err.message}`;
    case 404:
      return `This room does not exist: ${err.message}`;
    default:
      return err.message;
  }
}

function setButtons(publishing) {
  goliveBtn.hidden = publishing;
  goliveBtn.disabled = false;
  endBtn.hidden = !publishing;
}

async function goLive() {
  if (!room) {
    status.set('error', 'No room in the address.', 'error');
    return;
  }
  if (!token) {
    status.set('error', 'Open your host link, or paste your host token first.', 'error');
    keybox.open = true;
    keyInput.focus();
    return;
  }
  if (!stream.getTracks().length) {
    status.set('error', 'No camera or microphone to send.', 'error');
    return;
  }
  goliveBtn.disabled = true;
  status.set('connecting', 'Connecting…');
  const { conn, video, audio } = newPeer();
  pc = conn;
  senders = { video: video.sender, audio: audio.sender };
  try {
    const res = await negotiate(`/whip/${encodeURIComponent(room)}`, conn, { token });
    if (pc !== conn) {
      closeSession(conn, res.location, token); // ended while the answer was in flight
      return;
    }
    session = res.location;
    pcNode = res.node;
    if (res.iceServers.length) iceServers = res.iceServers;
    setButtons(true);
    onConnState(conn);
  } catch (err) {
    conn.close();
    if (pc === conn) detach();
    status.set('error', describe(err), 'error');
  }
}

// newPeer makes a publishing peer with the preview's tracks. Both kinds are
// always offered so a device added later can go on air.
function newPeer() {
  const conn = new RTCPeerConnection({ iceServers, bundlePolicy: 'max-bundle' });
  const vt = stream.getVideoTracks()[0];
  const video = conn.addTransceiver(vt || 'video', simulcastInit(vt, [stream])); // three layers (whip.js)
  const audio = conn.addTransceiver(stream.getAudioTracks()[0] || 'audio', { direction: 'sendonly', streams: [stream] });
  preferVideoCodecs(video);
  conn.addEventListener('connectionstatechange', () => onConnState(conn));
  return { conn, video, audio };
}

// republish publishes again through the same URL while the current session
// stays up (make before break): the node it is on died or drains, and a load
// balancer sends the new offer to a live node. The server lets the same host
// replace its own session, and viewers keep theirs. Backoff follows only a
// failed attempt.
async function republish(reason) {
  if (!pc || republishing) return;
  republishing = true;
  clearTimeout(republishTimer);
  status.set('connecting', reason);
  const { conn, video, audio } = newPeer();
  try {
    const res = await negotiate(`/whip/${encodeURIComponent(room)}`, conn, { token });
    if (!pc) { // the show ended meanwhile
      closeSession(conn, res.location, token);
      return;
    }
    const old = { conn: pc, loc: session };
    pc = conn;
    session = res.location;
    pcNode = res.node;
    senders = { video: video.sender, audio: audio.sender };
    republishAttempt = 0;
    republishes++;
    closeSession(old.conn, old.loc, token); // its node may be gone: errors are ignored
    onConnState(conn);
  } catch (err) {
    conn.close();
    if (!pc) return;
    const base = Math.min(15000, 1000 * 2 ** republishAttempt++);
    const delay = Math.round(base * (0.75 + Math.random() * 0.5));
    status.set('connecting', `${describe(err)} Trying again in ${Math.ceil(delay / 1000)} s…`);
    republishTimer = setTimeout(() => republish('Reconnecting…'), delay);
  } finally {
    republishing = false;
  }
}

function onConnState(conn) {
  if (pc !== conn || !session) return;
  switch (conn.connectionState) {
    case 'connected':
      status.set('live', 'You are live.');
      keepAwake(true);
      break;
    case 'disconnected':
    case 'failed':
    case 'closed':
      republish('The connection was lost, reconnecting…');
      break;
    default:
      status.set('connecting', 'Connecting…');
  }
}

// detach returns the page to preview and hands back the peer and session, so
// that the caller can end them in the right order.
function detach() {
  const old = { conn: pc, loc: session };
  clearTimeout(republishTimer);
  pc = null;
  session = '';
  pcNode = '';
  senders = {};
  setButtons(false);
  keepAwake(false);
  return old;
}

async function end() {
  const old = detach();
  status.set('idle', 'Show ended. Thanks for streaming!');
  await closeSession(old.conn, old.loc, token);
  if (live) live.endShow();
}

// Ending the show takes a second tap, so a stray touch cannot end it.
let confirmTimer = 0;
function askEnd() {
  if (endBtn.dataset.confirm === 'true') {
    clearTimeout(confirmTimer);
    delete endBtn.dataset.confirm;
    endBtn.textContent = 'End show';
    endBtn.classList.remove('solid');
    end();
    return;
  }
  endBtn.dataset.confirm = 'true';
  endBtn.textContent = 'Tap again to end';
  endBtn.classList.add('solid');
  confirmTimer = setTimeout(() => {
    delete endBtn.dataset.confirm;
    endBtn.textContent = 'End show';
    endBtn.classList.remove('solid');
  }, 4000);
}

goliveBtn.addEventListener('click', goLive);
endBtn.addEventListener('click', askEnd);

// Leaving the page ends the stream at once rather than after a timeout.
addEventListener('pagehide', () => {
  if (session) endSession(session, token, { keepalive: true });
});

// ---- keep a phone's screen on while live ----

async function keepAwake(on) {
  try {
    if (on && !wakeLock && 'wakeLock' in navigator) {
      wakeLock = await navigator.wakeLock.request('screen');
      wakeLock.addEventListener('release', () => { wakeLock = null; });
    } else if (!on && wakeLock) {
      await wakeLock.release();
      wakeLock = null;
    }
  } catch { /* not supported or not visible: harmless */ }
}

document.addEventListener('visibilitychange', () => {
  if (document.visibilityState === 'visible' && status.state === 'live') keepAwake(true);
});

if (!isStreamKey(token)) status.set('idle', room ? '' : 'No room in the address.', room ? 'info' : 'error');
if (room) {
  live = startLive({
    room, token: roomToken(), getPc: () => pc, isLive: () => status.state === 'live',
    // The room socket's node went away: if it holds the stream, move it now.
    // exact: a node.draining event names the node; only its host moves.
    onLost: ({ node, exact }) => {
      if (!pc || !session) return;
      if (node === pcNode || (!exact && (!node || !pcNode))) republish('The server went away, reconnecting…');
    },
  });
}
openPreview();
