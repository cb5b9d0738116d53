// Giveaways on the viewer and studio pages, and the draw's verification
// (docs/giveaway-draw.md) for the verify page. Loaded as its own module: it
// finds the page's room socket at window.liveroom.ws and hooks its events.
import { h, clock, toast } from './page.js';

const PROCEDURE = 'liveroom-giveaway-v1';
const enc = new TextEncoder();

function hex(buf) {
  return Array.from(new Uint8Array(buf), (b) => b.toString(16).padStart(2, '0')).join('');
}

function unhex(s) {
  if (!/^([0-9a-f]{2})*$/.test(s)) throw new Error('not lowercase hex');
  const out = new Uint8Array(s.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(s.slice(2 * i, 2 * i + 2), 16);
  return out;
}

async function sha256(bytes) {
  return hex(await crypto.subtle.digest('SHA-256', bytes));
}

async function hmac(keyBytes, msgBytes) {
  const key = await crypto.subtle.importKey('raw', keyBytes, { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
  return new Uint8Array(await crypto.subtle.sign('HMAC', key, msgBytes));
}

// entrantsHash is SHA-256 of every entry id followed by "\n".
export async function entrantsHash(entries) {
  return sha256(enc.encode(entries.map((e) => `${e}\n`).join('')));
}

// draw recomputes the winners (entry ids, in draw order).
export async function draw(seedHex, giveawayID, entries, winners) {
  const listHash = await entrantsHash(entries);
  const key = await hmac(unhex(seedHex), enc.encode(`${PROCEDURE}\n${giveawayID}\n${listHash}`));
  let words = [];
  let ctr = 0n;
  const next = async () => {
    if (words.length === 0) {
      const c = new Uint8Array(8);
      new DataView(c.buffer).setBigUint64(0, ctr);
      ctr += 1n;
      const block = await hmac(key, c);
      const dv = new DataView(block.buffer);
      for (let i = 0; i < 32; i += 8) words.push(dv.getBigUint64(i));
    }
    return words.shift();
  };
  const n = entries.length;
  const a = entries.map((_, i) => i);
  const out = [];
  for (let j = 0; j < Math.min(winners, n); j++) {
    const m = BigInt(n - j);
    const limit = (1n << 64n) % m;
    let r = await next();
    while (r < limit) r = await next();
    const k = j + Number(r % m);
    [a[j], a[k]] = [a[k], a[j]];
    out.push(entries[a[j]]);
  }
  return out;
}

// verifyGiveaway checks a GET /giveaways/{id} record and, if given, that
// myEntry is in it. It returns [{name, ok, detail}].
export async function verifyGiveaway(rec, myEntry = '') {
  const checks = [];
  const add = (name, ok, detail = '') => checks.push({ name, ok: !!ok, detail });
  if (rec.state !== 'ended' || !rec.seed) {
    add('The giveaway has ended and its seed is published', false, `state: ${rec.state}`);
    return checks;
  }
  add('The draw procedure is the documented one', rec.procedure === PROCEDURE, rec.procedure);
  let seedOK = false;
  try {
    seedOK = (await sha256(unhex(rec.seed))) === rec.commitment;
  } catch { /* a malformed seed fails the check */ }
  add('The seed matches the commitment published at the start', seedOK, `SHA-256(seed) = commitment ${rec.commitment.slice(0, 16)}…`);
  const entries = rec.entries || [];
  add('The list has as many entries as entrants, none twice', entries.length === rec.entrants && new Set(entries).size === entries.length,
    `${entries.length} entries, ${rec.entrants} entrants`);
  add('The list hashes to the published entrants hash', (await entrantsHash(entries)) === rec.entrants_hash);
  if (myEntry) add(`Your entry ${myEntry} is in the list`, entries.includes(myEntry));
  let again = [];
  try {
    again = await draw(rec.seed, rec.giveaway_id, entries, rec.winners_max || (rec.winners || []).length);
  } catch { /* fails below */ }
  const published = (rec.winners || []).map((w) => w.entry);
  add('The winners recompute from the seed and the list', again.length === published.length && again.every((e, i) => e === published[i]),
    `recomputed ${again.join(', ') || 'none'}`);
  return checks;
}

// ---- the cards ----

function prizeText(p) {
  if (!p) return '';
  return p.text || (p.sku ? `Product ${p.sku}` : '');
}

function entryKey(room, id) { return `giveaway:${room}:${id}`; }

function remember(room, id, entry) {
  try { localStorage.setItem(entryKey(room, id), entry); } catch { /* storage off */ }
}

function recall(room, id) {
  try { return localStorage.getItem(entryKey(room, id)) || ''; } catch { return ''; }
}

export function verifyURL(room, id, entry) {
  const q = new URLSearchParams({ room, g: id });
  if (entry) q.set('entry', entry);
  return `/static/giveaway-verify.html?${q}`;
}

// GiveawayCard is the viewer's card (host: false) or the studio's (host:
// true: a start form, no enter button).
class GiveawayCard {
  constructor(sock, room, host) {
    this.sock = sock;
    this.room = room;
    this.host = host;
    this.g = null;
    this.entry = '';
    this.ended = null;
    this.root = h('section', { id: 'giveaway', class: host ? 'card giveaway' : 'product-card giveaway', 'aria-label': 'Giveaway', hidden: !host });
    this.render();
    sock.on('welcome', (ev) => {
      const g = (ev.room || {}).giveaway || null;
      if (g && ev.giveaway_entry) remember(room, g.giveaway_id, ev.giveaway_entry);
      this.set(g, ev.you);
    });
    sock.on('giveaway.started', (ev) => { this.ended = null; this.entry = ''; this.set(ev); });
    // Each node sends the count it last saw: keep the highest.
    sock.on('giveaway.entrants', (ev) => { if (this.g && this.g.giveaway_id === ev.giveaway_id && ev.entrants > (this.g.entrants || 0)) { this.g.entrants = ev.entrants; this.render(); } });
    sock.on('giveaway.entered', (ev) => { this.entry = ev.entry; remember(room, ev.giveaway_id, ev.entry); if (this.g) this.g.entrants = Math.max(this.g.entrants || 0, ev.entrants); this.render(); });
    sock.on('giveaway.ended', (ev) => { this.ended = ev; if (this.g && this.g.giveaway_id === ev.giveaway_id) this.g.entrants = ev.entrants; this.render(); });
    sock.on('giveaway.won', (ev) => { toast(`You won the giveaway: ${prizeText(ev.prize)}!`, 'info', 8000); this.won = ev; this.render(); });
    setInterval(() => { if (this.g && !this.ended) this.render(); }, 500);
  }

  set(g, you) {
    if (you) this.you = you;
    if (!g) { if (!this.ended) this.g = null; this.render(); return; }
    this.g = g;
    this.entry = recall(this.room, g.giveaway_id);
    this.render();
  }

  async enter() {
    if (!this.g) return;
    if (!this.you || this.you.role === 'guest') { toast('Sign in to enter the giveaway.', 'warn'); return; }
    try {
      await this.sock.request('giveaway.enter', { giveaway_id: this.g.giveaway_id });
    } catch (err) {
      toast(err.message || 'Could not enter.', 'error');
    }
  }

  async start(form) {
    const f = new FormData(form);
    const prize = String(f.get('prize') || '').trim();
    const body = {
      prize: f.get('kind') === 'sku' ? { sku: prize } : { text: prize },
      entry_s: Number(f.get('entry_s')), winners: Number(f.get('winners')), rule: f.get('rule'),
    };
    const ref = this.sock.send('giveaway.start', body);
    if (!ref) toast('Not connected.', 'error');
  }

  render() {
    const g = this.g;
    const id = g ? g.giveaway_id : '';
    const kids = [];
    if (this.host) {
      kids.push(h('div', { class: 'card-head' }, h('h2', { text: 'Giveaway' }), h('span', { class: 'sub', text: 'A verifiable random draw' })));
    }
    if (g) {
      // The text column (like the product card's), then one action on the
      // right: Enter while open, Verify once ended.
      const left = Math.max(0, Date.parse(g.ends_at) - (this.sock.now ? this.sock.now() : Date.now()));
      const info = h('div', { class: 'p-info' },
        h('span', { class: 'pin-tag', text: 'Giveaway' }),
        h('p', { class: 'p-title', id: 'gw-prize', text: prizeText(g.prize) }),
        h('p', { class: 'sub' },
          h('span', { id: 'gw-count', text: `${g.entrants || 0} entered` }), ' · ',
          h('span', { id: 'gw-winners', text: `${g.winner_count} to win` }), ' · ',
          this.ended ? 'entry closed' : h('span', { id: 'gw-clock', text: `ends in ${clock(left)}` })));
      kids.push(info);
      if (this.ended) {
        const names = (this.ended.winners || []).map((w) => `${w.name} (${w.entry})`).join(', ') || 'nobody entered';
        const mine = this.entry && (this.ended.winners || []).some((w) => w.entry === this.entry);
        info.append(h('p', { id: 'gw-result', class: 'sub', dataset: { won: mine ? 'true' : 'false' }, text: mine ? `You won! Winners: ${names}` : `Winners: ${names}` }));
        kids.push(h('a', { id: 'gw-verify', class: this.host ? '' : 'add', href: verifyURL(this.room, id, this.entry), target: '_blank', rel: 'noopener', text: 'Verify' }));
      } else if (!this.host) {
        if (this.entry) info.append(h('p', { id: 'gw-entry', class: 'sub', text: `You're in · entry ${this.entry}` }));
        else kids.push(h('button', { id: 'gw-enter', type: 'button', class: 'add', onclick: () => this.enter() }, 'Enter'));
      }
    }
    if (this.host && (!g || this.ended)) {
      const form = h('form', { id: 'gw-form', class: 'form-grid', autocomplete: 'off', onsubmit: (e) => { e.preventDefault(); this.start(e.target); } },
        h('label', { class: 'full' }, 'Prize ', h('input', { name: 'prize', required: true, maxlength: 200, placeholder: 'A signed poster, or a product SKU' })),
        h('label', null, 'Prize is ', h('select', { name: 'kind' }, h('option', { value: 'text' }, 'a text'), h('option', { value: 'sku' }, 'a product SKU'))),
        h('label', null, 'Entry (s) ', h('input', { name: 'entry_s', type: 'number', inputmode: 'numeric', min: 1, max: 300, value: 60 })),
        h('label', null, 'Winners ', h('input', { name: 'winners', type: 'number', min: 1, max: 20, value: 1 })),
        h('label', null, 'Who may enter ', h('select', { name: 'rule' },
          h('option', { value: 'signed_in' }, 'anyone signed in'), h('option', { value: 'bought' }, 'buyers'), h('option', { value: 'chatted' }, 'chatters'))),
        h('div', { class: 'row full' }, h('button', { type: 'submit', class: 'primary', id: 'gw-start' }, 'Start giveaway')));
      kids.push(form);
    }
    this.root.replaceChildren(...kids);
    if (!this.host) this.root.hidden = !g;
    this.root.dataset.state = !g ? 'none' : this.ended ? 'ended' : 'open';
  }
}

// verifyPage fills /static/giveaway-verify.html?room=…&g=…[&entry=…].
async function verifyPage() {
  const q = new URLSearchParams(location.search);
  const room = q.get('room') || '';
  const id = q.get('g') || '';
  const entry = q.get('entry') || recall(room, id);
  const out = document.getElementById('checks');
  const head = document.getElementById('verdict');
  try {
    const res = await fetch(`/api/v1/rooms/${encodeURIComponent(room)}/giveaways/${encodeURIComponent(id)}`, { cache: 'no-store' });
    const rec = await res.json();
    if (!res.ok) throw new Error((rec.error && rec.error.message) || `HTTP ${res.status}`);
    document.getElementById('summary').textContent =
      `Giveaway ${rec.giveaway_id} in room ${room}: ${prizeText(rec.prize)}; ${rec.entrants} entrants; winners: ${(rec.winners || []).map((w) => `${w.name} (${w.entry})`).join(', ') || 'none'}.`;
    const checks = await verifyGiveaway(rec, entry);
    out.replaceChildren(...checks.map((c) => h('li', { dataset: { ok: c.ok ? 'true' : 'false' } }, `${c.ok ? '✓' : '✗'} ${c.name}`, c.detail ? h('small', { class: 'muted' }, ` — ${c.detail}`) : null)));
    const ok = checks.every((c) => c.ok);
    head.textContent = ok ? 'The draw checks out.' : 'The draw does NOT check out.';
    document.body.dataset.verified = ok ? 'true' : 'false';
  } catch (err) {
    head.textContent = `Could not verify: ${err.message}`;
    document.body.dataset.verified = 'false';
  }
}

// mount waits for the page's socket, then places the card.
function mount() {
  if (document.body.classList.contains('verify-page')) { verifyPage(); return; }
  const page = document.body.classList.contains('viewer-page') ? 'viewer' : document.querySelector('main.console') ? 'studio' : '';
  if (!page) return;
  const room = decodeURIComponent(location.pathname.split('/').filter(Boolean).pop() || '');
  let hooked = null;
  const tryHook = () => {
    const sock = window.liveroom && window.liveroom.ws;
    if (!sock || sock === hooked) return;
    hooked = sock;
    const card = new GiveawayCard(sock, room, page === 'studio');
    const old = document.getElementById('giveaway');
    if (old) old.replaceWith(card.root);
    else if (page === 'viewer') document.querySelector('.panel .chat').before(card.root);
    else document.querySelectorAll('main.console .col')[1]?.prepend(card.root);
    window.liveroom.giveaway = card;
  };
  tryHook();
  setInterval(tryHook, 200);
}

if (typeof document !== 'undefined' && document.body) mount();
