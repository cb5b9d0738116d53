package cart

import (
	"context"
	"testing"
	"time"
)

// TestAuctionLocalRestart: on one node a restart forgets a running auction
// and its unit is back in stock (it never left the durable stock); a won
// auction's order and the sold unit survive the restart.
func TestAuctionLocalRestart(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := OpenLocal(dir, testConfig())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.PutProduct(ctx, "r1", Product{SKU: "lamp", Title: "Lamp", PriceCents: 9000, Currency: "EUR", Stock: 3}); err != nil {
		t.Fatal(err)
	}
	won, err := s.StartAuction(ctx, "r1", AuctionParams{Host: "h", SKU: "lamp", StartCents: 500, DurationS: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Bid(ctx, "r1", BidParams{AuctionID: won.ID, User: "ann", Cents: 700, Key: "k"}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Until(won.EndsAt))
	c, err := s.CloseAuction(ctx, "r1", won.ID)
	for err == nil && !c.Closed {
		time.Sleep(20 * time.Millisecond)
		c, err = s.CloseAuction(ctx, "r1", won.ID)
	}
	if err != nil || c.Order == nil {
		t.Fatalf("close: %v %+v", err, c)
	}
	running, err := s.StartAuction(ctx, "r1", AuctionParams{Host: "h", SKU: "lamp", StartCents: 500, DurationS: 600})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Bid(ctx, "r1", BidParams{AuctionID: running.ID, User: "bob", Cents: 900, Key: "k"}); err != nil {
		t.Fatal(err)
	}
	if p, _ := s.Product(ctx, "r1", "lamp"); p.Stock != 1 {
		t.Fatalf("stock with one sold and one in an auction: got %d, want 1", p.Stock)
	}

	s = reopen(t, s, dir)
	if p, _ := s.Product(ctx, "r1", "lamp"); p.Stock != 2 {
		t.Fatalf("stock after the restart: got %d, want 2 (the running auction's unit back, the sold one gone)", p.Stock)
	}
	if list, _ := s.RunningAuctions(ctx, "r1"); len(list) != 0 {
		t.Fatalf("running auctions after the restart: %+v", list)
	}
	if _, err := s.Bid(ctx, "r1", BidParams{AuctionID: running.ID, User: "cat", Cents: 5000, Key: "k"}); ErrorCode(err) != CodeNotFound {
		t.Fatalf("bid on a forgotten auction: %v, want not_found", err)
	}
	o, err := s.Order(ctx, "r1", c.Order.ID)
	if err != nil || o.User != "ann" || o.TotalCents != 700 || o.Items[0].AuctionID != won.ID {
		t.Fatalf("the winner's order after the restart: %v %+v", err, o)
	}
}
