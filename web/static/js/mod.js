// Moderator console: chat with one-click actions, the review queue, the
// people in chat, slow mode, blocked terms and the audit log.
import { roomFromPath, takeToken, el, h, toast } from './page.js';
import { RoomSocket, watchNetwork } from './room.js';
import { ChatView } from './chat.js';

const room = roomFromPath();
const token = takeToken(`liveroom.mod.${room}`);
const TIMEOUT_S = 300;
const SLOW_CHOICES = [0, 5, 15, 30, 60, 120];
const RANK = { guest: 0, viewer: 1, moderator: 2, host: 3, admin: 4 };

let you = null;
const users = new Map(); // id -> {id, name, role, mutedUntil, banned}
const held = new Map(); // message id -> message
let terms = [];
let slowS = 0;
let auditFromServer = false;
const sessionAudit = [];

el('room').textContent = room;
const sock = new RoomSocket(room, token);
window.liveroom = { get ws() { return sock; }, get you() { return you; } };

// The server refuses any action on yourself or on someone of your rank or
// above; the console offers none of them. The admin key's identity and the
// stream-key host are admin and host by their ids.
function rankOf(user) {
  if (user.id === 'admin') return RANK.admin;
  if (user.id === `host:${room}`) return RANK.host;
  return RANK[user.role] ?? RANK.viewer;
}

function outranks(user, rank) {
  return !!you && !!user && !!user.id && user.id !== you.id && rank < (RANK[you.role] ?? 0);
}

// Timeout and ban: the highest role this console has seen the user with
// (the server, knowing the whole cluster, may know more).
function canAct(user) {
  if (!user || !user.id) return false;
  const known = users.get(user.id);
  return outranks(user, Math.max(rankOf(user), known ? rankOf(known) : 0));
}

// Delete: the role the message was posted with, as the server checks it.
function canDelete(m) {
  const u = m.user || {};
  return outranks(u, rankOf(u));
}

function act(type, fields, done) {
  return sock.request(type, fields, { settleMs: 1200 })
    .then(() => { if (done) toast(done, 'ok', 1800); })
    .catch((err) => toast(err.message, 'error'));
}

const chat = new ChatView(el('chat'), el('jump'), {
  actions: (m) => {
    const u = m.user || {};
    const btns = [];
    if (canDelete(m)) {
      btns.push(h('button', {
        type: 'button', class: 'danger', 'aria-label': `Delete message from ${u.name || 'user'}`,
        onclick: () => act('mod.delete', { message_id: m.id }),
      }, 'Delete'));
    }
    if (canAct(u)) {
      btns.push(
        h('button', { type: 'button', 'aria-label': `Time out ${u.name || 'user'} for 5 minutes`, onclick: () => act('mod.timeout', { user_id: u.id, seconds: TIMEOUT_S }) }, 'Timeout'),
        h('button', { type: 'button', class: 'danger', 'aria-label': `Ban ${u.name || 'user'}`, onclick: () => act('mod.ban', { user_id: u.id }) }, 'Ban'));
    }
    return btns.length ? h('span', { class: 'msg-acts' }, btns) : null;
  },
});

// ---- users ----

function seen(u) {
  if (!u || !u.id || u.role === 'guest') return;
  const cur = users.get(u.id) || { mutedUntil: 0, banned: false };
  // Keep the highest role seen, as the server does.
  const role = cur.role && (RANK[cur.role] ?? 0) > (RANK[u.role] ?? 0) ? cur.role : (u.role || cur.role || 'viewer');
  users.set(u.id, { ...cur, id: u.id, name: u.name || cur.name || u.id, role });
  renderUsers();
}

function renderUsers() {
  const now = sock.now();
  const list = [...users.values()].sort((a, b) => (RANK[b.role] ?? 1) - (RANK[a.role] ?? 1) || String(a.name).localeCompare(String(b.name)));
  el('users-empty').hidden = list.length > 0;
  el('users-note').textContent = list.length ? `${list.length}` : '';
  el('users').replaceChildren(...list.map((u) => {
    const muted = u.mutedUntil > now;
    const state = u.banned ? 'Banned' : muted ? `Timed out ${Math.ceil((u.mutedUntil - now) / 1000)} s` : '';
    const acts = [];
    if (canAct(u)) {
      if (muted) acts.push(h('button', { type: 'button', class: 'small', onclick: () => act('mod.timeout', { user_id: u.id, seconds: 0 }, 'Timeout lifted.') }, 'Lift timeout'));
      else if (!u.banned) acts.push(h('button', { type: 'button', class: 'small', onclick: () => act('mod.timeout', { user_id: u.id, seconds: TIMEOUT_S }) }, 'Timeout 5 min'));
      acts.push(u.banned
        ? h('button', { type: 'button', class: 'small', onclick: () => act('mod.unban', { user_id: u.id }) }, 'Unban')
        : h('button', { type: 'button', class: 'small danger', onclick: () => act('mod.ban', { user_id: u.id }) }, 'Ban'));
    }
    return h('li', { dataset: { user: u.id } },
      h('span', { class: 'u-name' }, u.name, h('span', { class: 'sub' }, ` · ${u.role}`)),
      state ? h('span', { class: 'u-state' }, state) : null,
      acts);
  }));
}
setInterval(() => { if ([...users.values()].some((u) => u.mutedUntil)) renderUsers(); }, 1000);

