package cart

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// events records what a Service tells its listeners.
type events struct {
	mu    sync.Mutex
	stock []int
	sales []SaleEventKind
	carts []string
	order []string
}

func (e *events) snapshot() (stock []int, sales []SaleEventKind, carts []string, orders []string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]int(nil), e.stock...), append([]SaleEventKind(nil), e.sales...), append([]string(nil), e.carts...), append([]string(nil), e.order...)
}

type testMetrics struct {
	*Metrics
	reg *prometheus.Registry
}

func newTestService(t *testing.T, s Store, clock *atomic.Int64) (*Service, *events, testMetrics) {
	t.Helper()
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := NewService(s, testConfig(), ServiceOptions{Metrics: m, Log: quietLog, Now: func() time.Time { return time.UnixMilli(clock.Load()).UTC() }})
	if err != nil {
		t.Fatal(err)
	}
	ev := &events{}
	svc.OnStock(func(room, saleID string, remaining int) {
		ev.mu.Lock()
		ev.stock = append(ev.stock, remaining)
		ev.mu.Unlock()
	})
	svc.OnSale(func(e SaleEvent) {
		ev.mu.Lock()
		ev.sales = append(ev.sales, e.Kind)
		ev.mu.Unlock()
	})
	svc.OnCart(func(room, user string) {
		ev.mu.Lock()
		ev.carts = append(ev.carts, user)
		ev.mu.Unlock()
	})
	svc.OnOrder(func(o Order) {
		ev.mu.Lock()
		ev.order = append(ev.order, o.ID)
		ev.mu.Unlock()
	})
	return svc, ev, testMetrics{m, reg}
}

func TestServiceNotifications(t *testing.T) {
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			ctx := context.Background()
			var clock atomic.Int64
			clock.Store(toMS(t0))
			s := st.open(t, testConfig())
			svc, ev, m := newTestService(t, s, &clock)
			s.PutProduct(ctx, "r1", Product{SKU: "tee", Title: "Tee", PriceCents: 100, Currency: "USD", Stock: 10})
			sale, err := svc.StartSale(ctx, "r1", SaleParams{SKU: "tee", PriceCents: 50, Quantity: 4, DurationS: 60, StartsInS: 5})
			if err != nil {
				t.Fatal(err)
			}
			pinned, snap, _ := svc.Snapshot(ctx, "r1")
			if pinned != nil || snap == nil || snap.ID != sale.ID || snap.State != SaleScheduled {
				t.Fatalf("Snapshot = %v, %+v", pinned, snap)
			}
			clock.Add(7_000) // opened 2s ago
			var resIDs []string
			for i, user := range []string{"a", "b", "c"} {
				r, err := svc.Add(ctx, "r1", ReserveParams{User: user, SaleID: sale.ID, Qty: 1, Key: "k"})
				if err != nil || r.Remaining != 3-i {
					t.Fatalf("Add %s = %+v, %v", user, r, err)
				}
				resIDs = append(resIDs, r.Reservation.ID)
			}
			svc.Add(ctx, "r1", ReserveParams{User: "a", SaleID: sale.ID, Qty: 1, Key: "k"}) // a retry: no change
			if stock, _, _, _ := ev.snapshot(); len(stock) != 0 {
				t.Fatalf("stock updates before the flush: %v", stock)
			}
			svc.flushStock(ctx)
			if stock, _, _, _ := ev.snapshot(); len(stock) != 1 || stock[0] != 1 {
				t.Fatalf("after a flush: %v, want [1]", stock)
			}
			// Sold out goes out at once, without waiting for the interval.
			if _, err := svc.Add(ctx, "r1", ReserveParams{User: "d", SaleID: sale.ID, Qty: 1, Key: "k"}); err != nil {
				t.Fatal(err)
			}
			if stock, _, _, _ := ev.snapshot(); len(stock) != 2 || stock[1] != 0 {
				t.Fatalf("after selling out: %v, want [1 0]", stock)
			}
			_, err = svc.Add(ctx, "r1", ReserveParams{User: "e", SaleID: sale.ID, Qty: 1, Key: "k"})
			wantCode(t, "after selling out", err, CodeSoldOut)
			// Within the interval nothing more is sent; after it, the latest count.
			svc.Remove(ctx, "r1", "a", resIDs[0])
			svc.flushStock(ctx)
			if stock, _, _, _ := ev.snapshot(); len(stock) != 2 {
				t.Fatalf("inside the interval: %v", stock)
			}
			clock.Add(toMS(t0.Add(DefaultStockInterval)) - toMS(t0))
			svc.flushStock(ctx)
			svc.flushStock(ctx)
			if stock, _, _, _ := ev.snapshot(); len(stock) != 3 || stock[2] != 1 {
				t.Fatalf("after the interval: %v, want [1 0 1]", stock)
			}
			if _, err := svc.Checkout(ctx, "r1", "b", "pay"); err != nil {
				t.Fatal(err)
			}
			svc.Checkout(ctx, "r1", "b", "pay") // a retry: no new order
			clock.Add(toMS(t0.Add(3*time.Minute)) - toMS(t0))
			if err := svc.Sweep(ctx); err != nil { // c and d expire; the sale ends and settles
				t.Fatal(err)
			}
			_, sales, carts, orders := ev.snapshot()
			if want := []SaleEventKind{EventSaleStarted, EventSaleEnded, EventSaleSettled}; len(sales) != 3 || sales[0] != want[0] || sales[1] != want[1] || sales[2] != want[2] {
				t.Fatalf("sale events = %v, want %v", sales, want)
			}
			if len(orders) != 1 {
				t.Fatalf("order events = %v", orders)
			}
			// Only the expiries of c and d: requests are announced by their callers.
			if len(carts) != 2 || carts[0] == carts[1] || (carts[0] != "c" && carts[0] != "d") {
				t.Fatalf("cart events = %v, want c and d", carts)
			}
			for _, tc := range []struct {
				name string
				got  float64
				want float64
			}{
				{"reservations ok", testutil.ToFloat64(m.reservations.WithLabelValues("ok")), 4},
				{"reservations replay", testutil.ToFloat64(m.reservations.WithLabelValues("replay")), 1},
				{"reservations sold_out", testutil.ToFloat64(m.reservations.WithLabelValues("sold_out")), 1},
				{"ended released", testutil.ToFloat64(m.ended.WithLabelValues("released")), 1},
				{"ended expired", testutil.ToFloat64(m.ended.WithLabelValues("expired")), 2},
				{"conversions", testutil.ToFloat64(m.conversions), 1},
				{"orders", testutil.ToFloat64(m.orders), 1},
			} {
				if tc.got != tc.want {
					t.Errorf("%s = %v, want %v", tc.name, tc.got, tc.want)
				}
			}
			// Opened at +5s, sold out at +7s.
			mfs, _ := m.reg.Gather()
			for _, mf := range mfs {
				if mf.GetName() == "liveroom_cart_sale_sold_out_seconds" {
					h := mf.GetMetric()[0].GetHistogram()
					if h.GetSampleCount() != 1 || h.GetSampleSum() != 2 {
						t.Errorf("sold-out histogram: %d samples, sum %v; want 1 sample of 2s", h.GetSampleCount(), h.GetSampleSum())
					}
				}
			}
		})
	}
}

