// Replay of a recorded show: the HLS VOD (hls.js, or native HLS), its
// chapters (the pins), the product that was pinned at the playhead with a
// Buy button through the room's normal checkout, and the chat replayed in
// step with the playhead.
import { takeToken, el, h, money, newKey, toast } from './page.js';
import { RoomSocket } from './room.js';

const parts = location.pathname.split('/').filter(Boolean); // replay/{room}/{show}
const room = decodeURIComponent(parts[1] || '');
const showID = decodeURIComponent(parts[2] || '');
// The viewer page's token: a viewer signed in there can buy here.
const token = takeToken(`liveroom.viewer.${room}`);
const video = el('video');
const message = el('message');

let script = [];
let chat = [];
let openSale = null; // the room's sale that is open now (welcome, sale.* events)
let shown = null; // {product, sale} on the card
let chatShown = -1;

function say(text) {
  message.textContent = text;
}

async function load() {
  const headers = token ? { Authorization: `Bearer ${token}` } : {};
  const resp = await fetch(`/api/v1/rooms/${encodeURIComponent(room)}/shows/${encodeURIComponent(showID)}`, { headers });
  if (!resp.ok) {
    document.body.dataset.state = 'missing';
    say(resp.status === 404 ? 'This show is not available (any more).' : `Could not load the show (${resp.status}).`);
    return;
  }
  const show = await resp.json();
  script = show.script || [];
  chat = show.chat || [];
  el('title').textContent = `Replay · ${room} · ${new Date(show.started_at).toLocaleString()}`;
  renderChapters(show.chapters || []);
  play(show.playlist);
  document.body.dataset.state = 'ready';
}

function play(url) {
  if (window.Hls && window.Hls.isSupported()) {
    // No worker: the page's CSP allows scripts from this server only.
    const hls = new window.Hls({ enableWorker: false });
    hls.on(window.Hls.Events.ERROR, (_, data) => {
      if (data.fatal) say(`Playback error: ${data.details}`);
    });
    hls.loadSource(url);
    hls.attachMedia(video);
  } else if (video.canPlayType('application/vnd.apple.mpegurl')) {
    video.src = url; // Safari's own HLS player
  } else {
    say('This browser cannot play the replay.');
    return;
  }
  video.play().catch(() => say('Press play to watch.'));
}

function fmt(t) {
  const s = Math.floor(t);
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}

function renderChapters(chapters) {
  const list = el('chapters');
  list.replaceChildren(...chapters.map((c) => h('li', null, h('button', {
    type: 'button', dataset: { t: String(c.t) },
    onclick: () => { video.currentTime = c.t + 0.05; video.play().catch(() => {}); },
  }, `${fmt(c.t)} ${c.title}`))));
}

// stateAt replays the product script up to t: the pinned product, and the
// sale that ran on it then (if any).
function stateAt(t) {
  let product = null;
  const sales = new Map(); // sku -> sale
  for (const e of script) {
    if (e.t > t) break;
    const d = e.data || {};
    switch (e.type) {
      case 'product.pinned': product = d.product || null; break;
      case 'product.unpinned': product = null; break;
      case 'sale.started': if (d.sale) sales.set(d.sale.sku, d.sale); break;
      case 'sale.ended': for (const [k, s] of sales) if (s.id === d.sale_id) sales.delete(k); break;
      default:
    }
  }
  return { product, sale: product ? sales.get(product.sku) || null : null };
}

function renderCard() {
  const { product, sale } = stateAt(video.currentTime);
  const card = el('card');
  // A sale price only while that sale is still open in the room now.
  const live = sale && openSale && openSale.id === sale.id && openSale.state !== 'ended' ? openSale : null;
  const key = product ? `${product.sku}|${live ? live.id : ''}` : '';
  if (shown === key) return;
  shown = key;
  card.hidden = !product;
  document.body.dataset.card = product ? product.sku : '';
  if (!product) return;
  el('card-title').textContent = product.title;
  el('card-price').textContent = money(live ? live.price_cents : product.price_cents, product.currency);
  el('card-was').textContent = live ? money(product.price_cents, product.currency) : '';
  const buy = el('card-buy');
  buy.dataset.sku = product.sku;
  buy.dataset.sale = live ? live.id : '';
}

function renderChat() {
  const t = video.currentTime;
  let n = 0;
  while (n < chat.length && chat[n].t <= t) n++;
  if (n === chatShown) return;
  chatShown = n;
  const list = el('chat');
  list.replaceChildren(...chat.slice(Math.max(0, n - 50), n).map((e) => {
    const m = (e.data && e.data.message) || {};
    return h('li', null, h('b', null, `${(m.user && m.user.name) || 'guest'}: `), m.text || '');
  }));
  list.scrollTop = list.scrollHeight;
}

function tick() {
  renderCard();
  renderChat();
  const chapters = el('chapters').querySelectorAll('button');
  let cur = null;
  for (const b of chapters) if (Number(b.dataset.t) <= video.currentTime) cur = b;
  for (const b of chapters) b.setAttribute('aria-current', String(b === cur));
}
video.addEventListener('timeupdate', tick);
video.addEventListener('seeked', tick);

// ---- buying: the room's normal checkout over its WebSocket ----

const sock = new RoomSocket(room, token);
sock.on('welcome', (ev) => { openSale = (ev.room && ev.room.sale) || null; shown = null; tick(); });
sock.on('sale.started', (ev) => { openSale = ev.sale; shown = null; tick(); });
sock.on('sale.ended', (ev) => { if (openSale && openSale.id === ev.sale_id) openSale = null; shown = null; tick(); });
sock.on('order.confirmed', (ev) => {
  const id = ev.order && ev.order.id;
  document.body.dataset.order = id || '';
  toast('Order placed. Thank you!', 'ok');
  say(`Order ${id} confirmed.`);
});
sock.connect();

el('card-buy').addEventListener('click', async () => {
  const b = el('card-buy');
  if (!token) {
    say('Sign in on the room page to buy.');
    return;
  }
  b.disabled = true;
  try {
    const target = b.dataset.sale ? { sale_id: b.dataset.sale } : { sku: b.dataset.sku };
    await sock.request('cart.add', { ...target, qty: 1, key: newKey('add') });
    await sock.request('cart.checkout', { key: newKey('order') });
  } catch (err) {
    say(err.message || 'Could not buy.');
  } finally {
    b.disabled = false;
  }
});

load().catch((err) => say(`Could not load the show: ${err.message}`));
