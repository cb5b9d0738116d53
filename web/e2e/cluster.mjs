// Browser driver for cluster_test.go: two liveroom nodes share one Redis.
// A viewer waits on node B's room page; the host goes live from the studio
// on node A (a fake camera over WHIP); both B's waiting viewer and a second
// one that arrives later play the video that node B pulls from node A, and
// see the host's chat. Prints one JSON result line prefixed "E2E_RESULT ".
//
//   node cluster.mjs --origin http://127.0.0.1:8081 --edge http://127.0.0.1:8082 \
//     --room ROOM --token HOST_TOKEN --out DIR
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { launch, helpers, finish } from './lib.mjs';

const { values: opt } = parseArgs({
  options: {
    origin: { type: 'string', default: '' },
    edge: { type: 'string', default: '' },
    room: { type: 'string', default: 'e2e' },
    token: { type: 'string', default: '' },
    out: { type: 'string', default: 'artifacts' },
    chromium: { type: 'string', default: process.env.CHROMIUM || '/usr/bin/chromium' },
    timeout: { type: 'string', default: '20000' },
  },
});
if (!opt.origin || !opt.edge || !opt.token) {
  console.error('usage: node cluster.mjs --origin URL --edge URL --room ROOM --token HOST_TOKEN [--out DIR]');
  process.exit(2);
}
const STEP = Number(opt.timeout);
const { pageState, waitState, waitPlaying, sample } = helpers(STEP);
mkdirSync(opt.out, { recursive: true });

const result = { ok: false, step: 'launch', logs: [] };
let browser;

function watch(page, name) {
  page.on('console', (m) => result.logs.push(`${name} console.${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => result.logs.push(`${name} pageerror: ${e.message}`));
}

async function main() {
  const origin = opt.origin.replace(/\/$/, '');
  const edge = opt.edge.replace(/\/$/, '');
  const room = encodeURIComponent(opt.room);
  browser = await launch(opt.chromium);
  const phone = await browser.newContext({ viewport: { width: 360, height: 740 }, hasTouch: true });
  const desk = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  await desk.grantPermissions(['camera', 'microphone'], { origin });

  result.step = 'early viewer on the edge';
  const early = await phone.newPage();
  watch(early, 'early');
  await early.goto(`${edge}/r/${room}`);
  await early.waitForFunction(() => ['offline', 'connecting'].includes(document.body.dataset.state), null, { timeout: STEP });

  result.step = 'studio on the origin';
  const studio = await desk.newPage();
  watch(studio, 'studio');
  await studio.goto(`${origin}/studio/${room}#token=${encodeURIComponent(opt.token)}`);
  await studio.waitForFunction(() => document.getElementById('preview').videoWidth > 0, null, { timeout: STEP });
  await studio.getByRole('button', { name: 'Go live' }).click();
  await waitState(studio, 'live', 'studio');
  result.studio = await pageState(studio, '#preview');

  result.step = 'early viewer playing';
  await waitPlaying(early, 'early viewer');
  result.early = await sample(early);

  result.step = 'late viewer on the edge';
  const late = await phone.newPage();
  watch(late, 'late');
  await late.goto(`${edge}/r/${room}`);
  await waitPlaying(late, 'late viewer');
  await waitState(late, 'live', 'late viewer');
  result.late = await sample(late);
  await late.screenshot({ path: join(opt.out, 'cluster-edge-viewer.png') });

  result.step = 'host chat reaches the edge';
  await studio.fill('#chat-input', 'hello from node A');
  await studio.press('#chat-input', 'Enter');
  await late.waitForFunction(() => [...document.querySelectorAll('#chat .msg .text')].some((n) => n.textContent.includes('hello from node A')), null, { timeout: STEP });
  result.chatOnEdge = true;

  result.ok = true;
  result.step = 'done';
}

await finish(result, main, () => browser);
