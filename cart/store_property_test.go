package cart

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The property test drives random interleavings of add / remove / expire /
// checkout / retry-with-the-same-key from many buyers against a store and
// checks the guarantees: sold + held + remaining = quantity, nothing
// negative, per-user limits, one reservation per cart.add key and one order
// per checkout key, and conservation of the products' stock.

const (
	propTeeStock = 40
	propCapStock = 20
	propSaleQty  = 25
	propLimit    = 3
)

type propWorld struct {
	t     *testing.T
	s     Store
	ctx   context.Context
	room  string
	sale  string
	seed  uint64
	clock atomic.Int64 // unix ms
	tick  int          // largest clock step of an expire, ms

	stats [6]atomic.Int64 // added, replayed, refused, released, ordered, expired

	mu        sync.Mutex
	addKeys   map[string]addKey // user\x00key -> what was asked and the reservation it got last
	ended     map[string]bool   // reservations known released or expired (forgotten with their keys)
	replaced  map[string]bool   // reservations whose key was later answered with another one
	payKeys   map[string]string // user\x00key -> order id
	resByUser map[string][]string
}

type addKey struct {
	p  ReserveParams
	id string
}

func (w *propWorld) now() time.Time { return time.UnixMilli(w.clock.Load()).UTC() }

func (w *propWorld) fatalf(format string, args ...any) {
	w.t.Helper()
	w.t.Fatalf("seed %d: "+format, append([]any{w.seed}, args...)...)
}

func newPropWorld(t *testing.T, s Store, seed uint64) *propWorld {
	w := &propWorld{t: t, s: s, ctx: context.Background(), room: "prop", seed: seed,
		addKeys: map[string]addKey{}, payKeys: map[string]string{}, resByUser: map[string][]string{},
		ended: map[string]bool{}, replaced: map[string]bool{}}
	w.clock.Store(toMS(t0))
	w.tick = 50_000
	for _, p := range []Product{
		{SKU: "tee", Title: "Tee", PriceCents: 2000, Currency: "USD", Stock: propTeeStock},
		{SKU: "cap", Title: "Cap", PriceCents: 500, Currency: "USD", Stock: propCapStock},
	} {
		if _, err := s.PutProduct(w.ctx, w.room, p); err != nil {
			t.Fatal(err)
		}
	}
	// Some seeds outlive the sale, so ending and settling race the buyers too.
	dur := 600 + int(seed%4)*900
	sale, err := s.StartSale(w.ctx, w.room, SaleParams{SKU: "tee", PriceCents: 1000, Quantity: propSaleQty, PerUserLimit: propLimit, DurationS: dur}, t0)
	if err != nil {
		t.Fatal(err)
	}
	w.sale = sale.ID
	return w
}

// step does one random operation as user.
func (w *propWorld) step(rng *rand.Rand, user string) {
	w.t.Helper()
	switch n := rng.IntN(100); {
	case n < 45:
		w.add(rng, user)
	case n < 60:
		w.remove(rng, user)
	case n < 75:
		w.checkout(rng, user)
	default:
		w.expire(rng)
	}
}

func (w *propWorld) add(rng *rand.Rand, user string) {
	w.t.Helper()
	var p ReserveParams
	w.mu.Lock()
	var retry []addKey
	for k, a := range w.addKeys {
		if a.p.User == user {
			retry = append(retry, a)
		}
		_ = k
	}
	w.mu.Unlock()
	if len(retry) > 0 && rng.IntN(4) == 0 { // a retry or a reconnect re-sending
		p = retry[rng.IntN(len(retry))].p
	} else {
		p = ReserveParams{User: user, Qty: 1 + rng.IntN(3), Key: fmt.Sprintf("add-%d", rng.Uint64())}
		if rng.IntN(10) < 7 {
			p.SaleID = w.sale
		} else {
			p.SKU = "cap"
		}
	}
	now := w.now()
	r, err := w.s.Reserve(w.ctx, w.room, p, now)
	switch ErrorCode(err) {
	case "":
		if err != nil {
			w.fatalf("Reserve: %v", err)
		}
	case CodeSoldOut, CodeLimitReached, CodeSaleNotActive:
		w.stats[2].Add(1)
		return
	default:
		w.fatalf("Reserve(%+v): %v", p, err)
	}
	if r.Reservation.Status == StatusHeld && r.Reservation.ExpiresAt.After(truncMS(now)) {
		w.checkCart("Reserve", user, r.Cart, r.Reservation.ID, "")
	} else {
		w.checkCart("Reserve", user, r.Cart, "", "")
	}
	uk := userKey(user, p.Key)
	w.mu.Lock()
	defer w.mu.Unlock()
	if r.Replayed {
		w.stats[1].Add(1)
	} else {
		w.stats[0].Add(1)
	}
	if old, ok := w.addKeys[uk]; ok {
		if r.Reservation.ID == old.id {
			// The same reservation. Not a replay: this call made it, and
			// another tab's replay of it was recorded first.
			if !r.Replayed {
				w.resByUser[user] = append(w.resByUser[user], r.Reservation.ID)
			}
			return
		}
		// A released or expired hold is forgotten with its key, which
		// then reserves afresh (the release or the sweep that ended it may
		// not be recorded yet: checkAll checks that it was).
		w.replaced[old.id] = true
		w.addKeys[uk] = addKey{p: p, id: r.Reservation.ID}
		if !r.Replayed {
			w.resByUser[user] = append(w.resByUser[user], r.Reservation.ID)
		}
		return
	}
	if r.Replayed {
		w.fatalf("a new key %s was answered as a replay", p.Key)
	}
	w.addKeys[uk] = addKey{p: p, id: r.Reservation.ID}
	w.resByUser[user] = append(w.resByUser[user], r.Reservation.ID)
}

