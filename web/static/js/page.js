// Page plumbing shared by the studio and the viewer: room id from the path,
// token from the fragment, and the status line.

// roomFromPath returns the last path segment: /studio/{room}, /r/{room}.
export function roomFromPath() {
  const parts = location.pathname.split('/').filter(Boolean);
  if (parts.length < 2) return '';
  try {
    return decodeURIComponent(parts[parts.length - 1]);
  } catch {
    return '';
  }
}

// takeToken reads #token=… into sessionStorage under key, strips it from the
// address bar (so it is not shared by copy-paste), and returns the token.
export function takeToken(key) {
  const params = new URLSearchParams(location.hash.slice(1));
  const fromHash = (params.get('token') || params.get('key') || '').trim();
  if (fromHash) {
    saveToken(key, fromHash);
    history.replaceState(history.state, '', location.pathname + location.search);
    return fromHash;
  }
  return loadToken(key);
}

export function loadToken(key) {
  try {
    return sessionStorage.getItem(key) || '';
  } catch {
    return '';
  }
}

export function saveToken(key, token) {
  try {
    if (token) sessionStorage.setItem(key, token);
    else sessionStorage.removeItem(key);
  } catch {
    // storage disabled: the token lives for this page only
  }
}

// Status shows a state pill and a message line; the body carries the state
// as data-state for styling and for the browser test.
export class Status {
  constructor(pill, line, labels) {
    this.pill = pill;
    this.line = line;
    this.labels = labels;
    this.state = '';
  }

  set(state, message = '', kind = 'info') {
    // Unchanged text is not rewritten, so screen readers do not repeat it.
    if (state === this.state && message === this.line.textContent && kind === this.line.dataset.kind) return;
    this.state = state;
    this.pill.dataset.state = state;
    this.pill.textContent = this.labels[state] || state;
    this.line.textContent = message;
    this.line.dataset.kind = kind;
    document.body.dataset.state = state;
  }
}

export function el(id) {
  const node = document.getElementById(id);
  if (!node) throw new Error(`missing #${id}`);
  return node;
}

// h builds an element. Attributes are set as properties or attributes;
// children are nodes or strings, and strings always become text nodes, so
// user text can never turn into markup.
export function h(tag, attrs = null, ...children) {
  const node = document.createElement(tag);
  if (attrs) {
    for (const [k, v] of Object.entries(attrs)) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') node.className = v;
      else if (k === 'text') node.textContent = v;
      else if (k === 'dataset') Object.assign(node.dataset, v);
      else if (k.startsWith('on') && typeof v === 'function') node.addEventListener(k.slice(2), v);
      else if (k === 'hidden' || k === 'disabled') node[k] = !!v;
      else node.setAttribute(k, v === true ? '' : String(v));
    }
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(node, c);
    else node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

// money formats cents in the given ISO currency for the reader's locale.
export function money(cents, currency = 'EUR') {
  const n = Number(cents || 0) / 100;
  try {
    return new Intl.NumberFormat(undefined, { style: 'currency', currency: currency || 'EUR' }).format(n);
  } catch {
    return `${n.toFixed(2)} ${currency || ''}`.trim();
  }
}

// compact shows counts the way people read them: 999, 1.2K, 34K.
export function compact(n) {
  try {
    return new Intl.NumberFormat(undefined, { notation: 'compact', maximumFractionDigits: 1 }).format(n || 0);
  } catch {
    return String(n || 0);
  }
}

// clock formats a duration in ms as m:ss (or h:mm:ss).
export function clock(ms) {
  const s = Math.max(0, Math.ceil(ms / 1000));
  const hh = Math.floor(s / 3600);
  const mm = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return hh ? `${hh}:${String(mm).padStart(2, '0')}:${ss}` : `${mm}:${ss}`;
}

// imageURL returns a URL the page's CSP lets it load, or '' for none: https
// anywhere, http only from this origin. A product image the server seeded
// under another name for this host (localhost vs 127.0.0.1) is loaded from
// this origin's /static/ instead.
export function imageURL(raw) {
  if (!raw) return '';
  let u;
  try {
    u = new URL(raw, location.href);
  } catch {
    return '';
  }
  if (u.origin === location.origin) return u.href;
  if (u.protocol === 'https:') return u.href;
  if (u.protocol === 'http:' && u.pathname.startsWith('/static/')) return location.origin + u.pathname;
  return '';
}

// productImage is an <img> for a product, or a neutral placeholder.
export function productImage(p, cls = 'thumb') {
  const src = imageURL(p && p.image_url);
  if (!src) return h('div', { class: `${cls} placeholder`, 'aria-hidden': 'true' }, (p && p.title ? p.title[0] : '?'));
  const img = h('img', { class: cls, alt: '', src, loading: 'lazy', decoding: 'async' });
  img.addEventListener('error', () => img.replaceWith(h('div', { class: `${cls} placeholder`, 'aria-hidden': 'true' }, (p && p.title ? p.title[0] : '?'))), { once: true });
  return img;
}

// newKey returns a random idempotency key.
export function newKey(prefix = 'k') {
  const b = new Uint8Array(12);
  crypto.getRandomValues(b);
  return prefix + '_' + Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}

// toast shows a short message at the bottom of the screen.
export function toast(text, kind = 'info', ms = 3500) {
  let box = document.getElementById('toasts');
  if (!box) {
    box = h('div', { id: 'toasts', class: 'toasts', role: 'status', 'aria-live': 'polite' });
    document.body.append(box);
  }
  const t = h('div', { class: `toast ${kind}` }, text);
  box.append(t);
  setTimeout(() => {
    t.classList.add('out');
    setTimeout(() => t.remove(), 300);
  }, ms);
}

// copyText copies to the clipboard, falling back to a selection for
// browsers (or insecure origins) without the async clipboard.
export async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    const ta = h('textarea', { class: 'offscreen', readonly: true });
    ta.value = text;
    document.body.append(ta);
    ta.select();
    let ok = false;
    try { ok = document.execCommand('copy'); } catch { /* ignore */ }
    ta.remove();
    return ok;
  }
}
