package cart

import "github.com/redis/go-redis/v9"

// Every script works on one room: ARGV[1] is the room's key prefix
// "<prefix>{room:ID}:" and KEYS[1] a key under it, so that a cluster routes
// the script to the room's slot. Keys a script reaches from data (a
// reservation named in the expiry set) share the hash tag, hence the slot.
//
// Keys under the prefix:
//
//	products   hash sku -> Product JSON (its stock field is not used)
//	stock      hash sku -> units reservable at list price
//	pheld      hash sku -> units held at list price
//	pin        string, the pinned sku
//	sale:ID    hash: sku price cur qty remaining held sold limit starts ends
//	           [ended soldout settled] (times in unix ms). The hot keys of a
//	           flash sale are this small hash and sale:ID:users.
//	sale:ID:users  hash user -> units held + bought in the sale
//	sales      zset sale id by start; salesku hash sku -> latest sale;
//	ends       zset of sales not settled, by end
//	res:ID     hash: id user key sale sku qty price cur exp st [order]
//	exp        zset held reservation id by expiry (the expiry queue)
//	u:N:USER:cart      set of the buyer's held reservation ids
//	u:N:USER:rk:KEY    reservation id of a cart.add key
//	u:N:USER:ok:KEY    order id of a checkout key
//	u:N:USER:keys      zset of the buyer's kept keys ("o"..KEY checkout, "r"..KEY
//	                   bought cart.add) by time, for cart.max_keys
//	u:N:USER:lastexp   when a hold of the buyer last expired (kept for cart.hold)
//	order:ID   string, the order JSON; orders zset of order ids (by lex)
//	outbox     zset order id -> due time (ms); outbox:att hash id -> attempts
//	tick:TOKEN string, a sweep batch's reply, kept 30 s for a caller whose
//	           reply was lost (luaTick)
//
// (N is the byte length of USER, so that no user id and key can collide.)
// A reservation that is released or expires is deleted at once with its
// cart.add key. A checkout's keys (its own and its reservations', with the
// reservations) expire after cart.key_retention, and a buyer keeps at most
// cart.max_keys of them per room (the oldest are evicted). Orders are kept.
const luaPrelude = `
local P = ARGV[1]
local function uk(u) return P .. 'u:' .. string.len(u) .. ':' .. u end
local function fail(code, field, msg) return redis.error_reply('CART ' .. code .. ' ' .. field .. ' ' .. msg) end
-- live tells whether a kept key of order oid is within keep ms at now
-- (order ids start with their time in hex ms), so that the store's clock,
-- not Redis', decides; the key's own TTL only reclaims the memory.
local function live(oid, now, keep)
  if not oid then return false end
  local ms = tonumber(string.sub(oid, 3, 14), 16)
  return ms ~= nil and now - ms < keep
end
-- finish ends a held reservation as st and gives its units back; it returns
-- the stock after, the reservation as it ended (res-hash) and its buyer, or
-- nil if the reservation was not held (so units go back exactly once
-- whoever races: release, expiry, checkout). The reservation and its
-- cart.add key are deleted.
local function finish(id, st)
  local k = P .. 'res:' .. id
  local r = redis.call('HMGET', k, 'st', 'sale', 'sku', 'qty', 'user', 'key')
  if r[1] ~= 'held' then return nil end
  local h = redis.call('HGETALL', k)
  for i = 1, #h, 2 do
    if h[i] == 'st' then h[i + 1] = st end
  end
  local q = tonumber(r[4])
  local rk = uk(r[5]) .. ':rk:' .. r[6]
  redis.call('DEL', k)
  if redis.call('GET', rk) == id then redis.call('DEL', rk) end
  redis.call('SREM', uk(r[5]) .. ':cart', id)
  redis.call('ZREM', P .. 'exp', id)
  if r[2] ~= '' then
    local s = P .. 'sale:' .. r[2]
    redis.call('HINCRBY', s, 'held', -q)
    redis.call('HINCRBY', s .. ':users', r[5], -q)
    return redis.call('HINCRBY', s, 'remaining', q), h, r[5]
  end
  redis.call('HINCRBY', P .. 'pheld', r[3], -q)
  return redis.call('HINCRBY', P .. 'stock', r[3], q), h, r[5]
end
-- cart appends the buyer's held, unexpired reservations (res-hashes) to
-- out, so that a change answers with the cart in the same round trip; it
-- reports whether one of the held ones is past its expiry.
local function cart(u, now, out)
  local stale = false
  for _, id in ipairs(redis.call('SMEMBERS', u .. ':cart')) do
    local k = P .. 'res:' .. id
    if tonumber(redis.call('HGET', k, 'exp') or '0') > now then
      out[#out + 1] = redis.call('HGETALL', k)
    else
      stale = true
    end
  end
  return stale
end
`

