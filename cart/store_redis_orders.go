package cart

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// The Redis store's checkout, orders and webhook deliveries (store_redis.go
// has products, sales and reservations).

// checkoutCart is cart for a checkout's first look, pipelined with the
// write that lets the outbox find the room: one round trip for both.
func (s *RedisStore) checkoutCart(ctx context.Context, room, user, okey string, now time.Time) ([]Reservation, bool, string, error) {
	p := s.prefix(room)
	var cart *redis.Cmd
	_, err := s.rdb.Pipelined(ctx, func(pl redis.Pipeliner) error {
		pl.ZAdd(ctx, s.outboxIndex(), redis.Z{Score: float64(toMS(now)), Member: room})
		cart = luaCart.EvalSha(ctx, pl, []string{p + "exp"}, p, user, toMS(now), s.cfg.Hold.Milliseconds(), okey, s.cfg.KeyRetention.Milliseconds())
		return nil
	})
	if err != nil && cart != nil && isNoScript(cart.Err()) {
		return s.cart(ctx, room, user, okey, now) // first use on this server: Run loads it
	}
	if err != nil {
		return nil, false, "", scriptErr(err)
	}
	return cartReply(cart.Val())
}

func (s *RedisStore) Checkout(ctx context.Context, room, user, key string, now time.Time) (CheckoutResult, error) {
	if err := validCheckout(room, user, key); err != nil {
		return CheckoutResult{}, err
	}
	now = truncMS(now)
	// Optimistic: build the order from a snapshot of the cart; the script
	// applies it only if every reservation in it is still held. A hold that
	// expired or was released meanwhile makes us look again. The first look
	// rides with the outbox index write; the script answers with the cart:
	// two round trips in all when nothing races.
	for i := range 8 {
		look := s.cart
		if i == 0 {
			look = s.checkoutCart
		}
		items, expired, dup, err := look(ctx, room, user, key, now)
		if err != nil {
			return CheckoutResult{}, err
		}
		if dup != "" {
			return dupOrder(dup, items)
		}
		if len(items) == 0 {
			if expired {
				return CheckoutResult{}, errf(CodeExpired, "your reservations expired; add the items again")
			}
			return CheckoutResult{}, errf(CodeBadRequest, "the cart is empty")
		}
		sort.Slice(items, func(i, j int) bool { return items[i].ID < items[j].ID })
		o, err := newOrder(newOrderID(now), room, user, key, items, now)
		if err != nil {
			return CheckoutResult{}, err
		}
		payBy, err := s.startLife(ctx, room, &o, items, now)
		if err != nil {
			return CheckoutResult{}, err
		}
		body, err := json.Marshal(o)
		if err != nil {
			return CheckoutResult{}, err
		}
		args := []any{user, key, toMS(now), o.ID, string(body), s.cfg.KeyRetention.Milliseconds(), s.cfg.MaxKeys, payBy}
		for _, it := range items {
			args = append(args, it.ID)
		}
		v, err := s.run(ctx, luaCheckout, room, "orders", args...)
		if err != nil {
			return CheckoutResult{}, err
		}
		a := v.([]any)
		switch str(a[0]) {
		case "ok":
			return CheckoutResult{Order: o, Cart: resList(a[1:])}, nil
		case "dup":
			return dupOrder(str(a[1]), resList(a[2:]))
		}
	}
	return CheckoutResult{}, errf(CodeUnavailable, "the cart keeps changing; try again")
}

func dupOrder(js string, cart []Reservation) (CheckoutResult, error) {
	res, err := orderReply(js)
	res.Cart = cart
	return res, err
}

func orderReply(js string) (CheckoutResult, error) {
	var o Order
	if err := json.Unmarshal([]byte(js), &o); err != nil {
		return CheckoutResult{}, fmt.Errorf("cart: stored order: %w", err)
	}
	return CheckoutResult{Order: o, Replayed: true}, nil
}

