package cart

import "github.com/redis/go-redis/v9"

// Auction keys, under the room's prefix P (so in the room's slot):
//
//	auc:ID         hash: id sku cur start reserve extend(ms) host state
//	               started ends top leader v seq [closed winner order]
//	auc:ID:bids    zset bidder -> highest bid placed (explicit or by proxy)
//	auc:ID:max     zset "<13 digits: 9999999999999-seq><user>" -> maximum, so
//	               that ZREVRANGE lists the highest first, set first on a tie
//	auc:ID:mm      hash user -> their member of auc:ID:max
//	auc:ID:nmax    hash user -> maximums set
//	auc:ID:rm      set of removed bidders
//	auc:ID:keys    set of "<len>:<user><key>" of accepted calls (idempotency)
//	auc:ID:names   hash user -> display name
//	auc:running    set of the room's running auction ids
//
// Outside any room: <prefix>auctions:due, a zset "room\x00id" by the time
// worth trying to close (a node writes it before starting the auction and
// moves it when an extension makes the close too early), which every node's
// closer reads. Every script reads the clock with Redis TIME: one clock for
// the cluster, whichever node runs it.
const luaAuctionPrelude = `
local MAXP = 100000000000
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function inc(p, ladder)
  if ladder then
    for _, b in ipairs(ladder) do
      if p < b.up_to_cents then return b.step_cents end
    end
  end
  if p < 2000 then return 100 elseif p < 10000 then return 200 elseif p < 50000 then return 500
  elseif p < 100000 then return 1000 elseif p < 500000 then return 2500 end
  return math.floor((p + 9999) / 10000) * 100
end
local function nextmin(st)
  if st.leader == '' then return st.start end
  return st.top + inc(st.top, st.ladder)
end
local function load(A)
  local f = redis.call('HMGET', A, 'state', 'ends', 'host', 'start', 'top', 'leader', 'extend', 'v', 'seq', 'reserve', 'sku', 'ladder')
  if not f[1] then return nil end
  local ladder = nil
  if f[12] and f[12] ~= '' then ladder = cjson.decode(f[12]) end
  return {ladder = ladder, state = f[1], ends = tonumber(f[2]), host = f[3], start = tonumber(f[4]), top = tonumber(f[5]),
    leader = f[6], extend = tonumber(f[7]), v = tonumber(f[8]), seq = tonumber(f[9]), reserve = tonumber(f[10]), sku = f[11]}
end
-- resolve lets maximums answer (auction.go has the rule); maximums do not
-- change meanwhile, so the two highest are all it needs.
local function resolve(A, st)
  local m = redis.call('ZREVRANGE', A .. ':max', 0, 1, 'WITHSCORES')
  local c = {}
  for i = 1, #m, 2 do c[#c + 1] = {u = string.sub(m[i], 14), m = tonumber(m[i + 1])} end
  local placed = {}
  for _ = 1, 1000000 do
    local ch = c[1]
    if ch and ch.u == st.leader then ch = c[2] end
    if not ch then break end
    local n = nextmin(st)
    if ch.m < n or n > MAXP then break end
    st.top, st.leader = n, ch.u
    placed[ch.u] = n
  end
  for u, n in pairs(placed) do redis.call('ZADD', A .. ':bids', n, u) end
end
local function reply(A, status, ext, prev)
  local h = redis.call('HGETALL', A)
  local f = redis.call('HMGET', A, 'leader', 'winner')
  local names = {'', ''}
  for i = 1, 2 do
    if f[i] and f[i] ~= '' then names[i] = redis.call('HGET', A .. ':names', f[i]) or '' end
  end
  return {status, ext, prev, h, names[1], names[2], now_ms()}
end
local function expire(A, keep)
  for _, k in ipairs({'', ':bids', ':max', ':mm', ':nmax', ':rm', ':keys', ':names'}) do
    redis.call('PEXPIRE', A .. k, keep)
  end
end
`

func newAuctionScript(body string) *redis.Script {
	return redis.NewScript(luaPrelude + luaOrderPrelude + luaAuctionPrelude + body)
}

// Replies of the scripts below (but close's 'stale'):
// {status, flags (1 the lead changed, 2 the end moved), previous leader,
// auction hash, leader's name, winner's name}

