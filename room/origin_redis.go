package room

import (
	"context"
	"errors"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisOrigins keeps origins in Redis: <prefix>{room:<id>}:origin holds the
// node id, with the lease as the key's expiry.
type RedisOrigins struct {
	rdb    redis.UniversalClient
	prefix string
}

var _ Origins = (*RedisOrigins)(nil)

// NewRedisOrigins keeps the directory under prefix (default "lr:").
func NewRedisOrigins(rdb redis.UniversalClient, prefix string) *RedisOrigins {
	if prefix == "" {
		prefix = "lr:"
	}
	return &RedisOrigins{rdb: rdb, prefix: prefix}
}

func (o *RedisOrigins) key(roomID string) string { return o.prefix + "{room:" + roomID + "}:origin" }

func (o *RedisOrigins) Claim(ctx context.Context, roomID, node string, ttl time.Duration) error {
	return o.rdb.Set(ctx, o.key(roomID), node, ttl).Err()
}

func (o *RedisOrigins) ClaimFree(ctx context.Context, roomID, node string, ttl time.Duration) (bool, error) {
	err := o.rdb.SetArgs(ctx, o.key(roomID), node, redis.SetArgs{Mode: "NX", TTL: ttl}).Err()
	if errors.Is(err, redis.Nil) {
		return false, nil
	}
	return err == nil, err
}

// luaRenew: KEYS origin; ARGV node, ttl ms.
var luaRenew = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
`)

// luaRelease: KEYS origin; ARGV node. 1 = released or already free.
var luaRelease = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
if v then return 0 end
return 1
`)

func (o *RedisOrigins) Renew(ctx context.Context, roomID, node string, ttl time.Duration) (bool, error) {
	n, err := luaRenew.Run(ctx, o.rdb, []string{o.key(roomID)}, node, ttl.Milliseconds()).Int()
	return n == 1, err
}

func (o *RedisOrigins) Release(ctx context.Context, roomID, node string) (bool, error) {
	n, err := luaRelease.Run(ctx, o.rdb, []string{o.key(roomID)}, node).Int()
	return n == 1, err
}

func (o *RedisOrigins) Get(ctx context.Context, roomID string) (string, error) {
	v, err := o.rdb.Get(ctx, o.key(roomID)).Result()
	if errors.Is(err, redis.Nil) {
		return "", nil
	}
	return v, err
}
