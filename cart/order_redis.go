package cart

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// The RedisStore's order life: Go reads an order, decides the transition
// (Order.next) and the script applies it only if the order is still what
// Go read (order_redis_lua.go), so two nodes racing (a lapse and a payment,
// two lapse sweeps) move it once; the loser reads again and answers from
// the order as it now is.

// saleWindows caches the sales' pay_within_s (fixed when a sale starts).
type saleWindows struct {
	mu sync.Mutex
	m  map[string]*int // prefix+sale id -> window (nil: cart.pay_within)
}

const maxSaleWindows = 10_000

// startLife sets a new order's initial state from its sales' windows and
// returns its pay-by in unix ms (0: paid at once) for new_order.
func (s *RedisStore) startLife(ctx context.Context, room string, o *Order, items []Reservation, now time.Time) (int64, error) {
	var ws []*int
	list := false
	for _, it := range items {
		if it.SaleID == "" {
			list = true
			continue
		}
		w, err := s.saleWindow(ctx, room, it.SaleID)
		if err != nil {
			return 0, err
		}
		ws = append(ws, w)
	}
	startLife(o, payWindow(s.cfg.PayWithin, ws, list), now)
	if o.PayBy == nil {
		return 0, nil
	}
	// The lapse sweep looks at rooms in the sweep index until then.
	if err := s.touch(ctx, room, *o.PayBy); err != nil {
		return 0, err
	}
	return toMS(*o.PayBy), nil
}

func (s *RedisStore) saleWindow(ctx context.Context, room, saleID string) (*int, error) {
	k := s.prefix(room) + saleID
	s.windows.mu.Lock()
	w, ok := s.windows.m[k]
	s.windows.mu.Unlock()
	if ok {
		return w, nil
	}
	v, err := s.rdb.HGet(ctx, s.prefix(room)+"sale:"+saleID, "pw").Result()
	switch {
	case errors.Is(err, redis.Nil):
	case err != nil:
		return nil, fmt.Errorf("cart: redis: %w", err)
	default:
		n, err := strconv.Atoi(v)
		if err != nil {
			return nil, fmt.Errorf("cart: sale %s: pay window %q", saleID, v)
		}
		w = &n
	}
	s.windows.mu.Lock()
	if s.windows.m == nil || len(s.windows.m) >= maxSaleWindows {
		s.windows.m = map[string]*int{}
	}
	s.windows.m[k] = w
	s.windows.mu.Unlock()
	return w, nil
}

func (s *RedisStore) TransitionOrder(ctx context.Context, room, id string, t Transition, now time.Time) (OrderChange, error) {
	if err := validRoom(room); err != nil {
		return OrderChange{}, err
	}
	now = truncMS(now)
	for range 8 {
		old, err := s.rdb.Get(ctx, s.prefix(room)+"order:"+id).Result()
		if errors.Is(err, redis.Nil) {
			return OrderChange{}, errf(CodeNotFound, "no order %q", id)
		}
		if err != nil {
			return OrderChange{}, fmt.Errorf("cart: redis: %w", err)
		}
		var o Order
		if err := json.Unmarshal([]byte(old), &o); err != nil {
			return OrderChange{}, fmt.Errorf("cart: stored order: %w", err)
		}
		n, changed, err := o.next(t, now)
		if err != nil || !changed {
			return OrderChange{Order: n}, err
		}
		nb, err := json.Marshal(n)
		if err != nil {
			return OrderChange{}, err
		}
		if err := s.rdb.ZAddGT(ctx, s.outboxIndex(), redis.Z{Score: float64(toMS(now)), Member: room}).Err(); err != nil {
			return OrderChange{}, fmt.Errorf("cart: redis: %w", err)
		}
		cancel := "0"
		if n.State == OrderCancelled {
			cancel = "1"
		}
		v, err := s.run(ctx, luaTransition, room, "order:"+id, id, old, string(nb), string(n.State), toMS(now), cancel, o.User)
		if err != nil {
			return OrderChange{}, err
		}
		a := v.([]any)
		if str(a[0]) == "stale" {
			continue // moved meanwhile: decide again from what it is now
		}
		return OrderChange{Order: n, Changed: true, Returned: returnsFrom(a[1])}, nil
	}
	return OrderChange{}, errf(CodeUnavailable, "the order keeps changing; try again")
}

func returnsFrom(v any) []StockReturn {
	var out []StockReturn
	for _, e := range asList(v) {
		f := asList(e)
		if len(f) < 5 {
			continue
		}
		q, _ := f[2].(int64)
		rem, _ := f[4].(int64)
		out = append(out, StockReturn{SaleID: str(f[0]), SKU: str(f[1]), Qty: int(q), ToSale: f[3] == int64(1), Remaining: int(rem)})
	}
	return out
}

func asList(v any) []any { a, _ := v.([]any); return a }

func (s *RedisStore) Lapse(ctx context.Context, now time.Time, max int) (LapseResult, error) {
	now = truncMS(now)
	var out LapseResult
	horizon := toMS(now.Add(-s.cfg.KeyRetention))
	rooms, err := s.rdb.ZRangeByScore(ctx, s.sweepIndex(), &redis.ZRangeBy{Min: strconv.FormatInt(horizon, 10), Max: "+inf"}).Result()
	if err != nil {
		return out, fmt.Errorf("cart: redis: %w", err)
	}
	for _, room := range rooms {
		if len(out.Lapsed) >= max {
			break
		}
		got, err := s.lapseRoom(ctx, room, now, max-len(out.Lapsed))
		out.Lapsed = append(out.Lapsed, got...)
		if err != nil {
			return out, err
		}
	}
	return out, nil
}