func TestServiceStopSale(t *testing.T) {
	ctx := context.Background()
	var clock atomic.Int64
	clock.Store(toMS(t0))
	svc, ev, _ := newTestService(t, newTestLocalStore(t, testConfig()), &clock)
	svc.Store().PutProduct(ctx, "r1", Product{SKU: "tee", Title: "Tee", PriceCents: 100, Currency: "USD", Stock: 10})
	p, err := svc.Pin(ctx, "r1", "tee")
	if err != nil || p.SKU != "tee" {
		t.Fatal(p, err)
	}
	sale, _ := svc.StartSale(ctx, "r1", SaleParams{SKU: "tee", PriceCents: 50, Quantity: 4, DurationS: 60})
	for i := range 2 {
		got, ended, err := svc.StopSale(ctx, "r1", sale.ID)
		if err != nil || got.State != SaleEnded || ended != (i == 0) {
			t.Fatalf("stop %d: %+v, ended %v, %v", i, got, ended, err)
		}
	}
	svc.Sweep(ctx)
	if _, sales, _, _ := ev.snapshot(); len(sales) != 3 || sales[1] != EventSaleEnded || sales[2] != EventSaleSettled {
		t.Fatalf("sale events = %v; want started, ended once, settled", sales)
	}
	pinned, snap, _ := svc.Snapshot(ctx, "r1")
	if pinned == nil || pinned.SKU != "tee" || pinned.Stock != 10 || snap != nil {
		t.Fatalf("Snapshot = %+v, %+v", pinned, snap)
	}
}

// Run sweeps on its own and returns when its context ends.
func TestServiceRun(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig()
	cfg.SweepInterval = 10 * time.Millisecond
	cfg.StockInterval = 10 * time.Millisecond
	s := newTestLocalStore(t, cfg)
	var clock atomic.Int64
	clock.Store(toMS(t0))
	svc, err := NewService(s, cfg, ServiceOptions{Log: quietLog, Now: func() time.Time { return time.UnixMilli(clock.Load()).UTC() }})
	if err != nil {
		t.Fatal(err)
	}
	var stock atomic.Int64
	stock.Store(-1)
	svc.OnStock(func(_, _ string, remaining int) { stock.Store(int64(remaining)) })
	s.PutProduct(ctx, "r1", Product{SKU: "tee", Title: "Tee", PriceCents: 100, Currency: "USD", Stock: 10})
	sale, _ := svc.StartSale(ctx, "r1", SaleParams{SKU: "tee", PriceCents: 50, Quantity: 4, DurationS: 600})
	svc.Add(ctx, "r1", ReserveParams{User: "a", SaleID: sale.ID, Qty: 2, Key: "k"})

	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error)
	go func() { done <- svc.Run(runCtx) }()
	clock.Add(1000)
	eventually(t, func() bool { return stock.Load() == 2 })
	clock.Add(toMS(t0.Add(cfg.Hold)) - toMS(t0))
	eventually(t, func() bool { return stock.Load() == 4 })
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return")
	}
}
