package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/redis/go-redis/v9"

	"liveroom/cart"
	"liveroom/chat"
	"liveroom/room"
)

// backends are the implementations of every seam that holds shared state.
// This is the one place that chooses them: on one node memory and files,
// with redis.url Redis, shared by the nodes of a cluster. Everything else
// runs the same code either way.
type backends struct {
	rooms    room.Store
	bus      room.Bus
	origins  room.Origins
	registry room.Registry
	chat     chatState
	audit    chat.AuditLog
	store    cart.Store
	// secret authenticates node-to-node requests; nil on one node, which
	// then serves no edge route.
	secret []byte
	ready  func(ctx context.Context) error // nil: always ready
	close  func()
}

type chatState interface {
	chat.History
	chat.Held
	chat.Sanctions
	chat.Rules
}

func openBackends(cfg Config, log *slog.Logger) (*backends, error) {
	if cfg.Redis.URL != "" {
		return openRedis(cfg, log)
	}
	return openLocal(cfg)
}

// openLocal: rooms, chat state (bans, timeouts, slow mode, terms), the
// audit log and commerce survive a restart in the data directory.
func openLocal(cfg Config) (*backends, error) {
	b := &backends{bus: room.NewMemoryBus(cfg.Hub.HistorySize), origins: room.NewMemoryOrigins(), registry: room.NewMemoryRegistry()}
	var err error
	if b.rooms, err = room.OpenFileStore(cfg.DataDir); err != nil {
		return nil, err
	}
	if b.audit, err = chat.OpenFileAudit(filepath.Join(cfg.DataDir, "audit")); err != nil {
		return nil, fmt.Errorf("audit log: %w", err)
	}
	if b.chat, err = chat.OpenFileState(filepath.Join(cfg.DataDir, "chat"), cfg.Chat.HistorySize, cfg.Chat.HeldMax); err != nil {
		return nil, fmt.Errorf("chat state: %w", err)
	}
	local, err := cart.OpenLocal(filepath.Join(cfg.DataDir, "cart"), cfg.Cart)
	if err != nil {
		return nil, fmt.Errorf("cart store: %w", err)
	}
	b.store, b.close = local, func() { _ = local.Close() }
	return b, nil
}

// openRedis connects to Redis. It does not wait for Redis to answer: a node
// starts (and serves video) while Redis is down, and /readyz says so.
func openRedis(cfg Config, log *slog.Logger) (*backends, error) {
	opt, err := redis.ParseURL(cfg.Redis.URL)
	if err != nil {
		return nil, fmt.Errorf("redis.url: %w", err)
	}
	// Fail fast while Redis is unreachable, so that requests answer
	// `unavailable` at once instead of queueing behind retries.
	opt.DialTimeout = time.Second
	opt.ReadTimeout, opt.WriteTimeout, opt.PoolTimeout = 2*time.Second, 2*time.Second, 2*time.Second
	opt.MaxRetries = 1
	rdb := redis.NewClient(opt)
	prefix := cfg.Cart.RedisPrefix
	if prefix == "" {
		prefix = cart.DefaultRedisPrefix
	}
	store, err := cart.NewRedisStore(rdb, cfg.Cart)
	if err != nil {
		rdb.Close()
		return nil, fmt.Errorf("cart store: %w", err)
	}
	bus := room.NewRedisBus(rdb, room.RedisBusConfig{Prefix: prefix, History: cfg.Hub.HistorySize,
		Log: log.With("component", "bus")})
	state := chat.NewRedisState(rdb, prefix, cfg.Chat.HistorySize, cfg.Chat.HeldMax)
	return &backends{
		rooms: room.NewRedisStore(rdb, prefix), bus: bus,
		origins: room.NewRedisOrigins(rdb, prefix), registry: room.NewRedisRegistry(rdb, prefix),
		chat: state, audit: state.Audit(), store: store, secret: clusterSecret(cfg),
		ready: func(ctx context.Context) error {
			ctx, cancel := context.WithTimeout(ctx, time.Second)
			defer cancel()
			if err := rdb.Ping(ctx).Err(); err != nil {
				return fmt.Errorf("redis unreachable: %w", err)
			}
			return nil
		},
		close: func() { _ = bus.Close(); _ = store.Close(); _ = rdb.Close() },
	}, nil
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
