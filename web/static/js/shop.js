// Shop is the viewer's commerce: the pinned product card, the flash-sale
// banner (countdown on server time, stock bar), the bag with hold timers,
// checkout and the order confirmation.
import { h, el, money, clock, productImage, newKey, toast } from './page.js';

export class Shop {
  constructor(sock, { canBuy, askSignIn }) {
    this.sock = sock;
    this.canBuy = canBuy;
    this.askSignIn = askSignIn;
    this.catalog = new Map(); // sku -> product
    this.pinned = null;
    this.sale = null;
    this.items = [];
    this.currency = 'EUR';
    this.checkoutKey = '';
    this.busy = false;

    this.saleBox = el('sale');
    this.productBox = el('product');
    this.drawer = el('cart');
    el('sale-buy').addEventListener('click', () => this.buySale());
    el('product-add').addEventListener('click', () => this.addPinned());
    el('cart-btn').addEventListener('click', () => this.open());
    el('checkout').addEventListener('click', () => this.checkout());
    for (const b of this.drawer.querySelectorAll('[data-close]')) b.addEventListener('click', () => this.drawer.close());
    // A click on the backdrop closes the drawer.
    this.drawer.addEventListener('click', (e) => { if (e.target === this.drawer) this.drawer.close(); });
    this.drawer.addEventListener('close', () => this.showOrder(null));

    sock.on('welcome', (ev) => this.onWelcome(ev));
    sock.on('product.pinned', (ev) => this.setPinned(ev.product));
    sock.on('product.unpinned', () => this.setPinned(null));
    sock.on('sale.started', (ev) => this.setSale(ev.sale));
    sock.on('sale.stock', (ev) => {
      if (this.sale && this.sale.id === ev.sale_id) {
        this.sale.remaining = ev.remaining;
        this.renderSale();
      }
    });
    sock.on('sale.ended', (ev) => {
      if (this.sale && this.sale.id === ev.sale_id) {
        this.sale.ended = true;
        this.renderSale();
        setTimeout(() => { if (this.sale && this.sale.id === ev.sale_id && this.sale.ended) this.setSale(null); }, 4000);
      }
    });
    sock.on('cart', (ev) => this.setCart(ev.items || []));
    sock.on('order.confirmed', (ev) => this.onOrder(ev.order));
    setInterval(() => this.tick(), 250);
  }

  async loadCatalog(room, token) {
    try {
      const headers = token ? { Authorization: `Bearer ${token}` } : {};
      const res = await fetch(`/api/v1/rooms/${encodeURIComponent(room)}/products`, { headers, cache: 'no-store' });
      if (!res.ok) return;
      const body = await res.json();
      for (const p of body.products || []) this.catalog.set(p.sku, p);
      this.renderSale();
      this.renderPinned();
      this.renderCart();
    } catch { /* the card falls back to what the events carry */ }
  }

  product(sku) {
    return this.catalog.get(sku) || (this.pinned && this.pinned.sku === sku ? this.pinned : null) || { sku, title: sku };
  }

  onWelcome(ev) {
    const r = ev.room || {};
    this.setPinned(r.pinned || null);
    this.setSale(r.sale || null);
    if (Array.isArray(ev.cart)) this.setCart(ev.cart);
  }

  // ---- pinned product ----

  setPinned(p) {
    this.pinned = p;
    if (p) this.catalog.set(p.sku, { ...this.catalog.get(p.sku), ...p });
    this.renderPinned();
  }

  renderPinned() {
    const p = this.pinned;
    const onSale = p && this.sale && !this.sale.ended && this.sale.sku === p.sku;
    this.productBox.hidden = !p || onSale;
    if (!p) return;
    el('product-thumb').replaceChildren(productImage(p));
    el('product-title').textContent = p.title || p.sku;
    el('product-price').textContent = money(p.price_cents, p.currency);
    el('product-stock').textContent = p.stock > 0 && p.stock <= 10 ? `Only ${p.stock} left` : p.stock === 0 ? 'Sold out' : '';
    el('product-add').disabled = p.stock === 0;
  }

