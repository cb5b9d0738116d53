package cart

import (
	"context"
	"testing"
	"time"

	"liveroom/room"
)

// forgetScope removes a scope as the retired-incarnation sweep does on
// each backend (in Redis: the scope's keys, then the store's indexes).
func forgetScope(t *testing.T, s Store, scope string) {
	t.Helper()
	ctx := context.Background()
	if rs, ok := s.(*RedisStore); ok {
		if err := room.ForgetRedisScope(rs.rdb, rs.cfg.RedisPrefix)(ctx, scope); err != nil {
			t.Fatal(err)
		}
	}
	f, ok := s.(interface {
		ForgetScope(ctx context.Context, scope string) error
	})
	if !ok {
		t.Fatalf("%T has no ForgetScope", s)
	}
	if err := f.ForgetScope(ctx, scope); err != nil {
		t.Fatal(err)
	}
}

// Two incarnations of one room each have a catalog, a sale and an order
// whose webhook is pending; forgetting one removes all of its data and its
// pending delivery, and leaves the other's whole.
func TestStoreForgetScope(t *testing.T) {
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			s := st.open(t, testConfig())
			ctx := context.Background()
			now := time.Now()
			const gone, kept = "shop~aaaa1111", "shop~bbbb2222"
			orders := map[string]string{}
			for _, scope := range []string{gone, kept} {
				f := &fixture{t: t, s: s, ctx: ctx, room: scope}
				f.put(Product{SKU: "tee", Title: "T-shirt", PriceCents: 2500, Currency: "USD", Stock: 10})
				sale := f.sale(SaleParams{SKU: "tee", PriceCents: 2000, Quantity: 5, DurationS: 600}, now)
				f.reserve("u1", sale.ID, "", 1, now)
				orders[scope] = f.checkout("u1", now).ID
			}
			forgetScope(t, s, gone)

			if ps, err := s.Products(ctx, gone); err != nil || len(ps) != 0 {
				t.Fatalf("forgotten scope: products %v (%v), want none", ps, err)
			}
			if page, err := s.Orders(ctx, gone, "", 10); err != nil || len(page.Orders) != 0 {
				t.Fatalf("forgotten scope: orders %v (%v), want none", page.Orders, err)
			}
			if ss, err := s.Sales(ctx, gone, now); err != nil || len(ss) != 0 {
				t.Fatalf("forgotten scope: sales %v (%v), want none", ss, err)
			}
			if page, err := s.Orders(ctx, kept, "", 10); err != nil || len(page.Orders) != 1 || page.Orders[0].ID != orders[kept] {
				t.Fatalf("other scope: orders %v (%v), want %s", page.Orders, err, orders[kept])
			}
			ds, err := s.ClaimDeliveries(ctx, now.Add(time.Second), time.Minute, 10)
			if err != nil || len(ds) != 1 || ds[0].Room != kept || ds[0].OrderID != orders[kept] {
				t.Fatalf("deliveries after forgetting: got %+v (%v), want only %s's", ds, err, kept)
			}
		})
	}
}
