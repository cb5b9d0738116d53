// Browser driver for access_test.go: how the pages sign in.
//   - A host who opens the studio with only the stream key is told that it
//     works in the encoder and that the studio needs the host link.
//   - With the host link, the studio's encoder fields show the stream key
//     (never the host token), and its room socket is signed in.
//   - Every room WebSocket the pages open signs in with an auth frame: no
//     URL carries a token.
//   - A guest keeps one id across reloads (its guest token in localStorage).
// Prints one JSON result line prefixed "E2E_RESULT ".
//
//   node access.mjs --base URL --room ROOM --token HOST_TOKEN --key STREAM_KEY
import { parseArgs } from 'node:util';
import { launch, finish } from './lib.mjs';

const { values: opt } = parseArgs({
  options: {
    base: { type: 'string', default: '' },
    room: { type: 'string', default: 'e2e' },
    token: { type: 'string', default: '' },
    key: { type: 'string', default: '' },
    chromium: { type: 'string', default: process.env.CHROMIUM || '/usr/bin/chromium' },
    timeout: { type: 'string', default: '20000' },
  },
});
if (!opt.base || !opt.token || !opt.key) {
  console.error('usage: node access.mjs --base URL --room ROOM --token HOST_TOKEN --key STREAM_KEY');
  process.exit(2);
}
const STEP = Number(opt.timeout);
const result = { ok: false, step: 'launch', logs: [], wsURLs: [], sentFirst: [] };
let browser;

function watch(page, name) {
  page.on('console', (m) => result.logs.push(`${name} console.${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => result.logs.push(`${name} pageerror: ${e.message}`));
  page.on('websocket', (ws) => {
    result.wsURLs.push(ws.url());
    let first = true;
    ws.on('framesent', (f) => {
      if (!first) return;
      first = false;
      try {
        const m = JSON.parse(f.payload);
        result.sentFirst.push({ page: name, type: m.type, hasToken: typeof m.token === 'string' && m.token !== '', hasGuest: typeof m.guest === 'string' && m.guest !== '' });
      } catch {
        result.sentFirst.push({ page: name, type: '(not JSON)' });
      }
    });
  });
}

async function main() {
  const base = opt.base.replace(/\/$/, '');
  const room = encodeURIComponent(opt.room);
  browser = await launch(opt.chromium);
  const desk = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  await desk.grantPermissions(['camera', 'microphone'], { origin: base });

  result.step = 'studio with the stream key only';
  const keyed = await desk.newPage();
  watch(keyed, 'studio-key');
  await keyed.goto(`${base}/studio/${room}#key=${encodeURIComponent(opt.key)}`);
  await keyed.waitForFunction(() => !document.getElementById('key-note').hidden, null, { timeout: STEP });
  result.keyNote = await keyed.locator('#key-note').textContent();
  result.keyMessage = await keyed.locator('#message').textContent();
  result.keyboxOpen = await keyed.evaluate(() => document.getElementById('keybox').open);
  // Its room socket is a guest's (read-only chat), not refused as a host.
  await keyed.waitForFunction(() => document.getElementById('ws-state').dataset.state === 'open', null, { timeout: STEP });
  result.keyedRole = await keyed.evaluate(() => window.liveroom.ws.you && window.liveroom.ws.you.role);
  await keyed.close();

  result.step = 'studio with the host link';
  const studio = await desk.newPage();
  watch(studio, 'studio');
  await studio.goto(`${base}/studio/${room}#token=${encodeURIComponent(opt.token)}`);
  await studio.waitForFunction(() => document.getElementById('ws-state').dataset.state === 'open', null, { timeout: STEP });
  result.hostRole = await studio.evaluate(() => window.liveroom.ws.you && window.liveroom.ws.you.role);
  await studio.waitForFunction(() => document.getElementById('token-show').value !== '', null, { timeout: STEP });
  result.encoderKey = await studio.evaluate(() => document.getElementById('token-show').value);
  result.hostNoteHidden = await studio.evaluate(() => document.getElementById('key-note').hidden);

  result.step = 'guest keeps its id across reloads';
  const viewer = await desk.newPage();
  watch(viewer, 'viewer');
  await viewer.goto(`${base}/r/${room}`);
  const guestId = () => viewer.waitForFunction(() => window.liveroom.you && window.liveroom.you.id, null, { timeout: STEP }).then((h) => h.jsonValue());
  result.guestIds = [await guestId()];
  await viewer.reload();
  result.guestIds.push(await guestId());
  result.guestStored = await viewer.evaluate(() => (localStorage.getItem('liveroom.guest') || '').startsWith('g1.'));

  result.ok = true;
  result.step = 'done';
}

await finish(result, main, () => browser);
