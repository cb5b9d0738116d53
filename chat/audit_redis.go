package chat

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// RedisAudit is the cluster's moderation audit log: per room, the last
// 10,000 entries in a list under RedisState's keys (audit, audit:id), made
// by RedisState.Audit.
type RedisAudit struct{ s *RedisState }

var _ AuditLog = (*RedisAudit)(nil)

// luaAudit: KEYS audit, audit:id; ARGV entry JSON (its id 0), cap. Stores
// "<id> <json>" and returns the id.
var luaAudit = redis.NewScript(`
local id = redis.call('INCR', KEYS[2])
redis.call('RPUSH', KEYS[1], string.format('%d', id) .. ' ' .. ARGV[1])
redis.call('LTRIM', KEYS[1], -tonumber(ARGV[2]), -1)
return id
`)

func (a *RedisAudit) Append(ctx context.Context, e AuditEntry) (AuditEntry, error) {
	e.ID = 0
	js, err := json.Marshal(e)
	if err != nil {
		return AuditEntry{}, fmt.Errorf("chat: audit: %w", err)
	}
	s := a.s
	id, err := luaAudit.Run(ctx, s.rdb, []string{s.key(e.Room, "audit"), s.key(e.Room, "audit:id")}, js, s.auditMax).Int64()
	if err != nil {
		return AuditEntry{}, redisErr(err)
	}
	e.ID = uint64(id)
	return e, nil
}

func (a *RedisAudit) Recent(ctx context.Context, roomID string, limit int) ([]AuditEntry, error) {
	start := int64(0)
	if limit > 0 {
		start = -int64(limit)
	}
	vals, err := a.s.rdb.LRange(ctx, a.s.key(roomID, "audit"), start, -1).Result()
	if err != nil {
		return nil, redisErr(err)
	}
	out := make([]AuditEntry, 0, len(vals))
	for _, v := range vals {
		id, js, _ := strings.Cut(v, " ")
		var e AuditEntry
		if err := json.Unmarshal([]byte(js), &e); err != nil {
			return nil, fmt.Errorf("chat: stored audit entry: %w", err)
		}
		e.ID, _ = strconv.ParseUint(id, 10, 64)
		out = append(out, e)
	}
	return out, nil
}
