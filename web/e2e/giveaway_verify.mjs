// Runs the verify page's draw (web/static/js/giveaway.js) under node on
// cases read as JSON from stdin, [{seed, id, entries, winners}], and prints
// [{hash, winners}] for giveaway_verify_test.go to compare with the server.
import { draw, entrantsHash } from '../static/js/giveaway.js';

let input = '';
for await (const chunk of process.stdin) input += chunk;
const out = [];
for (const c of JSON.parse(input)) {
  out.push({ hash: await entrantsHash(c.entries), winners: await draw(c.seed, c.id, c.entries, c.winners) });
}
console.log(JSON.stringify(out));
