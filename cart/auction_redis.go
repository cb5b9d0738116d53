package cart

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// The RedisStore's auctions: every change is one script of
// auction_redis_lua.go, ordered by Redis and timed by Redis TIME, so that
// any node may take a bid, stop or close an auction, and a close happens
// once whichever nodes try it.

func (s *RedisStore) dueIndex() string { return s.cfg.RedisPrefix + "auctions:due" }

func (s *RedisStore) runAuction(ctx context.Context, sc *redis.Script, room, id string, args ...any) (aucReply, error) {
	v, err := s.run(ctx, sc, room, "auc:"+id, append([]any{id}, args...)...)
	if err != nil {
		return aucReply{}, err
	}
	return parseAucReply(v)
}

type aucReply struct {
	status   string
	changed  bool
	extended bool
	prev     string
	a        Auction
}

func parseAucReply(v any) (aucReply, error) {
	a, ok := v.([]any)
	if !ok || len(a) == 0 {
		return aucReply{}, fmt.Errorf("cart: redis: unexpected auction reply %T", v)
	}
	r := aucReply{status: str(a[0])}
	if len(a) < 6 {
		return r, nil
	}
	n, _ := a[1].(int64)
	r.changed, r.extended, r.prev = n&1 != 0, n&2 != 0, str(a[2])
	hs, _ := a[3].([]any)
	h := make(map[string]string, len(hs)/2)
	for i := 0; i+1 < len(hs); i += 2 {
		h[str(hs[i])] = str(hs[i+1])
	}
	names := map[string]string{h["leader"]: str(a[4]), h["winner"]: str(a[5])}
	r.a = auctionFromHash(h, func(u string) string { return names[u] })
	if len(a) > 6 {
		if ms, ok := a[6].(int64); ok {
			r.a.Now = fromMS(ms) // Redis TIME at the reply
		}
	}
	return r, nil
}

func (s *RedisStore) StartAuction(ctx context.Context, room string, p AuctionParams) (Auction, error) {
	if err := validRoom(room); err != nil {
		return Auction{}, err
	}
	if err := p.Validate(); err != nil {
		return Auction{}, err
	}
	id := newID("a")
	member := room + "\x00" + id
	// Indexed first, so that a node dying right after the start still
	// leaves the auction where every closer looks. Scored "due now": no
	// node's clock guesses the end; the first closer to look is told the
	// end by Redis (not_yet) and moves it there, as the moveDue below does.
	if err := s.rdb.ZAdd(ctx, s.dueIndex(), redis.Z{Score: 0, Member: member}).Err(); err != nil {
		return Auction{}, fmt.Errorf("cart: redis: %w", err)
	}
	r, err := s.runAuction(ctx, luaAuctionStart, room, id, p.SKU, p.StartCents, p.DurationS*1000, p.ExtendS*1000,
		p.ReserveCents, p.Host, MaxRunningAuctions, ladderJSON(p.Increments))
	if err != nil {
		s.rdb.ZRem(context.WithoutCancel(ctx), s.dueIndex(), member)
		return Auction{}, err
	}
	_ = s.moveDue(ctx, room, r.a) // if it fails, the first closer moves it
	return r.a, nil
}

func (s *RedisStore) Bid(ctx context.Context, room string, p BidParams) (BidResult, error) {
	if err := validRoom(room); err != nil {
		return BidResult{}, err
	}
	if err := p.Validate(); err != nil {
		return BidResult{}, err
	}
	kind := "bid"
	if p.Max {
		kind = "max"
	}
	r, err := s.runAuction(ctx, luaAuctionBid, room, p.AuctionID, p.User, bidderName(p.Name, p.User), kind, p.Cents, p.Key, maxMaxSets)
	if err != nil {
		return BidResult{}, err
	}
	res := BidResult{Auction: r.a, Replayed: r.status == "replay", Changed: r.changed, Extended: r.extended, Prev: r.prev}
	if res.Extended {
		// Not the bid's failure if this fails: a closer that comes early
		// is told not_yet and moves the index itself.
		_ = s.moveDue(ctx, room, r.a)
	}
	return res, nil
}

// moveDue keeps the close index at the auction's end after an extension.
func (s *RedisStore) moveDue(ctx context.Context, room string, a Auction) error {
	if a.State != AuctionRunning {
		return nil
	}
	err := s.rdb.ZAddXX(ctx, s.dueIndex(), redis.Z{Score: float64(toMS(a.EndsAt)), Member: room + "\x00" + a.ID}).Err()
	if err != nil {
		return fmt.Errorf("cart: redis: %w", err)
	}
	return nil
}

func (s *RedisStore) RemoveBidder(ctx context.Context, room, auctionID, user string) (BidResult, error) {
	if err := validUser(user); err != nil {
		return BidResult{}, err
	}
	if !idPattern.MatchString(auctionID) {
		return BidResult{}, fieldErr("auction_id", "is not an auction id")
	}
	r, err := s.runAuction(ctx, luaAuctionRemove, room, auctionID, user, maxRemoved)
	if err != nil {
		return BidResult{}, err
	}
	return BidResult{Auction: r.a, Prev: r.prev, Changed: r.changed}, nil
}

