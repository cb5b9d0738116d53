package room

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisConfig is the `redis:` section; a URL turns on cluster mode.
type RedisConfig struct {
	URL string `yaml:"url"`
	// RequireAOF refuses to start on a Redis that is not known to keep an
	// append-only file synced at least every second (redis_persistence.go).
	// Off, the node only warns.
	RequireAOF bool `yaml:"require_aof"`
}

// Validate checks the section; errors name the key.
func (c RedisConfig) Validate() error {
	if c.URL != "" && !strings.HasPrefix(c.URL, "redis://") && !strings.HasPrefix(c.URL, "rediss://") {
		return errors.New("redis.url: must start with redis:// or rediss://")
	}
	return nil
}

// Client is the client a node's Redis implementations share. It does not
// wait for Redis to answer: a node starts (and serves video) while Redis
// is down. It fails fast while Redis is unreachable, so that requests
// answer `unavailable` at once instead of queueing behind retries.
//
// It never retries a command. go-redis retries a command, or a whole
// pipeline batch, whose reply did not come in time or whose connection
// broke after the write; by then Redis may have run it, and a second run of
// a script that is not idempotent tells its caller a different story: a
// release answered not_found, a new cart.add key answered as a replay, a
// sweep's expiries never announced, a bus event published twice. A
// command whose reply is lost returns its error instead; what it did is
// read back (every client write the node takes is keyed, so the client's
// retry with the same key gets the answer the lost reply carried).
func (c RedisConfig) Client() (*redis.Client, error) {
	opt, err := c.Options()
	if err != nil {
		return nil, err
	}
	return redis.NewClient(opt), nil
}

// Options are the options Client uses.
func (c RedisConfig) Options() (*redis.Options, error) {
	opt, err := redis.ParseURL(c.URL)
	if err != nil {
		// url.Error quotes the whole URL, password included: keep its reason only.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("redis.url: not a usable redis:// or rediss:// URL: %v", err)
	}
	opt.DialTimeout = time.Second
	opt.ReadTimeout, opt.WriteTimeout, opt.PoolTimeout = 2*time.Second, 2*time.Second, 2*time.Second
	opt.MaxRetries = -1 // none (0 is go-redis's default of 3)
	return opt, nil
}
