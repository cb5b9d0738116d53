// Studio order figures (docs/orders.md): how many orders await payment,
// are paid (fulfilled ones included) or were cancelled, with their revenue,
// from GET /api/v1/rooms/{room}/orders/summary every few seconds. It adds
// its own stats under "Live stats" and needs the host token the studio
// keeps for the room.
import { roomFromPath, loadToken, h, money, compact } from './page.js';

const room = roomFromPath();
const rows = [
  ['awaiting_payment', 'Awaiting payment'],
  ['paid', 'Paid'],
  ['cancelled', 'Cancelled'],
];
const cells = new Map();

function mount() {
  const stats = document.querySelector('.stats');
  if (!stats || cells.size) return;
  for (const [state, label] of rows) {
    const count = h('b', { id: `st-${state}` }, '0');
    const revenue = h('small', { class: 'muted', id: `st-${state}-revenue` }, '–');
    stats.append(h('div', { class: 'stat', 'data-order-state': state }, h('span', null, label), count, revenue));
    cells.set(state, { count, revenue });
  }
}

function totals(sum) {
  const parts = Object.entries((sum && sum.total_cents) || {}).filter(([, c]) => c);
  return parts.length ? parts.map(([cur, c]) => money(c, cur)).join(' + ') : '–';
}

async function refresh() {
  const token = loadToken(`liveroom.studio.${room}`);
  if (!room || !token || /^sk_/.test(token)) return;
  try {
    const res = await fetch(`/api/v1/rooms/${encodeURIComponent(room)}/orders/summary`, {
      headers: { Authorization: `Bearer ${token}` }, cache: 'no-store',
    });
    if (!res.ok) return;
    const { states = {} } = await res.json();
    mount();
    // Fulfilled orders were paid: the studio counts them as paid.
    const paid = { count: 0, total_cents: {} };
    for (const st of ['paid', 'fulfilled']) {
      const s = states[st] || {};
      paid.count += s.count || 0;
      for (const [cur, c] of Object.entries(s.total_cents || {})) paid.total_cents[cur] = (paid.total_cents[cur] || 0) + c;
    }
    const view = { awaiting_payment: states.awaiting_payment, paid, cancelled: states.cancelled };
    for (const [state] of rows) {
      const c = cells.get(state);
      c.count.textContent = compact((view[state] && view[state].count) || 0);
      c.revenue.textContent = totals(view[state]);
    }
  } catch { /* the next refresh tries again */ }
}

refresh();
setInterval(refresh, 5000);
