package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"time"

	"github.com/redis/go-redis/v9"

	"liveroom/cart"
	"liveroom/chat"
	"liveroom/room"
)

// nodeTTL is how long a node stays in the registry without a heartbeat.
const nodeTTL = 6 * time.Second

// cluster is what a node shares with the others through Redis (redis.url
// set). Every seam that holds room state gets its Redis implementation;
// media stays node-local, with rooms pulled between nodes (edges.go).
type cluster struct {
	rdb      *redis.Client
	bus      *room.RedisBus
	rooms    *room.RedisStore
	chat     *chat.RedisState
	store    *cart.RedisStore
	registry *room.RedisRegistry
	origins  *room.RedisOrigins
}

// openCluster connects to Redis. It does not wait for Redis to answer: a
// node starts (and serves video) while Redis is down, and /readyz says so.
func openCluster(cfg Config, log *slog.Logger) (*cluster, error) {
	opt, err := redis.ParseURL(cfg.Redis.URL)
	if err != nil {
		return nil, fmt.Errorf("redis.url: %w", err)
	}
	// Fail fast while Redis is unreachable, so that requests answer
	// `unavailable` at once instead of queueing behind retries.
	opt.DialTimeout = time.Second
	opt.ReadTimeout = 2 * time.Second
	opt.WriteTimeout = 2 * time.Second
	opt.MaxRetries = 1
	opt.PoolTimeout = 2 * time.Second
	rdb := redis.NewClient(opt)
	prefix := cfg.Cart.RedisPrefix
	if prefix == "" {
		prefix = cart.DefaultRedisPrefix
	}
	c := &cluster{
		rdb: rdb,
		bus: room.NewRedisBus(rdb, room.RedisBusConfig{Prefix: prefix, History: cfg.Hub.HistorySize,
			Log: log.With("component", "bus")}),
		rooms:    room.NewRedisStore(rdb, prefix),
		chat:     chat.NewRedisState(rdb, prefix, cfg.Chat.HistorySize, cfg.Chat.HeldMax),
		registry: room.NewRedisRegistry(rdb, prefix),
		origins:  room.NewRedisOrigins(rdb, prefix),
	}
	if c.store, err = cart.NewRedisStore(rdb, cfg.Cart); err != nil {
		rdb.Close()
		return nil, fmt.Errorf("cart store: %w", err)
	}
	return c, nil
}

// ready is /readyz in cluster mode: Redis must answer.
func (c *cluster) ready(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if err := c.rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis unreachable: %w", err)
	}
	return nil
}

// beat keeps this node in the registry until ctx ends.
func (c *cluster) beat(ctx context.Context, n *node) {
	started := time.Now().UnixMilli()
	room.Beat(ctx, c.registry, nodeTTL, func() room.NodeInfo {
		return room.NodeInfo{ID: n.cfg.Node.ID, HTTPURL: n.advertise, Conns: n.hub.Conns(), Started: started}
	}, n.log.With("component", "registry"))
}

func (c *cluster) close() {
	_ = c.bus.Close()
	_ = c.store.Close()
	_ = c.rdb.Close()
}

// clusterSecret is node.cluster_secret, or one derived from the JWT secret
// that every node of the cluster shares.
func clusterSecret(cfg Config) []byte {
	if cfg.Node.ClusterSecret != "" {
		return []byte(cfg.Node.ClusterSecret)
	}
	m := hmac.New(sha256.New, []byte(cfg.Auth.JWTSecret))
	m.Write([]byte("liveroom cluster secret"))
	return m.Sum(nil)
}
