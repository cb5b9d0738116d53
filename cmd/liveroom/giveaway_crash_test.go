package main

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"liveroom/cart"
)

// TestGiveawaySurvivesKill9: a single node without Redis is killed with
// SIGKILL while a giveaway with a product prize is open; restarted on the
// same data directory, it still shows the giveaway, ends it once with the
// entrants from before the crash (two prize orders, not four), and the GET
// record recomputes the published draw.
func TestGiveawaySurvivesKill9(t *testing.T) {
	node := newCrashNode(t, "")
	p := node.start()
	seedRoom(t, p.Base, "gw", "Giveaway", "bag", map[string]any{"title": "Bag", "price_cents": 4900, "currency": "EUR", "stock": 5})
	host := joinWS(t, p.Base, "gw", mintToken(t, p.Base, "host", "host", "gw"), "host")
	// Long enough that the restart happens inside the entry window.
	_ = host.send(map[string]any{"type": "giveaway.start", "ref": "s", "prize": map[string]any{"sku": "bag"}, "entry_s": 20, "winners": 2})
	started := host.await("giveaway.started", 5*time.Second)
	if started == nil {
		t.Fatal("no giveaway.started")
	}
	id := started["giveaway_id"].(string)
	var entries []string
	for i := range 3 {
		c := joinWS(t, p.Base, "gw", mintToken(t, p.Base, fmt.Sprintf("viewer-%d", i), "viewer", "gw"), fmt.Sprintf("viewer %d", i))
		_ = c.send(map[string]any{"type": "giveaway.enter", "ref": "e", "giveaway_id": id})
		m := c.await("giveaway.entered", 5*time.Second)
		if m == nil {
			t.Fatalf("viewer %d: no giveaway.entered", i)
		}
		entries = append(entries, m["entry"].(string))
	}
	p.Kill()
	<-p.Done()

	p2 := node.start()
	watch := dialWS(t, p2.Base, "gw", mintToken(t, p2.Base, "watcher", "viewer", "gw"))
	welcome := watch.await("welcome", 5*time.Second)
	if welcome == nil {
		t.Fatal("watcher: no welcome after the restart")
	}
	g, _ := welcome["room"].(map[string]any)["giveaway"].(map[string]any)
	if g == nil || g["giveaway_id"] != id || g["entrants"] != float64(3) {
		t.Fatalf("welcome after the restart: room.giveaway = %v; want %s with 3 entrants", g, id)
	}
	ended := watch.await("giveaway.ended", 40*time.Second)
	if ended == nil || ended["giveaway_id"] != id || ended["entrants"] != float64(3) {
		t.Fatalf("giveaway.ended after the restart = %v; want %s with 3 entrants", ended, id)
	}

	status, b := adminDo(t, "GET", p2.Base+"/api/v1/rooms/gw/giveaways/"+id, nil)
	var doc struct {
		Seed    string   `json:"seed"`
		Entries []string `json:"entries"`
		Winners []struct {
			Entry string `json:"entry"`
		} `json:"winners"`
	}
	if status != 200 || json.Unmarshal(b, &doc) != nil {
		t.Fatalf("GET giveaway: %d %s", status, b)
	}
	if !slices.Equal(doc.Entries, entries) {
		t.Fatalf("record entries %v, want the pre-crash %v", doc.Entries, entries)
	}
	idx, err := cart.Draw(doc.Seed, id, doc.Entries, 2)
	if err != nil || len(idx) != 2 || len(doc.Winners) != 2 {
		t.Fatalf("draw: %v, %v; record winners %v", idx, err, doc.Winners)
	}
	for i, k := range idx {
		if doc.Entries[k] != doc.Winners[i].Entry {
			t.Fatalf("recomputed winner %d = %s, record says %s", i, doc.Entries[k], doc.Winners[i].Entry)
		}
	}
	// Ended once: two prize orders, and the bag's stock is 5 - 2.
	status, b = adminDo(t, "GET", p2.Base+"/api/v1/rooms/gw/orders?limit=100", nil)
	var page struct {
		Orders []struct{ Key string } `json:"orders"`
	}
	if status != 200 || json.Unmarshal(b, &page) != nil {
		t.Fatalf("list orders: %d %s", status, b)
	}
	prizes := 0
	for _, o := range page.Orders {
		if strings.HasPrefix(o.Key, "giveaway:"+id+":") {
			prizes++
		}
	}
	if prizes != 2 {
		t.Fatalf("%d prize orders after the restart, want 2", prizes)
	}
	p2.Stop(t, 5*time.Second)
}
