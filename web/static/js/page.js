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
