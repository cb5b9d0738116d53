package cart

import (
	"context"
	"testing"
	"time"
)

// TestAuctionLocalRestart: on one node a running auction survives a
// restart with its bids, maximums, removed bidders, keys and end; one that
// ended while the node was down (with its own ladder) closes once after
// it; a won auction's order and the sold unit survive.
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

	// A maximum, a removed bidder and a second bid: all must survive.
	if _, err := s.Bid(ctx, "r1", BidParams{AuctionID: running.ID, User: "dan", Cents: 5000, Key: "m", Max: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Bid(ctx, "r1", BidParams{AuctionID: running.ID, User: "eve", Cents: 1200, Key: "e"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RemoveBidder(ctx, "r1", running.ID, "eve"); err != nil {
		t.Fatal(err)
	}
	before, err := s.Auction(ctx, "r1", running.ID)
	if err != nil {
		t.Fatal(err)
	}

	s = reopen(t, s, dir)
	if p, _ := s.Product(ctx, "r1", "lamp"); p.Stock != 1 {
		t.Fatalf("stock after the restart: got %d, want 1 (one sold, one still in the auction)", p.Stock)
	}
	list, err := s.RunningAuctions(ctx, "r1")
	if err != nil || len(list) != 1 || list[0].ID != running.ID {
		t.Fatalf("running auctions after the restart: %v %+v", err, list)
	}
	after := list[0]
	if after.AmountCents != before.AmountCents || after.Leader == nil || after.Leader.ID != "dan" ||
		after.Version != before.Version || !after.EndsAt.Equal(before.EndsAt) {
		t.Fatalf("auction after the restart = %+v, want %+v", after, before)
	}
	// The idempotency key replays, the removed bidder stays out, dan's
	// maximum still answers.
	if r, err := s.Bid(ctx, "r1", BidParams{AuctionID: running.ID, User: "bob", Cents: 900, Key: "k"}); err != nil || !r.Replayed {
		t.Fatalf("replayed key after the restart: %v %+v", err, r)
	}
	if _, err := s.Bid(ctx, "r1", BidParams{AuctionID: running.ID, User: "eve", Cents: 4000, Key: "e2"}); ErrorCode(err) != CodeNotAllowed {
		t.Fatalf("removed bidder after the restart: %v, want not_allowed", err)
	}
	r, err := s.Bid(ctx, "r1", BidParams{AuctionID: running.ID, User: "cat", Cents: 3000, Key: "c"})
	if err != nil || r.Auction.Leader.ID != "dan" || r.Auction.AmountCents != 3200 {
		t.Fatalf("dan's maximum after the restart: %v %+v", err, r.Auction)
	}
	if _, err := s.StopAuction(ctx, "r1", running.ID); err != nil {
		t.Fatal(err)
	}
	if p, _ := s.Product(ctx, "r1", "lamp"); p.Stock != 2 {
		t.Fatalf("stock after the stop: got %d, want 2", p.Stock)
	}

	// An auction that ends while the node is down closes once at the
	// first close after the restart, with the right winner.
	short, err := s.StartAuction(ctx, "r1", AuctionParams{Host: "h", SKU: "lamp", StartCents: 500, DurationS: 1,
		Increments: Ladder{{UpToCents: 1000, StepCents: 10}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Bid(ctx, "r1", BidParams{AuctionID: short.ID, User: "fay", Cents: 800, Key: "f"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Until(short.EndsAt) + 50*time.Millisecond)
	s2, err := OpenLocal(dir, testConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s2.Close() })
	s = s2
	due, err := s.DueAuctions(ctx, 10)
	if err != nil || len(due) != 1 || due[0].ID != short.ID {
		t.Fatalf("due after the restart: %v %+v", err, due)
	}
	if a, err := s.Auction(ctx, "r1", short.ID); err != nil || len(a.Increments) != 1 || a.NextCents != 810 {
		t.Fatalf("the auction's own ladder after the restart: %v %+v", err, a)
	}
	c2, err := s.CloseAuction(ctx, "r1", short.ID)
	if err != nil || !c2.Closed || c2.Order == nil || c2.Order.User != "fay" || c2.Order.TotalCents != 800 {
		t.Fatalf("close after the restart: %v %+v", err, c2)
	}
	if again, err := s.CloseAuction(ctx, "r1", short.ID); err != nil || again.Closed {
		t.Fatalf("second close: %v %+v", err, again)
	}
	s = reopen(t, s, dir)
	if again, err := s.CloseAuction(ctx, "r1", short.ID); err != nil || again.Closed || again.Auction.State != AuctionEnded {
		t.Fatalf("close after a second restart: %v %+v", err, again)
	}
	if p, _ := s.Product(ctx, "r1", "lamp"); p.Stock != 1 {
		t.Fatalf("stock with two sold: got %d, want 1", p.Stock)
	}
	page, err := s.Orders(ctx, "r1", "", 10)
	if err != nil || len(page.Orders) != 2 {
		t.Fatalf("orders: %v %d, want 2", err, len(page.Orders))
	}
	o, err := s.Order(ctx, "r1", c.Order.ID)
	if err != nil || o.User != "ann" || o.TotalCents != 700 || o.Items[0].AuctionID != won.ID {
		t.Fatalf("the winner's order after the restart: %v %+v", err, o)
	}
}
