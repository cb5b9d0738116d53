// Video layers (simulcast): the viewer's quality choice and "video paused"
// notice, and the studio's count of viewers per layer. The server picks each
// viewer's layer from its bandwidth; these only read and steer that over the
// WHEP/WHIP session resources (docs/protocol.md, "Video layers"):
//   GET/POST <whep session>/layer   {"quality": "auto" | "high" | "low"}
//   GET      <whip session>/layers  (the host's token)

const POLL_MS = 2000;
export const PAUSED_TEXT = 'video paused: connection too slow';

// QualityControl shows a small Auto/High/Low selector over the viewer's
// video and a notice while the server has paused the video. getSession
// returns the current WHEP session URL ('' while there is none).
export class QualityControl {
  constructor(stage, getSession, onPaused = () => {}) {
    this.getSession = getSession;
    this.onPaused = onPaused;
    this.quality = 'auto';
    this.state = null; // the last answer, for tests
    this.box = document.createElement('div');
    this.box.className = 'quality glass';
    this.box.id = 'quality';
    this.box.hidden = true;
    Object.assign(this.box.style, { position: 'absolute', left: '12px', bottom: '12px', zIndex: 3, padding: '4px 8px', fontSize: '13px' });
    const label = document.createElement('label');
    label.textContent = 'Quality ';
    this.select = document.createElement('select');
    this.select.id = 'quality-select';
    for (const [v, t] of [['auto', 'Auto'], ['high', 'High'], ['low', 'Low']]) {
      const o = document.createElement('option');
      o.value = v;
      o.textContent = t;
      this.select.append(o);
    }
    label.append(this.select);
    this.notice = document.createElement('p');
    this.notice.id = 'paused-note';
    this.notice.className = 'paused-note';
    this.notice.setAttribute('role', 'status');
    this.notice.textContent = PAUSED_TEXT;
    this.notice.hidden = true;
    Object.assign(this.notice.style, {
      position: 'absolute', left: '50%', top: '45%', transform: 'translate(-50%, -50%)', zIndex: 3,
      padding: '8px 14px', borderRadius: '8px', background: 'rgba(0, 0, 0, 0.7)', color: '#fff',
    });
    this.box.append(label);
    stage.append(this.box, this.notice);
    this.select.addEventListener('change', () => this.set(this.select.value));
    setInterval(() => this.poll(), POLL_MS);
  }

  async set(quality) {
    this.quality = quality;
    await this.request('POST', JSON.stringify({ quality }));
  }

  poll() {
    return this.request('GET');
  }

  async request(method, body) {
    const session = this.getSession();
    if (!session) {
      this.show(null);
      return;
    }
    try {
      const res = await fetch(`${session}/layer`, {
        method, body, cache: 'no-store',
        headers: body ? { 'Content-Type': 'application/json' } : {},
        signal: AbortSignal.timeout(5000),
      });
      if (!res.ok) return; // an old server, or the session just ended
      const st = await res.json();
      // A new session (reconnect) starts on auto: tell it the choice again.
      if (method === 'GET' && st.quality !== this.quality) {
        await this.set(this.quality);
        return;
      }
      this.show(st);
    } catch {
      // network trouble: the player shows it; keep the last state
    }
  }

  show(st) {
    this.state = st;
    const paused = !!(st && st.paused);
    this.notice.hidden = !paused;
    this.onPaused(paused);
    this.box.dataset.layer = st ? st.layer : '';
    // A single-layer stream has nothing to choose from.
    this.box.hidden = !st || (st.layers || []).length < 2;
  }
}

// watchLayers polls the host's layer counts and writes them into el, e.g.
// "f 12 · h 3 · q 1 · paused 2". getSession/getToken return the WHIP
// session URL and the host token.
export function watchLayers(el, getSession, getToken) {
  const tick = async () => {
    const session = getSession();
    if (!session) {
      el.hidden = true;
      return;
    }
    try {
      const res = await fetch(`${session}/layers`, {
        cache: 'no-store', headers: { Authorization: `Bearer ${getToken()}` }, signal: AbortSignal.timeout(5000),
      });
      if (!res.ok) return;
      const st = await res.json();
      const parts = (st.layers || []).map((l) => `${l.rid || 'video'} ${l.viewers}`);
      if (st.paused) parts.push(`paused ${st.paused}`);
      el.textContent = parts.length ? `Viewers by layer: ${parts.join(' · ')}` : '';
      el.hidden = !parts.length;
      el.dataset.layers = JSON.stringify(st);
    } catch {
      // keep the last figures
    }
  };
  setInterval(tick, POLL_MS);
  tick();
}
