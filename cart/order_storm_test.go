package cart

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// orderNodes are one or more Services over stores sharing their data (one
// LocalStore, or RedisStores with one prefix: nodes of a cluster), on one
// clock the test moves.
type orderNodes struct {
	name  string
	svcs  []*Service
	clock *atomic.Int64
}

func (n orderNodes) node(i int) *Service { return n.svcs[i%len(n.svcs)] }

func (n orderNodes) now() time.Time { return time.UnixMilli(n.clock.Load()).UTC() }

func orderTopologies(t *testing.T, cfg Config) []orderNodes {
	t.Helper()
	clock := &atomic.Int64{}
	clock.Store(t0.UnixMilli())
	now := func() time.Time { return time.UnixMilli(clock.Load()).UTC() }
	svc := func(s Store) *Service {
		v, err := NewService(s, cfg, ServiceOptions{Log: quietLog, Now: now})
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	rcfg := cfg
	rcfg.RedisPrefix = fmt.Sprintf("t%d:", redisPrefixes.Add(1))
	two := make([]*Service, 2)
	for i := range two {
		s, err := NewRedisStore(redisClient(t), rcfg)
		if err != nil {
			t.Fatal(err)
		}
		two[i] = svc(s)
	}
	return []orderNodes{
		{"local", []*Service{svc(newTestLocalStore(t, cfg))}, clock},
		{"redis", []*Service{svc(newTestRedisStore(t, cfg))}, clock},
		{"redis-2-nodes", two, clock},
	}
}

// TestOrderLapseStorm: 2,000 buyers on 100 units; the 100 winners check
// out, 70 pay and 30 never do. After the window exactly 30 units go back to
// the running sale (over one node or two racing sweeps) and are bought by
// 30 of the others; sold + held + remaining = quantity and sold <= 100 at
// every look, and no order is both paid and cancelled.
func TestOrderLapseStorm(t *testing.T) {
	if testing.Short() {
		t.Skip("2,000 buyers")
	}
	const buyers, units, unpaid = 2000, 100, 30
	cfg := testConfig()
	cfg.PayWithin = 5 * time.Minute
	for _, topo := range orderTopologies(t, cfg) {
		t.Run(topo.name, func(t *testing.T) {
			ctx := context.Background()
			const room = "storm"
			store := topo.node(0).Store()
			if _, err := store.PutProduct(ctx, room, Product{SKU: "tee", Title: "Tee", PriceCents: 2500, Currency: "USD", Stock: units}); err != nil {
				t.Fatal(err)
			}
			sale, err := topo.node(0).StartSale(ctx, room, SaleParams{SKU: "tee", PriceCents: 100, Quantity: units, PerUserLimit: 1, DurationS: 3600})
			if err != nil {
				t.Fatal(err)
			}
			// The watcher reads the sale all along.
			stop := make(chan struct{})
			watched := make(chan error, 1)
			go func() {
				var bad error
				for looks := 0; ; looks++ {
					select {
					case <-stop:
						if bad == nil && looks == 0 {
							bad = fmt.Errorf("the watcher never looked")
						}
						watched <- bad
						return
					default:
					}
					s, err := store.Sale(ctx, room, sale.ID, topo.now())
					if err == nil && bad == nil && (s.Sold+s.Held+s.Remaining != units || s.Sold > units || s.Remaining < 0 || s.Held < 0) {
						bad = fmt.Errorf("sale %+v breaks sold + held + remaining = %d", s, units)
					}
					time.Sleep(time.Millisecond)
				}
			}()
			storm := func(round string, who func(i int) bool) []Order {
				var mu sync.Mutex
				var orders []Order
				var wg sync.WaitGroup
				sem := make(chan struct{}, 128)
				for i := range buyers {
					if !who(i) {
						continue
					}
					sem <- struct{}{}
					wg.Go(func() {
						defer func() { <-sem }()
						svc, user := topo.node(i), fmt.Sprintf("b%d", i)
						_, err := svc.Add(ctx, room, ReserveParams{User: user, SaleID: sale.ID, Qty: 1, Key: round + "-add"})
						if c := ErrorCode(err); c == CodeSoldOut || c == CodeLimitReached {
							return
						} else if err != nil {
							t.Errorf("%s: add %s: %v", round, user, err)
							return
						}
						res, err := svc.Checkout(ctx, room, user, round+"-pay")
						if err != nil {
							t.Errorf("%s: checkout %s: %v", round, user, err)
							return
						}
						mu.Lock()
						orders = append(orders, res.Order)
						mu.Unlock()
					})
				}
				wg.Wait()
				return orders
			}
			won := storm("first", func(int) bool { return true })
			if len(won) != units {
				t.Fatalf("first storm: %d orders, want %d", len(won), units)
			}
			winner := map[string]bool{}
			for i, o := range won {
				winner[o.User] = true
				if o.State != OrderAwaitingPayment {
					t.Fatalf("order %s is %s, want awaiting_payment", o.ID, o.State)
				}
				if i >= unpaid {
					if _, err := topo.node(i).TransitionOrder(ctx, room, o.ID, Transition{Action: ActPay}); err != nil {
						t.Fatal(err)
					}
				}
			}
			// The window passes: every node sweeps at once.
			topo.clock.Add(cfg.PayWithin.Milliseconds() + 1000)
			var lapsed atomic.Int64
			var wg sync.WaitGroup
			for _, svc := range topo.svcs {
				for range 3 {
					wg.Go(func() {
						n, err := svc.Lapse(ctx)
						if err != nil {
							t.Error(err)
						}
						lapsed.Add(int64(n))
					})
				}
			}
			wg.Wait()
			s, _ := store.Sale(ctx, room, sale.ID, topo.now())
			if lapsed.Load() != unpaid || s.Remaining != unpaid || s.Sold != units-unpaid {
				t.Fatalf("after the window: %d lapsed, sale %+v; want %d lapsed and remaining, %d sold", lapsed.Load(), s, unpaid, units-unpaid)
			}
			again := storm("second", func(i int) bool { return !winner[fmt.Sprintf("b%d", i)] })
			close(stop)
			if err := <-watched; err != nil {
				t.Fatal(err)
			}
			s, _ = store.Sale(ctx, room, sale.ID, topo.now())
			if len(again) != unpaid || s.Sold != units || s.Remaining != 0 || s.Held != 0 {
				t.Fatalf("second storm: %d orders, sale %+v; want %d orders and the sale sold out", len(again), s, unpaid)
			}
			// Every order is in exactly one state, and the states add up.
			count := map[OrderState]int{}
			for cursor := ""; ; {
				page, err := store.OrdersIn(ctx, room, "", cursor, 500)
				if err != nil {
					t.Fatal(err)
				}
				for _, o := range page.Orders {
					count[o.State]++
				}
				if cursor = page.Next; cursor == "" {
					break
				}
			}
			if count[OrderPaid] != units-unpaid || count[OrderCancelled] != unpaid || count[OrderAwaitingPayment] != unpaid {
				t.Fatalf("orders by state %v; want %d paid, %d cancelled, %d awaiting", count, units-unpaid, unpaid, unpaid)
			}
		})
	}
}

// TestOrderLapseRacesPayment: the window ends as the payment is reported,
// many times, on one node and across two: exactly one of them wins, the
// units are counted once, and the other is told why.
func TestOrderLapseRacesPayment(t *testing.T) {
	const rounds = 150
	cfg := testConfig()
	cfg.PayWithin = time.Minute
	for _, topo := range orderTopologies(t, cfg) {
		t.Run(topo.name, func(t *testing.T) {
			ctx := context.Background()
			const room = "race"
			store := topo.node(0).Store()
			if _, err := store.PutProduct(ctx, room, Product{SKU: "tee", Title: "Tee", PriceCents: 2500, Currency: "USD", Stock: rounds}); err != nil {
				t.Fatal(err)
			}
			sale, err := topo.node(0).StartSale(ctx, room, SaleParams{SKU: "tee", PriceCents: 100, Quantity: rounds, DurationS: 24 * 3600})
			if err != nil {
				t.Fatal(err)
			}
			var paid, lapsed int
			for i := range rounds {
				user := fmt.Sprintf("u%d", i)
				if _, err := topo.node(0).Add(ctx, room, ReserveParams{User: user, SaleID: sale.ID, Qty: 1, Key: "a"}); err != nil {
					t.Fatal(err)
				}
				res, err := topo.node(0).Checkout(ctx, room, user, "c")
				if err != nil {
					t.Fatal(err)
				}
				topo.clock.Store(res.Order.PayBy.UnixMilli())
				start := make(chan struct{})
				var payErr error
				var payChanged bool
				var nLapsed int
				var wg sync.WaitGroup
				wg.Go(func() {
					<-start
					c, err := topo.node(i).TransitionOrder(ctx, room, res.Order.ID, Transition{Action: ActPay})
					payErr, payChanged = err, c.Changed
				})
				wg.Go(func() {
					<-start
					n, err := topo.node(i + 1).Lapse(ctx)
					if err != nil {
						t.Error(err)
					}
					nLapsed = n
				})
				close(start)
				wg.Wait()
				switch {
				case payErr == nil && payChanged && nLapsed == 0:
					paid++
				case ErrorCode(payErr) == CodeOrderCancelled && nLapsed == 1:
					lapsed++
				default:
					t.Fatalf("round %d: payment %v (changed %v), %d lapsed; want exactly one to win", i, payErr, payChanged, nLapsed)
				}
			}
			s, _ := store.Sale(ctx, room, sale.ID, topo.now())
			if s.Sold != paid || s.Remaining != rounds-paid || s.Held != 0 {
				t.Fatalf("sale %+v after %d paid, %d lapsed; want sold %d, remaining %d", s, paid, lapsed, paid, rounds-paid)
			}
			t.Logf("%d rounds: payment won %d, lapse won %d", rounds, paid, lapsed)
		})
	}
}

// TestOrderWebhooksOnce: every transition goes out through the outbox under
// its own webhook-id, signed, with its event type; a receiver that
// deduplicates by id sees each once.
func TestOrderWebhooksOnce(t *testing.T) {
	const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	cfg := testConfig()
	cfg.PayWithin = time.Minute
	for _, topo := range orderTopologies(t, cfg) {
		t.Run(topo.name, func(t *testing.T) {
			var mu sync.Mutex
			seen := map[string]string{} // webhook-id -> type
			dups := 0
			recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				body, _ := io.ReadAll(r.Body)
				if err := verifyWebhook(webhookKey(secret), r.Header, body, topo.now(), 5*time.Minute); err != nil {
					t.Errorf("delivery: %v", err)
				}
				var p struct {
					Type  string `json:"type"`
					Order Order  `json:"order"`
				}
				_ = json.Unmarshal(body, &p)
				mu.Lock()
				if _, ok := seen[r.Header.Get("webhook-id")]; ok {
					dups++
				}
				seen[r.Header.Get("webhook-id")] = p.Type
				mu.Unlock()
			}))
			defer recv.Close()
			ctx, cancel := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			defer func() { cancel(); wg.Wait() }()
			for _, svc := range topo.svcs { // every node runs an outbox
				ob, err := NewOutbox(svc.Store(), WebhookConfig{OrdersURL: recv.URL, Secret: secret, PollInterval: 10 * time.Millisecond}, OutboxOptions{Log: quietLog, Now: topo.now})
				if err != nil {
					t.Fatal(err)
				}
				svc.OnOrderChange(func(string, OrderChange) { ob.Wake() })
				wg.Go(func() { _ = ob.Run(ctx) })
			}
			const room = "hooks"
			store := topo.node(0).Store()
			if _, err := store.PutProduct(ctx, room, Product{SKU: "tee", Title: "Tee", PriceCents: 2500, Currency: "USD", Stock: 10}); err != nil {
				t.Fatal(err)
			}
			want := map[string]string{}
			buy := func(user string) Order {
				svc := topo.node(len(want))
				if _, err := svc.Add(ctx, room, ReserveParams{User: user, SKU: "tee", Qty: 1, Key: "a"}); err != nil {
					t.Fatal(err)
				}
				res, err := svc.Checkout(ctx, room, user, "c")
				if err != nil {
					t.Fatal(err)
				}
				want[res.Order.ID] = EventOrderCreated
				return res.Order
			}
			move := func(o Order, tr Transition, event string) {
				for i := range 2 { // twice: one transition, one delivery
					if _, err := topo.node(i).TransitionOrder(ctx, room, o.ID, tr); err != nil {
						t.Fatal(err)
					}
				}
				want[o.ID+"."+event[len("order."):]] = event
			}
			a, b, c := buy("a"), buy("b"), buy("c")
			move(a, Transition{Action: ActPay}, EventOrderPaid)
			move(a, Transition{Action: ActFulfill}, EventOrderFulfilled)
			move(b, Transition{Action: ActCancel, By: CancelByMerchant}, EventOrderCancelled)
			received := func(n int) {
				deadline := time.Now().Add(20 * time.Second)
				for {
					mu.Lock()
					got := len(seen)
					mu.Unlock()
					if got >= n || time.Now().After(deadline) {
						return
					}
					time.Sleep(10 * time.Millisecond)
				}
			}
			// Moving the clock past the outbox leases while deliveries are
			// in flight would have another node send them again (at least
			// once): let these arrive first.
			received(len(want))
			topo.clock.Add(time.Minute.Milliseconds())
			for _, svc := range topo.svcs {
				if _, err := svc.Lapse(ctx); err != nil {
					t.Fatal(err)
				}
			}
			want[c.ID+".cancelled"] = EventOrderCancelled
			received(len(want))
			time.Sleep(100 * time.Millisecond) // a duplicate would arrive by now
			mu.Lock()
			defer mu.Unlock()
			if len(seen) != len(want) || dups != 0 {
				t.Fatalf("received %v (%d duplicates); want %v once each", seen, dups, want)
			}
			for id, typ := range want {
				if seen[id] != typ {
					t.Fatalf("delivery %s: type %q, want %q", id, seen[id], typ)
				}
			}
		})
	}
}
