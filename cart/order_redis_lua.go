package cart

// The order life's Lua (the RedisStore). Keys, in the room's slot:
//
//	order:<id>   the order JSON, state included (written whole by Go; a
//	             script replaces it only if it is still the JSON Go read:
//	             one compare-and-set per transition)
//	due          zset of awaiting orders scored by the end of their window
//	outbox       gets <id>.<state> for each transition's webhook event
//
// luaOrderPrelude is part of every cart script (newScript), so that any
// script that creates orders (checkout, an auction's close, a giveaway)
// calls new_order.
const luaOrderPrelude = `
-- new_order stores a new order whose JSON carries its initial state
-- (startLife), queues its order.created delivery and, when due > 0 (it
-- awaits payment until due, unix ms), puts it in the lapse index and the
-- buyer's set of awaiting orders.
local function new_order(oid, js, now, due, user)
  redis.call('SET', P .. 'order:' .. oid, js)
  redis.call('ZADD', P .. 'orders', 0, oid)
  redis.call('ZADD', P .. 'outbox', now, oid)
  if due > 0 then
    redis.call('ZADD', P .. 'due', due, oid)
    redis.call('SADD', uk(user) .. ':due', oid)
  end
end
-- move_order is one transition's compare-and-set: nil if order oid is no
-- longer old; else it stores new, leaves the lapse index, queues the
-- <oid>.<st> delivery and, for a cancel, returns the units: to the sale's
-- remaining (its sold count down), and to the product's stock if the sale
-- settled already (or for a list-price item). It returns
-- {{sale, sku, qty, to-running-sale 0|1, remaining after}...}.
local function move_order(oid, old, new, st, now, cancel, user)
  local k = P .. 'order:' .. oid
  if redis.call('GET', k) ~= old then return nil end
  redis.call('SET', k, new)
  redis.call('ZREM', P .. 'due', oid)
  redis.call('SREM', uk(user) .. ':due', oid)
  redis.call('ZADD', P .. 'outbox', now, oid .. '.' .. st)
  local ret = {}
  if not cancel then return ret end
  local o = cjson.decode(old)
  for _, it in ipairs(o.items) do
    local q, sid, sku = tonumber(it.qty), it.sale_id, it.sku
    if type(sid) == 'string' and sid ~= '' then
      local s = P .. 'sale:' .. sid
      local f = redis.call('HMGET', s, 'ends', 'settled')
      if f[1] then
        redis.call('HINCRBY', s, 'sold', -q)
        redis.call('HINCRBY', s .. ':users', o.user, -q)
        local rem = redis.call('HINCRBY', s, 'remaining', q)
        local running = 0
        if f[2] then
          if redis.call('HEXISTS', P .. 'products', sku) == 1 then redis.call('HINCRBY', P .. 'stock', sku, q) end
        elseif now < tonumber(f[1]) then
          running = 1
        end
        ret[#ret + 1] = {sid, sku, q, running, rem}
      end
    elseif redis.call('HEXISTS', P .. 'products', sku) == 1 then
      ret[#ret + 1] = {'', sku, q, 0, redis.call('HINCRBY', P .. 'stock', sku, q)}
    end
  end
  return ret
end
`

// ARGV: P oid old-json new-json state now cancel(0|1) user
// -> {'ok', returns} | {'stale'}
var luaTransition = newScript(`
local ret = move_order(ARGV[2], ARGV[3], ARGV[4], ARGV[5], tonumber(ARGV[6]), ARGV[7] == '1', ARGV[8])
if not ret then return {'stale'} end
return {'ok', ret}
`)

// ARGV: P now (oid old-json new-json user)... -> {{oid, returns}...} of
// the orders this call lapsed (the others changed meanwhile: not due any
// more, or lapsed by another node).
var luaLapse = newScript(`
local now, out = tonumber(ARGV[2]), {}
for i = 3, #ARGV, 4 do
  local ret = move_order(ARGV[i], ARGV[i + 1], ARGV[i + 2], 'cancelled', now, true, ARGV[i + 3])
  if ret then out[#out + 1] = {ARGV[i], ret} end
end
return out
`)
