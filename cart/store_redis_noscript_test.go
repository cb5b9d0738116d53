package cart

import (
	"context"
	"testing"
	"time"
)

// Checkout's first cart look is an EVALSHA inside a pipeline, which cannot
// load the script; on a Redis that lost its scripts (a restart, a failover,
// SCRIPT FLUSH) it must fall back and still answer, with the cart.
func TestRedisCheckoutAfterScriptFlush(t *testing.T) {
	ctx := context.Background()
	s := newTestRedisStore(t, testConfig())
	now := time.UnixMilli(1_800_000_000_000)
	if _, err := s.PutProduct(ctx, "r1", Product{SKU: "tee", Title: "Tee", PriceCents: 500, Currency: "USD", Stock: 5}); err != nil {
		t.Fatal(err)
	}
	r, err := s.Reserve(ctx, "r1", ReserveParams{User: "u1", SKU: "tee", Qty: 2, Key: "a"}, now)
	if err != nil {
		t.Fatal(err)
	}
	if err := redisClient(t).ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	res, err := s.Checkout(ctx, "r1", "u1", "pay", now)
	if err != nil {
		t.Fatalf("Checkout after SCRIPT FLUSH: %v", err)
	}
	if len(res.Order.Items) != 1 || res.Order.Items[0].ReservationID != r.Reservation.ID || res.Order.TotalCents != 1000 {
		t.Fatalf("order = %+v", res.Order)
	}
	if len(res.Cart) != 0 {
		t.Fatalf("cart after checkout = %s, want empty", cartString(res.Cart))
	}
	if err := redisClient(t).ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	again, err := s.Checkout(ctx, "r1", "u1", "pay", now)
	if err != nil || !again.Replayed || again.Order.ID != res.Order.ID {
		t.Fatalf("replayed Checkout after SCRIPT FLUSH = %+v, %v", again, err)
	}
}
