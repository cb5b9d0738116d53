package cart

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"liveroom/room"
)

// RedisStore is the cluster Store: every node shares carts and stock through
// Redis, and every change of stock is one Lua script, so it is atomic. A
// room's keys carry the hash tag {room:ID} and live in one slot (the key
// layout is in store_redis_lua.go). Durability of orders is Redis'
// persistence: run it with appendonly yes and appendfsync always (or
// replicas) if a confirmed order must survive losing Redis itself.
type RedisStore struct {
	rdb  redis.UniversalClient
	pipe *room.RedisPipeline // every script: auto-pipelined with the node's other calls
	cfg  Config

	mu      sync.Mutex
	touched map[string]int64 // room -> sweep-until this node last wrote to the rooms index

	windows saleWindows // sales' pay_within_s, which never change (order_redis.go)
}

var _ Store = (*RedisStore)(nil)

// NewRedisStore uses rdb (a client, a cluster client or a failover client).
// Closing the store does not close rdb.
func NewRedisStore(rdb redis.UniversalClient, cfg Config) (*RedisStore, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &RedisStore{rdb: rdb, pipe: room.NewRedisPipeline(rdb), cfg: cfg, touched: map[string]int64{}}, nil
}

func (s *RedisStore) Close() error { return nil }

func (s *RedisStore) prefix(room string) string { return s.cfg.RedisPrefix + "{room:" + room + "}:" }

// Two indexes outside any room (so not in a room's slot) tell the sweeper
// and the outbox which rooms to look at: rooms scored by the time until which
// they may need sweeping, and rooms scored by their last order activity.
func (s *RedisStore) sweepIndex() string  { return s.cfg.RedisPrefix + "cart:rooms" }
func (s *RedisStore) outboxIndex() string { return s.cfg.RedisPrefix + "outbox:rooms" }

// run runs a room script and turns CART errors into *Error. Scripts go
// through the pipeline: under a storm many buyers' scripts share one round
// trip, each still atomic.
func (s *RedisStore) run(ctx context.Context, sc *redis.Script, room, key string, args ...any) (any, error) {
	p := s.prefix(room)
	v, err := sc.Run(ctx, s.pipe, []string{p + key}, append([]any{p}, args...)...).Result()
	if err != nil {
		return nil, scriptErr(err)
	}
	return v, nil
}

func scriptErr(err error) error {
	var re redis.Error
	if errors.As(err, &re) {
		if msg, ok := strings.CutPrefix(re.Error(), "CART "); ok {
			code, rest, _ := strings.Cut(msg, " ")
			field, text, _ := strings.Cut(rest, " ")
			if field == "-" {
				field = ""
			}
			return &Error{Code: Code(code), Field: field, Message: text}
		}
	}
	if errors.Is(err, redis.Nil) {
		return err
	}
	return fmt.Errorf("cart: redis: %w", err)
}

// touch records that room needs sweeping until at least until. It skips the
// write when this node recorded a later time recently.
func (s *RedisStore) touch(ctx context.Context, room string, until time.Time) error {
	ms := toMS(until)
	s.mu.Lock()
	prev := s.touched[room]
	if prev >= ms {
		s.mu.Unlock()
		return nil
	}
	s.touched[room] = ms + 10_000 // batch: one write per room per 10s of hold time
	s.mu.Unlock()
	err := s.rdb.ZAddGT(ctx, s.sweepIndex(), redis.Z{Score: float64(ms + 10_000), Member: room}).Err()
	if err != nil {
		s.mu.Lock()
		delete(s.touched, room)
		s.mu.Unlock()
		return fmt.Errorf("cart: redis: %w", err)
	}
	return nil
}

// ---- catalog ----

func (s *RedisStore) PutProduct(ctx context.Context, room string, p Product) (Product, error) {
	if err := validRoom(room); err != nil {
		return Product{}, err
	}
	if err := p.Validate(); err != nil {
		return Product{}, err
	}
	stored := p
	stored.Stock = 0 // the live count is in the stock hash
	b, _ := json.Marshal(stored)
	if _, err := s.run(ctx, luaPutProduct, room, "products", p.SKU, string(b), p.Stock); err != nil {
		return Product{}, err
	}
	return p, nil
}