// lapseBatch bounds one lapse script (its run blocks Redis).
const lapseBatch = 200

func (s *RedisStore) lapseRoom(ctx context.Context, room string, now time.Time, max int) ([]RoomOrderChange, error) {
	p := s.prefix(room)
	var out []RoomOrderChange
	for len(out) < max {
		n := min(lapseBatch, max-len(out))
		ids, err := s.rdb.ZRangeByScore(ctx, p+"due", &redis.ZRangeBy{Min: "-inf", Max: strconv.FormatInt(toMS(now), 10), Count: int64(n)}).Result()
		if err != nil || len(ids) == 0 {
			if err != nil {
				err = fmt.Errorf("cart: redis: %w", err)
			}
			return out, err
		}
		keys := make([]string, len(ids))
		for i, id := range ids {
			keys[i] = p + "order:" + id
		}
		vals, err := s.rdb.MGet(ctx, keys...).Result()
		if err != nil {
			return out, fmt.Errorf("cart: redis: %w", err)
		}
		args := []any{toMS(now)}
		news := map[string]Order{}
		var gone []any
		for i, v := range vals {
			old := str(v)
			var o Order
			if old == "" || json.Unmarshal([]byte(old), &o) != nil {
				gone = append(gone, ids[i])
				continue
			}
			nx, changed, err := o.next(Transition{Action: ActCancel, By: CancelByLapse}, now)
			if err != nil || !changed {
				if o.stateOf() != OrderAwaitingPayment {
					gone = append(gone, ids[i]) // moved on; the entry is stale
				}
				continue
			}
			nb, err := json.Marshal(nx)
			if err != nil {
				return out, err
			}
			news[ids[i]] = nx
			args = append(args, ids[i], old, string(nb), o.User)
		}
		if len(gone) > 0 {
			if err := s.rdb.ZRem(ctx, p+"due", gone...).Err(); err != nil {
				return out, fmt.Errorf("cart: redis: %w", err)
			}
		}
		if len(news) == 0 {
			if len(gone) == 0 {
				return out, nil
			}
			continue
		}
		if err := s.rdb.ZAddGT(ctx, s.outboxIndex(), redis.Z{Score: float64(toMS(now)), Member: room}).Err(); err != nil {
			return out, fmt.Errorf("cart: redis: %w", err)
		}
		v, err := s.run(ctx, luaLapse, room, "due", args...)
		if err != nil {
			return out, err
		}
		for _, e := range asList(v) {
			f := asList(e)
			out = append(out, RoomOrderChange{Room: room, OrderChange: OrderChange{Order: news[str(f[0])], Changed: true, Returned: returnsFrom(f[1])}})
		}
		if len(ids) < n {
			return out, nil
		}
	}
	return out, nil
}

// orderScanChunk is how many orders OrdersIn reads per round trip.
const orderScanChunk = 500

func (s *RedisStore) OrdersIn(ctx context.Context, room string, state OrderState, cursor string, limit int) (OrderPage, error) {
	limit = pageLimit(limit)
	p := s.prefix(room)
	page := OrderPage{Orders: []Order{}}
	max := "+"
	if cursor != "" {
		max = "(" + cursor
	}
	for scanned := 0; scanned < maxOrderScan; {
		ids, err := s.rdb.ZRevRangeByLex(ctx, p+"orders", &redis.ZRangeBy{Max: max, Min: "-", Count: orderScanChunk}).Result()
		if err != nil {
			return OrderPage{}, fmt.Errorf("cart: redis: %w", err)
		}
		if len(ids) == 0 {
			return page, nil
		}
		vals, err := s.orderValues(ctx, p, ids)
		if err != nil {
			return OrderPage{}, err
		}
		for i, v := range vals {
			if len(page.Orders) == limit {
				page.Next = page.Orders[limit-1].ID
				return page, nil
			}
			scanned++
			max = "(" + ids[i]
			var o Order
			if js := str(v); js == "" || json.Unmarshal([]byte(js), &o) != nil {
				continue
			}
			if state == "" || o.stateOf() == state {
				o.State = o.stateOf()
				page.Orders = append(page.Orders, o)
			}
		}
		if len(ids) < orderScanChunk {
			if len(page.Orders) == limit {
				page.Next = page.Orders[limit-1].ID
			}
			return page, nil
		}
	}
	page.Next = max[1:]
	return page, nil
}

func (s *RedisStore) AwaitingOrders(ctx context.Context, room, user string) ([]Order, error) {
	p := s.prefix(room)
	ids, err := s.rdb.SMembers(ctx, p+"u:"+strconv.Itoa(len(user))+":"+user+":due").Result()
	if err != nil {
		return nil, fmt.Errorf("cart: redis: %w", err)
	}
	if len(ids) == 0 {
		return nil, nil
	}
	sort.Strings(ids) // order ids sort by time
	if len(ids) > maxAwaitingShown {
		ids = ids[:maxAwaitingShown]
	}
	keys := make([]string, len(ids))
	for i, id := range ids {
		keys[i] = p + "order:" + id
	}
	vals, err := s.rdb.MGet(ctx, keys...).Result()
	if err != nil {
		return nil, fmt.Errorf("cart: redis: %w", err)
	}
	var out []Order
	for _, v := range vals {
		var o Order
		if js := str(v); js != "" && json.Unmarshal([]byte(js), &o) == nil && o.stateOf() == OrderAwaitingPayment {
			out = append(out, o)
		}
	}
	return out, nil
}
