// Live auctions on every page (docs/auctions.md): the viewer's bid card
// (current bid, time left with the extension visible, quick bids at the next
// increments, "you're winning" / "outbid"), the studio's start/stop form and
// live bid list, the moderator's bid list with "remove bidder". It loads
// before the page's own script and attaches to the page's room socket when
// that is created (room.js announces it), so it sees the first welcome.
import { h, money, clock, newKey, toast } from './page.js';

// increment is cart.Ladder.Increment: the auction's own bands (its
// `increments`, prices below up_to_cents), then the default ladder
// (cart.Increment).
export function increment(cents, ladder) {
  for (const b of ladder || []) if (cents < b.up_to_cents) return b.step_cents;
  if (cents < 2000) return 100;
  if (cents < 10000) return 200;
  if (cents < 50000) return 500;
  if (cents < 100000) return 1000;
  if (cents < 500000) return 2500;
  return Math.ceil(cents / 10000) * 100;
}

const page = document.body.classList.contains('studio') ? 'studio'
  : document.body.classList.contains('mod') ? 'mod' : 'viewer';

class AuctionUI {
  constructor(sock) {
    this.sock = sock;
    this.a = null; // the auction as last heard (highest version)
    this.bids = []; // {amount, bidder, at}
    this.state = ''; // winning | outbid | won | lost | removed
    this.extendedAt = 0;
    // The auction's clock (Redis TIME in a cluster) minus this page's, from
    // the `now` its events carry; null until one came (then the node's
    // offset from the welcome). The largest sample since the last welcome:
    // transit only makes a sample smaller.
    this.offset = null;
    this.build();
    sock.on('welcome', (ev) => this.onWelcome(ev));
    sock.on('auction.started', (ev) => this.onStarted(ev));
    sock.on('auction.bid', (ev) => this.onBid(ev));
    sock.on('auction.extended', (ev) => this.onExtended(ev));
    sock.on('auction.ended', (ev) => this.onEnded(ev));
    sock.on('auction.outbid', (ev) => { if (this.a && ev.auction_id === this.a.auction_id) this.setState('outbid'); });
    sock.on('auction.won', (ev) => this.onWon(ev));
    sock.on('auction.removed', (ev) => {
      if (this.you() && ev.user_id === this.you()) { this.setState('removed'); }
    });
    setInterval(() => this.tick(), 250);
    const ui = this;
    window.liveroomAuction = ui; // for tests and the console
  }

  you() { return this.sock.you ? this.sock.you.id : ''; }

