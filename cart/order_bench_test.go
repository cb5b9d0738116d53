package cart

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkOrderLife measures the order life on both stores, in one run
// next to the checkout that creates the orders (docs/benchmarks.md):
//
//	checkout   reserve + durable checkout of an order that awaits payment
//	pay        awaiting -> paid, parallel (the store's compare-and-set)
//	sweep-10k  a lapse sweep with 10,000 awaiting orders none of which is due
//	lapse-10k  lapsing 10,000 due orders, units back to the running sale
//
//	go test -run '^$' -bench 'BenchmarkOrderLife/.*/(checkout|pay|sweep-10k)$' -benchtime 2000x ./cart
//	go test -run '^$' -bench 'BenchmarkOrderLife/.*/lapse-10k' -benchtime 2x ./cart
func BenchmarkOrderLife(b *testing.B) {
	cfg := testConfig()
	cfg.PayWithin = 10 * time.Minute
	for _, st := range stores {
		b.Run(st.name+"/checkout", func(b *testing.B) {
			s := st.open(b, cfg)
			sale := benchSale(b, s, MaxSaleQuantity)
			var buyers atomic.Int64
			b.SetParallelism(8)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				g := buyers.Add(1)
				for i := 0; pb.Next(); i++ {
					benchOrder(b, s, sale, fmt.Sprintf("g%d-u%d", g, i), t0)
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "orders/s")
		})
		b.Run(st.name+"/pay", func(b *testing.B) {
			s := st.open(b, cfg)
			ids := benchOrders(b, s, b.N)
			var next atomic.Int64
			b.SetParallelism(8)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					id := ids[next.Add(1)-1]
					if c, err := s.TransitionOrder(context.Background(), "bench", id, Transition{Action: ActPay}, t0); err != nil || !c.Changed {
						b.Errorf("pay %s: %+v, %v", id, c, err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "transitions/s")
		})
		b.Run(st.name+"/sweep-10k", func(b *testing.B) {
			s := st.open(b, cfg)
			benchOrders(b, s, 10_000)
			b.ResetTimer()
			for range b.N {
				if res, err := s.Lapse(context.Background(), t0.Add(time.Minute), lapsePerSweep); err != nil || len(res.Lapsed) != 0 {
					b.Fatalf("sweep: %d lapsed, %v", len(res.Lapsed), err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "sweeps/s")
		})
		b.Run(st.name+"/lapse-10k", func(b *testing.B) {
			const n = 10_000
			var total time.Duration
			var sweeps int
			for range b.N {
				b.StopTimer()
				s := st.open(b, cfg)
				benchOrders(b, s, n)
				b.StartTimer()
				began := time.Now()
				lapsed := 0
				for lapsed < n {
					res, err := s.Lapse(context.Background(), t0.Add(cfg.PayWithin+time.Minute), lapsePerSweep)
					if err != nil || len(res.Lapsed) == 0 {
						b.Fatalf("lapse: %d lapsed after %d, %v", len(res.Lapsed), lapsed, err)
					}
					lapsed += len(res.Lapsed)
					sweeps++
				}
				total += time.Since(began)
			}
			b.ReportMetric(float64(b.N*n)/total.Seconds(), "lapsed/s")
			b.ReportMetric(float64(sweeps)/total.Seconds(), "sweeps/s")
		})
	}
}

func benchSale(b *testing.B, s Store, qty int) Sale {
	b.Helper()
	ctx := context.Background()
	if _, err := s.PutProduct(ctx, "bench", Product{SKU: "tee", Title: "Tee", PriceCents: 100, Currency: "USD", Stock: qty}); err != nil {
		b.Fatal(err)
	}
	sale, err := s.StartSale(ctx, "bench", SaleParams{SKU: "tee", PriceCents: 50, Quantity: qty, DurationS: MaxDuration}, t0)
	if err != nil {
		b.Fatal(err)
	}
	return sale
}

func benchOrder(b *testing.B, s Store, sale Sale, user string, now time.Time) Order {
	ctx := context.Background()
	if _, err := s.Reserve(ctx, "bench", ReserveParams{User: user, SaleID: sale.ID, Qty: 1, Key: "k"}, now); err != nil {
		b.Fatal(err)
	}
	res, err := s.Checkout(ctx, "bench", user, "pay", now)
	if err != nil {
		b.Fatal(err)
	}
	return res.Order
}

// benchOrders checks out n awaiting orders of one unit of a running sale.
// The local store skips fsync while it sets up (the setup is not measured).
func benchOrders(b *testing.B, s Store, n int) []string {
	b.Helper()
	if ls, ok := s.(*LocalStore); ok {
		ls.db.NoSync = true
		defer func() { ls.db.NoSync = false }()
	}
	sale := benchSale(b, s, n)
	ids := make([]string, n)
	for i := range ids {
		ids[i] = benchOrder(b, s, sale, fmt.Sprintf("u%d", i), t0).ID
	}
	return ids
}
