// WHIP (RFC 9725) and WHEP client: one HTTP offer/answer exchange with
// non-trickle ICE, shared by the studio (publish) and the viewer (play).

// HTTPError carries the server's JSON error ({"error":{"code","message"}}).
export class HTTPError extends Error {
  constructor(status, code, message) {
    super(message);
    this.name = 'HTTPError';
    this.status = status;
    this.code = code;
  }
}

// errorFromResponse reads a failed response into an HTTPError.
export async function errorFromResponse(res) {
  let code = '';
  let message = '';
  try {
    const text = await res.text();
    try {
      const body = JSON.parse(text);
      if (body && body.error) {
        code = String(body.error.code || '');
        message = String(body.error.message || '');
      }
    } catch {
      message = text.trim().slice(0, 200);
    }
  } catch {
    // body unreadable: fall back to the status line
  }
  if (!message) message = `HTTP ${res.status} ${res.statusText}`.trim();
  const err = new HTTPError(res.status, code, message);
  err.retryAfter = Number(res.headers.get('Retry-After')) || 0; // seconds; 0 = not said
  return err;
}

// waitForIceGathering resolves when gathering completes or after timeoutMs,
// whichever comes first: a stalled candidate must not block the exchange.
export function waitForIceGathering(pc, timeoutMs = 3000) {
  if (pc.iceGatheringState === 'complete') return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      pc.removeEventListener('icegatheringstatechange', check);
      resolve();
    };
    const check = () => {
      if (pc.iceGatheringState === 'complete') done();
    };
    const timer = setTimeout(done, timeoutMs);
    pc.addEventListener('icegatheringstatechange', check);
  });
}

