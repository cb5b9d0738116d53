package room

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis persistence: what a cluster's durability rests on. Confirmed
// orders, stock and holds live only in Redis; docs/cluster.md promises
// that a Redis restart loses at most the last second of them, which holds
// only with an append-only file (appendonly yes) synced every second or
// on every write. A node checks at startup and says so in its log and in
// /readyz; redis.require_aof turns a Redis that is known not to keep that
// promise into a refusal to start.

// Persistence verdicts, as /readyz and the startup log say them.
const (
	PersistenceDurable = "durable" // appendonly yes, appendfsync always or everysec
	PersistenceWeak    = "not_durable"
	PersistenceUnknown = "unknown"
)

// RedisPersistence is what a Redis says about its append-only file. An
// empty field is one it would not say.
type RedisPersistence struct {
	AppendOnly  string // "yes" or "no"
	AppendFsync string // "always", "everysec" or "no"
	// Source is the command that answered: "CONFIG GET" or, where CONFIG
	// is renamed or forbidden (most managed Redis), "INFO persistence",
	// which tells whether AOF is on but not how often it is synced.
	Source string
	// Err is why nothing could be read; Unreachable tells a Redis that did
	// not answer (worth asking again) from one that refused both commands.
	Err         error
	Unreachable bool
}

// Verdict is PersistenceDurable, PersistenceWeak or PersistenceUnknown.
func (p RedisPersistence) Verdict() string {
	switch {
	case p.AppendOnly == "no" || p.AppendFsync == "no":
		return PersistenceWeak
	case p.AppendOnly == "yes" && (p.AppendFsync == "always" || p.AppendFsync == "everysec"):
		return PersistenceDurable
	}
	return PersistenceUnknown
}

// AOFConfirmed is what redis.require_aof asks for: Redis said appendonly
// yes and did not say appendfsync no (INFO cannot say, so a managed Redis
// with AOF on passes).
func (p RedisPersistence) AOFConfirmed() bool {
	return p.AppendOnly == "yes" && p.AppendFsync != "no"
}

// Detail says what was read, and from where, in a few words.
func (p RedisPersistence) Detail() string {
	if p.Err != nil {
		return p.Err.Error()
	}
	word := func(v string) string {
		if v == "" {
			return "unknown"
		}
		return v
	}
	return fmt.Sprintf("appendonly %s, appendfsync %s (%s)", word(p.AppendOnly), word(p.AppendFsync), p.Source)
}

// CheckRedisPersistence asks rdb how it persists: CONFIG GET first, then
// INFO persistence when CONFIG is refused.
func CheckRedisPersistence(ctx context.Context, rdb redis.UniversalClient) RedisPersistence {
	cfg, err := rdb.ConfigGet(ctx, "append*").Result()
	if err == nil {
		return RedisPersistence{AppendOnly: cfg["appendonly"], AppendFsync: cfg["appendfsync"], Source: "CONFIG GET"}
	}
	if !isRedisReply(err) {
		return RedisPersistence{Err: fmt.Errorf("redis unreachable: %w", err), Unreachable: true}
	}
	info, infoErr := rdb.Info(ctx, "persistence").Result()
	if infoErr != nil {
		return RedisPersistence{Err: fmt.Errorf("CONFIG GET: %w; INFO persistence: %w", err, infoErr), Unreachable: !isRedisReply(infoErr)}
	}
	p := RedisPersistence{Source: "INFO persistence"}
	for line := range strings.Lines(info) {
		switch strings.TrimSpace(line) {
		case "aof_enabled:1":
			p.AppendOnly = "yes"
		case "aof_enabled:0":
			p.AppendOnly = "no"
		}
	}
	return p
}

// isRedisReply: err is Redis answering with an error (an unknown or
// forbidden command), not a connection that failed.
func isRedisReply(err error) bool {
	var reply redis.Error
	return errors.As(err, &reply) && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled)
}

// PersistenceWatch remembers the last check for /readyz, asking again
// after every (a failover may promote a replica configured otherwise), or
// at once while Redis was unreachable.
type PersistenceWatch struct {
	rdb   redis.UniversalClient
	every time.Duration

	mu   sync.Mutex
	last RedisPersistence
	at   time.Time
}

// NewPersistenceWatch starts from first, the check made at startup.
func NewPersistenceWatch(rdb redis.UniversalClient, first RedisPersistence, every time.Duration) *PersistenceWatch {
	return &PersistenceWatch{rdb: rdb, every: every, last: first, at: time.Now()}
}

// Report is the latest check, made again if it is stale.
func (w *PersistenceWatch) Report(ctx context.Context) RedisPersistence {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.last.Unreachable || time.Since(w.at) >= w.every {
		w.last, w.at = CheckRedisPersistence(ctx, w.rdb), time.Now()
	}
	return w.last
}
