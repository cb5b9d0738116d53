package cart

import "github.com/redis/go-redis/v9"

// The giveaway scripts, under a room's prefix P like the cart's
// (store_redis_lua.go) and sharing its prelude. Keys:
//
//	gw:ID      hash: id sku text rule winners commit seed host started ends
//	           state (open|closed|ended) n cur held [hash result ended ann] (ms
//	           times; ann: until when the ender may announce, or 'done')
//	gw:ID:u    hash user -> entry id
//	gw:ID:l    list of entry ids in entry order (the draw's list once closed)
//	gw:ID:e    hash entry id -> {"u": user, "n": name}
//	gw:run     string: the room's open or closed giveaway
//	chatters   zset user -> when they last posted (ms), for rule "chatted"
//
// Outside the room's slot, <prefix>giveaway:due is a zset of "room\nid" of
// every giveaway not yet ended, by its end, and of every ended one not yet
// announced, by its announcement lease: what EndDue looks at.
//
// Redis TIME is the one clock (ARGV now = 0); a positive now replaces it
// (tests). A giveaway's keys expire giveawayKeep after it ends.
const luaGiveawayClock = `
local function clock(a)
  local n = tonumber(a)
  if n and n > 0 then return n end
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
`

func newGiveawayScript(body string) *redis.Script { return newScript(luaGiveawayClock + body) }

// ARGV: P id sku text rule winners commit seed host entry-ms now
// -> {started, ends, currency}
var luaGwStart = newGiveawayScript(`
local id, sku, w = ARGV[2], ARGV[3], tonumber(ARGV[6])
local now = clock(ARGV[11])
local run = redis.call('GET', P .. 'gw:run')
if run then return fail('bad_request', '-', 'giveaway ' .. run .. ' is still running; one at a time') end
local cur = ''
if sku ~= '' then
  local pj = redis.call('HGET', P .. 'products', sku)
  if not pj then return fail('not_found', 'prize', 'no product "' .. sku .. '"') end
  local st = tonumber(redis.call('HGET', P .. 'stock', sku) or '0')
  if st < w then return fail('sold_out', 'prize', 'only ' .. st .. ' of ' .. sku .. ' in stock') end
  redis.call('HINCRBY', P .. 'stock', sku, -w)
  redis.call('HINCRBY', P .. 'pheld', sku, w)
  cur = cjson.decode(pj).currency
else
  w = 0
end
local ends = now + tonumber(ARGV[10])
redis.call('HSET', P .. 'gw:' .. id, 'id', id, 'sku', sku, 'text', ARGV[4], 'rule', ARGV[5], 'winners', ARGV[6],
  'commit', ARGV[7], 'seed', ARGV[8], 'host', ARGV[9], 'started', now, 'ends', ends, 'state', 'open',
  'n', 0, 'cur', cur, 'held', w)
redis.call('SET', P .. 'gw:run', id)
return {now, ends, cur}
`)

// ARGV: P id user entry name-json max now keep
// -> {'ok'|'dup'|'retry', entry, n}
var luaGwEnter = newGiveawayScript(`
local id, user, entry = ARGV[2], ARGV[3], ARGV[4]
local k = P .. 'gw:' .. id
local g = redis.call('HMGET', k, 'state', 'ends', 'host', 'rule')
if not g[1] then return fail('not_found', 'giveaway_id', 'no giveaway "' .. id .. '"') end
local old = redis.call('HGET', k .. ':u', user)
if old then return {'dup', old, redis.call('LLEN', k .. ':l')} end
local now = clock(ARGV[7])
if g[1] ~= 'open' or now >= tonumber(g[2]) then return fail('giveaway_closed', '-', 'giveaway ' .. id .. ' is closed for entries') end
if user == g[3] then return fail('not_allowed', '-', 'the host cannot enter their own giveaway') end
local n = redis.call('LLEN', k .. ':l')
if n >= tonumber(ARGV[6]) then return fail('limit_reached', '-', 'giveaway ' .. id .. ' is full (' .. n .. ' entrants)') end
if g[4] == 'chatted' then
  if not redis.call('ZSCORE', P .. 'chatters', user) then
    return fail('not_allowed', '-', 'this giveaway is for viewers who have chatted in the room; say something first')
  end
elseif g[4] == 'bought' then
  local ok = false
  for _, m in ipairs(redis.call('ZRANGEBYSCORE', uk(user) .. ':keys', now - tonumber(ARGV[8]), '+inf')) do
    if string.sub(m, 1, 1) == 'o' then ok = true break end
  end
  if not ok then return fail('not_allowed', '-', 'this giveaway is for viewers who have bought in this room') end
end
if redis.call('HSETNX', k .. ':e', entry, ARGV[5]) == 0 then return {'retry', '', n} end
redis.call('HSET', k .. ':u', user, entry)
redis.call('RPUSH', k .. ':l', entry)
redis.call('HINCRBY', k, 'n', 1)
return {'ok', entry, n + 1}
`)

