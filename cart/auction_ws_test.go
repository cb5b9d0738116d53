package cart

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"liveroom/room"
	"liveroom/room/roomtest"
)

type wireBid struct {
	AuctionID string    `json:"auction_id"`
	Amount    int64     `json:"amount_cents"`
	Bidder    *Bidder   `json:"bidder"`
	EndsAt    time.Time `json:"ends_at"`
	Next      int64     `json:"next_cents"`
	Version   int64     `json:"version"`
	Max       int64     `json:"max_cents"`
}

func decodeBid(t *testing.T, ev room.Event) wireBid {
	t.Helper()
	var b wireBid
	if err := json.Unmarshal(ev.Body, &b); err != nil {
		t.Fatalf("%s: %v", ev.AppendJSON(nil), err)
	}
	return b
}

func TestAuctionWSFlow(t *testing.T) {
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			e := newWSEnv(t, st.open(t, fastConfig()), fastConfig())
			host := e.join(t, "host", room.RoleHost)
			mod := e.join(t, "mod", room.RoleModerator)
			ann := e.join(t, "ann", room.RoleViewer)
			bob := e.join(t, "bob", room.RoleViewer)
			guest := e.join(t, "", room.RoleGuest)

			ann.Send(t, map[string]any{"type": "auction.start", "sku": "tee", "start_cents": 1000, "duration_s": 2, "extend_s": 1, "ref": "x"})
			wantErr(t, ann.Next(t, byRef("x")), room.CodeForbidden)
			host.Send(t, map[string]any{"type": "auction.start", "sku": "tee", "start_cents": 1000, "duration_s": 0, "ref": "s0"})
			wantErr(t, host.Next(t, byRef("s0")), room.CodeBadRequest)
			host.Send(t, map[string]any{"type": "auction.start", "sku": "tee", "start_cents": 1000, "duration_s": 3, "ref": "s00",
				"increments": []map[string]int64{{"up_to_cents": 1_000_000, "step_cents": 1}}})
			wantErr(t, host.Next(t, byRef("s00")), room.CodeBadRequest)
			host.Send(t, map[string]any{"type": "auction.start", "sku": "tee", "start_cents": 1000, "duration_s": 3, "extend_s": 1, "ref": "s1"})
			var a Auction
			if err := json.Unmarshal(guest.Expect(t, "auction.started").Body, &a); err != nil || a.ID == "" || a.NextCents != 1000 || a.State != AuctionRunning ||
				a.Now.IsZero() || !a.Now.Before(a.EndsAt) {
				t.Fatalf("auction.started: %+v %v", a, err)
			}
			host.Send(t, map[string]any{"type": "auction.start", "sku": "tee", "start_cents": 1000, "duration_s": 3, "ref": "s2"})
			wantErr(t, host.Next(t, byRef("s2")), string(CodeLimitReached))

			late := e.join(t, "cat", room.RoleViewer)
			var w struct {
				Room struct {
					Auction *Auction `json:"auction"`
				} `json:"room"`
			}
			if err := json.Unmarshal(late.Welcome.Body, &w); err != nil || w.Room.Auction == nil || w.Room.Auction.ID != a.ID || w.Room.Auction.Now.IsZero() {
				t.Fatalf("welcome: %s", late.Welcome.Body)
			}

			bid := func(c *roomtest.Client, kind, field string, cents int64, ref string) room.Event {
				t.Helper()
				c.Send(t, map[string]any{"type": kind, "auction_id": a.ID, field: cents, "key": ref, "ref": ref})
				return c.Next(t, byRef(ref))
			}
			guest.Send(t, map[string]any{"type": "auction.bid", "auction_id": a.ID, "amount_cents": 5000, "key": "g", "ref": "g"})
			wantErr(t, guest.Next(t, byRef("g")), room.CodeUnauthorized)
			wantErr(t, bid(host, "auction.bid", "amount_cents", 5000, "h1"), string(CodeNotAllowed))
			wantErr(t, bid(ann, "auction.bid", "amount_cents", 999, "a0"), string(CodeBidTooLow))
			wantErr(t, bid(ann, "auction.bid", "amount_cents", -1, "a00"), room.CodeBadRequest)

			r := decodeBid(t, bid(ann, "auction.bid", "amount_cents", 1000, "a1"))
			if r.Bidder == nil || r.Bidder.ID != "ann" || r.Amount != 1000 || r.Version != 1 {
				t.Fatalf("ann's answer: %+v", r)
			}
			pub0 := guest.Expect(t, "auction.bid")
			if r := decodeBid(t, pub0); r.Amount != 1000 || r.Bidder.ID != "ann" {
				t.Fatalf("room auction.bid: %+v", r)
			}
			if _, has := decodeBidMap(t, pub0)["now"]; !has {
				t.Fatalf("room auction.bid without the auction's clock: %s", pub0.AppendJSON(nil))
			}
			// a replay answers the same, publishes nothing new
			if r := decodeBid(t, bid(ann, "auction.bid", "amount_cents", 1000, "a1")); r.Version != 1 {
				t.Fatalf("replay: %+v", r)
			}
			// bob's maximum answers at once; ann is told she was outbid
			r = decodeBid(t, bid(bob, "auction.max", "max_cents", 5000, "b1"))
			if r.Bidder.ID != "bob" || r.Amount != 1100 || r.Max != 5000 {
				t.Fatalf("bob's maximum: %+v", r)
			}
			if got := roomtest.Field[int64](t, ann.Expect(t, "auction.outbid"), "amount_cents"); got != 1100 {
				t.Fatalf("outbid at %d, want 1100", got)
			}
			pub := guest.Expect(t, "auction.bid")
			if _, has := decodeBidMap(t, pub)["max_cents"]; has {
				t.Fatalf("a maximum went to the room: %s", pub.AppendJSON(nil))
			}
			// ann's bid is answered by bob's maximum: she is outbid at once
			r = decodeBid(t, bid(ann, "auction.bid", "amount_cents", 2000, "a2"))
			if r.Bidder.ID != "bob" || r.Amount != 2200 {
				t.Fatalf("answered by the maximum: %+v", r)
			}
			ann.Expect(t, "auction.outbid")
			r = decodeBid(t, bid(ann, "auction.bid", "amount_cents", 6000, "a3"))
			if r.Bidder.ID != "ann" || r.Amount != 6000 {
				t.Fatalf("ann over the maximum: %+v", r)
			}
			bob.Expect(t, "auction.outbid")

			// the moderator removes ann: the lead falls back to bob
			ann.Send(t, map[string]any{"type": "auction.remove_bidder", "auction_id": a.ID, "user_id": "bob", "ref": "rm0"})
			wantErr(t, ann.Next(t, byRef("rm0")), "forbidden")
			mod.Send(t, map[string]any{"type": "auction.remove_bidder", "auction_id": a.ID, "user_id": "ann", "ref": "rm1"})
			mod.Next(t, byRef("rm1"))
			ann.Expect(t, "auction.removed")
			r = decodeBid(t, guest.Next(t, func(ev room.Event) bool { return ev.Type == "auction.bid" && decodeBid(t, ev).Bidder.ID == "bob" }))
			if r.Amount != 2200 {
				t.Fatalf("fallback: %+v", r)
			}
			wantErr(t, bid(ann, "auction.bid", "amount_cents", 9000, "a4"), string(CodeNotAllowed))

			// the end: bob wins at 2200, his order is durable and he is told
			ended := guest.Expect(t, "auction.ended")
			var end struct {
				Winner *Bidder `json:"winner"`
				Amount int64   `json:"amount_cents"`
			}
			if err := json.Unmarshal(ended.Body, &end); err != nil || end.Winner == nil || end.Winner.ID != "bob" || end.Amount != 2200 {
				t.Fatalf("auction.ended: %s", ended.Body)
			}
			won := roomtest.Field[orderView](t, bob.Expect(t, "auction.won"), "order")
			if won.TotalCents != 2200 || len(won.Items) != 1 || won.Items[0].AuctionID != a.ID {
				t.Fatalf("auction.won: %+v", won)
			}
			o, err := e.store.Order(context.Background(), "demo", won.ID)
			if err != nil || o.User != "bob" {
				t.Fatalf("stored order: %v %+v", err, o)
			}
			wantErr(t, bid(late, "auction.bid", "amount_cents", 90000, "c1"), string(CodeAuctionEnded))
		})
	}
}

func decodeBidMap(t *testing.T, ev room.Event) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(ev.Body, &m); err != nil {
		t.Fatal(err)
	}
	return m
}
