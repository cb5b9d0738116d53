// Lobby: the public rooms, live first, with titles and viewer counts.
import { el, h, compact } from './page.js';

const COVERS = [
  ['#ff2d55', '#ff8a3d'], ['#7b61ff', '#ff5fa2'], ['#0ea5e9', '#22c55e'],
  ['#f59e0b', '#ef4444'], ['#14b8a6', '#6366f1'], ['#ec4899', '#8b5cf6'],
];

function hash(s) {
  let x = 0;
  for (const c of s) x = (x * 31 + c.codePointAt(0)) >>> 0;
  return x;
}

function when(r) {
  if (!r.scheduled_at) return 'Coming soon';
  const d = new Date(r.scheduled_at);
  if (Number.isNaN(d.getTime())) return 'Coming soon';
  return d.toLocaleString([], { weekday: 'short', hour: '2-digit', minute: '2-digit', month: 'short', day: 'numeric' });
}

function card(r) {
  const live = r.status === 'live';
  const [a, b] = COVERS[hash(r.id) % COVERS.length];
  const cover = h('div', { class: 'room-cover' },
    h('span', { class: 'initial', 'aria-hidden': 'true' }, (r.title || r.id).trim().charAt(0).toUpperCase()),
    live ? h('span', { class: 'live-badge', dataset: { state: 'live' } }, 'Live') : null,
    live ? h('span', { class: 'count-pill' }, `${compact(r.viewers)} watching`) : h('span', { class: 'when' }, when(r)));
  cover.style.background = `linear-gradient(160deg, ${a}, ${b})`;
  return h('li', null, h('a', { class: 'room-card', href: `/r/${encodeURIComponent(r.id)}` },
    cover,
    h('div', { class: 'room-meta' }, h('h3', null, r.title || r.id), h('p', null, `@${r.id}`))));
}

async function load() {
  try {
    const res = await fetch('/api/v1/rooms', { cache: 'no-store' });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    const rooms = (await res.json()).rooms || [];
    const live = rooms.filter((r) => r.status === 'live').sort((x, y) => (y.viewers || 0) - (x.viewers || 0));
    const soon = rooms.filter((r) => r.status === 'scheduled')
      .sort((x, y) => String(x.scheduled_at || '9').localeCompare(String(y.scheduled_at || '9')));
    el('live').replaceChildren(...live.map(card));
    el('soon').replaceChildren(...soon.map(card));
    el('live-empty').hidden = live.length > 0;
    el('soon-empty').hidden = soon.length > 0;
    el('lobby-error').hidden = true;
  } catch (err) {
    el('lobby-error').hidden = false;
    el('lobby-error').textContent = `Could not load the rooms (${err.message}). Retrying…`;
  }
}

load();
setInterval(load, 10000);