func (s *RedisStore) StopAuction(ctx context.Context, room, auctionID string) (Auction, error) {
	if !idPattern.MatchString(auctionID) {
		return Auction{}, fieldErr("auction_id", "is not an auction id")
	}
	r, err := s.runAuction(ctx, luaAuctionStop, room, auctionID, s.cfg.KeyRetention.Milliseconds())
	if err != nil {
		return Auction{}, err
	}
	s.rdb.ZRem(ctx, s.dueIndex(), room+"\x00"+auctionID)
	return r.a, nil
}

func (s *RedisStore) CloseAuction(ctx context.Context, room, auctionID string) (CloseResult, error) {
	if !idPattern.MatchString(auctionID) {
		return CloseResult{}, fieldErr("auction_id", "is not an auction id")
	}
	member := room + "\x00" + auctionID
	for range 8 {
		a, err := s.Auction(ctx, room, auctionID)
		if errors.Is(err, ErrNotFound) {
			s.rdb.ZRem(ctx, s.dueIndex(), member)
			return CloseResult{}, err
		}
		if err != nil {
			return CloseResult{}, err
		}
		if a.State != AuctionRunning {
			s.rdb.ZRem(ctx, s.dueIndex(), member)
			return CloseResult{Auction: a}, nil
		}
		var o *Order
		oid, body := newOrderID(a.EndsAt), ""
		if a.Leader != nil && a.AmountCents >= a.reserveCents {
			ord, err := auctionOrder(room, a, oid, s.cfg.PayWithin, time.Now())
			if err != nil {
				return CloseResult{}, err
			}
			b, _ := json.Marshal(ord)
			o, body = &ord, string(b)
			// the outbox finds rooms by this index (as after a checkout)
			if err := s.rdb.ZAdd(ctx, s.outboxIndex(), redis.Z{Score: float64(toMS(a.EndsAt)), Member: room}).Err(); err != nil {
				return CloseResult{}, fmt.Errorf("cart: redis: %w", err)
			}
			if ord.PayBy != nil { // the lapse sweep finds rooms by the sweep index
				if err := s.touch(ctx, room, *ord.PayBy); err != nil {
					return CloseResult{}, err
				}
			}
		}
		payBy := int64(0) // the lapse index's due time (0: paid at once)
		if o != nil && o.PayBy != nil {
			payBy = toMS(*o.PayBy)
		}
		r, err := s.runAuction(ctx, luaAuctionClose, room, auctionID, a.Version, oid, body, s.cfg.KeyRetention.Milliseconds(), payBy)
		if err != nil {
			return CloseResult{}, err
		}
		switch r.status {
		case "stale":
			continue
		case "not_yet":
			return CloseResult{Auction: r.a}, s.moveDue(ctx, room, r.a)
		case "done":
			s.rdb.ZRem(ctx, s.dueIndex(), member)
			return CloseResult{Auction: r.a}, nil
		}
		s.rdb.ZRem(ctx, s.dueIndex(), member)
		res := CloseResult{Auction: r.a, Closed: true}
		if r.a.OrderID != "" {
			res.Order = o
		}
		return res, nil
	}
	return CloseResult{}, errf(CodeUnavailable, "auction %s keeps changing; try again", auctionID)
}

func (s *RedisStore) Auction(ctx context.Context, room, auctionID string) (Auction, error) {
	A := s.prefix(room) + "auc:" + auctionID
	h, err := s.rdb.HGetAll(ctx, A).Result()
	if err != nil {
		return Auction{}, fmt.Errorf("cart: redis: %w", err)
	}
	if len(h) == 0 {
		return Auction{}, auctionNotFound(auctionID)
	}
	names := map[string]string{}
	for _, u := range []string{h["leader"], h["winner"]} {
		if u != "" {
			names[u], _ = s.rdb.HGet(ctx, A+":names", u).Result()
		}
	}
	return auctionFromHash(h, func(u string) string { return names[u] }), nil
}

func (s *RedisStore) RunningAuctions(ctx context.Context, room string) ([]Auction, error) {
	ids, err := s.rdb.SMembers(ctx, s.prefix(room)+"auc:running").Result()
	if err != nil {
		return nil, fmt.Errorf("cart: redis: %w", err)
	}
	var list []Auction
	var now time.Time
	if len(ids) > 0 {
		if now, err = s.rdb.Time(ctx).Result(); err != nil {
			return nil, fmt.Errorf("cart: redis: %w", err)
		}
	}
	for _, id := range ids {
		a, err := s.Auction(ctx, room, id)
		if err != nil {
			if errors.Is(err, ErrNotFound) {
				continue
			}
			return nil, err
		}
		if a.State == AuctionRunning {
			a.Now = truncMS(now)
			list = append(list, a)
		}
	}
	sortAuctions(list)
	return list, nil
}

// DueAuctions reads the index up to Redis' TIME, the cluster's one clock.
func (s *RedisStore) DueAuctions(ctx context.Context, max int) ([]RoomAuction, error) {
	t, err := s.rdb.Time(ctx).Result()
	if err != nil {
		return nil, fmt.Errorf("cart: redis: %w", err)
	}
	ms, err := s.rdb.ZRangeByScore(ctx, s.dueIndex(), &redis.ZRangeBy{Min: "-inf", Max: strconv.FormatInt(toMS(t), 10), Count: int64(max)}).Result()
	if err != nil {
		return nil, fmt.Errorf("cart: redis: %w", err)
	}
	out := make([]RoomAuction, 0, len(ms))
	for _, m := range ms {
		room, id, ok := strings.Cut(m, "\x00")
		if ok {
			out = append(out, RoomAuction{Room: room, ID: id})
		}
	}
	return out, nil
}
