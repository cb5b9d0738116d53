// The room WebSocket: connects, reconnects with backoff, resumes from the
// last seq it saw, keeps a clock offset to the server, and matches replies to
// requests by ref. Pages subscribe to event types with on().
//
// It signs in with an auth frame (?auth=frame, then {"type":"auth",…} as the
// first frame), never with ?token=: URLs end up in proxy logs. A guest sends
// the guest token its last welcome carried, so it keeps one id (and its ban
// and slow mode) across reconnects and tabs.

const MAX_BACKOFF_MS = 10000;
const REQUEST_TIMEOUT_MS = 10000;
// Close codes after which retrying cannot help (see room/event.go).
const FINAL = {
  4001: 'Your sign-in was not accepted for this room.',
  4003: 'You were removed from this room.',
  4004: 'This room has been closed.',
};
// Close codes that say the node is going away (shutting down or draining,
// RFC 6455 1001 and 1012): reconnect at once, spread over a short window so a
// node's viewers do not all land in the same instant. An abnormal close (1006:
// no close frame, the node died) also reconnects at once.
const MOVE = new Set([1001, 1012]);
const MOVE_SPREAD_MS = 1000;
const DEAD_SPREAD_MS = 250;
const GUEST_KEY = 'liveroom.guest';

// The guest token lives in localStorage (one guest per browser); where
// storage is blocked (some embedded iframes) it lives for the page only.
let guestToken = '';
function loadGuest() {
  try {
    return localStorage.getItem(GUEST_KEY) || guestToken;
  } catch {
    return guestToken;
  }
}
function saveGuest(t) {
  guestToken = t;
  try {
    localStorage.setItem(GUEST_KEY, t);
  } catch { /* storage blocked: kept for this page */ }
}

export class RoomSocket {
  constructor(room, token = '') {
    this.room = room;
    this.token = token;
    this.ws = null;
    this.lastSeq = 0;
    this.epoch = '';
    this.offset = 0; // server time - local time, ms
    this.you = null;
    this.state = 'idle'; // connecting, open, reconnecting, closed
    this.attempt = 0;
    this.handlers = new Map();
    this.pending = new Map(); // ref -> {resolve, reject, timer}
    this.nextRef = 1;
    this.timer = 0;
    this.stopped = false;
    this.welcomed = false;
    this.node = ''; // the node serving this connection (welcome.node)
    document.dispatchEvent(new CustomEvent('liveroom:socket', { detail: this })); // auction.js attaches
  }

  // on registers fn for an event type ('*' = every event, 'state' = the
  // connection state, 'welcome' = every welcome, fresh or resumed).
  on(type, fn) {
    if (!this.handlers.has(type)) this.handlers.set(type, []);
    this.handlers.get(type).push(fn);
    return this;
  }

  emit(type, ev) {
    for (const fn of this.handlers.get(type) || []) {
      try {
        fn(ev);
      } catch (err) {
        console.error(`handler for ${type} failed`, err);
      }
    }
  }

  now() {
    return Date.now() + this.offset;
  }

  setState(state, detail = '') {
    this.state = state;
    this.emit('state', { state, detail });
  }

  connect() {
    clearTimeout(this.timer);
    if (this.stopped) return;
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const url = `${proto}//${location.host}/ws/${encodeURIComponent(this.room)}?auth=frame`;
    this.setState(this.attempt ? 'reconnecting' : 'connecting');
    let ws;
    try {
      ws = new WebSocket(url);
    } catch (err) {
      this.retry();
      return;
    }
    this.ws = ws;
    this.welcomed = false;
    const resumeFrom = this.lastSeq;
    ws.addEventListener('open', () => {
      if (this.ws !== ws) return;
      // The auth frame first: the server answers it with a fresh welcome;
      // the resume asks for the events we missed on top of it.
      const auth = { type: 'auth' };
      if (this.token) auth.token = this.token;
      else if (loadGuest()) auth.guest = loadGuest();
      ws.send(JSON.stringify(auth));
      if (resumeFrom > 0) this.resumeRef = this.send('resume', { after_seq: resumeFrom, epoch: this.epoch || undefined });
    });
    ws.addEventListener('message', (m) => {
      if (this.ws !== ws) return;
      let ev;
      try {
        ev = JSON.parse(m.data);
      } catch {
        return;
      }
      if (ev && typeof ev.type === 'string') this.receive(ev);
    });
    ws.addEventListener('close', (e) => {
      if (this.ws !== ws) return;
      this.ws = null;
      for (const [ref, p] of this.pending) {
        clearTimeout(p.timer);
        p.reject(Object.assign(new Error('connection lost'), { code: 'unavailable' }));
        this.pending.delete(ref);
      }
      if (FINAL[e.code]) {
        this.stopped = true;
        this.setState('closed', this.lastError || FINAL[e.code]);
        return;
      }
      const wasOpen = this.welcomed;
      if (wasOpen && (MOVE.has(e.code) || e.code === 1006)) {
        // The node went away (drained or died), not the network: tell the
        // page (its video may be on the same node) and come back at once;
        // backoff starts only if that attempt fails.
        const kind = MOVE.has(e.code) ? 'drain' : 'dead';
        this.emit('lost', { node: this.node, kind, code: e.code });
        this.soon(kind === 'drain' ? MOVE_SPREAD_MS : DEAD_SPREAD_MS);
        return;
      }
      this.retry();
    });
  }

