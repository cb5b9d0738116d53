package main

import (
	"context"
	"fmt"
	"liveroom/cmd/internal/proctest"
	"testing"
	"time"
)

// TestSaleWorkload runs the sale workload against the real server binary:
// 50 buyers on a 10-unit sale get exactly 10 reservations and 40 sold_out,
// and with checkout the orders API lists the 10 orders.
func TestSaleWorkload(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and starts the server")
	}
	const adminKey = testAdminKey
	base := startServer(t)

	for _, checkout := range []bool{false, true} {
		t.Run(fmt.Sprintf("checkout=%v", checkout), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			cfg := saleConfig{
				ws:  wsFlags{baseURL: base, room: "flash", clients: 50, adminKey: adminKey, connectRate: 1000},
				sku: "tee", quantity: 10, qty: 1, perUser: 1, price: 500, duration: 60, checkout: checkout, sales: 1,
				timeout: 10 * time.Second,
			}
			if err := cfg.check(); err != nil {
				t.Fatal(err)
			}
			res, err := runSale(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Sales) != 1 {
				t.Fatalf("got %d sales, want 1", len(res.Sales))
			}
			r := res.Sales[0]
			if r.Accepted != 10 || r.AcceptedUnits != 10 || r.SoldOut != 40 || r.LimitReached != 0 || len(r.Other) != 0 {
				t.Fatalf("got %d accepted (%d units), %d sold_out, %d limit_reached, other %v; want 10, 10, 40, 0, none",
					r.Accepted, r.AcceptedUnits, r.SoldOut, r.LimitReached, r.Other)
			}
			if checkout && (res.OrdersConfirmed != 10 || r.OrdersListed != 10 || r.OrderUnitsListd != 10) {
				t.Fatalf("got %d orders confirmed, %d listed with %d units; want 10, 10, 10", res.OrdersConfirmed, r.OrdersListed, r.OrderUnitsListd)
			}
			if len(res.Problems) != 0 || len(r.lat) != 50 {
				t.Fatalf("problems %v, %d latencies; want none, 50", res.Problems, len(r.lat))
			}
		})
	}
}

// testAdminKey is the admin key of servers started by startServer.
const testAdminKey = "load-test-admin-key-0123456789"

// startServer runs the real server binary on free loopback ports until the
// test ends; it returns the base URL.
func startServer(t *testing.T) string {
	t.Helper()
	s := proctest.Start(t, proctest.Options{DataDir: t.TempDir(), Env: []string{"LIVEROOM_ADMIN_KEY=" + testAdminKey,
		"LIVEROOM_JWT_SECRET=load-test-jwt-secret-0123456789", "LIVEROOM_MAX_CONNS_PER_IP=0", "LIVEROOM_REDIS_URL="}})
	return s.Base
}
