package chat

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"liveroom/room"
)

// RedisState keeps History, Held, Sanctions, Rules, Ranks and (through Audit)
// the AuditLog in Redis, so that every node of a cluster sees the same
// chat state. Keys per room (one hash slot, {room:ID}), under
// <prefix>{room:ID}:chat:
//
//	hist, held       list of message ids, oldest first (capped)
//	hist:m, held:m   hash id -> message JSON
//	hist:p, held:p   hash id -> "<seq> <ts>" (JSON leaves them out)
//	bans             set of user ids
//	bans:by          hash user id -> "<role> <actor id>" who banned them
//	mutes            hash user id -> muted until (unix ms)
//	mutes:by         hash user id -> "<role> <actor id>" who muted them
//	ranks            sorted set of user ids, score role*1e13 + kept until
//	                 (unix ms): the lowest role seen longest ago scores least
//	slow             string: slow mode seconds
//	post:<user>      string: the user's last post (unix ms), expires after the gap
//	terms            string: JSON list of blocked terms
//	terms:v          string: their version
//	audit, audit:id  list of entries as JSON (capped), the last entry id
type RedisState struct {
	rdb         redis.UniversalClient
	prefix      string
	historySize int
	heldMax     int
	auditMax    int
}

var (
	_ History   = (*RedisState)(nil)
	_ Held      = (*RedisState)(nil)
	_ Sanctions = (*RedisState)(nil)
	_ Rules     = (*RedisState)(nil)
	_ Ranks     = (*RedisState)(nil)
)

// NewRedisState keeps historySize messages and up to heldMax held ones per
// room under prefix (default "lr:"). Closing rdb is the caller's.
func NewRedisState(rdb redis.UniversalClient, prefix string, historySize, heldMax int) *RedisState {
	if prefix == "" {
		prefix = "lr:"
	}
	return &RedisState{rdb: rdb, prefix: prefix, historySize: max(historySize, 1), heldMax: max(heldMax, 1), auditMax: 10000}
}

// Audit returns the Redis audit log sharing s's client and prefix.
func (s *RedisState) Audit() *RedisAudit { return &RedisAudit{s: s} }

func (s *RedisState) key(roomID, name string) string {
	return s.prefix + "{room:" + roomID + "}:chat:" + name
}

func redisErr(err error) error { return fmt.Errorf("chat: redis: %w", err) }

// luaPush: KEYS list, hash, extra hash; ARGV id, json, cap, "seq ts".
// Appends and drops the oldest beyond cap.
var luaPush = redis.NewScript(`
redis.call('RPUSH', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[3], ARGV[1], ARGV[4])
local n = tonumber(ARGV[3])
while redis.call('LLEN', KEYS[1]) > n do
  local old = redis.call('LPOP', KEYS[1])
  redis.call('HDEL', KEYS[2], old)
  redis.call('HDEL', KEYS[3], old)
end
return 1
`)

// luaTake: KEYS list, hash, extra hash; ARGV id. Returns the JSON and the
// extra value, or nil.
var luaTake = redis.NewScript(`
local js = redis.call('HGET', KEYS[2], ARGV[1])
if not js then return nil end
local extra = redis.call('HGET', KEYS[3], ARGV[1]) or ''
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
redis.call('LREM', KEYS[1], 1, ARGV[1])
return {js, extra}
`)

// luaPublished: KEYS hash, extra hash; ARGV id, "seq ts".
var luaPublished = redis.NewScript(`
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
end
return 1
`)

func (s *RedisState) push(ctx context.Context, roomID, list string, m Message, limit int) error {
	js, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("chat: %w", err)
	}
	keys := []string{s.key(roomID, list), s.key(roomID, list+":m"), s.key(roomID, list+":p")}
	if err := luaPush.Run(ctx, s.rdb, keys, m.ID, js, limit, seqTS(m.Seq, m.TS)).Err(); err != nil {
		return redisErr(err)
	}
	return nil
}

