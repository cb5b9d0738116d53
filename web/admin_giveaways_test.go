package web

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"testing"
	"time"

	"liveroom/cart"
	"liveroom/room"
)

// The giveaway record: public for a public room (no seed before the end,
// no list before the close), a token for a private one, 404 for unknown.
func TestGiveawayRoute(t *testing.T) {
	store, err := cart.OpenLocal(t.TempDir(), cart.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	gs, err := cart.NewLocalGiveaways(store, cart.GiveawayOptions{Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	n := newTestNode(t, func(d *Deps) { d.Giveaways = gs })
	pub := n.createRoom("pub", false)
	priv := n.createRoom("hidden", true)
	ctx := context.Background()
	start := func(rm room.Room) cart.Giveaway {
		g, err := gs.StartGiveaway(ctx, rm.Scope(), cart.GiveawayParams{Prize: cart.Prize{Text: "a hug"}, EntryS: 10, Host: "h"})
		if err != nil {
			t.Fatal(err)
		}
		return g
	}
	g := start(pub)
	hg := start(priv)
	for _, u := range []string{"a", "b", "c"} {
		if _, err := gs.EnterGiveaway(ctx, pub.Scope(), g.ID, cart.Entrant{User: u, Name: u}); err != nil {
			t.Fatal(err)
		}
	}
	get := func(path, bearer string) (int, giveawayDoc, []byte) {
		status, _, body := n.do("GET", path, bearer, "", nil)
		var doc giveawayDoc
		if status == http.StatusOK {
			if err := json.Unmarshal(body, &doc); err != nil {
				t.Fatal(err)
			}
		}
		return status, doc, body
	}
	status, doc, body := get("/api/v1/rooms/pub/giveaways/"+g.ID, "")
	if status != 200 || doc.Seed != "" || len(doc.Entries) != 0 || doc.Entrants != 3 || doc.Commitment != g.Commitment {
		t.Fatalf("open giveaway: %d %s; want 200, a commitment, 3 entrants, no seed, no list", status, body)
	}
	mu.Lock()
	now = now.Add(10 * time.Second)
	mu.Unlock()
	if e, err := gs.EndDue(ctx); err != nil || len(e) != 2 {
		t.Fatalf("EndDue: %d, %v; want 2", len(e), err)
	}
	status, doc, body = get("/api/v1/rooms/pub/giveaways/"+g.ID, "")
	if status != 200 || doc.Seed == "" || len(doc.Entries) != 3 || len(doc.Winners) != 1 || doc.Procedure != cart.DrawProcedure {
		t.Fatalf("ended giveaway: %d %s; want the seed, 3 entries, 1 winner", status, body)
	}
	if status, _, body := get("/api/v1/rooms/pub/giveaways/g_0000", ""); status != 404 || errorCode(t, body) != "not_found" {
		t.Fatalf("unknown giveaway: %d %s, want 404 not_found", status, body)
	}
	if status, _, _ := get("/api/v1/rooms/hidden/giveaways/"+hg.ID, ""); status == 200 {
		t.Fatal("a private room's giveaway answered without a token")
	}
	if status, _, body := get("/api/v1/rooms/hidden/giveaways/"+hg.ID, n.token("v", room.RoleViewer, "hidden")); status != 200 {
		t.Fatalf("private room with its token: %d %s, want 200", status, body)
	}
	if status, _, _ := get("/api/v1/rooms/pub/giveaways/"+hg.ID, ""); status != 404 {
		t.Fatalf("another room's giveaway: %d, want 404", status)
	}
}