  // soon reconnects after a random delay below spreadMs, without backoff.
  soon(spreadMs) {
    if (this.stopped) return;
    this.setState('reconnecting', 'Reconnecting…');
    this.timer = setTimeout(() => this.connect(), Math.round(Math.random() * spreadMs));
  }

  retry() {
    if (this.stopped) return;
    const base = Math.min(MAX_BACKOFF_MS, 500 * 2 ** this.attempt);
    const delay = Math.round(base * (0.75 + Math.random() * 0.5));
    this.attempt++;
    this.setState('reconnecting', `Reconnecting in ${Math.ceil(delay / 1000)} s…`);
    this.timer = setTimeout(() => this.connect(), delay);
  }

  // reconnectNow skips the backoff (the network came back, the tab woke up).
  reconnectNow() {
    if (this.stopped || (this.ws && this.ws.readyState <= 1)) return;
    this.connect();
  }

  receive(ev) {
    if (ev.type === 'welcome') {
      this.onWelcome(ev);
    } else if (ev.seq) {
      if (ev.seq <= this.lastSeq) return; // already seen (replayed or duplicated)
      this.lastSeq = ev.seq;
      this.dispatch(ev);
    } else if (ev.type === 'error' && ev.code === 'expired' && ev.ref && ev.ref === this.resumeRef) {
      // Too long away: the welcome that follows is a full snapshot anyway.
    } else {
      if (ev.type === 'error') this.lastError = ev.message;
      this.dispatch(ev);
    }
    if (ev.ref && this.pending.has(ev.ref)) {
      const p = this.pending.get(ev.ref);
      this.pending.delete(ev.ref);
      clearTimeout(p.timer);
      if (ev.type === 'error') p.reject(Object.assign(new Error(ev.message || ev.code), { code: ev.code }));
      else p.resolve(ev);
    }
  }

  onWelcome(ev) {
    if (typeof ev.server_time === 'number') this.offset = ev.server_time - Date.now();
    this.you = ev.you || null;
    if (typeof ev.guest_token === 'string' && ev.guest_token) saveGuest(ev.guest_token);
    this.node = typeof ev.node === 'string' ? ev.node : '';
    if (ev.epoch) this.epoch = ev.epoch;
    this.lastSeq = Number(ev.seq || 0);
    if (!this.welcomed) {
      this.welcomed = true;
      this.attempt = 0;
      this.lastError = '';
      this.setState('open');
    }
    this.emit('welcome', ev);
    // Replayed events come after the snapshot they lead up to; handlers
    // are idempotent (messages dedupe by id, state events converge).
    for (const m of ev.missed || []) this.dispatch(m);
  }

  dispatch(ev) {
    this.emit(ev.type, ev);
    this.emit('*', ev);
  }

  // send writes a frame and returns its ref; false if not connected.
  send(type, fields = {}) {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return '';
    const ref = `r${this.nextRef++}`;
    this.ws.send(JSON.stringify({ ...fields, type, ref }));
    return ref;
  }

  // request sends a frame whose reply (or error) carries its ref. Frames
  // with no private reply (chat.send, like, mod.*) resolve on no error
  // within settleMs.
  request(type, fields = {}, { settleMs = 0 } = {}) {
    return new Promise((resolve, reject) => {
      const ref = this.send(type, fields);
      if (!ref) {
        reject(Object.assign(new Error('Not connected. Trying again…'), { code: 'unavailable' }));
        return;
      }
      const timer = setTimeout(() => {
        this.pending.delete(ref);
        if (settleMs) resolve(null);
        else reject(Object.assign(new Error('No answer from the server.'), { code: 'timeout' }));
      }, settleMs || REQUEST_TIMEOUT_MS);
      this.pending.set(ref, { resolve, reject, timer });
    });
  }

  // reauth reconnects as someone else (a sign-in): a fresh welcome, no resume.
  reauth(token) {
    this.token = token;
    this.stopped = false;
    this.attempt = 0;
    this.lastSeq = 0;
    const old = this.ws;
    this.ws = null;
    if (old) old.close(1000);
    this.connect();
  }

  close() {
    this.stopped = true;
    clearTimeout(this.timer);
    if (this.ws) this.ws.close(1000);
  }
}

// watchNetwork reconnects at once when the device comes back online or the
// page becomes visible again (phones freeze background tabs).
export function watchNetwork(sock, extra = () => {}) {
  addEventListener('online', () => { sock.reconnectNow(); extra(); });
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'visible') { sock.reconnectNow(); extra(); }
  });
}
