package cart

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkReserve measures cart.add on one room's hot sale, from parallel
// buyers, on both stores:
//
//	go test -run '^$' -bench BenchmarkReserve -benchtime 3s ./cart
func BenchmarkReserve(b *testing.B) {
	for _, st := range stores {
		b.Run(st.name, func(b *testing.B) {
			s := st.open(b, testConfig())
			ctx := context.Background()
			const qty = MaxSaleQuantity
			if _, err := s.PutProduct(ctx, "bench", Product{SKU: "tee", Title: "Tee", PriceCents: 100, Currency: "USD", Stock: qty}); err != nil {
				b.Fatal(err)
			}
			sale, err := s.StartSale(ctx, "bench", SaleParams{SKU: "tee", PriceCents: 50, Quantity: qty, PerUserLimit: 5, DurationS: MaxDuration}, t0)
			if err != nil {
				b.Fatal(err)
			}
			var buyers atomic.Int64
			var soldOut atomic.Int64
			b.SetParallelism(8) // 8 buyers per CPU: Redis round trips overlap
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				g := buyers.Add(1)
				for i := 0; pb.Next(); i++ {
					p := ReserveParams{User: fmt.Sprintf("g%d-u%d", g, i), SaleID: sale.ID, Qty: 1, Key: "k"}
					_, err := s.Reserve(ctx, "bench", p, t0.Add(time.Millisecond))
					if ErrorCode(err) == CodeSoldOut {
						soldOut.Add(1)
					} else if err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "reservations/s")
			if n := soldOut.Load(); n > 0 {
				b.Logf("%d of %d answered sold_out", n, b.N)
			}
		})
	}
}

// BenchmarkCheckout measures reserve + durable checkout of one unit by
// parallel buyers in one room (the local store fsyncs every order).
//
//	go test -run '^$' -bench BenchmarkCheckout ./cart
func BenchmarkCheckout(b *testing.B) {
	for _, st := range stores {
		b.Run(st.name, func(b *testing.B) {
			s := st.open(b, testConfig())
			ctx := context.Background()
			if _, err := s.PutProduct(ctx, "bench", Product{SKU: "tee", Title: "Tee", PriceCents: 100, Currency: "USD", Stock: MaxStock}); err != nil {
				b.Fatal(err)
			}
			var buyers atomic.Int64
			b.SetParallelism(8)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				g := buyers.Add(1)
				for i := 0; pb.Next(); i++ {
					user := fmt.Sprintf("g%d-u%d", g, i)
					if _, err := s.Reserve(ctx, "bench", ReserveParams{User: user, SKU: "tee", Qty: 1, Key: "k"}, t0); err != nil {
						b.Error(err)
						return
					}
					if _, err := s.Checkout(ctx, "bench", user, "pay", t0); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "orders/s")
		})
	}
}
