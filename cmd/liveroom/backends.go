package main

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"liveroom/cart"
	"liveroom/chat"
	"liveroom/record"
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
	shows    record.Manifest // recorded shows across the cluster; nil on one node
	// forget removes a data scope (room.Scope) from each backend holding
	// room data: the retired-incarnation sweep.
	forget []func(ctx context.Context, scope string) error
	// secret authenticates node-to-node requests; nil on one node, which
	// then serves no edge route.
	secret []byte
	ready  func(ctx context.Context) error // nil: always ready
	// readyDetail adds to /readyz's answer (Redis persistence); nil: nothing.
	readyDetail func(ctx context.Context) map[string]string
	close       func()
}

type chatState interface {
	chat.History
	chat.Held
	chat.Sanctions
	chat.Rules
	chat.Ranks
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
	b.forget = forgetters(b.bus, b.chat, b.audit, local)
	return b, nil
}

// openRedis: every node of the cluster shares one Redis; /readyz says
// whether it answers.
func openRedis(cfg Config, log *slog.Logger) (*backends, error) {
	rdb, err := cfg.Redis.Client()
	if err != nil {
		return nil, err
	}
	persistence, err := checkPersistence(cfg.Redis, rdb, log)
	if err != nil {
		rdb.Close()
		return nil, err
	}
	checkClock(rdb, log)
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
		chat: state, audit: state.Audit(), store: store, shows: record.NewRedisManifest(rdb, prefix), secret: cfg.Node.Secret(cfg.Auth.JWTSecret),
		forget: []func(context.Context, string) error{room.ForgetRedisScope(rdb, prefix), store.ForgetScope},
		ready: func(ctx context.Context) error {
			ctx, cancel := context.WithTimeout(ctx, time.Second)
			defer cancel()
			if err := rdb.Ping(ctx).Err(); err != nil {
				return fmt.Errorf("redis unreachable: %w", err)
			}
			return nil
		},
		readyDetail: func(ctx context.Context) map[string]string {
			p := persistence.Report(ctx)
			d := map[string]string{"redis_persistence": p.Verdict(), "redis_persistence_detail": p.Detail()}
			if skew, _, err := room.RedisClockSkew(ctx, rdb, time.Now); err == nil {
				d["redis_clock_skew_ms"] = strconv.FormatInt(skew.Milliseconds(), 10)
			}
			return d
		},
		close: func() { _ = bus.Close(); _ = store.Close(); _ = rdb.Close() },
	}, nil
}

// checkPersistence says at startup whether Redis keeps what the docs
// promise (docs/cluster.md, "What a Redis restart loses"); with
// redis.require_aof a Redis that does not confirm it stops the start.
func checkPersistence(cfg room.RedisConfig, rdb *redis.Client, log *slog.Logger) (*room.PersistenceWatch, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	p := room.CheckRedisPersistence(ctx, rdb)
	if cfg.RequireAOF && !p.AOFConfirmed() {
		return nil, fmt.Errorf("redis.require_aof: Redis does not confirm an append-only file: %s", p.Detail())
	}
	attrs := []any{"verdict", p.Verdict(), "detail", p.Detail()}
	if p.Verdict() == room.PersistenceDurable {
		log.Info("redis persistence", attrs...)
	} else {
		log.Warn("redis persistence: a Redis restart may lose confirmed orders and stock (docs/cluster.md)", attrs...)
	}
	return room.NewPersistenceWatch(rdb, p, time.Minute), nil
}

// checkClock logs how far this node's clock is from Redis' TIME: flash
// sales and holds are timed by each node's clock, auctions and giveaways by
// Redis', so a node far off ends a sale early or late for its buyers.
func checkClock(rdb *redis.Client, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	skew, rtt, err := room.RedisClockSkew(ctx, rdb, time.Now)
	switch {
	case err != nil:
		log.Warn("redis clock: TIME failed", "err", err)
	case skew > room.ClockSkewWarn || skew < -room.ClockSkewWarn:
		log.Warn("node clock is off from Redis' TIME: flash sales on this node end early or late by as much (keep nodes on NTP)",
			"skew_ms", skew.Milliseconds(), "rtt_ms", rtt.Milliseconds())
	default:
		log.Info("node clock against Redis' TIME", "skew_ms", skew.Milliseconds(), "rtt_ms", rtt.Milliseconds())
	}
}

// forgetters are the ForgetScope methods of those of parts that have one.
func forgetters(parts ...any) []func(ctx context.Context, scope string) error {
	var out []func(context.Context, string) error
	for _, p := range parts {
		if f, ok := p.(interface {
			ForgetScope(ctx context.Context, scope string) error
		}); ok {
			out = append(out, f.ForgetScope)
		}
	}
	return out
}
