package cart

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Parked deliveries of the RedisStore: a room's are the hash
//
//	<room prefix>outbox:failed   order id -> failedEntry JSON
//
// in the room's slot (so parking is one script with the outbox zset), and
// the index <prefix>outbox:failed, a zset of "room\x00order id" members all
// scored 0, lists them in byte order across rooms. The index is written
// before a park and cleaned after a requeue; a member without its hash entry
// (a park that lost its race, a node that died in between) is skipped and
// removed when listed.
func (s *RedisStore) failedIndex() string { return s.cfg.RedisPrefix + "outbox:failed" }

// ARGV: P order-id entry-json -> 1 parked, 0 not queued (delivered meanwhile)
var luaPark = newScript(`
local oid = ARGV[2]
if not redis.call('ZSCORE', P .. 'outbox', oid) then return 0 end
redis.call('ZREM', P .. 'outbox', oid)
redis.call('HDEL', P .. 'outbox:att', oid)
redis.call('HSET', P .. 'outbox:failed', oid, ARGV[3])
return 1
`)

// ARGV: P order-id now-ms -> 1 requeued, 0 not parked
var luaRequeue = newScript(`
local oid = ARGV[2]
if redis.call('HDEL', P .. 'outbox:failed', oid) == 0 then return 0 end
redis.call('HDEL', P .. 'outbox:att', oid)
redis.call('ZADD', P .. 'outbox', ARGV[3], oid)
return 1
`)

func (s *RedisStore) ParkDelivery(ctx context.Context, d Delivery, reason string, now time.Time) error {
	member := d.Room + "\x00" + d.OrderID
	if err := s.rdb.ZAdd(ctx, s.failedIndex(), redis.Z{Score: 0, Member: member}).Err(); err != nil {
		return fmt.Errorf("cart: redis: %w", err)
	}
	entry, _ := json.Marshal(failedEntry{Attempts: d.Attempt, LastError: reason, ParkedAt: toMS(now)})
	v, err := s.run(ctx, luaPark, d.Room, "outbox", d.OrderID, string(entry))
	if err != nil {
		return err
	}
	if n, _ := v.(int64); n == 0 {
		return s.rdb.ZRem(ctx, s.failedIndex(), member).Err()
	}
	return nil
}

func (s *RedisStore) FailedDeliveries(ctx context.Context, cursor string, limit int) (FailedPage, error) {
	limit = failedPageLimit(limit)
	min := "-"
	if cursor != "" {
		k, err := parseFailedCursor(cursor)
		if err != nil {
			return FailedPage{}, err
		}
		min = "(" + k
	}
	var page FailedPage
	// Stale members are skipped, so a page may need more than one read.
	for len(page.Deliveries) < limit {
		members, err := s.rdb.ZRangeByLex(ctx, s.failedIndex(), &redis.ZRangeBy{Min: min, Max: "+", Count: int64(limit - len(page.Deliveries) + 1)}).Result()
		if err != nil {
			return FailedPage{}, fmt.Errorf("cart: redis: %w", err)
		}
		if len(members) == 0 {
			return page, nil
		}
		more := len(members) > limit-len(page.Deliveries)
		if more {
			members = members[:len(members)-1]
		}
		cmds := make([]*redis.StringCmd, len(members))
		_, err = s.rdb.Pipelined(ctx, func(pl redis.Pipeliner) error {
			for i, m := range members {
				room, oid, _ := strings.Cut(m, "\x00")
				cmds[i] = pl.HGet(ctx, s.prefix(room)+"outbox:failed", oid)
			}
			return nil
		})
		if err != nil && !errors.Is(err, redis.Nil) {
			return FailedPage{}, fmt.Errorf("cart: redis: %w", err)
		}
		for i, m := range members {
			room, oid, _ := strings.Cut(m, "\x00")
			raw, err := cmds[i].Result()
			if errors.Is(err, redis.Nil) {
				_ = s.rdb.ZRem(ctx, s.failedIndex(), m).Err() // stale
				continue
			}
			if err != nil {
				return FailedPage{}, fmt.Errorf("cart: redis: %w", err)
			}
			var e failedEntry
			if err := json.Unmarshal([]byte(raw), &e); err != nil {
				return FailedPage{}, fmt.Errorf("cart: parked delivery %s/%s: %w", room, oid, err)
			}
			page.Deliveries = append(page.Deliveries, FailedDelivery{Room: room, OrderID: oid,
				Attempts: e.Attempts, LastError: e.LastError, ParkedAt: fromMS(e.ParkedAt)})
		}
		min = "(" + members[len(members)-1]
		if !more {
			return page, nil
		}
	}
	last := page.Deliveries[len(page.Deliveries)-1]
	page.Next = failedCursor(last.Room, last.OrderID)
	return page, nil
}

func (s *RedisStore) RequeueDelivery(ctx context.Context, room, orderID string, now time.Time) error {
	// The room goes back into the outbox index first, so that claimers look
	// at it whatever happens next.
	if err := s.rdb.ZAddGT(ctx, s.outboxIndex(), redis.Z{Score: float64(toMS(now)), Member: room}).Err(); err != nil {
		return fmt.Errorf("cart: redis: %w", err)
	}
	v, err := s.run(ctx, luaRequeue, room, "outbox", orderID, toMS(now))
	if err != nil {
		return err
	}
	if n, _ := v.(int64); n == 0 {
		return errf(CodeNotFound, "no parked delivery of order %q in room %q", orderID, room)
	}
	if err := s.rdb.ZRem(ctx, s.failedIndex(), room+"\x00"+orderID).Err(); err != nil {
		return fmt.Errorf("cart: redis: %w", err)
	}
	return nil
}