func (s *RedisState) take(ctx context.Context, roomID, list, id string) (Message, bool, error) {
	keys := []string{s.key(roomID, list), s.key(roomID, list+":m"), s.key(roomID, list+":p")}
	v, err := luaTake.Run(ctx, s.rdb, keys, id).StringSlice()
	if errors.Is(err, redis.Nil) {
		return Message{}, false, nil
	}
	if err != nil {
		return Message{}, false, redisErr(err)
	}
	m, err := decodeMessage(v[0], v[1])
	return m, err == nil, err
}

func (s *RedisState) list(ctx context.Context, roomID, list string) ([]Message, error) {
	var ids *redis.StringSliceCmd
	var msgs, pubs *redis.MapStringStringCmd
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		ids = p.LRange(ctx, s.key(roomID, list), 0, -1)
		msgs = p.HGetAll(ctx, s.key(roomID, list+":m"))
		pubs = p.HGetAll(ctx, s.key(roomID, list+":p"))
		return nil
	})
	if err != nil {
		return nil, redisErr(err)
	}
	out := make([]Message, 0, len(ids.Val()))
	for _, id := range ids.Val() {
		js, ok := msgs.Val()[id]
		if !ok {
			continue
		}
		m, err := decodeMessage(js, pubs.Val()[id])
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, nil
}

// seqTS is the extra hash's value: a message's Seq and TS, which its JSON
// leaves out.
func seqTS(seq uint64, ts int64) string { return fmt.Sprintf("%d %d", seq, ts) }

func decodeMessage(js, pub string) (Message, error) {
	var m Message
	if err := json.Unmarshal([]byte(js), &m); err != nil {
		return Message{}, fmt.Errorf("chat: stored message: %w", err)
	}
	if seq, ts, ok := strings.Cut(pub, " "); ok {
		m.Seq, _ = strconv.ParseUint(seq, 10, 64)
		m.TS, _ = strconv.ParseInt(ts, 10, 64)
	}
	return m, nil
}

func (s *RedisState) Add(ctx context.Context, roomID string, m Message) error {
	return s.push(ctx, roomID, "hist", m, s.historySize)
}

func (s *RedisState) Published(ctx context.Context, roomID, id string, seq uint64, ts int64) error {
	keys := []string{s.key(roomID, "hist:m"), s.key(roomID, "hist:p")}
	if err := luaPublished.Run(ctx, s.rdb, keys, id, seqTS(seq, ts)).Err(); err != nil {
		return redisErr(err)
	}
	return nil
}

func (s *RedisState) Remove(ctx context.Context, roomID, id string) (Message, bool, error) {
	return s.take(ctx, roomID, "hist", id)
}

func (s *RedisState) Recent(ctx context.Context, roomID string) ([]Message, error) {
	return s.list(ctx, roomID, "hist")
}

func (s *RedisState) Hold(ctx context.Context, roomID string, m Message) error {
	return s.push(ctx, roomID, "held", m, s.heldMax)
}

func (s *RedisState) Take(ctx context.Context, roomID, id string) (Message, bool, error) {
	return s.take(ctx, roomID, "held", id)
}

func (s *RedisState) List(ctx context.Context, roomID string) ([]Message, error) {
	return s.list(ctx, roomID, "held")
}

// storedActor is an Actor as the :by hashes keep it.
func storedActor(a Actor) string { return a.Role.String() + " " + a.ID }

// parseActor reads storedActor's form; a missing value (a sanction from
// before roles were stored) is the zero Actor, which Binds reads as a
// moderator's.
func parseActor(v string) Actor {
	name, id, _ := strings.Cut(v, " ")
	r, _ := roleNamed(name)
	return Actor{ID: id, Role: r}
}

func (s *RedisState) Ban(ctx context.Context, roomID, userID string, by Actor) error {
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.SAdd(ctx, s.key(roomID, "bans"), userID)
		p.HSet(ctx, s.key(roomID, "bans:by"), userID, storedActor(by))
		return nil
	})
	if err != nil {
		return redisErr(err)
	}
	return nil
}

