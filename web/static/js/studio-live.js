// The studio's room side: live stats, chat, the catalog with pinning, flash
// sales, the OBS / RTSP instructions, and ending the show.
import { el, h, money, clock, compact, productImage, toast, copyText } from './page.js';
import { RoomSocket, watchNetwork } from './room.js';
import { ChatView } from './chat.js';

const ORDERS_EVERY_MS = 5000;

export function startLive({ room, token, getPc, isLive, onLost = () => {} }) {
  const sock = new RoomSocket(room, token);
  sock.on('lost', onLost);
  sock.on('node.draining', (ev) => onLost({ node: ev.node, kind: 'drain', exact: true }));
  const chat = new ChatView(el('chat'), el('jump'));
  const catalog = new Map();
  let pinned = null;
  let sale = null;
  let saleSku = '';
  let orders = { count: 0, revenue: 0, currency: '', bySale: new Map() };
  let liveSince = 0;

  window.liveroom = Object.assign(window.liveroom || {}, { get ws() { return sock; } });

  // ---- OBS / RTSP ----
  el('whip-url').value = `${location.origin}/whip/${encodeURIComponent(room)}`;
  el('rtmp-url').value = `rtmp://${location.hostname}:1935/live`;
  el('rtsp-url').value = `rtsp://${location.hostname}:8554/${encodeURIComponent(room)}`;
  el('token-show').value = '';
  el('srt-url').value = '';
  el('rtsp-host').textContent = `${location.hostname}:8554/${encodeURIComponent(room)}`;
  el('token-reveal').addEventListener('click', () => {
    const t = el('token-show');
    t.type = t.type === 'password' ? 'text' : 'password';
    el('srt-url').type = t.type; // it carries the stream key too
    el('token-reveal').textContent = t.type === 'password' ? 'Show' : 'Hide';
  });
  for (const b of document.querySelectorAll('[data-copy]')) {
    b.addEventListener('click', async () => {
      const ok = await copyText(el(b.dataset.copy).value);
      toast(ok ? 'Copied.' : 'Copy failed: select the text and copy it.', ok ? 'ok' : 'warn', 1800);
    });
  }

  // The encoder gets the room's stream key (it only publishes), never the
  // host token: the host's view of the room carries it.
  async function loadStreamKey() {
    el('token-show').value = '';
    el('srt-url').value = '';
    if (!token) return;
    try {
      const res = await fetch(`/api/v1/rooms/${encodeURIComponent(room)}`, {
        headers: { Authorization: `Bearer ${token}` }, cache: 'no-store',
      });
      if (!res.ok) return;
      const r = await res.json();
      if (typeof r.stream_key === 'string') el('token-show').value = r.stream_key;
      if (r.ingest && typeof r.ingest.rtsp === 'string') el('rtsp-url').value = r.ingest.rtsp;
      if (r.ingest && typeof r.ingest.rtmp === 'string') el('rtmp-url').value = r.ingest.rtmp;
      if (r.ingest && typeof r.ingest.srt === 'string') el('srt-url').value = r.ingest.srt;
    } catch { /* offline: the fields stay empty */ }
  }
  loadStreamKey();

  // ---- socket ----
  sock.on('state', ({ state, detail }) => {
    const line = el('ws-state');
    line.dataset.state = state;
    line.textContent = { open: 'Room connected', connecting: 'Connecting', reconnecting: 'Reconnecting…', closed: detail || 'Disconnected' }[state] || state;
  });
  sock.on('welcome', (ev) => {
    const r = ev.room || {};
    el('room').textContent = r.title || room;
    document.title = `Studio · ${r.title || room}`;
    setViewers(r.viewers || 0);
    el('st-likes').textContent = compact(r.likes || 0);
    chat.youId = ev.you ? ev.you.id : '';
    chat.history(ev.history);
    pinned = r.pinned || null;
    setSale(r.sale || null);
    el('chat-note').textContent = r.slow_s ? `Slow mode ${r.slow_s} s` : '';
    renderCatalog();
  });
  sock.on('chat.message', (ev) => chat.add(ev.message));
  sock.on('chat.deleted', (ev) => chat.remove(ev.message_id));
  sock.on('viewers', (ev) => setViewers(ev.count));
  sock.on('likes', (ev) => { el('st-likes').textContent = compact(ev.total); });
  sock.on('room.slow', (ev) => { el('chat-note').textContent = ev.seconds ? `Slow mode ${ev.seconds} s` : ''; });
  sock.on('product.pinned', (ev) => { pinned = ev.product; renderCatalog(); });
  sock.on('product.unpinned', () => { pinned = null; renderCatalog(); });
  sock.on('sale.started', (ev) => { setSale(ev.sale); chat.notice('Flash sale started.', 'sale'); });
  sock.on('sale.stock', (ev) => {
    if (sale && sale.id === ev.sale_id) { sale.remaining = ev.remaining; renderSale(); }
    loadOrders();
  });
  sock.on('sale.ended', (ev) => {
    if (sale && sale.id === ev.sale_id) {
      chat.notice(`Flash sale ended: ${ev.sold} sold.`, 'sale');
      setSale(null);
    }
    loadOrders();
  });
  // The server tells hosts what viewers cannot play (RTSP: AAC audio, B-frames).
  sock.on('stream.notice', (ev) => {
    chat.notice(`Stream: ${ev.message}`, 'warn');
    toast(ev.message, 'error');
  });
  sock.on('error', (ev) => {
    if (ev.ref && sock.pending.has(ev.ref)) return;
    toast(ev.message || ev.code, 'error');
  });
  sock.connect();
  watchNetwork(sock);

  function setViewers(n) {
    el('st-viewers').textContent = compact(n);
    el('ov-viewers').textContent = `${compact(n)} watching`;
  }

  // ---- chat ----
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

  // ---- catalog ----
  async function loadCatalog() {
    try {
      const res = await fetch(`/api/v1/rooms/${encodeURIComponent(room)}/products`, {
        headers: token ? { Authorization: `Bearer ${token}` } : {}, cache: 'no-store',
      });
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      const body = await res.json();
      catalog.clear();
      for (const p of body.products || []) catalog.set(p.sku, p);
    } catch (err) {
      el('catalog').replaceChildren(h('li', { class: 'empty-line' }, `Could not load the catalog (${err.message}).`));
      return;
    }
    renderCatalog();
  }

  function renderCatalog() {
    if (!catalog.size) {
      el('catalog').replaceChildren(h('li', { class: 'empty-line' }, 'No products yet. Add them with the admin API (PUT /api/v1/rooms/{room}/products/{sku}).'));
      return;
    }
    el('catalog').replaceChildren(...[...catalog.values()].map((p) => {
      const isPinned = pinned && pinned.sku === p.sku;
      return h('li', { class: `cat-item${isPinned ? ' pinned' : ''}`, dataset: { sku: p.sku } },
        productImage(p),
        h('div', { class: 'p-info' },
          h('p', { class: 'p-title' }, p.title),
          h('p', { class: 'meta' }, `${money(p.price_cents, p.currency)} · ${p.stock} in stock`)),
        h('div', { class: 'acts' },
          h('button', {
            type: 'button', class: `small${isPinned ? ' primary' : ''}`, 'aria-pressed': String(!!isPinned),
            'aria-label': `${isPinned ? 'Unpin' : 'Pin'} ${p.title}`,
            onclick: () => pin(p, !isPinned),
          }, isPinned ? 'Pinned' : 'Pin'),
          h('button', {
            type: 'button', class: 'small', disabled: !!sale, 'aria-label': `Flash sale for ${p.title}`,
            onclick: () => openSaleForm(p),
          }, 'Flash sale')));
    }));
  }

  async function pin(p, on) {
    try {
      await sock.request(on ? 'product.pin' : 'product.unpin', { sku: p.sku }, { settleMs: 1500 });
    } catch (err) {
      toast(err.message, 'error');
    }
  }

  // ---- flash sale ----
  function openSaleForm(p) {
    saleSku = p.sku;
    el('sf-product').textContent = `${p.title} (list price ${money(p.price_cents, p.currency)})`;
    el('sf-price').value = ((p.price_cents * 0.7) / 100).toFixed(2);
    el('sf-qty').value = String(Math.max(1, Math.min(10, p.stock || 1)));
    el('sf-qty').max = String(p.stock || 1);
    el('sale-form').hidden = false;
    el('sf-price').focus();
  }
  el('sf-cancel').addEventListener('click', () => { el('sale-form').hidden = true; });
  el('sale-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const params = {
      sku: saleSku,
      price_cents: Math.round(Number(el('sf-price').value) * 100),
      quantity: Number(el('sf-qty').value),
      per_user_limit: Number(el('sf-limit').value || 0),
      starts_in_s: Number(el('sf-start').value || 0),
      duration_s: Number(el('sf-duration').value),
    };
    const btn = el('sale-form').querySelector('button[type="submit"]');
    btn.disabled = true;
    try {
      await sock.request('sale.start', params, { settleMs: 1500 });
      el('sale-form').hidden = true;
    } catch (err) {
      toast(err.message, 'error');
    } finally {
      btn.disabled = false;
    }
  });

  function setSale(s) {
    sale = s ? { ...s } : null;
    renderSale();
    renderCatalog();
    updateReserved();
  }

  function renderSale() {
    el('sale-live').hidden = !sale;
    if (!sale) return;
    const p = catalog.get(sale.sku) || { title: sale.sku };
    el('sl-title').textContent = `⚡ ${p.title}`;
    const q = Math.max(1, sale.quantity);
    el('sl-bar').style.width = `${(100 * sale.remaining) / q}%`;
    el('sl-left').textContent = `${sale.remaining} of ${q} left`;
    el('sl-price').textContent = `${money(sale.price_cents, sale.currency)} · limit ${sale.per_user_limit || 'none'} per buyer`;
    updateReserved();
  }
  el('sl-stop').addEventListener('click', async () => {
    if (!sale) return;
    try {
      await sock.request('sale.stop', { sale_id: sale.id }, { settleMs: 1500 });
    } catch (err) {
      toast(err.message, 'error');
    }
  });

  // ---- stats ----
  function updateReserved() {
    if (!sale) {
      el('st-reserved').textContent = '0';
      return;
    }
    const taken = sale.quantity - sale.remaining;
    const sold = orders.bySale.get(sale.id) || 0;
    el('st-reserved').textContent = String(Math.max(0, taken - sold));
  }

  let loading = false;
  async function loadOrders() {
    if (loading || !token) return;
    loading = true;
    try {
      let cursor = '';
      const next = { count: 0, revenue: 0, currency: '', bySale: new Map() };
      for (let page = 0; page < 20; page++) {
        const q = new URLSearchParams({ limit: '500' });
        if (cursor) q.set('cursor', cursor);
        const res = await fetch(`/api/v1/rooms/${encodeURIComponent(room)}/orders?${q}`, {
          headers: { Authorization: `Bearer ${token}` }, cache: 'no-store',
        });
        if (!res.ok) {
          el('stats-note').textContent = res.status === 401 || res.status === 403 ? 'Orders need the host token' : `Orders unavailable (${res.status})`;
          return;
        }
        const body = await res.json();
        for (const o of body.orders || []) {
          next.count++;
          next.revenue += o.total_cents || 0;
          next.currency = next.currency || o.currency;
          for (const it of o.items || []) if (it.sale_id) next.bySale.set(it.sale_id, (next.bySale.get(it.sale_id) || 0) + it.qty);
        }
        if (!body.next) break;
        cursor = body.next;
      }
      orders = next;
      el('st-orders').textContent = compact(orders.count);
      el('st-revenue').textContent = orders.count ? money(orders.revenue, orders.currency) : '–';
      updateReserved();
    } catch { /* next poll */ } finally {
      loading = false;
    }
  }

  let lastBytes = 0;
  let lastAt = 0;
  async function sampleBitrate() {
    const pc = getPc();
    const live = isLive();
    el('ov-time').hidden = !live;
    if (live && !liveSince) liveSince = Date.now();
    if (!live) liveSince = 0;
    if (liveSince) el('ov-time').textContent = clock(Date.now() - liveSince);
    if (!pc || !live) {
      el('st-bitrate').textContent = '–';
      lastBytes = 0;
      return;
    }
    let bytes = 0;
    try {
      (await pc.getStats()).forEach((s) => { if (s.type === 'outbound-rtp') bytes += s.bytesSent || 0; });
    } catch { return; }
    const now = performance.now();
    if (lastBytes && now > lastAt) {
      const kbps = ((bytes - lastBytes) * 8) / (now - lastAt);
      el('st-bitrate').replaceChildren(kbps >= 1000 ? (kbps / 1000).toFixed(1) : String(Math.round(kbps)), h('small', null, kbps >= 1000 ? 'Mb/s' : 'kb/s'));
    }
    lastBytes = bytes;
    lastAt = now;
  }
  setInterval(sampleBitrate, 1000);
  setInterval(() => {
    if (sale) {
      const now = sock.now();
      const starts = Date.parse(sale.starts_at);
      const ends = Date.parse(sale.ends_at);
      el('sl-clock').textContent = now < starts ? `starts in ${clock(starts - now)}` : now < ends ? `ends in ${clock(ends - now)}` : 'ending…';
    }
  }, 250);
  setInterval(loadOrders, ORDERS_EVERY_MS);
  loadCatalog();
  loadOrders();

  return {
    setToken(t) {
      token = t;
      loadStreamKey();
      sock.reauth(t);
    },
    // endShow closes the shop: stops the running sale and unpins.
    async endShow() {
      if (sale) await sock.request('sale.stop', { sale_id: sale.id }, { settleMs: 800 }).catch(() => {});
      if (pinned) await sock.request('product.unpin', { sku: pinned.sku }, { settleMs: 800 }).catch(() => {});
      chat.notice('You ended the show.');
    },
  };
}