// ARGV: P id sku start dur-ms extend-ms reserve host max-running ladder-json(” = default)
var luaAuctionStart = newAuctionScript(`
local id, sku = ARGV[2], ARGV[3]
local pj = redis.call('HGET', P .. 'products', sku)
if not pj then return fail('not_found', 'sku', 'no product "' .. sku .. '"') end
local run = P .. 'auc:running'
if redis.call('SCARD', run) >= tonumber(ARGV[9]) then
  return fail('limit_reached', '-', 'an auction is already running in this room; stop it or wait for its end')
end
if tonumber(redis.call('HGET', P .. 'stock', sku) or '0') < 1 then return fail('sold_out', 'sku', sku .. ' is out of stock') end
redis.call('HINCRBY', P .. 'stock', sku, -1)
redis.call('HINCRBY', P .. 'pheld', sku, 1)
local now = now_ms()
local A = P .. 'auc:' .. id
redis.call('HSET', A, 'id', id, 'sku', sku, 'cur', cjson.decode(pj).currency, 'start', ARGV[4], 'reserve', ARGV[7],
  'extend', ARGV[6], 'host', ARGV[8], 'state', 'running', 'started', now, 'ends', now + tonumber(ARGV[5]),
  'top', 0, 'leader', '', 'v', 0, 'seq', 0, 'ladder', ARGV[10])
redis.call('SADD', run, id)
return reply(A, 'ok', 0, '')
`)

// ARGV: P id user name kind(bid|max) cents key max-sets
var luaAuctionBid = newAuctionScript(luaAuctionBidBody)

const luaAuctionBidBody = `
local A = P .. 'auc:' .. ARGV[2]
local user, kind, cents = ARGV[3], ARGV[5], tonumber(ARGV[6])
local st = load(A)
if not st then return fail('not_found', 'auction_id', 'no auction "' .. ARGV[2] .. '"') end
local kk = string.len(user) .. ':' .. user .. ARGV[7]
if redis.call('SISMEMBER', A .. ':keys', kk) == 1 then return reply(A, 'replay', 0, st.leader) end
local now = now_ms()
if st.state ~= 'running' or now >= st.ends then return fail('auction_ended', '-', 'auction ' .. ARGV[2] .. ' has ended') end
if user == st.host then return fail('not_allowed', '-', 'the host cannot bid in their own auction') end
if redis.call('SISMEMBER', A .. ':rm', user) == 1 then return fail('not_allowed', '-', 'a moderator removed you from this auction') end
local prev, top = st.leader, st.top
local n = nextmin(st)
if kind == 'bid' then
  if user == prev then return fail('already_leading', '-', 'you are already the highest bidder') end
  if cents < n then return fail('bid_too_low', 'amount_cents', 'the next bid is at least ' .. n) end
else
  if user == prev and cents <= top then return fail('bid_too_low', 'max_cents', 'your maximum must be above ' .. top) end
  if user ~= prev and cents < n then return fail('bid_too_low', 'max_cents', 'your maximum must be at least ' .. n) end
  if tonumber(redis.call('HGET', A .. ':nmax', user) or '0') >= tonumber(ARGV[8]) then
    return fail('limit_reached', '-', 'you set a maximum ' .. ARGV[8] .. ' times in this auction')
  end
end
redis.call('HSET', A .. ':names', user, ARGV[4])
if kind == 'max' then
  st.seq = st.seq + 1
  redis.call('HINCRBY', A .. ':nmax', user, 1)
  local old = redis.call('HGET', A .. ':mm', user)
  if old then redis.call('ZREM', A .. ':max', old) end
  local mem = string.format('%013d', 9999999999999 - st.seq) .. user
  redis.call('ZADD', A .. ':max', cents, mem)
  redis.call('HSET', A .. ':mm', user, mem)
else
  st.top, st.leader = cents, user
  redis.call('ZADD', A .. ':bids', cents, user)
end
resolve(A, st)
redis.call('SADD', A .. ':keys', kk)
local ext = 0
if st.leader ~= prev or st.top ~= top then
  st.v, ext = st.v + 1, 1
  if st.extend > 0 and st.ends - now < st.extend then st.ends, ext = now + st.extend, 3 end
end
redis.call('HSET', A, 'top', st.top, 'leader', st.leader, 'v', st.v, 'seq', st.seq, 'ends', st.ends)
return reply(A, 'ok', ext, prev)
`

