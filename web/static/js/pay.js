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

// inDrawer puts "Pay now" into the order confirmation when it shows this
// order (the bag drawer is modal: the bar behind it cannot be reached
// until it closes).
function inDrawer(o) {
  const done = document.getElementById('order');
  const id = document.getElementById('order-id');
  if (!done || !id || id.textContent !== o.id) return;
  let a = document.getElementById('order-pay');
  const awaiting = o.state === 'awaiting_payment' && o.pay_url;
  if (!awaiting) {
    if (a) a.remove();
    return;
  }
  if (!a) {
    a = h('a', { id: 'order-pay', class: 'primary wide button', target: '_blank', rel: 'noopener', role: 'button' }, 'Pay now');
    a.style.cssText = 'display:block;text-align:center;margin:8px 0;padding:12px;border-radius:12px;background:#ff2d55;color:#fff;font-weight:700;text-decoration:none';
    done.insertBefore(a, done.querySelector('[data-close]'));
  }
  a.href = o.pay_url;
  const title = document.getElementById('order-title');
  if (title) title.textContent = 'Order placed: pay to confirm it';
}

function show(o) {
  if (!o || !o.id) return;
  inDrawer(o);
  let b = bars.get(o.id);
  if (o.state !== 'awaiting_payment' || !o.pay_by) {
    if (b) finish(b, o);
    return;
  }
  if (!b) {
    const left = h('b', { class: 'pay-left' });
    // A link, not window.open: a new tab from a tap is never a blocked
    // pop-up, and long-press offers "open in new tab" too.
    const payBtn = h('a', { class: 'primary button', target: '_blank', rel: 'noopener', role: 'button' }, 'Pay now');
    const cancel = h('button', { type: 'button', class: 'ghost' }, 'Cancel');
    const box = h('div', { class: 'pay-bar glass', role: 'status', 'data-order': o.id },
      h('div', { class: 'pay-text' },
        h('span', null, `Order ${money(o.total_cents, o.currency)} · `), left, h('span', null, ' left to pay')),
      h('div', { class: 'pay-actions' }, payBtn, cancel));
    box.style.cssText = 'display:flex;align-items:center;justify-content:space-between;gap:8px;padding:10px 12px;border-radius:14px;background:rgba(20,20,26,.92);color:#fff;box-shadow:0 6px 24px rgba(0,0,0,.35)';
    payBtn.style.cssText = 'padding:8px 14px;border-radius:10px;background:#ff2d55;color:#fff;font-weight:700;text-decoration:none';
    cancel.addEventListener('click', () => cancelOrder(o.id, cancel));
    b = { order: o, box, left, payBtn };
    bars.set(o.id, b);
    container().append(box);
  }
  b.order = o;
  if (o.pay_url) b.payBtn.href = o.pay_url;
  else b.payBtn.removeAttribute('href');
  b.payBtn.setAttribute('aria-disabled', o.pay_url ? 'false' : 'true');
  b.payBtn.title = o.pay_url ? 'Opens the shop in a new tab; the live keeps playing' : 'The shop will send you how to pay';
  tick();
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
  // A (re)loaded page: the welcome lists the orders still awaiting payment.
  sock.on('welcome', (ev) => { for (const o of ev.orders || []) show(o); });
  sock.on('order.updated', (ev) => show(ev.order));
}

setInterval(() => { attach(); tick(); }, 500);
attach();