func productFrom(js string, stock string) (Product, error) {
	var p Product
	if err := json.Unmarshal([]byte(js), &p); err != nil {
		return Product{}, fmt.Errorf("cart: stored product: %w", err)
	}
	p.Stock, _ = strconv.Atoi(stock)
	return p, nil
}

func (s *RedisStore) Product(ctx context.Context, room, sku string) (Product, error) {
	p := s.prefix(room)
	var js, st *redis.StringCmd
	_, err := s.rdb.Pipelined(ctx, func(pl redis.Pipeliner) error {
		js = pl.HGet(ctx, p+"products", sku)
		st = pl.HGet(ctx, p+"stock", sku)
		return nil
	})
	if errors.Is(err, redis.Nil) && errors.Is(js.Err(), redis.Nil) {
		return Product{}, errf(CodeNotFound, "no product %q", sku)
	}
	if err != nil && !errors.Is(err, redis.Nil) {
		return Product{}, fmt.Errorf("cart: redis: %w", err)
	}
	return productFrom(js.Val(), st.Val())
}

func (s *RedisStore) Products(ctx context.Context, room string) ([]Product, error) {
	p := s.prefix(room)
	var js, st *redis.MapStringStringCmd
	if _, err := s.rdb.Pipelined(ctx, func(pl redis.Pipeliner) error {
		js = pl.HGetAll(ctx, p+"products")
		st = pl.HGetAll(ctx, p+"stock")
		return nil
	}); err != nil {
		return nil, fmt.Errorf("cart: redis: %w", err)
	}
	list := make([]Product, 0, len(js.Val()))
	for sku, v := range js.Val() {
		prod, err := productFrom(v, st.Val()[sku])
		if err != nil {
			return nil, err
		}
		list = append(list, prod)
	}
	sort.Slice(list, func(i, j int) bool { return list[i].SKU < list[j].SKU })
	return list, nil
}

func (s *RedisStore) DeleteProduct(ctx context.Context, room, sku string) error {
	_, err := s.run(ctx, luaDeleteProduct, room, "products", sku)
	return err
}

func (s *RedisStore) pin(ctx context.Context, room, op, sku string) (Product, bool, error) {
	v, err := s.run(ctx, luaPin, room, "pin", op, sku)
	if err != nil {
		return Product{}, false, err
	}
	a, _ := v.([]any)
	if len(a) < 2 {
		return Product{}, false, nil
	}
	prod, err := productFrom(str(a[0]), str(a[1]))
	return prod, err == nil, err
}

func (s *RedisStore) Pin(ctx context.Context, room, sku string) (Product, error) {
	p, _, err := s.pin(ctx, room, "pin", sku)
	return p, err
}

func (s *RedisStore) Unpin(ctx context.Context, room string) (Product, bool, error) {
	return s.pin(ctx, room, "unpin", "")
}

func (s *RedisStore) Pinned(ctx context.Context, room string) (Product, bool, error) {
	return s.pin(ctx, room, "get", "")
}

// ---- sales ----

func (s *RedisStore) StartSale(ctx context.Context, room string, p SaleParams, now time.Time) (Sale, error) {
	if err := validRoom(room); err != nil {
		return Sale{}, err
	}
	if err := p.Validate(); err != nil {
		return Sale{}, err
	}
	now = truncMS(now)
	starts := now.Add(time.Duration(p.StartsInS) * time.Second)
	sale := Sale{
		ID: newID("s"), SKU: p.SKU, PriceCents: p.PriceCents, Quantity: p.Quantity, Remaining: p.Quantity,
		PerUserLimit: p.PerUserLimit, StartsAt: starts, EndsAt: starts.Add(time.Duration(p.DurationS) * time.Second),
	}
	if err := s.touch(ctx, room, sale.EndsAt.Add(s.cfg.Hold)); err != nil {
		return Sale{}, err
	}
	pw := ""
	if p.PayWithinS != nil {
		pw, sale.PayWithinS = strconv.Itoa(*p.PayWithinS), p.PayWithinS
	}
	v, err := s.run(ctx, luaStartSale, room, "sales", sale.ID, p.SKU, p.PriceCents, p.Quantity,
		p.PerUserLimit, toMS(sale.StartsAt), toMS(sale.EndsAt), toMS(now), pw)
	if err != nil {
		return Sale{}, err
	}
	sale.Currency = str(v)
	sale.State = saleState(sale.StartsAt, sale.EndsAt, now)
	return sale, nil
}