  build() {
    const cur = () => (this.a && this.a.currency) || 'EUR';
    this.amountEl = h('b', { id: 'auction-amount' });
    this.leaderEl = h('span', { id: 'auction-leader', class: 'stock-text' });
    this.clockEl = h('b', { id: 'auction-clock' }, '0:00');
    this.extEl = h('span', { id: 'auction-extended', class: 'off', hidden: true }, 'extended');
    this.stateEl = h('p', { id: 'auction-state', class: 'p-title', role: 'status', 'aria-live': 'polite' });
    this.listEl = h('ol', { id: 'auction-bids', class: 'audit' });
    const top = h('div', { class: 'sale-top' },
      h('span', { class: 'flash-tag' }, 'Live auction'),
      h('span', { class: 'sale-timer', role: 'timer' }, h('span', null, 'ends in'), ' ', this.clockEl, ' ', this.extEl));
    const info = h('div', { class: 'sale-info' },
      h('p', { id: 'auction-sku', class: 'p-title' }),
      h('p', { class: 'prices' }, this.amountEl, ' ', this.leaderEl),
      this.stateEl);
    if (page === 'viewer') {
      this.quick = h('div', { id: 'auction-quick', class: 'row' });
      this.maxIn = h('input', { id: 'auction-max', type: 'number', inputmode: 'decimal', min: '0', step: '0.01', placeholder: 'Your max', 'aria-label': 'Your maximum bid' });
      const maxForm = h('form', { id: 'auction-max-form', class: 'row', autocomplete: 'off' }, this.maxIn,
        h('button', { type: 'submit', class: 'ghost small' }, 'Set max'));
      maxForm.addEventListener('submit', (e) => {
        e.preventDefault();
        const c = Math.round(Number(this.maxIn.value) * 100);
        if (c > 0) this.place('auction.max', 'max_cents', c);
      });
      this.card = h('section', { id: 'auction', class: 'sale', hidden: true, 'aria-label': 'Live auction' },
        top, h('div', { class: 'sale-main' }, info), h('div', { class: 'sale-main' }, this.quick), h('div', { class: 'sale-main' }, maxForm));
      // Phone-first: three equal quick bids in one row, the maximum beside
      // its button (CSSOM, which the page's CSP allows).
      Object.assign(this.quick.style, { display: 'grid', gridTemplateColumns: 'repeat(3, 1fr)', gap: '6px', width: '100%' });
      Object.assign(maxForm.style, { display: 'flex', gap: '6px', width: '100%', alignItems: 'center' });
      Object.assign(this.maxIn.style, { flex: '1', minWidth: '0' });
      const anchor = document.getElementById('sale');
      if (anchor) anchor.before(this.card);
      this.cur = cur;
      return;
    }
    this.cur = cur;
    const body = h('div', { id: 'auction', class: 'sale-live' }, top, info, this.listEl);
    this.card = h('section', { class: 'card', 'aria-labelledby': 'auction-title' },
      h('div', { class: 'card-head' }, h('h2', { id: 'auction-title' }, 'Auction'), h('span', { class: 'sub', id: 'auction-note' }, 'Bids as they land')),
      body);
    if (page === 'studio') {
      this.stopBtn = h('button', { id: 'auction-stop', type: 'button', class: 'danger small', hidden: true }, 'Stop auction');
      this.stopBtn.addEventListener('click', () => this.stop());
      const f = h('form', { id: 'auction-form', class: 'form-grid', autocomplete: 'off' },
        h('label', null, 'Product SKU ', h('input', { id: 'af-sku', required: '' })),
        h('label', null, 'Start price ', h('input', { id: 'af-start', type: 'number', inputmode: 'decimal', min: '0', step: '0.01', value: '10', required: '' })),
        h('label', null, 'Runs for (s) ', h('input', { id: 'af-duration', type: 'number', inputmode: 'numeric', min: '1', step: '1', value: '30', required: '' })),
        h('label', null, 'Counter-bid time (s, 0 = sudden death) ', h('input', { id: 'af-extend', type: 'number', inputmode: 'numeric', min: '0', step: '1', value: '10' })),
        h('label', null, 'Reserve (optional) ', h('input', { id: 'af-reserve', type: 'number', inputmode: 'decimal', min: '0', step: '0.01' })),
        h('div', { class: 'row full' }, h('button', { type: 'submit', class: 'primary' }, 'Start auction')));
      f.addEventListener('submit', (e) => { e.preventDefault(); this.start(); });
      body.append(this.stopBtn);
      this.card.append(f);
      this.form = f;
      const shop = document.getElementById('shop-title');
      (shop ? shop.closest('section') : document.querySelector('main')).after(this.card);
    } else {
      const q = document.getElementById('queue-title');
      if (q) q.closest('section').before(this.card);
      else document.querySelector('main').append(this.card);
    }
  }

  // ---- events ----

  // clockSample notes the auction's clock from an event's `now`.
  clockSample(ev) {
    const t = ev && ev.now ? Date.parse(ev.now) : NaN;
    if (Number.isNaN(t)) return;
    const off = t - Date.now();
    if (this.offset === null || off > this.offset) this.offset = off;
  }

  // now is the auction's clock as this page estimates it.
  now() { return this.offset === null ? this.sock.now() : Date.now() + this.offset; }