// parseIceServers reads `Link: <turn:…>; rel="ice-server"; username=…;
// credential=…` headers (fetch joins repeated headers with ", ").
export function parseIceServers(header) {
  const servers = [];
  if (!header) return servers;
  const linkRe = /<([^>]*)>((?:\s*;\s*[^;,=\s]+(?:\s*=\s*(?:"[^"]*"|[^;,]*))?)*)/g;
  const paramRe = /;\s*([^;,=\s]+)(?:\s*=\s*(?:"([^"]*)"|([^;,]*)))?/g;
  for (const m of header.matchAll(linkRe)) {
    const params = {};
    for (const p of m[2].matchAll(paramRe)) {
      params[p[1].toLowerCase()] = (p[2] ?? p[3] ?? '').trim();
    }
    if (params.rel !== 'ice-server') continue;
    const url = m[1].trim();
    if (!/^(stun|stuns|turn|turns):/i.test(url)) continue;
    const server = { urls: url };
    if (params.username) server.username = params.username;
    if (params.credential) server.credential = params.credential;
    servers.push(server);
  }
  return servers;
}

// negotiate posts pc's offer to endpoint and applies the answer. It returns
// the session resource URL (for DELETE), any ICE servers the server named and
// the id of the node that holds the session (X-Liveroom-Node; '' if unsaid).
export async function negotiate(endpoint, pc, { token = '', timeoutMs = 15000 } = {}) {
  const offer = await pc.createOffer();
  await pc.setLocalDescription(offer);
  await waitForIceGathering(pc);

  const headers = { 'Content-Type': 'application/sdp' };
  if (token) headers.Authorization = `Bearer ${token}`;
  const ctrl = new AbortController();
  const timer = setTimeout(() => ctrl.abort(), timeoutMs);
  let res;
  try {
    res = await fetch(endpoint, {
      method: 'POST',
      headers,
      body: pc.localDescription.sdp,
      signal: ctrl.signal,
      cache: 'no-store',
    });
  } catch (err) {
    throw new HTTPError(0, 'network', ctrl.signal.aborted ? 'the server did not answer in time' : 'network error: the server is unreachable');
  } finally {
    clearTimeout(timer);
  }
  if (res.status !== 201) {
    if (res.ok) throw new HTTPError(res.status, 'protocol', `unexpected status ${res.status} (want 201)`);
    throw await errorFromResponse(res);
  }
  const loc = res.headers.get('Location');
  if (!loc) throw new HTTPError(res.status, 'protocol', 'the server sent no Location header');
  const location = new URL(loc, res.url || endpoint).href;
  const iceServers = parseIceServers(res.headers.get('Link'));
  const node = res.headers.get('X-Liveroom-Node') || '';
  const sdp = await res.text();
  if (!sdp.startsWith('v=')) {
    endSession(location, token); // the caller closes pc
    throw new HTTPError(res.status, 'protocol', 'the server answer is not SDP');
  }
  await pc.setRemoteDescription({ type: 'answer', sdp });
  if (iceServers.length) {
    // Too late for this gathering (non-trickle), but keeps them for restarts.
    try { pc.setConfiguration({ ...pc.getConfiguration(), iceServers }); } catch { /* ignore */ }
  }
  return { location, iceServers, node };
}

// endSession deletes the session resource. keepalive lets it outlive the page
// (pagehide); failures are ignored: the server also times sessions out.
export function endSession(location, token = '', { keepalive = false } = {}) {
  if (!location) return Promise.resolve();
  const headers = {};
  if (token) headers.Authorization = `Bearer ${token}`;
  return fetch(location, { method: 'DELETE', headers, keepalive, signal: AbortSignal.timeout(5000) })
    .then((res) => res.arrayBuffer())
    .catch(() => {});
}

// closeSession ends a session cleanly: DELETE first, then close the peer.
// Closed the other way round, the server may already have dropped the session
// on the peer's DTLS close and answer the DELETE with 404.
export async function closeSession(pc, location, token = '') {
  await endSession(location, token);
  if (pc) pc.close();
}

// preferVideoCodecs orders a video transceiver's codecs: H264 (constrained
// baseline, packetization-mode 1 first), then VP8, keeping the repair codecs
// (rtx, red, fec). Browsers without H264 end up with VP8.
export function preferVideoCodecs(transceiver) {
  if (typeof transceiver.setCodecPreferences !== 'function') return;
  const caps = (RTCRtpSender.getCapabilities && RTCRtpSender.getCapabilities('video')) ||
    RTCRtpReceiver.getCapabilities('video');
  if (!caps) return;
  const rank = (c) => {
    const mime = c.mimeType.toLowerCase();
    const fmtp = c.sdpFmtpLine || '';
    if (mime === 'video/h264') {
      const pm1 = /packetization-mode=1/.test(fmtp) ? 0 : 10;
      const profile = /profile-level-id=42e0/i.test(fmtp) ? 0 : /profile-level-id=4200/i.test(fmtp) ? 1 : 2;
      return pm1 + profile;
    }
    if (mime === 'video/vp8') return 20;
    if (['video/rtx', 'video/red', 'video/ulpfec', 'video/flexfec-03'].includes(mime)) return 30;
    return -1;
  };
  const codecs = caps.codecs
    .map((c, i) => ({ c, r: rank(c), i }))
    .filter((x) => x.r >= 0)
    .sort((a, b) => a.r - b.r || a.i - b.i)
    .map((x) => x.c);
  try {
    transceiver.setCodecPreferences(codecs);
  } catch (err) {
    console.warn('setCodecPreferences failed, using browser defaults', err);
  }
}

// SIMULCAST_LAYERS are the studio's video layers, smallest first (rids as the
// server documents them: q, h, f). From a 1280x720 camera: 180p ~150 kbit/s,
// 360p ~600 kbit/s, 720p ~2.5 Mbit/s. Browsers drop the upper layers when
// the camera is smaller or the CPU or uplink is short; the server then
// serves what arrives.
export const SIMULCAST_LAYERS = [
  { rid: 'q', scaleResolutionDownBy: 4, maxBitrate: 150_000 },
  { rid: 'h', scaleResolutionDownBy: 2, maxBitrate: 600_000 },
  { rid: 'f', scaleResolutionDownBy: 1, maxBitrate: 2_500_000 },
];

// simulcastInit is the addTransceiver init for a published video track:
// three layers when there is a camera, one otherwise.
export function simulcastInit(track, streams) {
  const init = { direction: 'sendonly', streams };
  if (track && typeof track !== 'string') init.sendEncodings = SIMULCAST_LAYERS.map((l) => ({ ...l }));
  return init;
}
