package cart

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"liveroom/room"
	"liveroom/room/roomtest"
)

// Redis dies in the middle of a reservation storm (the scripts ride shared
// pipelines): every caller returns, those after the crash with an error;
// when Redis comes back (its append-only file kept every write) each
// reservation is whole: every one a buyer was told about is in their cart,
// and the sale's held units are exactly what the carts hold, whether or not
// the buyer heard the answer.
func TestRedisStoreReserveStormRedisDies(t *testing.T) {
	srv := roomtest.StartPersistentRedis(t)
	rdb, err := room.RedisConfig{URL: srv.URL()}.Client() // production's options
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rdb.Close() })
	cfg := testConfig()
	cfg.RedisPrefix = fmt.Sprintf("t%d:", redisPrefixes.Add(1))
	s, err := NewRedisStore(rdb, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	now := time.Now()
	if _, err := s.PutProduct(ctx, "r1", Product{SKU: "tee", Title: "Tee", PriceCents: 500, Currency: "USD", Stock: 50_000}); err != nil {
		t.Fatal(err)
	}
	sale, err := s.StartSale(ctx, "r1", SaleParams{SKU: "tee", PriceCents: 400, Quantity: 50_000, PerUserLimit: 1, DurationS: 600}, now)
	if err != nil {
		t.Fatal(err)
	}

	const workers = 60
	var (
		mu     sync.Mutex
		told   = map[string]string{} // user -> reservation id the buyer was told
		tried  []string              // every user that sent a cart.add
		ok     atomic.Int64
		failed atomic.Int64
		stop   = make(chan struct{})
		wg     sync.WaitGroup
	)
	for w := range workers {
		wg.Go(func() {
			for k := 0; ; k++ {
				select {
				case <-stop:
					return
				default:
				}
				user := fmt.Sprintf("u%d-%d", w, k)
				mu.Lock()
				tried = append(tried, user)
				mu.Unlock()
				res, err := s.Reserve(ctx, "r1", ReserveParams{User: user, SaleID: sale.ID, Qty: 1, Key: "k"}, now)
				if err != nil {
					if ErrorCode(err) != "" {
						t.Errorf("%s: a refusal %v, want a storage error", user, err)
					}
					failed.Add(1)
					continue
				}
				ok.Add(1)
				mu.Lock()
				told[user] = res.Reservation.ID
				mu.Unlock()
			}
		})
	}
	waitFor := func(what string, cond func() bool) {
		for deadline := time.Now().Add(60 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				close(stop)
				t.Fatalf("no %s after 60s", what)
			}
		}
	}
	waitFor("1000 reservations", func() bool { return ok.Load() >= 1000 })
	srv.Stop()
	waitFor("failed calls from every worker", func() bool { return failed.Load() >= workers })
	close(stop)
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	select {
	case <-finished:
	case <-time.After(60 * time.Second):
		t.Fatal("callers still wait 60s after redis died")
	}

	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	var got Sale
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if got, err = s.Sale(ctx, "r1", sale.ID, now); err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	if got.Sold+got.Held+got.Remaining != got.Quantity {
		t.Fatalf("sold %d + held %d + remaining %d != quantity %d", got.Sold, got.Held, got.Remaining, got.Quantity)
	}
	held := 0
	for _, user := range tried {
		cart, err := s.Cart(ctx, "r1", user, now)
		if err != nil {
			t.Fatal(err)
		}
		if len(cart) > 1 {
			t.Fatalf("%s holds %d reservations, sent one cart.add", user, len(cart))
		}
		id, wasTold := told[user]
		if wasTold && (len(cart) != 1 || cart[0].ID != id) {
			t.Fatalf("%s was told reservation %s, cart holds %s", user, id, cartString(cart))
		}
		for _, r := range cart {
			held += r.Qty
		}
	}
	if held != got.Held {
		t.Fatalf("carts hold %d units, the sale says %d held", held, got.Held)
	}
	t.Logf("%d reservations answered, %d calls failed, %d held after the restart", ok.Load(), failed.Load(), got.Held)
}
