package room

import (
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// NewRedisClient is the client a node's Redis implementations share
// (redis.url). It does not wait for Redis to answer: a node starts (and
// serves video) while Redis is down. It fails fast while Redis is
// unreachable, so that requests answer `unavailable` at once instead of
// queueing behind retries.
func NewRedisClient(rawURL string) (*redis.Client, error) {
	opt, err := redis.ParseURL(rawURL)
	if err != nil {
		return nil, fmt.Errorf("redis.url: %w", err)
	}
	opt.DialTimeout = time.Second
	opt.ReadTimeout, opt.WriteTimeout, opt.PoolTimeout = 2*time.Second, 2*time.Second, 2*time.Second
	opt.MaxRetries = 1
	return redis.NewClient(opt), nil
}