func (s *RedisStore) StopSale(ctx context.Context, room, saleID string, now time.Time) (Sale, bool, error) {
	now = truncMS(now)
	v, err := s.run(ctx, luaStopSale, room, "sales", saleID, toMS(now))
	if err != nil {
		return Sale{}, false, err
	}
	sale, err := s.Sale(ctx, room, saleID, now)
	return sale, v == int64(1), err
}

func (s *RedisStore) Sale(ctx context.Context, room, saleID string, now time.Time) (Sale, error) {
	h, err := s.rdb.HGetAll(ctx, s.prefix(room)+"sale:"+saleID).Result()
	if err != nil {
		return Sale{}, fmt.Errorf("cart: redis: %w", err)
	}
	if len(h) == 0 {
		return Sale{}, errf(CodeNotFound, "no sale %q", saleID)
	}
	return saleFrom(h, truncMS(now)), nil
}

func saleFrom(h map[string]string, now time.Time) Sale {
	n := func(k string) int { v, _ := strconv.Atoi(h[k]); return v }
	ms := func(k string) time.Time { v, _ := strconv.ParseInt(h[k], 10, 64); return fromMS(v) }
	price, _ := strconv.ParseInt(h["price"], 10, 64)
	s := Sale{
		ID: h["id"], SKU: h["sku"], PriceCents: price, Currency: h["cur"], Quantity: n("qty"),
		Remaining: n("remaining"), Held: n("held"), Sold: n("sold"), PerUserLimit: n("limit"),
		StartsAt: ms("starts"), EndsAt: ms("ends"), Settled: h["settled"] != "",
	}
	s.State = saleState(s.StartsAt, s.EndsAt, now)
	if pw, err := strconv.Atoi(h["pw"]); err == nil {
		s.PayWithinS = &pw
	}
	return s
}

func (s *RedisStore) Sales(ctx context.Context, room string, now time.Time) ([]Sale, error) {
	p := s.prefix(room)
	ids, err := s.rdb.ZRange(ctx, p+"sales", 0, -1).Result()
	if err != nil {
		return nil, fmt.Errorf("cart: redis: %w", err)
	}
	return s.salesByID(ctx, room, ids, truncMS(now))
}

// Unsettled reads the sales in the ends index: those not settled yet.
func (s *RedisStore) Unsettled(ctx context.Context, room string, now time.Time) ([]Sale, error) {
	ids, err := s.rdb.ZRange(ctx, s.prefix(room)+"ends", 0, -1).Result()
	if err != nil {
		return nil, fmt.Errorf("cart: redis: %w", err)
	}
	return s.salesByID(ctx, room, ids, truncMS(now))
}

func (s *RedisStore) salesByID(ctx context.Context, room string, ids []string, now time.Time) ([]Sale, error) {
	p := s.prefix(room)
	cmds := make([]*redis.MapStringStringCmd, len(ids))
	if _, err := s.rdb.Pipelined(ctx, func(pl redis.Pipeliner) error {
		for i, id := range ids {
			cmds[i] = pl.HGetAll(ctx, p+"sale:"+id)
		}
		return nil
	}); err != nil {
		return nil, fmt.Errorf("cart: redis: %w", err)
	}
	list := make([]Sale, 0, len(ids))
	for _, c := range cmds {
		if len(c.Val()) > 0 {
			list = append(list, saleFrom(c.Val(), now))
		}
	}
	sortSales(list)
	return list, nil
}

// ---- reservations ----