// ARGV: P id now -> state after the call (” if there is no such giveaway).
// Closing is idempotent: only an open giveaway whose end has passed by
// Redis' clock becomes closed, and no entry gets in after it.
var luaGwClose = newGiveawayScript(`
local k = P .. 'gw:' .. ARGV[2]
local g = redis.call('HMGET', k, 'state', 'ends')
if not g[1] then return '' end
if g[1] == 'open' and clock(ARGV[3]) >= tonumber(g[2]) then
  redis.call('HSET', k, 'state', 'closed')
  return 'closed'
end
return g[1]
`)

// ARGV: P id entrants-hash result-json now keep lease order-id order-json ...
// -> the end of this caller's announcement lease if this call ended the
// giveaway, 0 if it was not closed (ended by another node already). The prize orders, their outbox entries and the
// return of unused held units happen here, exactly once.
var luaGwFinish = newGiveawayScript(`
local id = ARGV[2]
local k = P .. 'gw:' .. id
local g = redis.call('HMGET', k, 'state', 'sku', 'held')
if g[1] ~= 'closed' then return 0 end
local now, keep = clock(ARGV[5]), tonumber(ARGV[6])
local norders = (#ARGV - 7) / 2
for i = 8, #ARGV, 2 do
  redis.call('SET', P .. 'order:' .. ARGV[i], ARGV[i + 1])
  redis.call('ZADD', P .. 'orders', 0, ARGV[i])
  redis.call('ZADD', P .. 'outbox', now, ARGV[i])
end
local held = tonumber(g[3] or '0')
if g[2] ~= '' and held > 0 then
  redis.call('HINCRBY', P .. 'pheld', g[2], -held)
  redis.call('HINCRBY', P .. 'stock', g[2], held - norders)
end
local ann = now + tonumber(ARGV[7])
redis.call('HSET', k, 'state', 'ended', 'hash', ARGV[3], 'result', ARGV[4], 'held', 0, 'ended', now, 'ann', ann)
if redis.call('GET', P .. 'gw:run') == id then redis.call('DEL', P .. 'gw:run') end
for _, s in ipairs({'', ':u', ':l', ':e'}) do redis.call('PEXPIRE', k .. s, keep) end
return ann
`)

// ARGV: P id now lease -> the end of the caller's new announcement lease
// if it claimed an ended, unannounced giveaway whose lease is over; 0 if
// the lease runs (another node announces); -1 if there is nothing to
// announce (announced, gone, or ended before leases were kept).
var luaGwClaim = newGiveawayScript(`
local k = P .. 'gw:' .. ARGV[2]
local g = redis.call('HMGET', k, 'state', 'ann')
if g[1] ~= 'ended' or not g[2] or g[2] == 'done' then return -1 end
local now = clock(ARGV[3])
if now < tonumber(g[2]) then return 0 end
local ann = now + tonumber(ARGV[4])
redis.call('HSET', k, 'ann', ann)
return ann
`)

// ARGV: P id -> 1
var luaGwAnnounced = newGiveawayScript(`
local k = P .. 'gw:' .. ARGV[2]
if redis.call('HGET', k, 'state') == 'ended' then redis.call('HSET', k, 'ann', 'done') end
return 1
`)

// ARGV: P user now max ttl
var luaGwChat = newGiveawayScript(`
local k = P .. 'chatters'
local now = clock(ARGV[3])
redis.call('ZADD', k, now, ARGV[2])
local n = redis.call('ZCARD', k)
if n > tonumber(ARGV[4]) then redis.call('ZPOPMIN', k, n - tonumber(ARGV[4])) end
redis.call('PEXPIRE', k, ARGV[5])
return 1
`)