func newScript(body string) *redis.Script {
	return redis.NewScript(luaPrelude + luaOrderPrelude + body)
}

// ARGV: P user key sale sku qty now exp newid max-holds max-units list-limit keep
// -> {'replay', res-hash, cart...} | {'ok', id, remaining, first-sold-out, sku, price, cur, cart...}
// (cart...: the buyer's held, unexpired res-hashes after the call)
var luaReserve = newScript(`
local user, key, sid, sku = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local qty, now, exp, nid = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8]), ARGV[9]
local u = uk(user)
local old = redis.call('GET', u .. ':rk:' .. key)
local ost = old and redis.call('HMGET', P .. 'res:' .. old, 'st', 'order')
if ost and ost[1] and (ost[1] ~= 'checked_out' or live(ost[2], now, tonumber(ARGV[13]))) then
  local out = {'replay', redis.call('HGETALL', P .. 'res:' .. old)}
  cart(u, now, out)
  return out
end
-- The buyer's caps (the cart is at most max-holds long, so this is bounded).
local maxh, maxu, maxl = tonumber(ARGV[10]), tonumber(ARGV[11]), tonumber(ARGV[12])
local holds, units, list = 0, 0, 0
for _, id in ipairs(redis.call('SMEMBERS', u .. ':cart')) do
  local r = redis.call('HMGET', P .. 'res:' .. id, 'exp', 'qty', 'sale', 'sku')
  if tonumber(r[1] or '0') > now then
    holds = holds + 1
    units = units + tonumber(r[2])
    if r[3] == '' and r[4] == sku then list = list + tonumber(r[2]) end
  end
end
if holds >= maxh then
  return fail('limit_reached', '-', 'at most ' .. maxh .. ' items held per buyer in this room; check out or remove one')
end
if units + qty > maxu then
  return fail('limit_reached', '-', 'at most ' .. maxu .. ' units held per buyer in this room; you hold ' .. units)
end
if sid == '' and list + qty > maxl then
  return fail('limit_reached', '-', 'at most ' .. maxl .. ' of ' .. sku .. ' held per buyer at list price; you hold ' .. list)
end
local rem, first, price, cur = 0, 0, '0', ''
if sid ~= '' then
  local s = P .. 'sale:' .. sid
  local f = redis.call('HMGET', s, 'sku', 'price', 'cur', 'remaining', 'limit', 'starts', 'ends')
  if not f[1] then return fail('not_found', '-', 'no sale "' .. sid .. '"') end
  if now < tonumber(f[6]) then return fail('sale_not_active', '-', 'sale ' .. sid .. ' has not opened yet') end
  if now >= tonumber(f[7]) then return fail('sale_not_active', '-', 'sale ' .. sid .. ' has ended') end
  rem = tonumber(f[4])
  if rem < qty then
    if rem <= 0 then return fail('sold_out', '-', 'sold out') end
    return fail('sold_out', '-', 'only ' .. rem .. ' left')
  end
  local lim = tonumber(f[5])
  if lim > 0 then
    local have = tonumber(redis.call('HGET', s .. ':users', user) or '0')
    if have + qty > lim then
      return fail('limit_reached', '-', 'at most ' .. lim .. ' per buyer in this sale; you have ' .. have)
    end
  end
  redis.call('HINCRBY', s, 'held', qty)
  redis.call('HINCRBY', s .. ':users', user, qty)
  rem = redis.call('HINCRBY', s, 'remaining', -qty)
  if rem == 0 and redis.call('HSETNX', s, 'soldout', now) == 1 then first = 1 end
  sku, price, cur = f[1], f[2], f[3]
else
  local pj = redis.call('HGET', P .. 'products', sku)
  if not pj then return fail('not_found', '-', 'no product "' .. sku .. '"') end
  rem = tonumber(redis.call('HGET', P .. 'stock', sku) or '0')
  if rem < qty then
    if rem <= 0 then return fail('sold_out', '-', 'sold out') end
    return fail('sold_out', '-', 'only ' .. rem .. ' left')
  end
  redis.call('HINCRBY', P .. 'pheld', sku, qty)
  rem = redis.call('HINCRBY', P .. 'stock', sku, -qty)
  local p = cjson.decode(pj)
  price, cur = string.format('%d', p.price_cents), p.currency
end
redis.call('HSET', P .. 'res:' .. nid, 'id', nid, 'user', user, 'key', key, 'sale', sid, 'sku', sku,
  'qty', qty, 'price', price, 'cur', cur, 'exp', exp, 'st', 'held')
redis.call('SET', u .. ':rk:' .. key, nid)
redis.call('SADD', u .. ':cart', nid)
redis.call('ZADD', P .. 'exp', exp, nid)
local out = {'ok', nid, rem, first, sku, price, cur}
cart(u, now, out)
return out
`)

