package room

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"time"

	"github.com/redis/go-redis/v9"
)

// Retired is an incarnation of a deleted room. Its data stays (its orders
// are still owed: webhooks keep delivering them and an admin can list them)
// until the retention passes; then RetiredSweeper removes it.
type Retired struct {
	ID          string    `json:"id"`
	Incarnation string    `json:"incarnation,omitempty"`
	DeletedAt   time.Time `json:"deleted_at"`
}

// Scope is the retired incarnation's data scope.
func (r Retired) Scope() string { return Scope(r.ID, r.Incarnation) }

// RetiredStore lists retired incarnations (the room stores record one on
// every Delete) and forgets one once its data is gone.
type RetiredStore interface {
	Retired(ctx context.Context) ([]Retired, error)
	ForgetRetired(ctx context.Context, scope string) error
}

var (
	_ RetiredStore = (*FileStore)(nil)
	_ RetiredStore = (*RedisStore)(nil)
)

// ---- file store ----

func (s *FileStore) loadRetired() error {
	b, err := os.ReadFile(s.retiredPath)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("rooms: %w", err)
	}
	if err := json.Unmarshal(b, &s.retired); err != nil {
		return fmt.Errorf("rooms: %s is corrupt: %w", s.retiredPath, err)
	}
	return nil
}

// retireLocked records r; the caller holds s.mu.
func (s *FileStore) retireLocked(r Retired) error {
	s.retired = append(s.retired, r)
	return s.saveRetiredLocked()
}

func (s *FileStore) saveRetiredLocked() error {
	b, err := json.MarshalIndent(s.retired, "", "  ")
	if err != nil {
		return fmt.Errorf("rooms: %w", err)
	}
	return WriteFileAtomic(s.retiredPath, b, 0o640)
}

func (s *FileStore) Retired(_ context.Context) ([]Retired, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return append([]Retired(nil), s.retired...), nil
}

func (s *FileStore) ForgetRetired(_ context.Context, scope string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	kept := s.retired[:0]
	for _, r := range s.retired {
		if r.Scope() != scope {
			kept = append(kept, r)
		}
	}
	s.retired = kept
	return s.saveRetiredLocked()
}

// ---- Redis store ----

// retiredKey shares the rooms hash's slot (its hash tag is that key), so
// that luaRetire touches one slot.
func (s *RedisStore) retiredKey() string { return "{" + s.key + "}:retired" }

// luaRetire deletes a room if it is still as read (KEYS[1] field ARGV[1] =
// ARGV[2]) and records its incarnation ARGV[3] as retired (ARGV[4]).
var luaRetire = redis.NewScript(`
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if not cur then return -1 end
if cur ~= ARGV[2] then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[2], ARGV[3], ARGV[4])
return 1
`)

func (s *RedisStore) Retired(ctx context.Context) ([]Retired, error) {
	vals, err := s.rdb.HVals(ctx, s.retiredKey()).Result()
	if err != nil {
		return nil, fmt.Errorf("rooms: redis: %w", err)
	}
	out := make([]Retired, 0, len(vals))
	for _, v := range vals {
		var r Retired
		if json.Unmarshal([]byte(v), &r) == nil {
			out = append(out, r)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].DeletedAt.Before(out[j].DeletedAt) })
	return out, nil
}

func (s *RedisStore) ForgetRetired(ctx context.Context, scope string) error {
	if err := s.rdb.HDel(ctx, s.retiredKey(), scope).Err(); err != nil {
		return fmt.Errorf("rooms: redis: %w", err)
	}
	return nil
}

