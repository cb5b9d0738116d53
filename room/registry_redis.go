package room

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisRegistry keeps the live nodes in Redis:
//
//	<prefix>nodes      sorted set: node id, scored by expiry (Redis time, ms)
//	<prefix>node:<id>  string: the node's NodeInfo as JSON, expiring with it
//
// Expiry uses Redis' clock, so nodes with skewed clocks agree.
type RedisRegistry struct {
	rdb    redis.UniversalClient
	prefix string
}

var _ Registry = (*RedisRegistry)(nil)

// NewRedisRegistry keeps the registry under prefix (default "lr:").
func NewRedisRegistry(rdb redis.UniversalClient, prefix string) *RedisRegistry {
	if prefix == "" {
		prefix = "lr:"
	}
	return &RedisRegistry{rdb: rdb, prefix: prefix}
}

// luaBeat: KEYS nodes, node:<id>; ARGV id, info JSON (without seen), ttl ms.
var luaBeat = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[3])
local info = cjson.decode(ARGV[2])
info['seen'] = now
redis.call('SET', KEYS[2], cjson.encode(info), 'PX', ttl)
redis.call('ZADD', KEYS[1], now + ttl, ARGV[1])
return now
`)

// luaNodes: KEYS nodes; ARGV key prefix of node:<id>. Prunes expired ids
// and returns the infos of the live ones.
var luaNodes = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local out = {}
for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local v = redis.call('GET', ARGV[1] .. id)
  if v then out[#out + 1] = v end
end
return out
`)

func (r *RedisRegistry) Heartbeat(ctx context.Context, n NodeInfo, ttl time.Duration) error {
	n.Seen = 0
	js, err := json.Marshal(n)
	if err != nil {
		return fmt.Errorf("registry: %w", err)
	}
	keys := []string{r.prefix + "nodes", r.prefix + "node:" + n.ID}
	if err := luaBeat.Run(ctx, r.rdb, keys, n.ID, js, max(ttl.Milliseconds(), 1)).Err(); err != nil {
		return fmt.Errorf("registry: heartbeat: %w", err)
	}
	return nil
}

func (r *RedisRegistry) Leave(ctx context.Context, id string) error {
	_, err := r.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.ZRem(ctx, r.prefix+"nodes", id)
		p.Del(ctx, r.prefix+"node:"+id)
		return nil
	})
	if err != nil {
		return fmt.Errorf("registry: leave: %w", err)
	}
	return nil
}

func (r *RedisRegistry) Nodes(ctx context.Context) ([]NodeInfo, error) {
	vals, err := luaNodes.Run(ctx, r.rdb, []string{r.prefix + "nodes"}, r.prefix+"node:").StringSlice()
	if err != nil {
		return nil, fmt.Errorf("registry: nodes: %w", err)
	}
	out := make([]NodeInfo, 0, len(vals))
	for _, v := range vals {
		var n NodeInfo
		if err := json.Unmarshal([]byte(v), &n); err != nil {
			return nil, fmt.Errorf("registry: stored node: %w", err)
		}
		out = append(out, n)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}
