package main

import (
	"encoding/json"
	"testing"
	"time"
)

// TestAuctionSurvivesKill9: on one node (LocalStore), a running auction
// with its bids, a maximum and a removed bidder survives SIGKILL: after a
// restart on the same data directory it is in the welcome as it was, its
// idempotency keys and removal still hold; killed again and restarted after
// its end, it closes once with the right winner and exactly one order.
func TestAuctionSurvivesKill9(t *testing.T) {
	node := newCrashNode(t, "")
	p := node.start()
	seedRoom(t, p.Base, "auc", "Auction", "lamp", map[string]any{"title": "Lamp", "price_cents": 9000, "currency": "EUR", "stock": 2})
	tokens := map[string]string{}
	for _, u := range []struct{ sub, role string }{{"host", "host"}, {"mod", "moderator"}, {"ann", "viewer"}, {"bob", "viewer"}, {"cat", "viewer"}} {
		tokens[u.sub] = mintToken(t, p.Base, u.sub, u.role, "auc")
	}
	join := func(base, who string) *wsClient {
		t.Helper()
		return joinWS(t, base, "auc", tokens[who], who)
	}
	// answer sends m and waits for the event of type kind (or error).
	answer := func(c *wsClient, m map[string]any, kind string) map[string]any {
		t.Helper()
		if err := c.send(m); err != nil {
			t.Fatal(err)
		}
		deadline := time.After(5 * time.Second)
		for {
			select {
			case ev, ok := <-c.in:
				if !ok {
					t.Fatalf("connection closed waiting for %s", kind)
				}
				if ev["ref"] == m["ref"] && (ev["type"] == kind || ev["type"] == "error") {
					return ev
				}
			case <-deadline:
				t.Fatalf("no answer to %v", m)
			}
		}
	}

	host := join(p.Base, "host")
	// 20 s: long enough for the bids and a restart on a busy machine, short
	// enough to wait out.
	if err := host.send(map[string]any{"type": "auction.start", "ref": "s", "sku": "lamp", "start_cents": 500, "duration_s": 20, "extend_s": 0}); err != nil {
		t.Fatal(err)
	}
	started := host.await("auction.started", 5*time.Second)
	if started == nil {
		t.Fatal("no auction.started")
	}
	id := started["auction_id"].(string)
	endsAt := started["ends_at"].(string)
	ann, bob, mod := join(p.Base, "ann"), join(p.Base, "bob"), join(p.Base, "mod")
	if ev := answer(ann, map[string]any{"type": "auction.max", "ref": "a1", "auction_id": id, "max_cents": 1500, "key": "a1"}, "auction.bid"); ev["type"] != "auction.bid" {
		t.Fatalf("ann's maximum: %v", ev)
	}
	if ev := answer(bob, map[string]any{"type": "auction.bid", "ref": "b1", "auction_id": id, "amount_cents": 900, "key": "b1"}, "auction.bid"); ev["type"] != "auction.bid" {
		t.Fatalf("bob's bid: %v", ev)
	}
	// ann's maximum answered: 1000, ann leads. bob outbids her maximum, then
	// the moderator removes bob and the lead falls back to ann's best bid, 1000.
	if ev := answer(bob, map[string]any{"type": "auction.bid", "ref": "b2", "auction_id": id, "amount_cents": 2000, "key": "b2"}, "auction.bid"); ev["type"] != "auction.bid" {
		t.Fatalf("bob's second bid: %v", ev)
	}
	if ev := answer(mod, map[string]any{"type": "auction.remove_bidder", "ref": "r", "auction_id": id, "user_id": "bob"}, "auction.removed"); ev["type"] != "auction.removed" {
		t.Fatalf("remove bob: %v", ev)
	}
	p.Kill()

	p2 := node.start()
	cat := dialWS(t, p2.Base, "auc", tokens["cat"])
	w := cat.await("welcome", 5*time.Second)
	if w == nil {
		t.Fatal("cat: no welcome after the restart")
	}
	var welcome struct {
		Room struct {
			Auction *struct {
				ID     string `json:"auction_id"`
				Amount int64  `json:"amount_cents"`
				Leader *struct {
					ID string `json:"id"`
				} `json:"leader"`
				EndsAt string `json:"ends_at"`
				State  string `json:"state"`
			} `json:"auction"`
		} `json:"room"`
	}
	b, _ := json.Marshal(w)
	if err := json.Unmarshal(b, &welcome); err != nil {
		t.Fatal(err)
	}
	au := welcome.Room.Auction
	if au == nil || au.ID != id || au.Amount != 1000 || au.Leader == nil || au.Leader.ID != "ann" || au.EndsAt != endsAt || au.State != "running" {
		t.Fatalf("auction in the welcome after kill -9: %s", b)
	}
	bob2 := join(p2.Base, "bob")
	if ev := answer(bob2, map[string]any{"type": "auction.bid", "ref": "b3", "auction_id": id, "amount_cents": 5000, "key": "b3"}, "auction.bid"); ev["type"] != "error" || ev["code"] != "not_allowed" {
		t.Fatalf("removed bidder after kill -9: %v, want not_allowed", ev)
	}
	// ann's maximum key replays (no second maximum), her lead unchanged.
	ann2 := join(p2.Base, "ann")
	if ev := answer(ann2, map[string]any{"type": "auction.max", "ref": "a1", "auction_id": id, "max_cents": 1500, "key": "a1"}, "auction.bid"); ev["type"] != "auction.bid" || ev["amount_cents"] != float64(1000) {
		t.Fatalf("ann's replayed maximum after kill -9: %v", ev)
	}
	p2.Kill()

	end, err := time.Parse(time.RFC3339Nano, endsAt)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Until(end) + 300*time.Millisecond) // it ends while the node is down
	p3 := node.start()
	type order struct {
		ID         string `json:"id"`
		User       string `json:"user"`
		TotalCents int64  `json:"total_cents"`
		Items      []struct {
			AuctionID string `json:"auction_id"`
		} `json:"items"`
	}
	var orders []order
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) && len(orders) == 0 {
		status, b := adminDo(t, "GET", p3.Base+"/api/v1/rooms/auc/orders", nil)
		var page struct {
			Orders []order `json:"orders"`
		}
		if status != 200 || json.Unmarshal(b, &page) != nil {
			t.Fatalf("orders: %d %s", status, b)
		}
		orders = page.Orders
		time.Sleep(100 * time.Millisecond)
	}
	if len(orders) != 1 || orders[0].User != "ann" || orders[0].TotalCents != 1000 || len(orders[0].Items) != 1 || orders[0].Items[0].AuctionID != id {
		t.Fatalf("orders after the auction ended during the downtime: %+v, want one for ann at 1000", orders)
	}
	p3.Stop(t, 5*time.Second)

	// Once more: the close is not repeated and the unit stays sold.
	p4 := node.start()
	time.Sleep(500 * time.Millisecond) // a few closer ticks
	status, b := adminDo(t, "GET", p4.Base+"/api/v1/rooms/auc/orders", nil)
	var page struct {
		Orders []json.RawMessage `json:"orders"`
	}
	if status != 200 || json.Unmarshal(b, &page) != nil || len(page.Orders) != 1 {
		t.Fatalf("orders after another restart: %d %s", status, b)
	}
	status, b = adminDo(t, "GET", p4.Base+"/api/v1/rooms/auc/products/lamp", nil)
	var prod struct {
		Stock int `json:"stock"`
	}
	if status != 200 || json.Unmarshal(b, &prod) != nil || prod.Stock != 1 {
		t.Fatalf("product after the sale: %d %s, want stock 1", status, b)
	}
	p4.Stop(t, 5*time.Second)
}
