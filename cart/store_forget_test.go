package cart

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// storeFootprint counts what a store keeps for room: reservations and
// cart.add keys in memory (local), or keys under the room's prefix (Redis).
func storeFootprint(t *testing.T, s Store, room string) int {
	t.Helper()
	switch s := s.(type) {
	case *LocalStore:
		r := s.room(room)
		r.mu.Lock()
		defer r.mu.Unlock()
		return len(r.res) + len(r.rkeys) + len(r.carts)
	case *RedisStore:
		keys, err := s.rdb.Keys(context.Background(), s.prefix(room)+"*").Result()
		if err != nil {
			t.Fatal(err)
		}
		return len(keys)
	}
	t.Fatalf("unknown store %T", s)
	return 0
}

// A buyer adding and removing (or letting holds expire) over and over
// leaves nothing behind: released and expired reservations are forgotten
// at once, with their keys, instead of staying for key_retention.
func TestEndedHoldsLeaveNothing(t *testing.T) {
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			f := newFixture(t, st.open(t, testConfig()))
			ctx := context.Background()
			s := f.sale(SaleParams{SKU: "tee", PriceCents: 1000, Quantity: 5, DurationS: 600}, t0)
			// Touch everything once so that the room's fixed keys exist.
			r := f.reserve("u1", s.ID, "", 1, t0)
			if _, err := f.s.Release(ctx, f.room, "u1", r.Reservation.ID, t0); err != nil {
				t.Fatal(err)
			}
			base := storeFootprint(t, f.s, f.room)
			for i := range 200 {
				p := ReserveParams{User: "u1", SaleID: s.ID, Qty: 1, Key: fmt.Sprintf("cycle-%d", i)}
				if i%2 == 1 {
					p = ReserveParams{User: "u1", SKU: "tee", Qty: 1, Key: p.Key}
				}
				r, err := f.s.Reserve(ctx, f.room, p, t0)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := f.s.Release(ctx, f.room, "u1", r.Reservation.ID, t0); err != nil {
					t.Fatal(err)
				}
			}
			for i := range 50 {
				if _, err := f.s.Reserve(ctx, f.room, ReserveParams{User: "u2", SKU: "tee", Qty: 1, Key: fmt.Sprintf("exp-%d", i)}, t0.Add(time.Duration(i)*5*time.Minute)); err != nil {
					t.Fatal(err)
				}
				if _, err := f.s.Sweep(ctx, t0.Add(time.Duration(i)*5*time.Minute+3*time.Minute)); err != nil {
					t.Fatal(err)
				}
			}
			if got := storeFootprint(t, f.s, f.room); got > base+2 { // + u2's lastexp mark (Redis)
				t.Fatalf("after 200 released and 50 expired holds the store keeps %d entries, %d before", got, base)
			}
			if got := f.getSale(s.ID, t0.Add(5*time.Hour)); got.Held != 0 {
				t.Fatalf("sale still holds %d", got.Held)
			}
		})
	}
}