func (w *propWorld) remove(rng *rand.Rand, user string) {
	w.t.Helper()
	w.mu.Lock()
	ids := w.resByUser[user]
	w.mu.Unlock()
	if len(ids) == 0 {
		return
	}
	id := ids[rng.IntN(len(ids))]
	rel, err := w.s.Release(w.ctx, w.room, user, id, w.now())
	if rel.Released {
		w.stats[3].Add(1)
		w.mu.Lock()
		w.ended[id] = true
		w.mu.Unlock()
	}
	if err == nil {
		w.checkCart("Release", user, rel.Cart, "", id)
	}
	// bad_request: bought, or being bought; not_found: ended before (forgotten)
	if c := ErrorCode(err); err != nil && c != CodeBadRequest && c != CodeNotFound {
		w.fatalf("Release(%s): %v", id, err)
	}
}

func (w *propWorld) checkout(rng *rand.Rand, user string) {
	w.t.Helper()
	key := fmt.Sprintf("pay-%s-%d", user, rng.IntN(6)) // few keys: many retries
	o, err := w.s.Checkout(w.ctx, w.room, user, key, w.now())
	switch ErrorCode(err) {
	case "":
		if err != nil {
			w.fatalf("Checkout: %v", err)
		}
	case CodeExpired, CodeBadRequest:
		return
	default:
		w.fatalf("Checkout: %v", err)
	}
	if !o.Replayed {
		w.stats[4].Add(1)
	}
	for _, it := range o.Order.Items {
		w.checkCart("Checkout", user, o.Cart, "", it.ReservationID)
	}
	uk := userKey(user, key)
	w.mu.Lock()
	defer w.mu.Unlock()
	if old, ok := w.payKeys[uk]; ok && old != o.Order.ID {
		w.fatalf("checkout key %s of %s: order %s, first %s", key, user, o.Order.ID, old)
	}
	w.payKeys[uk] = o.Order.ID
}

// checkCart checks the cart an answer carries: only the buyer's held
// reservations, with has in it and without hasNot (either may be "").
// (Other goroutines move the clock, so it is not compared with Cart.)
func (w *propWorld) checkCart(what, user string, cart []Reservation, has, hasNot string) {
	w.t.Helper()
	found := has == ""
	for _, r := range cart {
		if r.User != user || r.Status != StatusHeld {
			w.fatalf("%s for %s answered a cart with %+v", what, user, r)
		}
		if r.ID == hasNot {
			w.fatalf("%s for %s: the cart still lists %s", what, user, hasNot)
		}
		found = found || r.ID == has
	}
	if !found {
		w.fatalf("%s for %s: the cart lacks %s", what, user, has)
	}
}

func (w *propWorld) expire(rng *rand.Rand) {
	w.t.Helper()
	w.clock.Add(int64(rng.IntN(w.tick)))
	res, err := w.s.Sweep(w.ctx, w.now())
	if err != nil {
		w.fatalf("Sweep: %v", err)
	}
	w.stats[5].Add(int64(len(res.Expired)))
	w.mu.Lock()
	for _, e := range res.Expired {
		w.ended[e.Reservation.ID] = true
	}
	w.mu.Unlock()
}