func (s *RedisState) Unban(ctx context.Context, roomID, userID string) (bool, error) {
	var n *redis.IntCmd
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		n = p.SRem(ctx, s.key(roomID, "bans"), userID)
		p.HDel(ctx, s.key(roomID, "bans:by"), userID)
		return nil
	})
	if err != nil {
		return false, redisErr(err)
	}
	return n.Val() > 0, nil
}

func (s *RedisState) Mute(ctx context.Context, roomID, userID string, until time.Time, by Actor) error {
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		if until.IsZero() {
			p.HDel(ctx, s.key(roomID, "mutes"), userID)
			p.HDel(ctx, s.key(roomID, "mutes:by"), userID)
		} else {
			p.HSet(ctx, s.key(roomID, "mutes"), userID, until.UnixMilli())
			p.HSet(ctx, s.key(roomID, "mutes:by"), userID, storedActor(by))
		}
		return nil
	})
	if err != nil {
		return redisErr(err)
	}
	return nil
}

func (s *RedisState) Standing(ctx context.Context, roomID, userID string) (Standing, error) {
	var banned *redis.BoolCmd
	var muted, bannedBy, mutedBy *redis.StringCmd
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		banned = p.SIsMember(ctx, s.key(roomID, "bans"), userID)
		bannedBy = p.HGet(ctx, s.key(roomID, "bans:by"), userID)
		muted = p.HGet(ctx, s.key(roomID, "mutes"), userID)
		mutedBy = p.HGet(ctx, s.key(roomID, "mutes:by"), userID)
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return Standing{}, redisErr(err)
	}
	st := Standing{Banned: banned.Val()}
	if st.Banned {
		st.BannedBy = parseActor(bannedBy.Val())
	}
	if ms, err := strconv.ParseInt(muted.Val(), 10, 64); err == nil {
		st.MutedUntil = time.UnixMilli(ms)
		st.MutedBy = parseActor(mutedBy.Val())
	}
	return st, nil
}

// rankScale separates roles in the ranks score: role*rankScale + kept
// until (unix ms, below 1e13 until the year 2286), exact in a float64.
const rankScale = 1e13

// luaSeeRank: KEYS ranks; ARGV user, role, until ms, now ms, max, ttl ms,
// top role. Keeps the higher of the stored (unexpired) and the new role;
// beyond max, drops expired entries, then the lowest scores.
var luaSeeRank = redis.NewScript(`
local scale = 1e13
local role, now, max = tonumber(ARGV[2]), tonumber(ARGV[4]), tonumber(ARGV[5])
local old = redis.call('ZSCORE', KEYS[1], ARGV[1])
if old then
  local r = math.floor(tonumber(old) / scale)
  if r > role and tonumber(old) - r * scale > now then role = r end
end
redis.call('ZADD', KEYS[1], string.format('%d', role * scale + tonumber(ARGV[3])), ARGV[1])
if redis.call('ZCARD', KEYS[1]) > max then
  for r = 0, tonumber(ARGV[7]) do
    redis.call('ZREMRANGEBYSCORE', KEYS[1], string.format('%d', r * scale), string.format('%d', r * scale + now))
  end
  local n = redis.call('ZCARD', KEYS[1]) - max
  if n > 0 then redis.call('ZPOPMIN', KEYS[1], n) end
end
redis.call('PEXPIRE', KEYS[1], ARGV[6])
return 1
`)

func (s *RedisState) SeeRank(ctx context.Context, roomID, userID string, role room.Role, now time.Time, keep RankKeep) error {
	err := luaSeeRank.Run(ctx, s.rdb, []string{s.key(roomID, "ranks")}, userID, int(role),
		now.Add(keep.TTL).UnixMilli(), now.UnixMilli(), max(keep.Max, 0), max(keep.TTL.Milliseconds(), 1), int(room.RoleAdmin)).Err()
	if err != nil {
		return redisErr(err)
	}
	return nil
}