func (s *RedisStore) Order(ctx context.Context, room, id string) (Order, error) {
	js, err := s.rdb.Get(ctx, s.prefix(room)+"order:"+id).Result()
	if errors.Is(err, redis.Nil) {
		return Order{}, errf(CodeNotFound, "no order %q", id)
	}
	if err != nil {
		return Order{}, fmt.Errorf("cart: redis: %w", err)
	}
	r, err := orderReply(js)
	return r.Order, err
}

func (s *RedisStore) Orders(ctx context.Context, room, cursor string, limit int) (OrderPage, error) {
	limit = pageLimit(limit)
	p := s.prefix(room)
	max := "+"
	if cursor != "" {
		max = "(" + cursor
	}
	ids, err := s.rdb.ZRevRangeByLex(ctx, p+"orders", &redis.ZRangeBy{Max: max, Min: "-", Count: int64(limit + 1)}).Result()
	if err != nil {
		return OrderPage{}, fmt.Errorf("cart: redis: %w", err)
	}
	page := OrderPage{Orders: []Order{}}
	if len(ids) > limit {
		ids = ids[:limit]
		page.Next = ids[limit-1]
	}
	if len(ids) == 0 {
		return page, nil
	}
	vals, err := s.orderValues(ctx, p, ids)
	if err != nil {
		return OrderPage{}, err
	}
	for _, v := range vals {
		if js := str(v); js != "" {
			r, err := orderReply(js)
			if err != nil {
				return OrderPage{}, err
			}
			page.Orders = append(page.Orders, r.Order)
		}
	}
	return page, nil
}

func (s *RedisStore) ClaimDeliveries(ctx context.Context, now time.Time, lease time.Duration, max int) ([]Delivery, error) {
	horizon := strconv.FormatInt(toMS(now.Add(-outboxWindow)), 10)
	rooms, err := s.rdb.ZRangeByScore(ctx, s.outboxIndex(), &redis.ZRangeBy{Min: horizon, Max: "+inf"}).Result()
	if err != nil {
		return nil, fmt.Errorf("cart: redis: %w", err)
	}
	var out []Delivery
	for _, room := range rooms {
		if len(out) >= max {
			break
		}
		v, err := s.run(ctx, luaClaim, room, "outbox", toMS(now), toMS(now.Add(lease)), max-len(out))
		if err != nil {
			return out, err
		}
		for _, e := range v.([]any) {
			t := e.([]any)
			n, _ := t[1].(int64)
			out = append(out, Delivery{Room: room, OrderID: str(t[0]), Attempt: int(n), Order: []byte(str(t[2]))})
		}
	}
	return out, nil
}

func (s *RedisStore) CompleteDelivery(ctx context.Context, d Delivery) error {
	p := s.prefix(d.Room)
	_, err := s.rdb.TxPipelined(ctx, func(pl redis.Pipeliner) error {
		pl.ZRem(ctx, p+"outbox", d.OrderID)
		pl.HDel(ctx, p+"outbox:att", d.OrderID)
		return nil
	})
	if err != nil {
		return fmt.Errorf("cart: redis: %w", err)
	}
	return nil
}

func (s *RedisStore) RetryDelivery(ctx context.Context, d Delivery, next time.Time) error {
	p := s.prefix(d.Room)
	if err := s.rdb.ZAddXX(ctx, p+"outbox", redis.Z{Score: float64(toMS(next)), Member: d.OrderID}).Err(); err != nil {
		return fmt.Errorf("cart: redis: %w", err)
	}
	if err := s.rdb.ZAddGT(ctx, s.outboxIndex(), redis.Z{Score: float64(toMS(next)), Member: d.Room}).Err(); err != nil {
		return fmt.Errorf("cart: redis: %w", err)
	}
	return nil
}

// orderValues reads the orders named by ids under the room prefix p in one
// MGET, in their order: each the order's JSON, or nil if it is gone.
func (s *RedisStore) orderValues(ctx context.Context, p string, ids []string) ([]any, error) {
	keys := make([]string, len(ids))
	for i, id := range ids {
		keys[i] = p + "order:" + id
	}
	vals, err := s.rdb.MGet(ctx, keys...).Result()
	if err != nil {
		return nil, fmt.Errorf("cart: redis: %w", err)
	}
	return vals, nil
}