// ARGV: P id user max-removed
var luaAuctionRemove = newAuctionScript(`
local A = P .. 'auc:' .. ARGV[2]
local user = ARGV[3]
local st = load(A)
if not st then return fail('not_found', 'auction_id', 'no auction "' .. ARGV[2] .. '"') end
local now = now_ms()
if st.state ~= 'running' or now >= st.ends then return fail('auction_ended', '-', 'auction ' .. ARGV[2] .. ' has ended') end
if redis.call('SISMEMBER', A .. ':rm', user) == 0 and redis.call('SCARD', A .. ':rm') >= tonumber(ARGV[4]) then
  return fail('limit_reached', '-', ARGV[4] .. ' bidders were removed from this auction already')
end
redis.call('SADD', A .. ':rm', user)
redis.call('ZREM', A .. ':bids', user)
local mm = redis.call('HGET', A .. ':mm', user)
if mm then
  redis.call('ZREM', A .. ':max', mm)
  redis.call('HDEL', A .. ':mm', user)
end
local prev, top = st.leader, st.top
local b = redis.call('ZREVRANGE', A .. ':bids', 0, 0, 'WITHSCORES')
if b[1] then st.leader, st.top = b[1], tonumber(b[2]) else st.leader, st.top = '', 0 end
resolve(A, st)
local fl = 0
if st.leader ~= prev or st.top ~= top then st.v, fl = st.v + 1, 1 end
redis.call('HSET', A, 'top', st.top, 'leader', st.leader, 'v', st.v)
return reply(A, 'ok', fl, prev)
`)

// ARGV: P id keep-ms
var luaAuctionStop = newAuctionScript(`
local A = P .. 'auc:' .. ARGV[2]
local st = load(A)
if not st then return fail('not_found', 'auction_id', 'no auction "' .. ARGV[2] .. '"') end
local now = now_ms()
if st.state ~= 'running' or now >= st.ends then return fail('auction_ended', '-', 'auction ' .. ARGV[2] .. ' has ended') end
redis.call('HSET', A, 'state', 'stopped', 'closed', now)
redis.call('SREM', P .. 'auc:running', ARGV[2])
redis.call('HINCRBY', P .. 'pheld', st.sku, -1)
redis.call('HINCRBY', P .. 'stock', st.sku, 1)
expire(A, tonumber(ARGV[3]))
return reply(A, 'ok', 0, st.leader)
`)

// The close: idempotent, whichever node runs it. The caller built the
// winner's order from the auction at version v (the lead cannot change
// after the end, so a stale v only means it looked before the end).
// ARGV: P id v order-id order-json (” = no sale) keep-ms pay-by-ms (0 = paid)
// -> reply with status 'closed' | 'done' (closed before) | 'not_yet'; or {'stale'}
var luaAuctionClose = newAuctionScript(`
local A = P .. 'auc:' .. ARGV[2]
local st = load(A)
if not st then return fail('not_found', 'auction_id', 'no auction "' .. ARGV[2] .. '"') end
if st.state ~= 'running' then return reply(A, 'done', 0, '') end
local now = now_ms()
if now < st.ends then return reply(A, 'not_yet', 0, '') end
local sale = st.leader ~= '' and st.top >= st.reserve
if st.v ~= tonumber(ARGV[3]) or sale ~= (ARGV[5] ~= '') then return {'stale'} end
redis.call('SREM', P .. 'auc:running', ARGV[2])
redis.call('HINCRBY', P .. 'pheld', st.sku, -1)
local winner, oid = '', ''
if sale then
  winner, oid = st.leader, ARGV[4]
  new_order(oid, ARGV[5], now, tonumber(ARGV[7]), winner)
else
  redis.call('HINCRBY', P .. 'stock', st.sku, 1)
end
redis.call('HSET', A, 'state', 'ended', 'closed', now, 'winner', winner, 'order', oid)
expire(A, tonumber(ARGV[6]))
return reply(A, 'closed', 0, '')
`)