// ---- review queue ----

function renderQueue() {
  const list = [...held.values()];
  el('queue-empty').hidden = list.length > 0;
  el('queue-count').textContent = String(list.length);
  el('queue-count').dataset.zero = String(list.length === 0);
  el('queue').replaceChildren(...list.map((m) => h('li', { dataset: { id: m.id } },
    h('div', { class: 'q-text' },
      h('b', null, (m.user && m.user.name) || 'Guest'), ' ',
      m.reason ? h('span', { class: 'reason' }, m.reason) : null,
      h('div', null, m.text)),
    h('button', { type: 'button', class: 'small primary', onclick: () => act('mod.approve', { message_id: m.id }) }, 'Approve'),
    h('button', { type: 'button', class: 'small danger', onclick: () => act('mod.reject', { message_id: m.id }) }, 'Reject'))));
}

// ---- rules ----

el('slow').replaceChildren(...SLOW_CHOICES.map((s) => h('button', {
  type: 'button', dataset: { s: String(s) }, 'aria-pressed': 'false',
  onclick: () => act('mod.slow', { seconds: s }),
}, s ? `${s} s` : 'Off')));

function renderSlow() {
  for (const b of el('slow').children) b.setAttribute('aria-pressed', String(Number(b.dataset.s) === slowS));
}

function renderTerms() {
  el('terms').replaceChildren(...terms.map((t) => h('li', null, t,
    h('button', { type: 'button', 'aria-label': `Unblock ${t}`, onclick: () => act('mod.terms', { remove: [t] }) }, '✕'))));
  if (!terms.length) el('terms').append(h('li', { class: 'empty-line' }, 'None'));
}

el('terms-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const t = el('term-input').value.trim();
  if (!t) return;
  el('term-input').value = '';
  act('mod.terms', { add: [t] });
});

// ---- audit log ----

const ACTION = {
  delete: 'deleted a message', timeout: 'timed out', ban: 'banned', unban: 'unbanned',
  slow: 'set slow mode', terms: 'changed blocked terms', approve: 'approved a message', reject: 'rejected a message',
};