func (s *RedisStore) Reserve(ctx context.Context, room string, p ReserveParams, now time.Time) (ReserveResult, error) {
	if err := validRoom(room); err != nil {
		return ReserveResult{}, err
	}
	if err := p.Validate(); err != nil {
		return ReserveResult{}, err
	}
	now = truncMS(now)
	exp := now.Add(s.cfg.Hold)
	if err := s.touch(ctx, room, exp); err != nil {
		return ReserveResult{}, err
	}
	sku := p.SKU
	if p.SaleID != "" {
		sku = ""
	}
	v, err := s.run(ctx, luaReserve, room, "exp", p.User, p.Key, p.SaleID, sku, p.Qty, toMS(now), toMS(exp), newID("r"),
		s.cfg.MaxHolds, s.cfg.MaxHeldUnits, s.cfg.ListPriceLimit, s.cfg.KeyRetention.Milliseconds())
	if err != nil {
		return ReserveResult{}, err
	}
	a := v.([]any)
	if str(a[0]) == "replay" {
		out, err := replayReservation(resFrom(a[1]), p)
		if err == nil {
			out.Cart = resList(a[2:])
		}
		return out, err
	}
	rem, _ := a[2].(int64)
	out := ReserveResult{Remaining: int(rem), SoldOut: a[3] == int64(1), Cart: resList(a[7:])}
	price, _ := strconv.ParseInt(str(a[5]), 10, 64)
	out.Reservation = Reservation{ID: str(a[1]), SaleID: p.SaleID, SKU: str(a[4]), Qty: p.Qty, PriceCents: price,
		Currency: str(a[6]), ExpiresAt: exp, Status: StatusHeld, Key: p.Key, User: p.User}
	return out, nil
}

// resList reads the cart part of a script's reply: res-hashes, sorted as
// Cart lists them.
func resList(hs []any) []Reservation {
	var list []Reservation
	for _, h := range hs {
		list = append(list, resFrom(h))
	}
	sortCart(list)
	return list
}

func (s *RedisStore) Release(ctx context.Context, room, user, id string, now time.Time) (ReleaseResult, error) {
	now = truncMS(now)
	v, err := s.run(ctx, luaRelease, room, "exp", user, id, toMS(now))
	if err != nil {
		return ReleaseResult{}, err
	}
	a := v.([]any)
	rem, _ := a[0].(int64)
	return ReleaseResult{Released: true, Remaining: int(rem), Reservation: resFrom(a[1]), Cart: resList(a[2:])}, nil
}

func (s *RedisStore) Cart(ctx context.Context, room, user string, now time.Time) ([]Reservation, error) {
	list, _, _, err := s.cart(ctx, room, user, "", truncMS(now))
	return list, err
}

// cart reads the buyer's held, unexpired reservations, whether one expired
// recently, and (if okey is set) the order of that checkout key.
func (s *RedisStore) cart(ctx context.Context, room, user, okey string, now time.Time) (list []Reservation, expired bool, order string, err error) {
	v, err := s.run(ctx, luaCart, room, "exp", user, toMS(now), s.cfg.Hold.Milliseconds(), okey, s.cfg.KeyRetention.Milliseconds())
	if err != nil {
		return nil, false, "", err
	}
	return cartReply(v)
}

func cartReply(v any) (list []Reservation, expired bool, order string, err error) {
	a := v.([]any)
	return resList(a[2:]), a[1] == int64(1), str(a[0]), nil
}

func isNoScript(err error) bool {
	return err != nil && strings.HasPrefix(err.Error(), "NOSCRIPT")
}

func resFrom(v any) Reservation {
	// A switch over the hash's fields, not a map of them: one reservation
	// per cart item per reservation made, so the map was a visible share of
	// the storm's allocations.
	a, _ := v.([]any)
	var r Reservation
	var exp int64
	for i := 0; i+1 < len(a); i += 2 {
		val := str(a[i+1])
		switch str(a[i]) {
		case "id":
			r.ID = val
		case "sale":
			r.SaleID = val
		case "sku":
			r.SKU = val
		case "qty":
			r.Qty, _ = strconv.Atoi(val)
		case "price":
			r.PriceCents, _ = strconv.ParseInt(val, 10, 64)
		case "cur":
			r.Currency = val
		case "exp":
			exp, _ = strconv.ParseInt(val, 10, 64)
		case "st":
			r.Status = ResStatus(val)
		case "key":
			r.Key = val
		case "user":
			r.User = val
		case "order":
			r.OrderID = val
		}
	}
	r.ExpiresAt = fromMS(exp)
	return r
}

func str(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case int64:
		return strconv.FormatInt(x, 10)
	}
	return ""
}

// ---- checkout ----

// ---- sweep ----

const sweepBatch = 1000

