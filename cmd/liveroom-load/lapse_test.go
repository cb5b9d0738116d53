package main

import (
	"context"
	"testing"
	"time"
)

// TestLapseWorkload is the CI smoke test of the lapse workload against the
// real server binary: 40 buyers on 10 units, 3 winners never pay; after
// the window exactly 3 units come back and 3 others buy them.
func TestLapseWorkload(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and starts the server")
	}
	base := startServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cfg := lapseConfig{
		sale: saleConfig{
			ws:  wsFlags{baseURL: base, room: "lapse", clients: 40, adminKey: testAdminKey, connectRate: 1000},
			sku: "tee", quantity: 10, price: 500, duration: 600, sales: 1, timeout: 15 * time.Second, payWithin: 1,
		},
		unpaid: 3,
	}
	if err := cfg.check(); err != nil {
		t.Fatal(err)
	}
	res, err := runLapse(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Problems) != 0 || res.FirstWinners != 10 || res.Paid != 7 || res.Lapsed != 3 || res.SecondWinners != 3 {
		t.Fatalf("got %+v; want 10 winners, 7 paid, 3 lapsed, 3 bought again, no problems", res)
	}
}