function auditLine(e) {
  const at = new Date(e.at || Date.now());
  const who = (e.actor && e.actor.name) || 'A moderator';
  const target = e.user_id ? ` ${userName(e.user_id)}` : '';
  let what = `${who} ${ACTION[e.action] || e.action}${e.action === 'delete' || e.action === 'approve' || e.action === 'reject' ? '' : target}`;
  if (e.action === 'timeout') what += e.seconds ? ` for ${e.seconds} s` : ' (lifted)';
  if (e.action === 'slow') what += e.seconds ? `: ${e.seconds} s` : ': off';
  if (e.action === 'terms') what += `${e.added && e.added.length ? ` +${e.added.join(', +')}` : ''}${e.removed && e.removed.length ? ` −${e.removed.join(', −')}` : ''}`;
  if ((e.action === 'delete' || e.action === 'approve' || e.action === 'reject') && e.user_id) what += ` from ${userName(e.user_id)}`;
  return h('li', null,
    h('time', { datetime: at.toISOString() }, at.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' })),
    h('span', { class: 'a-what' }, what),
    e.text ? h('span', { class: 'a-text' }, `“${e.text}”`) : null);
}

function userName(id) {
  const u = users.get(id);
  return u ? u.name : id;
}

function renderAudit(entries) {
  const list = el('audit');
  list.replaceChildren(...entries.slice().reverse().map(auditLine));
  if (!entries.length) list.append(h('li', { class: 'empty-line' }, 'No moderator actions yet.'));
}

async function loadAudit() {
  try {
    const res = await fetch(`/api/v1/rooms/${encodeURIComponent(room)}/moderation/log?limit=200`, {
      headers: token ? { Authorization: `Bearer ${token}` } : {}, cache: 'no-store',
    });
    if (!res.ok) throw new Error(String(res.status));
    const body = await res.json();
    auditFromServer = true;
    el('audit-note').textContent = 'Everyone’s actions, newest first';
    renderAudit(body.entries || []);
  } catch {
    // The server keeps the full log for admins only: show what this
    // console saw happen.
    auditFromServer = false;
    el('audit-note').textContent = 'Actions seen in this session';
    renderAudit(sessionAudit);
  }
}

function noteAction(e) {
  sessionAudit.push({ at: new Date(sock.now()).toISOString(), ...e });
  if (auditFromServer) loadAudit();
  else renderAudit(sessionAudit);
}

// ---- socket ----

const texts = new Map(); // message id -> {text, user}

sock.on('state', ({ state, detail }) => {
  const line = el('ws-state');
  line.dataset.state = state;
  line.textContent = { open: 'Connected', connecting: 'Connecting', reconnecting: 'Reconnecting…', closed: detail || 'Disconnected' }[state] || state;
  document.body.dataset.state = state;
});
sock.on('welcome', (ev) => {
  you = ev.you || null;
  chat.youId = you ? you.id : '';
  const r = ev.room || {};
  el('room').textContent = r.title || room;
  document.title = `Moderation · ${r.title || room}`;
  if (you && (RANK[you.role] ?? 0) < RANK.moderator) {
    el('chat-note').textContent = 'You are not a moderator here: actions will be refused.';
  }
  for (const m of (ev.history || []).map((x) => x.message).filter(Boolean)) { seen(m.user); texts.set(m.id, m); }
  chat.history(ev.history);
  held.clear();
  for (const m of ev.held || []) { held.set(m.id, m); seen(m.user); }
  renderQueue();
  terms = ev.terms || [];
  renderTerms();
  slowS = r.slow_s || 0;
  renderSlow();
  loadAudit();
});
sock.on('chat.message', (ev) => {
  const m = ev.message;
  if (!m) return;
  seen(m.user);
  texts.set(m.id, m);
  if (held.delete(m.id)) renderQueue();
  chat.add(m);
});
sock.on('chat.held', (ev) => {
  if (!ev.message) return;
  held.set(ev.message.id, ev.message);
  seen(ev.message.user);
  renderQueue();
});
sock.on('chat.deleted', (ev) => {
  if (ev.held) {
    const m = held.get(ev.message_id);
    if (held.delete(ev.message_id)) renderQueue();
    noteAction({ action: 'reject', message_id: ev.message_id, user_id: m && m.user && m.user.id, text: m && m.text });
    return;
  }
  const m = texts.get(ev.message_id);
  chat.remove(ev.message_id);
  noteAction({ action: 'delete', message_id: ev.message_id, user_id: m && m.user && m.user.id, text: m && m.text });
});
sock.on('user.timeout', (ev) => {
  const u = users.get(ev.user_id) || { id: ev.user_id, name: ev.user_id, role: 'viewer' };
  users.set(ev.user_id, { ...u, mutedUntil: ev.until || 0 });
  renderUsers();
  noteAction({ action: 'timeout', user_id: ev.user_id, seconds: ev.seconds });
});
sock.on('user.banned', (ev) => {
  const u = users.get(ev.user_id) || { id: ev.user_id, name: ev.user_id, role: 'viewer' };
  users.set(ev.user_id, { ...u, banned: true });
  renderUsers();
  chat.markUser(ev.user_id, 'flagged');
  noteAction({ action: 'ban', user_id: ev.user_id });
});
sock.on('user.unbanned', (ev) => {
  const u = users.get(ev.user_id);
  if (u) users.set(ev.user_id, { ...u, banned: false });
  renderUsers();
  chat.markUser(ev.user_id, 'flagged', false);
  noteAction({ action: 'unban', user_id: ev.user_id });
});
sock.on('room.slow', (ev) => {
  slowS = ev.seconds || 0;
  renderSlow();
  noteAction({ action: 'slow', seconds: slowS });
});
sock.on('room.terms', (ev) => {
  terms = ev.terms || [];
  renderTerms();
  noteAction({ action: 'terms' });
});
sock.on('error', (ev) => {
  if (ev.ref && sock.pending.has(ev.ref)) return;
  toast(ev.message || ev.code, 'error');
});

el('composer').addEventListener('submit', async (e) => {
  e.preventDefault();
  const input = el('chat-input');
  const text = input.value.trim();
  if (!text) return;
  input.value = '';
  try {
    await sock.request('chat.send', { text }, { settleMs: 1500 });
  } catch (err) {
    if (!input.value) input.value = text;
    toast(err.message, 'warn');
  }
});

if (!token) {
  el('chat-note').textContent = 'Open this page with your moderator link (#token=…) to act.';
}
renderUsers();
renderQueue();
sock.connect();
watchNetwork(sock);
