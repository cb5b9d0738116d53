package room

import "github.com/redis/go-redis/v9"

// The Redis bus's scripts: each runs as one atomic step on the room's keys
// (see the key layout in bus_redis.go).

// ensureEpoch starts every script: a room whose epoch is gone (a flushed
// Redis) or was last used under another Redis process (a restart or a
// failover, which may have lost its last events while the epoch survived:
// seq would step back and reuse numbers nodes and pages have already seen)
// starts a new stream from seq 0 under a new epoch. Without INFO (a
// managed Redis may forbid it) only a lost epoch is noticed. A run key
// missing beside an epoch (data from before it was kept) is adopted.
// KEYS seq, epoch, log, floor, run; ARGV[1] a fresh epoch.
const ensureEpoch = `
local ep = redis.call('GET', KEYS[2])
local info = redis.pcall('INFO', 'server')
local run = type(info) == 'string' and string.match(info, 'run_id:(%x+)') or ''
local was = redis.call('GET', KEYS[5])
if not ep or (run ~= '' and was and was ~= run) then
  ep = ARGV[1]
  redis.call('DEL', KEYS[1], KEYS[3], KEYS[4])
  redis.call('SET', KEYS[2], ep)
end
if run ~= '' and was ~= run then
  redis.call('SET', KEYS[5], run)
end
`

// luaPublish: ARGV epoch, channel, type, body, transient, history.
// Returns {seq, ts}.
var luaPublish = redis.NewScript(ensureEpoch + `
local seq = redis.call('INCR', KEYS[1])
local t = redis.call('TIME')
local ts = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local msg = 'E' .. seq .. ' ' .. string.format('%d', ts) .. ' ' .. ep .. ' ' .. ARGV[3] .. '\n' .. ARGV[4]
if ARGV[5] ~= '1' then
  local n = tonumber(ARGV[6])
  local len = redis.call('XLEN', KEYS[3])
  if len >= n then
    local gone = redis.call('XRANGE', KEYS[3], '-', '+', 'COUNT', len - n + 1)
    local id = gone[#gone][1]
    redis.call('SET', KEYS[4], string.sub(id, 1, string.find(id, '-') - 1))
  end
  redis.call('XADD', KEYS[3], 'MAXLEN', n, seq .. '-1', 'm', msg)
end
redis.call('PUBLISH', ARGV[2], msg)
return {seq, ts}
`)

// luaSince: ARGV epoch, after. Returns {seq, epoch, floor, messages}.
var luaSince = redis.NewScript(ensureEpoch + `
local seq = tonumber(redis.call('GET', KEYS[1]) or '0')
local floor = tonumber(redis.call('GET', KEYS[4]) or '0')
local after = tonumber(ARGV[2])
local out = {}
if after <= seq and after >= floor then
  for _, e in ipairs(redis.call('XRANGE', KEYS[3], string.format('%d', after) .. '-2', '+')) do
    out[#out + 1] = e[2][2]
  end
end
return {seq, ep, floor, out}
`)

// luaPosition: ARGV epoch. Returns {seq, epoch}.
var luaPosition = redis.NewScript(ensureEpoch + `
return {tonumber(redis.call('GET', KEYS[1]) or '0'), ep}
`)

// luaPeek reads the position without starting an epoch: {seq, epoch}, or
// {0, ”} for a room with none (never used, flushed, or deleted and swept:
// a node's periodic check must not bring a swept room's keys back).
// KEYS as luaPosition's.
var luaPeek = redis.NewScript(`
local ep = redis.call('GET', KEYS[2])
if not ep then return {0, ''} end
return {tonumber(redis.call('GET', KEYS[1]) or '0'), ep}
`)

// luaPresence: KEYS pres; ARGV node, conns, ttl ms. Returns the total.
var luaPresence = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[3])
if tonumber(ARGV[2]) > 0 then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. ' ' .. string.format('%d', now + ttl))
else
  redis.call('HDEL', KEYS[1], ARGV[1])
end
local total = 0
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  local sp = string.find(all[i + 1], ' ')
  local n = tonumber(string.sub(all[i + 1], 1, sp - 1))
  local exp = tonumber(string.sub(all[i + 1], sp + 1))
  if exp < now then
    redis.call('HDEL', KEYS[1], all[i])
  else
    total = total + n
  end
end
redis.call('PEXPIRE', KEYS[1], ttl * 2)
return total
`)
