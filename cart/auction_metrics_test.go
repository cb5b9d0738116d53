package cart

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestAuctionMetrics: the auction series count what the Service did, on
// both stores: starts, bids by kind and result, extensions, removals, and
// ends by result (sold, no sale, stopped).
func TestAuctionMetrics(t *testing.T) {
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			s := st.open(t, testConfig())
			m, err := NewMetrics(prometheus.NewRegistry())
			if err != nil {
				t.Fatal(err)
			}
			svc, err := NewService(s, testConfig(), ServiceOptions{Metrics: m, Log: quietLog})
			if err != nil {
				t.Fatal(err)
			}
			room := "aucm-" + st.name
			if _, err := s.PutProduct(ctx, room, Product{SKU: "lamp", Title: "Lamp", PriceCents: 9000, Currency: "EUR", Stock: 3}); err != nil {
				t.Fatal(err)
			}
			start := func(d, ext int) Auction {
				t.Helper()
				a, err := svc.StartAuction(ctx, room, AuctionParams{Host: "h", SKU: "lamp", StartCents: 1000, DurationS: d, ExtendS: ext})
				if err != nil {
					t.Fatal(err)
				}
				return a
			}
			extended := 0 // accepted bids whose answer says the end moved
			bid := func(a Auction, user string, cents int64, key string, max bool) error {
				r, err := svc.Bid(ctx, room, BidParams{AuctionID: a.ID, User: user, Cents: cents, Key: key, Max: max})
				if err == nil && r.Extended && !r.Replayed {
					extended++
				}
				return err
			}
			// 2 s with a 10 s soft close: lead changes extend it (one in the
			// same millisecond as the last extension does not).
			sold := start(2, 10)
			for _, b := range []struct {
				user, key string
				cents     int64
				max, ok   bool
			}{
				{"ann", "a1", 1000, false, true},
				{"ann", "a1", 1000, false, true},  // replay
				{"bob", "b1", 1050, false, false}, // bid_too_low
				{"bob", "b2", 3000, true, true},   // maximum: bids 1100
				{"ann", "a2", 1100, false, false}, // bid_too_low (next is 1200)
				{"ann", "a3", 1200, false, true},  // bob's maximum answers
			} {
				if err := bid(sold, b.user, b.cents, b.key, b.max); (err == nil) != b.ok {
					t.Fatalf("bid %+v: %v", b, err)
				}
			}
			if _, err := svc.RemoveBidder(ctx, room, sold.ID, "bob"); err != nil {
				t.Fatal(err)
			}
			if err := bid(sold, "bob", 5000, "b3", false); ErrorCode(err) != CodeNotAllowed {
				t.Fatalf("removed bidder: %v", err)
			}
			if _, err := svc.StopAuction(ctx, room, sold.ID); err != nil {
				t.Fatal(err)
			}
			noSale := start(1, 0)
			if extended == 0 { // the first bid is 2 s before a 10 s soft close
				t.Fatal("no bid extended the auction")
			}
			closeAll := func(id string) {
				t.Helper()
				for {
					a, err := s.(AuctionStore).Auction(ctx, room, id)
					if err != nil {
						t.Fatal(err)
					}
					if a.State != AuctionRunning {
						return
					}
					if err := svc.CloseDueAuctions(ctx); err != nil {
						t.Fatal(err)
					}
					time.Sleep(50 * time.Millisecond)
				}
			}
			closeAll(noSale.ID)
			won := start(1, 0)
			if err := bid(won, "cat", 1000, "c1", false); err != nil {
				t.Fatal(err)
			}
			closeAll(won.ID)

			for _, c := range []struct {
				what string
				got  float64
				want float64
			}{
				{"started", testutil.ToFloat64(m.auc.started), 3},
				{"bid accepted", testutil.ToFloat64(m.auc.bids.WithLabelValues("bid", "accepted")), 3},
				{"bid replay", testutil.ToFloat64(m.auc.bids.WithLabelValues("bid", "replay")), 1},
				{"bid too low", testutil.ToFloat64(m.auc.bids.WithLabelValues("bid", "bid_too_low")), 2},
				{"bid not allowed", testutil.ToFloat64(m.auc.bids.WithLabelValues("bid", "not_allowed")), 1},
				{"max accepted", testutil.ToFloat64(m.auc.bids.WithLabelValues("max", "accepted")), 1},
				{"extensions", testutil.ToFloat64(m.auc.extensions), float64(extended)},
				{"removed", testutil.ToFloat64(m.auc.removed), 1},
				{"ended stopped", testutil.ToFloat64(m.auc.ended.WithLabelValues("stopped")), 1},
				{"ended no_sale", testutil.ToFloat64(m.auc.ended.WithLabelValues("no_sale")), 1},
				{"ended sold", testutil.ToFloat64(m.auc.ended.WithLabelValues("sold")), 1},
			} {
				if c.got != c.want {
					t.Errorf("%s: got %v, want %v", c.what, c.got, c.want)
				}
			}
		})
	}
}