  async addPinned() {
    if (!this.pinned) return;
    await this.add({ sku: this.pinned.sku }, el('product-add'));
  }

  // ---- flash sale ----

  setSale(s) {
    this.sale = s ? { ...s } : null;
    this.renderSale();
    this.renderPinned();
  }

  renderSale() {
    const s = this.sale;
    this.saleBox.hidden = !s;
    if (!s) return;
    const p = this.product(s.sku);
    el('sale-thumb').replaceChildren(productImage(p));
    el('sale-title').textContent = p.title || s.sku;
    el('sale-price').textContent = money(s.price_cents, s.currency || p.currency);
    const was = p.price_cents > s.price_cents ? money(p.price_cents, p.currency) : '';
    el('sale-was').textContent = was;
    el('sale-off').textContent = was ? `−${Math.round(100 - (100 * s.price_cents) / p.price_cents)}%` : '';
    const q = Math.max(1, s.quantity || 1);
    const left = Math.max(0, s.remaining ?? q);
    el('sale-bar').style.width = `${(100 * left) / q}%`;
    const wrap = el('sale-bar-wrap');
    wrap.setAttribute('aria-valuemax', String(q));
    wrap.setAttribute('aria-valuenow', String(left));
    el('sale-left').textContent = left === 0 ? 'Sold out' : `${left} of ${q} left`;
    this.saleBox.dataset.low = left > 0 && left / q <= 0.2 ? 'true' : 'false';
    this.tick();
  }

  tick() {
    const s = this.sale;
    if (s) {
      const now = this.sock.now();
      const starts = Date.parse(s.starts_at);
      const ends = Date.parse(s.ends_at);
      let phase = 'open';
      if (s.ended || now >= ends) phase = 'ended';
      else if (now < starts) phase = 'soon';
      this.saleBox.dataset.phase = phase;
      el('sale-label').textContent = phase === 'soon' ? 'Flash sale soon' : phase === 'ended' ? 'Flash sale over' : 'Flash sale';
      el('sale-when').textContent = phase === 'soon' ? 'starts in' : phase === 'ended' ? '' : 'ends in';
      el('sale-clock').textContent = phase === 'soon' ? clock(starts - now) : phase === 'ended' ? 'Ended' : clock(ends - now);
      const soldOut = (s.remaining ?? 1) <= 0;
      const buy = el('sale-buy');
      buy.disabled = phase !== 'open' || soldOut || this.busy;
      buy.textContent = soldOut ? 'Sold out' : phase === 'soon' ? 'Soon' : phase === 'ended' ? 'Ended' : 'Buy now';
    }
    if (this.items.length && this.drawer.open) this.tickCart();
    this.renderCount();
  }

  async buySale() {
    if (!this.sale) return;
    await this.add({ sale_id: this.sale.id }, el('sale-buy'), true);
  }

  // add reserves one unit; a retry of the same tap reuses its key, so the
  // server holds it once however often the request goes out.
  async add(target, button, openAfter = false) {
    if (!this.canBuy()) {
      this.askSignIn('Sign in to buy.');
      return;
    }
    if (this.busy) return;
    this.busy = true;
    button.disabled = true;
    button.classList.add('busy');
    const key = newKey('add');
    try {
      for (let i = 0; ; i++) {
        try {
          await this.sock.request('cart.add', { ...target, qty: 1, key });
          break;
        } catch (err) {
          if ((err.code === 'unavailable' || err.code === 'timeout') && i < 2) {
            await new Promise((r) => setTimeout(r, 800));
            continue;
          }
          throw err;
        }
      }
      toast('Added to your bag. We hold it for you for a few minutes.', 'ok');
      if (openAfter) this.open();
    } catch (err) {
      toast(err.message || 'Could not add it to your bag.', 'error');
    } finally {
      this.busy = false;
      button.classList.remove('busy');
      button.disabled = false;
      this.renderPinned();
      this.tick();
    }
  }

  // ---- bag ----

  setCart(items) {
    this.items = items.filter((it) => it && it.reservation_id);
    if (this.items.length) this.currency = this.items[0].currency || this.currency;
    this.renderCart();
  }

