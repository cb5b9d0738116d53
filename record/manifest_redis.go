package record

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// redisManifest keeps show manifests in the cluster's Redis:
//
//	{prefix}rec:{room}:shows          set of show ids
//	{prefix}rec:{room}:current        the show in progress
//	{prefix}rec:{room}:{show}         ShowState (JSON)
//	{prefix}rec:{room}:{show}:segs    list of SegmentRef (JSON), in order
//	{prefix}rec:{room}:{show}:script  list of script lines
//	{prefix}rec:{room}:{show}:chat    list of chat lines
//	{prefix}rec-deleted               zset "room/show" -> deletion time (ms)
type redisManifest struct {
	rdb    redis.UniversalClient
	prefix string
}

var _ Manifest = (*redisManifest)(nil)

// NewRedisManifest is a Manifest in rdb under prefix (the cluster's).
func NewRedisManifest(rdb redis.UniversalClient, prefix string) Manifest {
	return &redisManifest{rdb: rdb, prefix: prefix}
}

func (m *redisManifest) key(roomID string, parts ...string) string {
	k := m.prefix + "rec:" + roomID
	for _, p := range parts {
		k += ":" + p
	}
	return k
}

// logNames are the logs a manifest keeps (AppendLog's log argument).
var logNames = map[string]bool{scriptName: true, chatName: true}

func logKey(name string) string {
	if name == chatName {
		return "chat"
	}
	return "script"
}

func (m *redisManifest) Current(ctx context.Context, roomID, scope string) (ShowState, bool, error) {
	id, err := m.rdb.Get(ctx, m.key(roomID, "current")).Result()
	if errors.Is(err, redis.Nil) {
		return ShowState{}, false, nil
	}
	if err != nil {
		return ShowState{}, false, err
	}
	st, err := m.state(ctx, roomID, id)
	if errors.Is(err, ErrNoShow) {
		return ShowState{}, false, nil
	}
	if err != nil {
		return ShowState{}, false, err
	}
	if st.Scope != scope || st.EndedAt != nil {
		return ShowState{}, false, nil
	}
	return st, true, nil
}

// dropCurrent clears rec:{room}:current only if it still names the show.
var dropCurrent = redis.NewScript(`if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("DEL", KEYS[1]) end return 0`)

func (m *redisManifest) Save(ctx context.Context, st ShowState, segs []SegmentRef) error {
	if !ValidShowID(st.ID) {
		return ErrNoShow
	}
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	p := m.rdb.TxPipeline()
	p.Set(ctx, m.key(st.Room, st.ID), b, 0)
	p.SAdd(ctx, m.key(st.Room, "shows"), st.ID)
	if len(segs) > 0 {
		vals := make([]any, 0, len(segs))
		for _, s := range segs {
			sb, err := json.Marshal(s)
			if err != nil {
				return err
			}
			vals = append(vals, sb)
		}
		p.RPush(ctx, m.key(st.Room, st.ID, "segs"), vals...)
	}
	if st.EndedAt == nil {
		p.Set(ctx, m.key(st.Room, "current"), st.ID, 0)
	}
	if _, err := p.Exec(ctx); err != nil {
		return fmt.Errorf("manifest %s/%s: %w", st.Room, st.ID, err)
	}
	if st.EndedAt != nil {
		return dropCurrent.Run(ctx, m.rdb, []string{m.key(st.Room, "current")}, st.ID).Err()
	}
	return nil
}

func (m *redisManifest) AppendLog(ctx context.Context, roomID, showID, log string, line []byte) error {
	if !logNames[log] {
		return fmt.Errorf("manifest: no log %q", log)
	}
	return m.rdb.RPush(ctx, m.key(roomID, showID, logKey(log)), line).Err()
}

func (m *redisManifest) state(ctx context.Context, roomID, showID string) (ShowState, error) {
	b, err := m.rdb.Get(ctx, m.key(roomID, showID)).Bytes()
	if errors.Is(err, redis.Nil) {
		return ShowState{}, ErrNoShow
	}
	if err != nil {
		return ShowState{}, err
	}
	var st ShowState
	if err := json.Unmarshal(b, &st); err != nil {
		return ShowState{}, fmt.Errorf("manifest %s/%s: %w", roomID, showID, err)
	}
	return st, nil
}

func (m *redisManifest) Get(ctx context.Context, roomID, showID string) (ShowState, []SegmentRef, error) {
	if !ValidShowID(showID) {
		return ShowState{}, nil, ErrNoShow
	}
	st, err := m.state(ctx, roomID, showID)
	if err != nil {
		return ShowState{}, nil, err
	}
	raw, err := m.rdb.LRange(ctx, m.key(roomID, showID, "segs"), 0, -1).Result()
	if err != nil {
		return ShowState{}, nil, err
	}
	segs := make([]SegmentRef, 0, len(raw))
	for _, r := range raw {
		var s SegmentRef
		if json.Unmarshal([]byte(r), &s) == nil {
			segs = append(segs, s)
		}
	}
	return st, segs, nil
}

func (m *redisManifest) Log(ctx context.Context, roomID, showID, log string) ([][]byte, error) {
	if !logNames[log] {
		return nil, fmt.Errorf("manifest: no log %q", log)
	}
	raw, err := m.rdb.LRange(ctx, m.key(roomID, showID, logKey(log)), 0, -1).Result()
	if err != nil {
		return nil, err
	}
	out := make([][]byte, len(raw))
	for i, r := range raw {
		out[i] = []byte(r)
	}
	return out, nil
}

func (m *redisManifest) List(ctx context.Context, roomID string) ([]ShowState, error) {
	ids, err := m.rdb.SMembers(ctx, m.key(roomID, "shows")).Result()
	if err != nil {
		return nil, err
	}
	out := []ShowState{}
	for _, id := range ids {
		if st, err := m.state(ctx, roomID, id); err == nil {
			out = append(out, st)
		}
	}
	return out, nil
}

func (m *redisManifest) Delete(ctx context.Context, roomID, showID string) error {
	now := time.Now()
	p := m.rdb.TxPipeline()
	p.Del(ctx, m.key(roomID, showID), m.key(roomID, showID, "segs"), m.key(roomID, showID, "script"), m.key(roomID, showID, "chat"))
	p.SRem(ctx, m.key(roomID, "shows"), showID)
	p.ZAdd(ctx, m.tombstones(), redis.Z{Score: float64(now.UnixMilli()), Member: roomID + "/" + showID})
	p.ZRemRangeByScore(ctx, m.tombstones(), "-inf", fmt.Sprint(now.Add(-tombstoneKeep).UnixMilli()))
	_, err := p.Exec(ctx)
	return err
}

func (m *redisManifest) tombstones() string { return m.prefix + "rec-deleted" }

func (m *redisManifest) Deleted(ctx context.Context, keys []string) (map[string]bool, error) {
	out := map[string]bool{}
	for len(keys) > 0 {
		n := min(len(keys), 500)
		scores, err := m.rdb.ZMScore(ctx, m.tombstones(), keys[:n]...).Result()
		if err != nil {
			return nil, err
		}
		for i, sc := range scores {
			if sc != 0 {
				out[keys[i]] = true
			}
		}
		keys = keys[n:]
	}
	return out, nil
}
