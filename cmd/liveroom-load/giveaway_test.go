package main

import (
	"context"
	"testing"
	"time"
)

// TestGiveawayWorkload is the CI smoke of the giveaway storm against the
// real server binary: 200 entrants, a product prize with 2 winners; every
// entrant is answered and listed once, and the draw recomputes.
func TestGiveawayWorkload(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and starts the server")
	}
	base := startServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cfg := giveawayConfig{
		ws:     wsFlags{baseURL: base, room: "gw", clients: 200, adminKey: testAdminKey, connectRate: 1000},
		entryS: 4, winners: 2, sku: "gw-tee", timeout: 20 * time.Second,
	}
	if err := cfg.check(); err != nil {
		t.Fatal(err)
	}
	res, err := runGiveaway(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Problems) != 0 {
		t.Fatalf("problems: %v", res.Problems)
	}
	if res.Entered != 200 || res.Entrants != 200 || res.RecordEntries != 200 || len(res.Winners) != 2 || len(res.Errors) != 0 {
		t.Fatalf("entered %d, entrants %d, listed %d, winners %v, errors %v; want 200, 200, 200, 2 winners, none",
			res.Entered, res.Entrants, res.RecordEntries, res.Winners, res.Errors)
	}
}