  renderCount() {
    const n = this.items.reduce((a, it) => a + (it.qty || 0), 0);
    const badge = el('cart-count');
    badge.hidden = n === 0;
    badge.textContent = String(n);
  }

  renderCart() {
    this.renderCount();
    const list = el('cart-items');
    list.replaceChildren(...this.items.map((it) => {
      const p = this.product(it.sku);
      return h('li', { class: 'cart-item', dataset: { id: it.reservation_id } },
        productImage(p),
        h('div', { class: 'ci-info' },
          h('p', { class: 'p-title' }, p.title || it.sku),
          h('p', { class: 'ci-price' }, `${it.qty} × ${money(it.price_cents, it.currency || p.currency)}`),
          h('p', { class: 'hold' }, h('span', { class: 'hold-bar' }, h('span', { class: 'hold-fill' })), h('span', { class: 'hold-text' }, ''))),
        h('button', {
          type: 'button', class: 'icon-btn remove', 'aria-label': `Remove ${p.title || it.sku}`,
          onclick: () => this.remove(it.reservation_id),
        }, '✕'));
    }));
    const empty = this.items.length === 0;
    el('cart-empty').hidden = !empty;
    el('cart-foot').hidden = empty;
    const total = this.items.reduce((a, it) => a + it.qty * it.price_cents, 0);
    el('cart-total').textContent = money(total, this.currency);
    this.tickCart();
  }

  tickCart() {
    const now = this.sock.now();
    for (const it of this.items) {
      const li = el('cart-items').querySelector(`[data-id="${CSS.escape(it.reservation_id)}"]`);
      if (!li) continue;
      const left = Date.parse(it.expires_at) - now;
      if (!it.heldMs) it.heldMs = Math.max(left, 60000);
      li.querySelector('.hold-text').textContent = left > 0 ? `Held for ${clock(left)}` : 'Hold expired';
      li.querySelector('.hold-fill').style.width = `${Math.max(0, Math.min(100, (100 * left) / it.heldMs))}%`;
      li.classList.toggle('urgent', left < 30000);
    }
  }

  async remove(id) {
    try {
      await this.sock.request('cart.remove', { reservation_id: id });
    } catch (err) {
      toast(err.message, 'error');
    }
  }

  async checkout() {
    if (!this.items.length) return;
    const btn = el('checkout');
    btn.disabled = true;
    btn.textContent = 'Placing order…';
    // One key per checkout attempt, kept across retries of that attempt.
    if (!this.checkoutKey) this.checkoutKey = newKey('order');
    try {
      for (let i = 0; ; i++) {
        try {
          await this.sock.request('cart.checkout', { key: this.checkoutKey });
          break;
        } catch (err) {
          if ((err.code === 'unavailable' || err.code === 'timeout') && i < 3) {
            await new Promise((r) => setTimeout(r, 1000));
            continue;
          }
          throw err;
        }
      }
    } catch (err) {
      toast(err.message || 'Checkout failed.', 'error');
      this.checkoutKey = '';
    } finally {
      btn.disabled = false;
      btn.textContent = 'Check out';
    }
  }

  onOrder(o) {
    if (!o) return;
    this.checkoutKey = '';
    this.showOrder(o);
    if (!this.drawer.open) this.open();
  }

  showOrder(o) {
    el('order').hidden = !o;
    el('cart-body').hidden = !!o;
    el('cart-foot').hidden = !!o || this.items.length === 0;
    el('cart-title').textContent = o ? 'Thank you!' : 'Your bag';
    if (!o) return;
    el('order-id').textContent = o.id;
    el('order-items').replaceChildren(...(o.items || []).map((it) => {
      const p = this.product(it.sku);
      return h('li', null, h('span', null, `${it.qty} × ${p.title || it.sku}`), h('b', null, money(it.qty * it.price_cents, o.currency)));
    }));
    el('order-total').textContent = money(o.total_cents, o.currency);
  }

  open() {
    if (!this.drawer.open) this.drawer.showModal();
    this.renderCart();
  }
}
