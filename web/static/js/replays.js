// Links to recorded shows: on the lobby, a "Replays" list of ended rooms'
// shows; on a room page whose show is over, a link to its replay. Loaded
// beside each page's own script; it only adds elements of its own.
import { h } from './page.js';

async function shows(room) {
  const res = await fetch(`/api/v1/rooms/${encodeURIComponent(room)}/shows`, { cache: 'no-store' });
  if (!res.ok) return [];
  return ((await res.json()).shows || []).filter((s) => s.ended && s.duration_s > 0);
}

function link(room, s, text) {
  return h('a', { href: `/replay/${encodeURIComponent(room)}/${encodeURIComponent(s.id)}`, class: 'replay-link' }, text);
}

async function lobby(main) {
  const res = await fetch('/api/v1/rooms', { cache: 'no-store' });
  if (!res.ok) return;
  const ended = ((await res.json()).rooms || []).filter((r) => r.status === 'ended').slice(0, 12);
  const items = [];
  for (const r of ended) {
    const [latest] = await shows(r.id).catch(() => []);
    if (latest) items.push(h('li', null, link(r.id, latest, `${r.title || r.id} · ${new Date(latest.started_at).toLocaleDateString()}`)));
  }
  if (!items.length) return;
  main.append(h('section', { id: 'replays', 'aria-label': 'Replays' }, h('h2', null, 'Replays'), h('ul', { class: 'grid grid-gap' }, ...items)));
}

async function roomPage(room) {
  const poster = document.getElementById('poster-sub');
  if (!poster || document.getElementById('replay-link')) return;
  const res = await fetch(`/api/v1/rooms/${encodeURIComponent(room)}`, { cache: 'no-store' });
  if (!res.ok || (await res.json()).status !== 'ended') return;
  const [latest] = await shows(room).catch(() => []);
  if (!latest) return;
  const a = link(room, latest, 'The show is over: watch the replay');
  a.id = 'replay-link';
  poster.after(h('p', null, a));
}

const parts = location.pathname.split('/').filter(Boolean);
if (parts.length === 0) {
  const main = document.querySelector('main');
  if (main) lobby(main).catch(() => {});
} else if (parts[0] === 'r' && parts[1]) {
  const room = decodeURIComponent(parts[1]);
  roomPage(room).catch(() => {});
  setInterval(() => roomPage(room).catch(() => {}), 15000);
}