func (s *RedisState) Rank(ctx context.Context, roomID, userID string, now time.Time) (room.Role, bool, error) {
	score, err := s.rdb.ZScore(ctx, s.key(roomID, "ranks"), userID).Result()
	if errors.Is(err, redis.Nil) {
		return room.RoleGuest, false, nil
	}
	if err != nil {
		return room.RoleGuest, false, redisErr(err)
	}
	r := math.Floor(score / rankScale)
	if int64(score-r*rankScale) <= now.UnixMilli() {
		return room.RoleGuest, false, nil
	}
	return room.Role(r), true, nil
}

func (s *RedisState) SetSlow(ctx context.Context, roomID string, seconds int) error {
	if err := s.rdb.Set(ctx, s.key(roomID, "slow"), seconds, 0).Err(); err != nil {
		return redisErr(err)
	}
	return nil
}

func (s *RedisState) Slow(ctx context.Context, roomID string) (int, error) {
	n, err := s.rdb.Get(ctx, s.key(roomID, "slow")).Int()
	if errors.Is(err, redis.Nil) {
		return 0, nil
	}
	if err != nil {
		return 0, redisErr(err)
	}
	return n, nil
}

// luaPost: KEYS post:<user>; ARGV now ms, gap ms. Returns 0 (posted) or
// the time the user may post again.
var luaPost = redis.NewScript(`
local now, gap = tonumber(ARGV[1]), tonumber(ARGV[2])
local last = tonumber(redis.call('GET', KEYS[1]) or '')
if last and now - last < gap then return last + gap end
if gap > 0 then redis.call('SET', KEYS[1], ARGV[1], 'PX', gap) else redis.call('DEL', KEYS[1]) end
return 0
`)

func (s *RedisState) Post(ctx context.Context, roomID, userID string, now time.Time, gap time.Duration) (bool, time.Time, error) {
	next, err := luaPost.Run(ctx, s.rdb, []string{s.key(roomID, "post:"+userID)}, now.UnixMilli(), gap.Milliseconds()).Int64()
	if err != nil {
		return false, time.Time{}, redisErr(err)
	}
	if next != 0 {
		return false, time.UnixMilli(next), nil
	}
	return true, time.Time{}, nil
}

// luaSetTerms: KEYS terms, terms:v; ARGV expected version, JSON. The new
// version is at least the time in ms, so it never repeats one a node has
// cached even if Redis lost the old list. Returns the version or -1.
var luaSetTerms = redis.NewScript(`
local v = tonumber(redis.call('GET', KEYS[2]) or '0')
if v ~= tonumber(ARGV[1]) then return -1 end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local nv = math.max(v + 1, now)
redis.call('SET', KEYS[1], ARGV[2])
redis.call('SET', KEYS[2], string.format('%d', nv))
return nv
`)

func (s *RedisState) UpdateTerms(ctx context.Context, roomID string, add, remove []string, maxTerms int) ([]string, error) {
	for range 50 {
		cur, ver, err := s.Terms(ctx, roomID)
		if err != nil {
			return nil, err
		}
		next := mergeTerms(cur, add, remove)
		if len(next) > maxTerms {
			return nil, tooManyTerms(maxTerms)
		}
		js, _ := json.Marshal(next)
		res, err := luaSetTerms.Run(ctx, s.rdb, []string{s.key(roomID, "terms"), s.key(roomID, "terms:v")}, ver, js).Int64()
		if err != nil {
			return nil, redisErr(err)
		}
		if res >= 0 {
			return next, nil
		}
	}
	return nil, errors.New("chat: terms: too much contention")
}

func (s *RedisState) Terms(ctx context.Context, roomID string) ([]string, uint64, error) {
	vals, err := s.rdb.MGet(ctx, s.key(roomID, "terms"), s.key(roomID, "terms:v")).Result()
	if err != nil {
		return nil, 0, redisErr(err)
	}
	var terms []string
	if js, ok := vals[0].(string); ok {
		if err := json.Unmarshal([]byte(js), &terms); err != nil {
			return nil, 0, fmt.Errorf("chat: stored terms: %w", err)
		}
	}
	var ver uint64
	if v, ok := vals[1].(string); ok {
		ver, _ = strconv.ParseUint(v, 10, 64)
	}
	return terms, ver, nil
}