func (s *RedisStore) Sweep(ctx context.Context, now time.Time) (SweepResult, error) {
	now = truncMS(now)
	var out SweepResult
	horizon := toMS(now.Add(-s.cfg.KeyRetention))
	// Both index calls may simply be asked again when a reply is lost.
	if err := again(ctx, func() error {
		return s.rdb.ZRemRangeByScore(ctx, s.sweepIndex(), "-inf", "("+strconv.FormatInt(horizon, 10)).Err()
	}); err != nil {
		return out, fmt.Errorf("cart: redis: %w", err)
	}
	var rooms []string
	if err := again(ctx, func() (err error) {
		rooms, err = s.rdb.ZRangeByScore(ctx, s.sweepIndex(), &redis.ZRangeBy{Min: strconv.FormatInt(horizon, 10), Max: "+inf"}).Result()
		return err
	}); err != nil {
		return out, fmt.Errorf("cart: redis: %w", err)
	}
	for _, room := range rooms {
		for {
			v, err := s.tick(ctx, room, now)
			if err != nil {
				return out, err
			}
			exp, ended, settled := tickReply(room, v)
			out.Expired = append(out.Expired, exp...)
			for i, kind := range []*[]RoomSale{&out.Ended, &out.Settled} {
				ids := [][]string{ended, settled}[i]
				sales, err := s.salesByID(ctx, room, ids, now)
				if err != nil {
					return out, err
				}
				for _, sale := range sales {
					*kind = append(*kind, RoomSale{Room: room, Sale: sale})
				}
			}
			if len(exp) < sweepBatch {
				break
			}
		}
	}
	return out, nil
}

// tickReply reads luaTick's reply: the holds it expired, the sales that
// ended and those settled.
func tickReply(room string, v any) (expired []Expired, ended, settled []string) {
	a := v.([]any)
	for _, e := range a[0].([]any) {
		pair := e.([]any)
		rem, _ := pair[0].(int64)
		expired = append(expired, Expired{Room: room, Reservation: resFrom(pair[1]), Remaining: int(rem)})
	}
	return expired, strs(a[1]), strs(a[2])
}

// lostAttempts bounds how often a sweep's call is asked again when its
// reply is lost.
const lostAttempts = 3

// again runs call until it answers, is refused, or lostAttempts calls in a
// row lost their replies (Redis down fails every one). Only for calls that
// may run twice: the client itself never retries (room/redis_config.go).
func again(ctx context.Context, call func() error) error {
	var err error
	for attempt := range lostAttempts {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return err
			case <-time.After(time.Duration(attempt) * 100 * time.Millisecond):
			}
		}
		if err = call(); err == nil || !replyLost(ctx, err) {
			return err
		}
	}
	return err
}

// tick runs one sweep batch of room. Its reply can be lost after Redis ran
// it (a read timeout, a broken connection): the batch is then asked again
// under the same token, and the script answers with what the first run did,
// so the holds it expired are still announced.
func (s *RedisStore) tick(ctx context.Context, room string, now time.Time) (v any, err error) {
	var b [8]byte
	_, _ = rand.Read(b[:])
	token := hex.EncodeToString(b[:])
	err = again(ctx, func() (err error) {
		v, err = s.run(ctx, luaTick, room, "exp", toMS(now), sweepBatch, s.cfg.Hold.Milliseconds(), token)
		return err
	})
	if err == nil {
		if a, ok := v.([]any); ok && slices.ContainsFunc(a, func(x any) bool { l, _ := x.([]any); return len(l) > 0 }) {
			// The reply is here: its copy may go (else it expires in 30 s).
			_ = s.rdb.Unlink(ctx, s.prefix(room)+"tick:"+token).Err()
		}
	}
	return v, err
}

// replyLost tells a call that may have reached Redis without its answer
// coming back from a refusal (a script's error, a full pipeline, the
// caller giving up).
func replyLost(ctx context.Context, err error) bool {
	var ce *Error
	return ctx.Err() == nil && !errors.As(err, &ce) && !errors.Is(err, room.ErrRedisPipelineFull) && !errors.Is(err, redis.Nil)
}

func strs(v any) []string {
	a, _ := v.([]any)
	out := make([]string, len(a))
	for i, x := range a {
		out[i] = str(x)
	}
	return out
}

// ---- orders ----

// ---- outbox ----

// outboxWindow bounds how long a room without order activity stays in the
// outbox index; every retry refreshes its room, and retries are at most
// webhooks.retry_max (<= 24h) apart.
const outboxWindow = 48 * time.Hour
