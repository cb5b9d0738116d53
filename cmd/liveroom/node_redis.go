package main

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"liveroom/cart"
	"liveroom/chat"
	"liveroom/room"
)

// nodeTTL is how long a node stays in the registry without a heartbeat.
const nodeTTL = 6 * time.Second

// cluster is what a node shares with the others through Redis (redis.url
// set). Every seam that holds room state gets its Redis implementation;
// the SFU stays node-local.
//
// TODO(cluster): media edge pull. A viewer must reach the node the host
// publishes to (WHEP on another node finds no publisher); the registry's
// advertised URLs and a room->origin directory are the inputs for it.
type cluster struct {
	rdb      *redis.Client
	bus      *room.RedisBus
	rooms    *room.RedisStore
	chat     *chat.RedisState
	store    *cart.RedisStore
	registry *room.RedisRegistry
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
func (c *cluster) beat(ctx context.Context, n *node, gather prometheus.Gatherer) {
	started := time.Now().UnixMilli()
	room.Beat(ctx, c.registry, nodeTTL, func() room.NodeInfo {
		return room.NodeInfo{ID: n.cfg.Node.ID, HTTPURL: n.advertise, Conns: hubConns(gather), Started: started}
	}, n.log.With("component", "registry"))
}

func (c *cluster) close() {
	_ = c.bus.Close()
	_ = c.store.Close()
	_ = c.rdb.Close()
}

// hubConns reads the hub's connection gauge: the node's load.
func hubConns(g prometheus.Gatherer) int {
	if g == nil {
		return 0
	}
	mfs, err := g.Gather()
	if err != nil {
		return 0
	}
	for _, mf := range mfs {
		if strings.HasSuffix(mf.GetName(), "ws_connections") && len(mf.GetMetric()) > 0 {
			return int(mf.GetMetric()[0].GetGauge().GetValue())
		}
	}
	return 0
}
