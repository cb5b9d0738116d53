package room

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisStore keeps the rooms of a cluster in one Redis hash,
// <prefix>rooms: room id -> the room as JSON. Updates are compare-and-set,
// retried when another node changed the room in between.
type RedisStore struct {
	rdb redis.UniversalClient
	key string
	now func() time.Time
}

var _ Store = (*RedisStore)(nil)

// NewRedisStore keeps rooms under prefix (default "lr:").
func NewRedisStore(rdb redis.UniversalClient, prefix string) *RedisStore {
	if prefix == "" {
		prefix = "lr:"
	}
	return &RedisStore{rdb: rdb, key: prefix + "rooms", now: time.Now}
}

// luaCAS: KEYS rooms; ARGV id, old JSON, new JSON. 1 = set, 0 = changed
// meanwhile, -1 = gone.
var luaCAS = redis.NewScript(`
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if not cur then return -1 end
if cur ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
return 1
`)

func (s *RedisStore) Create(ctx context.Context, r Room) (Room, error) {
	b, err := json.Marshal(r)
	if err != nil {
		return Room{}, fmt.Errorf("rooms: %w", err)
	}
	ok, err := s.rdb.HSetNX(ctx, s.key, r.ID, b).Result()
	if err != nil {
		return Room{}, fmt.Errorf("rooms: redis: %w", err)
	}
	if !ok {
		return Room{}, fmt.Errorf("%w: %q", ErrExists, r.ID)
	}
	return r, nil
}

func (s *RedisStore) get(ctx context.Context, id string) (Room, string, error) {
	js, err := s.rdb.HGet(ctx, s.key, id).Result()
	if errors.Is(err, redis.Nil) {
		return Room{}, "", notFound(id)
	}
	if err != nil {
		return Room{}, "", fmt.Errorf("rooms: redis: %w", err)
	}
	var r Room
	if err := json.Unmarshal([]byte(js), &r); err != nil {
		return Room{}, "", fmt.Errorf("rooms: stored room %q: %w", id, err)
	}
	return r, js, nil
}

func (s *RedisStore) Get(ctx context.Context, id string) (Room, error) {
	r, _, err := s.get(ctx, id)
	return r, err
}

func (s *RedisStore) List(ctx context.Context) ([]Room, error) {
	vals, err := s.rdb.HVals(ctx, s.key).Result()
	if err != nil {
		return nil, fmt.Errorf("rooms: redis: %w", err)
	}
	list := make([]Room, 0, len(vals))
	for _, js := range vals {
		var r Room
		if err := json.Unmarshal([]byte(js), &r); err != nil {
			return nil, fmt.Errorf("rooms: stored room: %w", err)
		}
		list = append(list, r)
	}
	sort.Slice(list, func(i, j int) bool {
		return list[i].CreatedAt.Before(list[j].CreatedAt) || (list[i].CreatedAt.Equal(list[j].CreatedAt) && list[i].ID < list[j].ID)
	})
	return list, nil
}

func (s *RedisStore) Update(ctx context.Context, id string, fn func(*Room) error) (Room, error) {
	for attempt := 0; ; attempt++ {
		old, js, err := s.get(ctx, id)
		if err != nil {
			return Room{}, err
		}
		r := old
		if err := fn(&r); err != nil {
			return Room{}, err
		}
		r.ID, r.Incarnation, r.CreatedAt = old.ID, old.Incarnation, old.CreatedAt // immutable
		if err := r.Validate(); err != nil {
			return Room{}, err
		}
		r.UpdatedAt = s.now().UTC()
		b, err := json.Marshal(r)
		if err != nil {
			return Room{}, fmt.Errorf("rooms: %w", err)
		}
		res, err := luaCAS.Run(ctx, s.rdb, []string{s.key}, id, js, string(b)).Int()
		switch {
		case err != nil:
			return Room{}, fmt.Errorf("rooms: redis: %w", err)
		case res == 1:
			return r, nil
		case res == -1:
			return Room{}, notFound(id)
		case attempt >= 50:
			return Room{}, fmt.Errorf("rooms: update %q: too much contention", id)
		}
	}
}

// Delete removes the room and records its incarnation as retired, in one
// step (incarnation_retire.go).
func (s *RedisStore) Delete(ctx context.Context, id string) error {
	for attempt := 0; ; attempt++ {
		old, js, err := s.get(ctx, id)
		if err != nil {
			return err
		}
		rec, err := json.Marshal(Retired{ID: old.ID, Incarnation: old.Incarnation, DeletedAt: s.now().UTC()})
		if err != nil {
			return fmt.Errorf("rooms: %w", err)
		}
		res, err := luaRetire.Run(ctx, s.rdb, []string{s.key, s.retiredKey()}, id, js, old.Scope(), string(rec)).Int()
		switch {
		case err != nil:
			return fmt.Errorf("rooms: redis: %w", err)
		case res == 1:
			return nil
		case res == -1:
			return notFound(id)
		case attempt >= 50:
			return fmt.Errorf("rooms: delete %q: too much contention", id)
		}
	}
}