// checkSale is the every-step check: one atomic read of the counters.
func (w *propWorld) checkSale() Sale {
	w.t.Helper()
	s, err := w.s.Sale(w.ctx, w.room, w.sale, w.now())
	if err != nil {
		w.fatalf("Sale: %v", err)
	}
	if s.Sold+s.Held+s.Remaining != s.Quantity || s.Sold < 0 || s.Held < 0 || s.Remaining < 0 {
		w.fatalf("sold %d + held %d + remaining %d != quantity %d", s.Sold, s.Held, s.Remaining, s.Quantity)
	}
	return s
}

// checkAll cross-checks every reservation and order the test knows of; the
// world must be quiet.
func (w *propWorld) checkAll() {
	w.t.Helper()
	sale := w.checkSale()
	w.mu.Lock()
	defer w.mu.Unlock()
	type use struct{ held, bought int }
	perUser := map[string]*use{}
	var saleHeld, capHeld, capBought int
	resOrder := map[string]string{}
	for id := range w.replaced {
		if !w.ended[id] {
			w.fatalf("the key of reservation %s reserved afresh, but it was neither released nor expired", id)
		}
	}
	for uk, a := range w.addKeys {
		if w.ended[a.id] {
			continue // forgotten with its key: a replay would reserve afresh
		}
		r, err := w.s.Reserve(w.ctx, w.room, a.p, w.now()) // a known key: a pure read
		if err != nil || !r.Replayed || r.Reservation.ID != a.id {
			w.fatalf("replay of %q: %+v, %v; want reservation %s", uk, r, err, a.id)
		}
		res := r.Reservation
		u := perUser[a.p.User]
		if u == nil {
			u = &use{}
			perUser[a.p.User] = u
		}
		switch {
		case res.Status == StatusHeld && res.SaleID != "":
			saleHeld += res.Qty
			u.held += res.Qty
		case res.Status == StatusHeld:
			capHeld += res.Qty
		case res.Status == StatusCheckedOut && res.SaleID != "":
			u.bought += res.Qty
			resOrder[res.ID] = res.OrderID
		case res.Status == StatusCheckedOut:
			capBought += res.Qty
			resOrder[res.ID] = res.OrderID
		}
	}
	for user, u := range perUser {
		if u.held+u.bought > propLimit {
			w.fatalf("%s holds %d and bought %d of a sale limited to %d", user, u.held, u.bought, propLimit)
		}
	}
	if saleHeld != sale.Held {
		w.fatalf("reservations hold %d of the sale, the sale says %d", saleHeld, sale.Held)
	}
	// Orders: one per checkout key; each reservation in at most one order.
	var sold int
	seenRes := map[string]string{}
	seenKey := map[string]string{}
	cursor := ""
	for {
		page, err := w.s.Orders(w.ctx, w.room, cursor, 50)
		if err != nil {
			w.fatalf("Orders: %v", err)
		}
		for _, o := range page.Orders {
			uk := userKey(o.User, o.Key)
			if prev, ok := seenKey[uk]; ok {
				w.fatalf("orders %s and %s share the checkout key %q", prev, o.ID, uk)
			}
			seenKey[uk] = o.ID
			if want, ok := w.payKeys[uk]; ok && want != o.ID {
				w.fatalf("checkout key %q answered %s but order %s has it", uk, want, o.ID)
			}
			for _, it := range o.Items {
				if prev, ok := seenRes[it.ReservationID]; ok {
					w.fatalf("reservation %s is in orders %s and %s", it.ReservationID, prev, o.ID)
				}
				seenRes[it.ReservationID] = o.ID
				if resOrder[it.ReservationID] != o.ID {
					w.fatalf("order %s has reservation %s, which says order %q", o.ID, it.ReservationID, resOrder[it.ReservationID])
				}
				if it.SaleID != "" {
					sold += it.Qty
				}
			}
		}
		if page.Next == "" {
			break
		}
		cursor = page.Next
	}
	if len(seenRes) != len(resOrder) {
		w.fatalf("%d reservations are checked out but orders hold %d", len(resOrder), len(seenRes))
	}
	if sold != sale.Sold {
		w.fatalf("orders sold %d of the sale, the sale says %d", sold, sale.Sold)
	}
	// Product stock is conserved.
	cp, _ := w.s.Product(w.ctx, w.room, "cap")
	if cp.Stock < 0 || cp.Stock+capHeld+capBought != propCapStock {
		w.fatalf("cap: stock %d + held %d + bought %d != %d", cp.Stock, capHeld, capBought, propCapStock)
	}
	tee, _ := w.s.Product(w.ctx, w.room, "tee")
	// The sale took its quantity from the tee; settling gave back what it
	// did not sell.
	inSale := sale.Quantity
	if sale.Settled {
		inSale = sale.Sold
	}
	if tee.Stock < 0 || tee.Stock+inSale != propTeeStock {
		w.fatalf("tee: stock %d + %d in the sale (settled %v) != %d", tee.Stock, inSale, sale.Settled, propTeeStock)
	}
}