// ForgetRedisScope deletes every key of a data scope: the keys of the bus,
// chat and commerce all carry the hash tag {room:<scope>} after prefix, so
// one SCAN finds them. The origin key is keyed by room id (media has no
// incarnations) and is left alone.
func ForgetRedisScope(rdb redis.UniversalClient, prefix string) func(ctx context.Context, scope string) error {
	return func(ctx context.Context, scope string) error {
		if !ValidScope(scope) { // no glob characters can reach MATCH
			return fmt.Errorf("forget scope: bad scope %q", scope)
		}
		iter := rdb.Scan(ctx, 0, prefix+"{room:"+scope+"}:*", 500).Iterator()
		var keys []string
		origin := prefix + "{room:" + scope + "}:origin" // media's, by room id: not the scope's
		for iter.Next(ctx) {
			if k := iter.Val(); k != origin {
				keys = append(keys, k)
			}
		}
		if err := iter.Err(); err != nil {
			return fmt.Errorf("forget scope %s: redis: %w", scope, err)
		}
		for len(keys) > 0 {
			n := min(len(keys), 500)
			if err := rdb.Unlink(ctx, keys[:n]...).Err(); err != nil {
				return fmt.Errorf("forget scope %s: redis: %w", scope, err)
			}
			keys = keys[n:]
		}
		return nil
	}
}

// ForgetScope drops a data scope's history and counters from the memory
// bus (a retired incarnation has no subscribers left).
func (b *MemoryBus) ForgetScope(_ context.Context, scope string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if r := b.rooms[scope]; r != nil {
		r.mu.Lock()
		n := len(r.subs)
		r.mu.Unlock()
		if n == 0 {
			delete(b.rooms, scope)
		}
	}
	return nil
}

// ---- the sweep ----

// RetiredSweeper removes the data of room incarnations deleted more than
// Retention ago (rooms.retired_retention), then forgets them. Until then a
// retired incarnation's orders stay listable and its webhooks keep being
// delivered.
type RetiredSweeper struct {
	Rooms     RetiredStore
	Forget    []func(ctx context.Context, scope string) error // one per backend holding room data
	Retention time.Duration
	Now       func() time.Time // nil: time.Now
	Log       *slog.Logger
}

// Sweep removes every incarnation past its retention and reports how many.
// One that fails stays listed and is tried again at the next sweep.
func (s *RetiredSweeper) Sweep(ctx context.Context) (int, error) {
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	list, err := s.Rooms.Retired(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	var errs []error
	for _, r := range list {
		if now().Sub(r.DeletedAt) < s.Retention {
			continue
		}
		scope := r.Scope()
		var ferr error
		for _, f := range s.Forget {
			if err := f(ctx, scope); err != nil {
				ferr = errors.Join(ferr, err)
			}
		}
		if ferr == nil {
			ferr = s.Rooms.ForgetRetired(ctx, scope)
		}
		if ferr != nil {
			errs = append(errs, ferr)
			continue
		}
		n++
		if s.Log != nil {
			s.Log.Info("retired room incarnation removed", "room", r.ID, "incarnation", r.Incarnation, "deleted_at", r.DeletedAt)
		}
	}
	return n, errors.Join(errs...)
}

// Run sweeps every interval until ctx ends.
func (s *RetiredSweeper) Run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, err := s.Sweep(ctx); err != nil && s.Log != nil {
				s.Log.Warn("retired room sweep", "err", err)
			}
		}
	}
}

// RoomsConfig is the `rooms:` section: what happens to a deleted room's data.
type RoomsConfig struct {
	// RetiredRetention is how long a deleted room's incarnation keeps its
	// data (orders still listable by an admin, webhooks still delivered)
	// before the sweep removes it. Default 720h (30 days).
	RetiredRetention time.Duration `yaml:"retired_retention"`
	// RetiredSweep is how often the sweep looks. Default 1h.
	RetiredSweep time.Duration `yaml:"retired_sweep"`
}

// DefaultRoomsConfig is the `rooms:` section's defaults.
func DefaultRoomsConfig() RoomsConfig {
	return RoomsConfig{RetiredRetention: 30 * 24 * time.Hour, RetiredSweep: time.Hour}
}

func (c RoomsConfig) Validate() error {
	if c.RetiredRetention < time.Minute {
		return errors.New("rooms.retired_retention: must be at least 1m")
	}
	if c.RetiredSweep < time.Second {
		return errors.New("rooms.retired_sweep: must be at least 1s")
	}
	return nil
}