// ARGV: P user id now -> {remaining, res-hash, cart...}
var luaRelease = newScript(`
local id = ARGV[3]
local k = P .. 'res:' .. id
local r = redis.call('HMGET', k, 'user', 'st')
if r[1] ~= ARGV[2] then return fail('not_found', '-', 'no reservation "' .. id .. '" in your cart') end
if r[2] == 'checked_out' then return fail('bad_request', '-', 'reservation ' .. id .. ' is already checked out') end
local rem, h = finish(id, 'released')
local out = {rem, h}
cart(uk(ARGV[2]), tonumber(ARGV[4]), out)
return out
`)

// ARGV: P user now hold okey keep
// -> {order-json or ”, expired-recently 0|1, res-hash...} (held, unexpired)
var luaCart = newScript(`
local u, now = uk(ARGV[2]), tonumber(ARGV[3])
local out = {'', 0}
if ARGV[5] ~= '' then
  local oid = redis.call('GET', u .. ':ok:' .. ARGV[5])
  if live(oid, now, tonumber(ARGV[6])) then out[1] = redis.call('GET', P .. 'order:' .. oid) or '' end
end
local le = tonumber(redis.call('GET', u .. ':lastexp') or '')
if le and now - le < tonumber(ARGV[4]) then out[2] = 1 end
if cart(u, now, out) then out[2] = 1 end
return out
`)

// ARGV: P user okey now orderid orderjson keep max-keys pay-by reservation-ids...
// (pay-by: unix ms the order awaits payment until, 0 = paid at once)
// -> {'ok', cart...} | {'dup', order-json, cart...} | {'stale'}
var luaCheckout = newScript(`
local user, now, oid = ARGV[2], tonumber(ARGV[4]), ARGV[5]
local keep, maxk = tonumber(ARGV[7]), tonumber(ARGV[8])
local u = uk(user)
local okey = u .. ':ok:' .. ARGV[3]
local old = redis.call('GET', okey)
if live(old, now, keep) then
  local out = {'dup', redis.call('GET', P .. 'order:' .. old) or ''}
  cart(u, now, out)
  return out
end
for i = 10, #ARGV do
  local r = redis.call('HMGET', P .. 'res:' .. ARGV[i], 'user', 'st', 'exp')
  if r[1] ~= user or r[2] ~= 'held' or tonumber(r[3]) <= now then return {'stale'} end
end
local keys = u .. ':keys'
for i = 10, #ARGV do
  local id = ARGV[i]
  local k = P .. 'res:' .. id
  local r = redis.call('HMGET', k, 'sale', 'sku', 'qty', 'key')
  local q = tonumber(r[3])
  redis.call('HSET', k, 'st', 'checked_out', 'order', oid)
  redis.call('PEXPIRE', k, keep)
  redis.call('PEXPIRE', u .. ':rk:' .. r[4], keep)
  redis.call('ZADD', keys, now, 'r' .. r[4])
  redis.call('SREM', u .. ':cart', id)
  redis.call('ZREM', P .. 'exp', id)
  if r[1] ~= '' then
    local s = P .. 'sale:' .. r[1]
    redis.call('HINCRBY', s, 'held', -q)
    redis.call('HINCRBY', s, 'sold', q)
  else
    redis.call('HINCRBY', P .. 'pheld', r[2], -q)
  end
end
new_order(oid, ARGV[6], now, tonumber(ARGV[9]), user)
redis.call('SET', okey, oid, 'PX', keep)
redis.call('ZADD', keys, now, 'o' .. ARGV[3])
-- Keep at most max-keys of the buyer's keys, none past keep: evict the
-- oldest (a bought cart.add key takes its reservation with it; one that
-- lapsed and now names a new hold is left alone).
local function evict(m)
  redis.call('ZREM', keys, m)
  local key = string.sub(m, 2)
  if string.sub(m, 1, 1) == 'o' then
    redis.call('DEL', u .. ':ok:' .. key)
    return
  end
  local rk = u .. ':rk:' .. key
  local id = redis.call('GET', rk)
  if id and redis.call('HGET', P .. 'res:' .. id, 'st') == 'checked_out' then
    redis.call('DEL', rk, P .. 'res:' .. id)
  end
end
for _, m in ipairs(redis.call('ZRANGEBYSCORE', keys, '-inf', '(' .. (now - keep))) do evict(m) end
local n = redis.call('ZCARD', keys)
if n > maxk then
  for _, m in ipairs(redis.call('ZRANGE', keys, 0, n - maxk - 1)) do evict(m) end
end
redis.call('PEXPIRE', keys, keep)
local out = {'ok'}
cart(u, now, out)
return out
`)

