package e2e

import (
	"net/http"
	"strings"
	"testing"
)

// TestBrowserAuction: the host starts an auction from the studio's form; a
// page whose clock is 10 minutes behind shows the right time left;
// on phone-sized pages viewers bid on a live auction
// with the quick-bid buttons; the first is told she was outbid and bids
// again; a third outbids her and the moderator removes that bidder from the
// moderator console, so the lead falls back to her, and she wins; her order (created with the close, no cart step)
// shows on her page and in the orders API, exactly once.
func TestBrowserAuction(t *testing.T) {
	chromium, node := browserTools(t)
	artifacts := artifactsDir(t)
	srv := startServer(t, artifacts)
	srv.admin(t, "/api/v1/rooms", map[string]any{"id": room, "title": "Auction room"}, http.StatusCreated, nil)
	srv.do(t, http.MethodPut, "/api/v1/rooms/"+room+"/products/lamp", map[string]any{
		"title": "Brass lamp", "price_cents": 9000, "currency": "EUR", "stock": 3}, 0, nil)
	host := mint(t, srv, "host-1", "Maya", "host")
	ann := mint(t, srv, "ann", "Ann", "viewer")
	bob := mint(t, srv, "bob", "Bob", "viewer")
	cat := mint(t, srv, "cat", "Cat", "viewer")
	mod := mint(t, srv, "mod-1", "Mo", "moderator")
	dan := mint(t, srv, "dan", "Dan", "viewer")

	type view struct {
		State   string  `json:"state"`
		Text    string  `json:"text"`
		Amount  string  `json:"amount"`
		Buttons []int64 `json:"buttons"`
	}
	var res struct {
		OK          bool     `json:"ok"`
		Step        string   `json:"step"`
		Error       string   `json:"error"`
		Logs        []string `json:"logs"`
		Started     view     `json:"started"`
		Outbid      view     `json:"outbid"`
		Leading     view     `json:"leading"`
		Fallback    view     `json:"fallback"`
		ModBids     []string `json:"modBids"`
		StudioBids  []string `json:"studioBids"`
		StudioState string   `json:"studioState"`
		Won         view     `json:"won"`
		BobEnd      view     `json:"bobEnd"`
		Skew        struct {
			Shown  string  `json:"shown"`
			ShownS float64 `json:"shownS"`
			LeftS  float64 `json:"leftS"`
		} `json:"skew"`
		Order struct {
			ID         string `json:"id"`
			TotalCents int64  `json:"total_cents"`
		} `json:"order"`
	}
	runScript(t, node, chromium, &res, "auction.mjs", "--base", srv.base, "--room", room,
		"--host", host, "--ann", ann, "--bob", bob, "--cat", cat, "--mod", mod, "--dan", dan, "--sku", "lamp")
	for _, l := range res.Logs {
		t.Log("browser: " + l)
	}
	if !res.OK {
		t.Fatalf("browser run failed in step %q: %s", res.Step, res.Error)
	}
	if got := res.Started.Buttons; len(got) != 3 || got[0] != 1000 || got[1] != 1100 || got[2] != 1200 {
		t.Errorf("quick bids at the start: %v, want [1000 1100 1200] (the ladder from the start price)", got)
	}
	// The page 10 minutes behind shows the time left by the auction's
	// clock (a loose bound: the skew is 600 s).
	if d := res.Skew.ShownS - res.Skew.LeftS; d < -2 || d > 2 {
		t.Errorf("time left on a page whose clock is 10 minutes behind: %q (%.0f s), want about %.1f s", res.Skew.Shown, res.Skew.ShownS, res.Skew.LeftS)
	}
	if !strings.Contains(res.Outbid.Text, "outbid") {
		t.Errorf("ann after bob's bid: %q, want outbid", res.Outbid.Text)
	}
	if res.Fallback.Amount != res.Leading.Amount {
		t.Errorf("after the moderator removed cat: ann leads at %q, want her own bid %q back", res.Fallback.Amount, res.Leading.Amount)
	}
	if len(res.ModBids) < 4 || !strings.Contains(res.ModBids[0], "cat") {
		t.Errorf("moderator's bid list: %q, want cat's bid on top of at least 4", res.ModBids)
	}
	if len(res.StudioBids) < 4 || !strings.HasPrefix(res.StudioState, "Sold to Ann") {
		t.Errorf("studio: bids %q, state %q; want the bid list and the sale to Ann", res.StudioBids, res.StudioState)
	}
	if res.Order.ID == "" || !strings.Contains(res.Won.Text, res.Order.ID) {
		t.Errorf("ann at the end: %q, order %+v; want the order shown", res.Won.Text, res.Order)
	}
	if !strings.Contains(res.BobEnd.Text, "Ann") {
		t.Errorf("bob at the end: %q, want the sale to Ann", res.BobEnd.Text)
	}
	var page struct {
		Orders []struct {
			ID         string `json:"id"`
			User       string `json:"user"`
			TotalCents int64  `json:"total_cents"`
			Items      []struct {
				AuctionID string `json:"auction_id"`
			} `json:"items"`
		} `json:"orders"`
	}
	srv.do(t, http.MethodGet, "/api/v1/rooms/"+room+"/orders", nil, 0, &page)
	if len(page.Orders) != 1 || page.Orders[0].ID != res.Order.ID || page.Orders[0].User != "ann" ||
		page.Orders[0].TotalCents != res.Order.TotalCents || page.Orders[0].Items[0].AuctionID == "" {
		t.Fatalf("orders: %+v, want ann's one auction order %+v", page.Orders, res.Order)
	}
}
