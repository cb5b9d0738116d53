package room

import (
	"context"
	"time"

	"github.com/redis/go-redis/v9"
)

// ClockSkewWarn is the skew between a node's clock and Redis' TIME above
// which the node warns. Auctions and giveaways are timed by Redis TIME (the
// cluster's one clock), but flash sales, holds and order windows by each
// node's own clock: two nodes whose clocks differ by this much disagree by
// this much on when a sale ends. Keep nodes on NTP.
const ClockSkewWarn = 250 * time.Millisecond

// RedisClockSkew is now() minus Redis' TIME, read at the middle of the round
// trip (rtt, returned too, bounds the error to half of it).
func RedisClockSkew(ctx context.Context, rdb redis.UniversalClient, now func() time.Time) (skew, rtt time.Duration, err error) {
	t0 := now()
	rt, err := rdb.Time(ctx).Result()
	t1 := now()
	if err != nil {
		return 0, 0, err
	}
	rtt = t1.Sub(t0)
	return t0.Add(rtt / 2).Sub(rt), rtt, nil
}