// ARGV: P now limit hold token
// -> {{{remaining, res-hash}...}, {ended ids}, {settled ids}}
// A reply that did something is also kept 30 s under tick:TOKEN (token
// non-empty): a caller whose reply was lost asks again with the same token
// and gets what the first run did, instead of a second run that finds
// nothing. The caller deletes it once it has the reply.
var luaTick = newScript(`
local now, limit, hold = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local memo = nil
if ARGV[5] and ARGV[5] ~= '' then
  memo = P .. 'tick:' .. ARGV[5]
  local got = redis.call('GET', memo)
  if got then return cjson.decode(got) end
end
local expired, ended, settled = {}, {}, {}
for _, id in ipairs(redis.call('ZRANGEBYSCORE', P .. 'exp', '-inf', now, 'LIMIT', 0, limit)) do
  local rem, h, user = finish(id, 'expired')
  if rem then
    redis.call('SET', uk(user) .. ':lastexp', now, 'PX', hold)
    expired[#expired + 1] = {rem, h}
  else
    redis.call('ZREM', P .. 'exp', id)
  end
end
for _, sid in ipairs(redis.call('ZRANGEBYSCORE', P .. 'ends', '-inf', now)) do
  local s = P .. 'sale:' .. sid
  if redis.call('HSETNX', s, 'ended', now) == 1 then ended[#ended + 1] = sid end
  local f = redis.call('HMGET', s, 'held', 'remaining', 'sku')
  if tonumber(f[1]) == 0 then
    if redis.call('HEXISTS', P .. 'products', f[3]) == 1 then
      redis.call('HINCRBY', P .. 'stock', f[3], tonumber(f[2]))
    end
    redis.call('HSET', s, 'settled', now)
    redis.call('ZREM', P .. 'ends', sid)
    settled[#settled + 1] = sid
  end
end
local out = {expired, ended, settled}
if memo and (#expired > 0 or #ended > 0 or #settled > 0) then
  redis.call('SET', memo, cjson.encode(out), 'PX', 30000)
end
return out
`)