  // timeLeft is the time to the end in ms by the auction's clock.
  timeLeft() { return this.a ? Date.parse(this.a.ends_at) - this.now() : 0; }

  onWelcome(ev) {
    this.offset = null;
    const a = ev.room && ev.room.auction;
    if (a && a.state === 'running') this.onStarted(a);
  }

  onStarted(ev) {
    if (this.a && this.a.auction_id === ev.auction_id && ev.version < this.a.version) return;
    if (!this.a || this.a.auction_id !== ev.auction_id) {
      this.bids = [];
      this.state = '';
    }
    this.a = { ...ev };
    this.clockSample(ev);
    if (ev.leader) this.addBid({ amount_cents: ev.amount_cents, bidder: ev.leader, version: ev.version });
    this.render();
  }

  onBid(ev) {
    if (!this.a || ev.auction_id !== this.a.auction_id) return;
    if (ev.max_cents && ev.ref) this.myMax = ev.max_cents;
    this.clockSample(ev);
    if (ev.version < this.a.version) return; // an older event from another node
    const moved = ev.ends_at && this.a.ends_at && Date.parse(ev.ends_at) > Date.parse(this.a.ends_at);
    Object.assign(this.a, { amount_cents: ev.amount_cents, leader: ev.bidder, next_cents: ev.next_cents, version: ev.version,
      ends_at: ev.ends_at || this.a.ends_at, reserve_met: ev.reserve_met });
    if (moved) this.extendedAt = Date.now();
    if (ev.bidder) this.addBid({ amount_cents: ev.amount_cents, bidder: ev.bidder, version: ev.version, reason: ev.reason });
    if (this.state !== 'removed') {
      if (ev.bidder && ev.bidder.id === this.you()) this.setState('winning');
      else if (this.state === 'winning') this.setState('outbid');
    }
    this.render();
  }

  onExtended(ev) {
    if (!this.a || ev.auction_id !== this.a.auction_id) return;
    this.clockSample(ev);
    if (Date.parse(ev.ends_at) > Date.parse(this.a.ends_at)) {
      this.a.ends_at = ev.ends_at;
      this.extendedAt = Date.now();
    }
    this.render();
  }

  onEnded(ev) {
    if (!this.a || ev.auction_id !== this.a.auction_id) return;
    this.a.state = 'ended';
    this.a.winner = ev.winner;
    this.a.amount_cents = ev.amount_cents;
    if (ev.winner && ev.winner.id === this.you()) this.setState('won');
    else if (this.state === 'winning' || this.state === 'outbid') this.setState('lost');
    this.render();
  }

  onWon(ev) {
    this.order = ev.order;
    this.setState('won');
    toast(`You won! Order ${ev.order.id}: ${money(ev.order.total_cents, ev.order.currency)}`, 'ok', 6000);
    this.render();
  }

  addBid(b) {
    if (this.bids.some((x) => x.version === b.version)) return;
    this.bids.push(b);
    this.bids.sort((x, y) => y.version - x.version);
    if (this.bids.length > 50) this.bids.length = 50;
  }

  setState(s) {
    this.state = s;
    this.render();
  }

  // ---- actions ----

  async place(type, field, cents) {
    if (!this.a) return;
    if (!this.you() || (this.sock.you && this.sock.you.role === 'guest')) {
      toast('Sign in to bid.', 'info');
      return;
    }
    try {
      const ev = await this.sock.request(type, { auction_id: this.a.auction_id, [field]: cents, key: newKey('bid') });
      this.onBid(ev);
      if (type === 'auction.max') toast(`Your maximum is ${money(cents, this.cur())}: we bid for you up to it.`, 'ok');
    } catch (err) {
      toast(err.message, err.code === 'bid_too_low' || err.code === 'already_leading' ? 'warn' : 'error');
    }
  }