func (w *propWorld) logStats() {
	w.t.Logf("seed %d: added %d, replayed %d, refused %d, released %d, orders %d, expired %d", w.seed,
		w.stats[0].Load(), w.stats[1].Load(), w.stats[2].Load(), w.stats[3].Load(), w.stats[4].Load(), w.stats[5].Load())
}

func propSeeds(t *testing.T, long, short int) int {
	if testing.Short() {
		return short
	}
	return long
}

// propConfig keeps every key the world checks (the key cap has its own
// conformance test).
func propConfig() Config {
	c := testConfig()
	c.MaxKeys = 100_000
	return c
}

func TestStoreProperty(t *testing.T) {
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			t.Run("sequential", func(t *testing.T) {
				for seed := range uint64(propSeeds(t, 40, 8)) {
					w := newPropWorld(t, st.open(t, propConfig()), seed)
					rng := rand.New(rand.NewPCG(seed, 0x5eed))
					for i := range 300 {
						w.step(rng, fmt.Sprintf("u%d", rng.IntN(12)))
						w.checkSale()
						if i%20 == 19 {
							w.checkAll()
						}
					}
					w.checkAll()
					w.logStats()
				}
			})
			t.Run("concurrent", func(t *testing.T) {
				for seed := range uint64(propSeeds(t, 8, 3)) {
					w := newPropWorld(t, st.open(t, propConfig()), 1000+seed)
					w.tick = 6_000 // sixteen buyers move the clock
					var wg sync.WaitGroup
					for b := range 16 {
						wg.Go(func() {
							rng := rand.New(rand.NewPCG(w.seed, uint64(b)))
							for range 150 {
								w.step(rng, fmt.Sprintf("u%d", b%12)) // some buyers share a user: their tabs
								w.checkSale()
							}
						})
					}
					wg.Wait()
					w.checkAll()
					w.logStats()
				}
			})
		})
	}
}

// TestStorePropertyStorm: many buyers retrying the same keys at the same
// instant on a small sale; exactly the quantity is held, one per key.
func TestStorePropertyStorm(t *testing.T) {
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			s := st.open(t, testConfig())
			ctx := context.Background()
			s.PutProduct(ctx, "storm", Product{SKU: "tee", Title: "Tee", PriceCents: 1, Currency: "USD", Stock: 100})
			sale, err := s.StartSale(ctx, "storm", SaleParams{SKU: "tee", PriceCents: 1, Quantity: 30, PerUserLimit: 1, DurationS: 60}, t0)
			if err != nil {
				t.Fatal(err)
			}
			var ok, soldOut atomic.Int64
			ids := sync.Map{}
			var wg sync.WaitGroup
			for b := range 200 {
				wg.Go(func() {
					p := ReserveParams{User: fmt.Sprintf("b%d", b), SaleID: sale.ID, Qty: 1, Key: "k"}
					for range 3 { // the same request three times
						r, err := s.Reserve(ctx, "storm", p, t0)
						switch ErrorCode(err) {
						case "":
							if err != nil {
								t.Error(err)
								return
							}
							if prev, loaded := ids.LoadOrStore(p.User, r.Reservation.ID); loaded && prev != r.Reservation.ID {
								t.Errorf("%s: two reservations for one key: %s, %s", p.User, prev, r.Reservation.ID)
							}
							if !r.Replayed {
								ok.Add(1)
							}
						case CodeSoldOut:
							soldOut.Add(1)
						default:
							t.Errorf("%s: %v", p.User, err)
						}
					}
				})
			}
			wg.Wait()
			got, _ := s.Sale(ctx, "storm", sale.ID, t0)
			if ok.Load() != 30 || got.Held != 30 || got.Remaining != 0 {
				t.Fatalf("reserved %d, sale %+v; want exactly 30 held", ok.Load(), got)
			}
		})
	}
}