// ARGV: P id sku price qty limit starts ends now pay-within-s (empty = cart.pay_within) -> currency
var luaStartSale = newScript(`
local id, sku, qty, now = ARGV[2], ARGV[3], tonumber(ARGV[5]), tonumber(ARGV[9])
local pj = redis.call('HGET', P .. 'products', sku)
if not pj then return fail('not_found', 'sku', 'no product "' .. sku .. '"') end
local cur = redis.call('HGET', P .. 'salesku', sku)
if cur and now < tonumber(redis.call('HGET', P .. 'sale:' .. cur, 'ends') or '0') then
  return fail('bad_request', 'sku', 'sale ' .. cur .. ' of ' .. sku .. ' is still running')
end
local st = tonumber(redis.call('HGET', P .. 'stock', sku) or '0')
if st < qty then return fail('bad_request', 'quantity', 'only ' .. st .. ' of ' .. sku .. ' in stock') end
redis.call('HINCRBY', P .. 'stock', sku, -qty)
local c = cjson.decode(pj).currency
redis.call('HSET', P .. 'sale:' .. id, 'id', id, 'sku', sku, 'price', ARGV[4], 'cur', c, 'qty', qty,
  'remaining', qty, 'held', 0, 'sold', 0, 'limit', ARGV[6], 'starts', ARGV[7], 'ends', ARGV[8])
if ARGV[10] ~= '' then redis.call('HSET', P .. 'sale:' .. id, 'pw', ARGV[10]) end
redis.call('ZADD', P .. 'sales', ARGV[7], id)
redis.call('HSET', P .. 'salesku', sku, id)
redis.call('ZADD', P .. 'ends', ARGV[8], id)
return c
`)

// ARGV: P id now -> 1 if this call ended the sale, 0 if it had ended
var luaStopSale = newScript(`
local s, now = P .. 'sale:' .. ARGV[2], tonumber(ARGV[3])
local f = redis.call('HMGET', s, 'starts', 'ends')
if not f[2] then return fail('not_found', '-', 'no sale "' .. ARGV[2] .. '"') end
if now >= tonumber(f[2]) then return 0 end
redis.call('HSET', s, 'ends', now, 'ended', now)
if tonumber(f[1]) > now then redis.call('HSET', s, 'starts', now) end
redis.call('ZADD', P .. 'ends', now, ARGV[2])
return 1
`)

// ARGV: P sku json stock
var luaPutProduct = newScript(`
redis.call('HSET', P .. 'products', ARGV[2], ARGV[3])
redis.call('HSET', P .. 'stock', ARGV[2], ARGV[4])
return 1
`)

// ARGV: P sku
var luaDeleteProduct = newScript(`
local sku = ARGV[2]
if redis.call('HEXISTS', P .. 'products', sku) == 0 then return fail('not_found', '-', 'no product "' .. sku .. '"') end
local h = tonumber(redis.call('HGET', P .. 'pheld', sku) or '0')
if h > 0 then return fail('bad_request', '-', h .. ' units of ' .. sku .. ' are held in carts; try again when they are released') end
local cur = redis.call('HGET', P .. 'salesku', sku)
if cur and not redis.call('HGET', P .. 'sale:' .. cur, 'settled') then
  return fail('bad_request', '-', 'sale ' .. cur .. ' of ' .. sku .. ' has not ended and settled')
end
redis.call('HDEL', P .. 'products', sku)
redis.call('HDEL', P .. 'stock', sku)
redis.call('HDEL', P .. 'pheld', sku)
if redis.call('GET', P .. 'pin') == sku then redis.call('DEL', P .. 'pin') end
return 1
`)

// ARGV: P op(pin|unpin|get) sku -> {product-json, stock} or {}
var luaPin = newScript(`
local op, sku = ARGV[2], ARGV[3]
if op == 'pin' then
  if redis.call('HEXISTS', P .. 'products', sku) == 0 then return fail('not_found', '-', 'no product "' .. sku .. '"') end
  redis.call('SET', P .. 'pin', sku)
else
  sku = redis.call('GET', P .. 'pin')
  if not sku then return {} end
  if op == 'unpin' then redis.call('DEL', P .. 'pin') end
end
local pj = redis.call('HGET', P .. 'products', sku)
if not pj then return {} end
return {pj, redis.call('HGET', P .. 'stock', sku) or '0'}
`)

// ARGV: P now lease-until max -> {{order id, attempt, order json}...}
var luaClaim = newScript(`
local out = {}
for _, id in ipairs(redis.call('ZRANGEBYSCORE', P .. 'outbox', '-inf', ARGV[2], 'LIMIT', 0, tonumber(ARGV[4]))) do
  redis.call('ZADD', P .. 'outbox', ARGV[3], id)
  local n = redis.call('HINCRBY', P .. 'outbox:att', id, 1)
  out[#out + 1] = {id, n, redis.call('GET', P .. 'order:' .. string.match(id, '^[^.]*')) or ''}
end
return out
`)
