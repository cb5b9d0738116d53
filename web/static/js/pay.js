// Pay is the viewer's payment handoff (docs/orders.md): an order awaiting
// payment shows a "Pay now" bar with the time left; the button opens the
// shop's pay_url in a new tab, so the live keeps playing here. The bar
// follows order.updated: paid, or cancelled (by the buyer, the shop, or
// because the time ran out). It needs nothing from the page but
// window.liveroom.ws (the room socket).
import { h, money, clock, toast } from './page.js';

const bars = new Map(); // order id -> {order, box, left}
let sock = null;
let dock = null;

function container() {
  if (dock && dock.isConnected) return dock;
  dock = h('div', { id: 'pay-dock', role: 'region', 'aria-label': 'Orders to pay' });
  dock.style.cssText = 'position:fixed;left:50%;transform:translateX(-50%);bottom:88px;z-index:40;display:flex;flex-direction:column;gap:8px;width:min(420px,calc(100vw - 24px))';
  document.body.append(dock);
  return dock;
}

function now() {
  return sock ? sock.now() : Date.now();
}

function show(o) {
  if (!o || !o.id) return;
  let b = bars.get(o.id);
  if (o.state !== 'awaiting_payment' || !o.pay_by) {
    if (b) finish(b, o);
    return;
  }
  if (!b) {
    const left = h('b', { class: 'pay-left' });
    const payBtn = h('button', { type: 'button', class: 'primary' }, 'Pay now');
    const cancel = h('button', { type: 'button', class: 'ghost' }, 'Cancel');
    const box = h('div', { class: 'pay-bar glass', role: 'status', 'data-order': o.id },
      h('div', { class: 'pay-text' },
        h('span', null, `Order ${money(o.total_cents, o.currency)} · `), left, h('span', null, ' left to pay')),
      h('div', { class: 'pay-actions' }, payBtn, cancel));
    box.style.cssText = 'display:flex;align-items:center;justify-content:space-between;gap:8px;padding:10px 12px;border-radius:14px;background:rgba(20,20,26,.92);color:#fff;box-shadow:0 6px 24px rgba(0,0,0,.35)';
    payBtn.addEventListener('click', () => openPay(bars.get(o.id)));
    cancel.addEventListener('click', () => cancelOrder(o.id, cancel));
    b = { order: o, box, left, payBtn };
    bars.set(o.id, b);
    container().append(box);
  }
  b.order = o;
  b.payBtn.disabled = !o.pay_url;
  b.payBtn.title = o.pay_url ? 'Opens the shop in a new tab; the live keeps playing' : 'The shop will send you how to pay';
  tick();
}

// openPay opens the shop's payment page beside the live (a new tab).
function openPay(b) {
  if (!b || !b.order.pay_url) return;
  const w = window.open(b.order.pay_url, '_blank', 'noopener');
  if (!w) toast('Allow pop-ups to open the payment page, or long-press “Pay now”.', 'warn');
}

async function cancelOrder(id, btn) {
  if (!sock) return;
  btn.disabled = true;
  try {
    const ev = await sock.request('order.cancel', { order_id: id });
    if (ev && ev.order) show(ev.order);
  } catch (err) {
    toast(err.message || 'Could not cancel the order.', 'warn');
    btn.disabled = false;
  }
}

function finish(b, o) {
  bars.delete(o.id);
  const text = o.state === 'paid' || o.state === 'fulfilled'
    ? 'Paid. Thank you!'
    : o.cancel_reason === 'lapse' ? 'The time to pay ran out: the order was cancelled.' : 'Order cancelled.';
  b.box.replaceChildren(h('span', null, text));
  setTimeout(() => b.box.remove(), 4000);
}

function tick() {
  for (const b of bars.values()) {
    const ms = Date.parse(b.order.pay_by) - now();
    b.left.textContent = clock(Math.max(0, ms));
  }
}

// The page builds its socket when it starts: wait for it (and for a new
// one if the page ever replaces it).
function attach() {
  const ws = window.liveroom && window.liveroom.ws;
  if (!ws || ws === sock) return;
  sock = ws;
  sock.on('order.confirmed', (ev) => show(ev.order));
  sock.on('order.updated', (ev) => show(ev.order));
}

setInterval(() => { attach(); tick(); }, 500);
attach();