  async start() {
    const v = (id) => document.getElementById(id).value;
    const fields = { sku: v('af-sku').trim(), start_cents: Math.round(Number(v('af-start')) * 100),
      duration_s: Number(v('af-duration')), extend_s: Number(v('af-extend') || 0) };
    if (v('af-reserve')) fields.reserve_cents = Math.round(Number(v('af-reserve')) * 100);
    try {
      await this.sock.request('auction.start', fields, { settleMs: 1500 });
    } catch (err) {
      toast(err.message, 'error');
    }
  }

  async stop() {
    if (!this.a) return;
    try {
      await this.sock.request('auction.stop', { auction_id: this.a.auction_id }, { settleMs: 1500 });
    } catch (err) {
      toast(err.message, 'error');
    }
  }

  async remove(userId) {
    if (!this.a) return;
    try {
      await this.sock.request('auction.remove_bidder', { auction_id: this.a.auction_id, user_id: userId });
      toast('Bidder removed: their bids no longer count.', 'ok');
    } catch (err) {
      toast(err.message, 'error');
    }
  }

  // ---- render ----

  tick() {
    if (!this.a) return;
    const left = this.timeLeft();
    this.clockEl.textContent = this.a.state === 'running' ? clock(left) : 'ended';
    this.card.dataset.low = left < 5000 && this.a.state === 'running' ? 'true' : 'false';
    this.extEl.hidden = !(this.extendedAt && Date.now() - this.extendedAt < 4000);
  }

  render() {
    const a = this.a;
    this.card.hidden = !a;
    if (!a) return;
    const running = a.state === 'running';
    this.card.dataset.phase = running ? 'open' : 'ended';
    this.card.dataset.state = this.state;
    document.getElementById('auction-sku').textContent = a.sku;
    this.amountEl.textContent = a.leader ? money(a.amount_cents, this.cur()) : `starts at ${money(a.start_cents, this.cur())}`;
    this.leaderEl.textContent = a.leader ? `by ${a.leader.name}` : 'no bids yet';
    const texts = {
      winning: "You're winning", outbid: "You've been outbid", won: 'You won!', lost: 'Auction over: you were outbid',
      removed: 'A moderator removed you from this auction',
    };
    let s = texts[this.state] || '';
    if (!running) s = a.winner ? `Sold to ${a.winner.name} for ${money(a.amount_cents, this.cur())}` + (this.state === 'won' ? ' — you!' : '') : 'Ended: no sale';
    if (this.state === 'won' && this.order) s = `You won! Order ${this.order.id}`;
    if (a.has_reserve && !a.reserve_met && running) s = (s ? s + ' · ' : '') + 'reserve not met';
    this.stateEl.textContent = s;
    if (this.quick) {
      this.quick.replaceChildren();
      let n = a.next_cents || a.start_cents;
      const mine = a.leader && a.leader.id === this.you();
      for (let i = 0; i < 3 && running && this.state !== 'removed'; i++) {
        const cents = n;
        const b = h('button', { type: 'button', class: 'buy', 'data-cents': String(cents), disabled: !!mine }, money(cents, this.cur()));
        b.style.padding = '8px 4px';
        b.addEventListener('click', () => this.place('auction.bid', 'amount_cents', cents));
        this.quick.append(b);
        n += increment(n, a.increments);
      }
    }
    if (page !== 'viewer') {
      this.listEl.replaceChildren(...this.bids.map((b) => {
        const li = h('li', { 'data-version': String(b.version) },
          h('b', null, money(b.amount_cents, this.cur())), ` ${b.bidder.name} (${b.bidder.id})`, b.reason ? ' · after a removal' : '');
        if (page === 'mod' && running) {
          const x = h('button', { type: 'button', class: 'danger small', 'data-remove': b.bidder.id }, 'Remove bidder');
          x.addEventListener('click', () => this.remove(b.bidder.id));
          li.append(' ', x);
        }
        return li;
      }));
      if (this.stopBtn) this.stopBtn.hidden = !running;
    }
    this.tick();
  }
}

document.addEventListener('liveroom:socket', (e) => { new AuctionUI(e.detail); });
