package cart

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

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
	s := productionRedisStore(t, srv, nil)
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

// A sweep batch whose reply is lost (Redis stopped mid-call, production's
// client: a read timeout, and go-redis does not retry) is asked again under
// the same token, and the holds the first run expired are still reported, so
// their cart.expired events go out; nothing expires twice.
func TestRedisSweepReplyLost(t *testing.T) {
	srv := roomtest.StartRedis(t)
	// One connection: the batch asked again must make a new one, whose
	// handshake waits for Redis to resume, so the first batch runs first
	// (with more, which of two waiting connections Redis reads first is
	// not ours to choose).
	s := productionRedisStore(t, srv, func(opt *redis.Options) { opt.PoolSize, opt.PipelinePoolSize = 1, 1 })
	cfg := s.cfg
	ctx := context.Background()
	if _, err := s.PutProduct(ctx, "lost", Product{SKU: "tee", Title: "Tee", PriceCents: 500, Currency: "USD", Stock: 10}); err != nil {
		t.Fatal(err)
	}
	held := map[string]bool{}
	for i := range 3 {
		r, err := s.Reserve(ctx, "lost", ReserveParams{User: fmt.Sprintf("u%d", i), SKU: "tee", Qty: 1, Key: "k"}, t0)
		if err != nil {
			t.Fatal(err)
		}
		held[r.Reservation.ID] = true
	}
	later := t0.Add(cfg.Hold + time.Minute)
	// A sweep with nothing due loads the script: the lost call below must
	// run it (EVALSHA), not be refused with NOSCRIPT.
	if res, err := s.Sweep(ctx, t0); err != nil || len(res.Expired) != 0 {
		t.Fatalf("sweep at t0: %+v, %v", res, err)
	}

	// The batch's script is written to a stopped Redis (on the connection
	// the reservations made) and its reply times out.
	srv.Pause()
	resumed := false
	defer func() {
		if !resumed {
			srv.Resume()
		}
	}()
	type result struct {
		v   any
		err error
	}
	done := make(chan result, 1)
	go func() {
		v, err := s.tick(ctx, "lost", later)
		done <- result{v, err}
	}()
	time.Sleep(2500 * time.Millisecond) // past production's 2 s read timeout
	srv.Resume()
	resumed = true
	var got result
	select {
	case got = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("the sweep batch did not return 30 s after Redis resumed")
	}
	if got.err != nil {
		t.Fatalf("sweep batch: %v", got.err)
	}
	expired, _, _ := tickReply("lost", got.v)
	for _, e := range expired {
		if !held[e.Reservation.ID] {
			t.Errorf("expired %s, not one of the holds", e.Reservation.ID)
		}
		delete(held, e.Reservation.ID)
	}
	if len(held) != 0 {
		t.Fatalf("the batch reported %d expiries; %d holds it expired were never reported: %v", len(expired), len(held), held)
	}
	if p, _ := s.Product(ctx, "lost", "tee"); p.Stock != 10 {
		t.Errorf("stock %d after the sweep, want 10 (each hold given back once)", p.Stock)
	}
	if again, err := s.Sweep(ctx, later); err != nil || len(again.Expired) != 0 {
		t.Errorf("a sweep after it: %d expired, %v; want none", len(again.Expired), err)
	}
}

// productionRedisStore is a RedisStore on srv through a client with
// production's options (room.RedisConfig), adjusted by tune if set.
func productionRedisStore(t *testing.T, srv *roomtest.RedisServer, tune func(*redis.Options)) *RedisStore {
	t.Helper()
	opt, err := room.RedisConfig{URL: srv.URL()}.Options()
	if err != nil {
		t.Fatal(err)
	}
	if tune != nil {
		tune(opt)
	}
	rdb := redis.NewClient(opt)
	t.Cleanup(func() { rdb.Close() })
	cfg := testConfig()
	cfg.RedisPrefix = fmt.Sprintf("t%d:", redisPrefixes.Add(1))
	s, err := NewRedisStore(rdb, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
