package cart

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"
)

// TestGiveawayLocalRestart: a running giveaway with a product prize, its
// seed and its entries survive closing and reopening the database; the
// prize units stay held; after the restart it ends once, and the ended
// record (seed, list, winners) survives another restart and recomputes.
func TestGiveawayLocalRestart(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	var mu sync.Mutex
	now := t0
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	open := func() (*LocalStore, *LocalGiveaways) {
		s, err := OpenLocal(dir, testConfig())
		if err != nil {
			t.Fatal(err)
		}
		gs, err := NewLocalGiveaways(s, GiveawayOptions{Now: clock})
		if err != nil {
			t.Fatal(err)
		}
		return s, gs
	}
	s, gs := open()
	if _, err := s.PutProduct(ctx, "r1", Product{SKU: "tee", Title: "Tee", PriceCents: 2500, Currency: "USD", Stock: 5}); err != nil {
		t.Fatal(err)
	}
	g, err := gs.StartGiveaway(ctx, "r1", GiveawayParams{Prize: Prize{SKU: "tee"}, EntryS: 60, Winners: 2, Host: "host"})
	if err != nil {
		t.Fatal(err)
	}
	var entries []string
	for i := range 3 {
		r, err := gs.EnterGiveaway(ctx, "r1", g.ID, Entrant{User: fmt.Sprintf("u%d", i), Name: fmt.Sprintf("U%d", i)})
		if err != nil {
			t.Fatal(err)
		}
		entries = append(entries, r.Entry)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s, gs = open()
	if p, err := s.Product(ctx, "r1", "tee"); err != nil || p.Stock != 3 {
		t.Fatalf("tee after restart = %+v, %v; want stock 3 (2 held for the prize)", p, err)
	}
	run, ok, err := gs.RunningGiveaway(ctx, "r1")
	if err != nil || !ok || run.ID != g.ID || run.Entrants != 3 || run.Commitment != g.Commitment {
		t.Fatalf("running after restart = %+v, %v, %v; want %s with 3 entrants", run, ok, err, g.ID)
	}
	if e, _ := gs.EntryOf(ctx, "r1", g.ID, "u1"); e != entries[1] {
		t.Fatalf("u1's entry after restart = %q, want %q", e, entries[1])
	}
	if r, err := gs.EnterGiveaway(ctx, "r1", g.ID, Entrant{User: "u0"}); err != nil || !r.Replayed || r.Entry != entries[0] {
		t.Fatalf("re-entry after restart = %+v, %v; want u0's entry replayed", r, err)
	}
	mu.Lock()
	now = now.Add(61 * time.Second)
	mu.Unlock()
	ended, err := gs.EndDue(ctx)
	if err != nil || len(ended) != 1 || len(ended[0].Orders) != 2 {
		t.Fatalf("EndDue after restart = %+v, %v; want one end with 2 orders", ended, err)
	}
	if again, err := gs.EndDue(ctx); err != nil || len(again) != 0 {
		t.Fatalf("second EndDue = %+v, %v; want nothing", again, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s, gs = open()
	defer s.Close()
	// Nobody marked the end announced: the first EndDue returns it once
	// more (a replay with its orders), and not again once it is marked.
	replay, err := gs.EndDue(ctx)
	if err != nil || len(replay) != 1 || !replay[0].Replay || replay[0].Giveaway.ID != g.ID || len(replay[0].Orders) != 2 {
		t.Fatalf("EndDue after the second restart = %+v, %v; want a replay of %s with 2 orders", replay, err, g.ID)
	}
	if err := gs.MarkAnnounced(ctx, "r1", g.ID); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	now = now.Add(time.Hour)
	mu.Unlock()
	if again, err := gs.EndDue(ctx); err != nil || len(again) != 0 {
		t.Fatalf("EndDue after MarkAnnounced = %+v, %v; want nothing", again, err)
	}
	if p, _ := s.Product(ctx, "r1", "tee"); p.Stock != 3 {
		t.Fatalf("tee stock after the end = %d, want 3 (2 given)", p.Stock)
	}
	got, err := gs.Giveaway(ctx, "r1", g.ID)
	if err != nil || got.State != GiveawayEnded || got.Seed == "" || len(got.Result) != 2 || got.Result[0].OrderID == "" {
		t.Fatalf("ended giveaway after restart = %+v, %v", got, err)
	}
	list, err := gs.GiveawayEntries(ctx, "r1", g.ID)
	if err != nil || !slices.Equal(list, entries) {
		t.Fatalf("entries after restart = %v, %v; want %v", list, err, entries)
	}
	won, err := drawWinners(got.Seed, g.ID, list, 2)
	if err != nil || won[0] != got.Result[0].Entry || won[1] != got.Result[1].Entry || got.EntrantsHash != EntrantsHash(list) {
		t.Fatalf("recomputed draw %v, %v; published %+v", won, err, got.Result)
	}
	if o, err := s.Order(ctx, "r1", got.Result[0].OrderID); err != nil || o.User != got.Result[0].User {
		t.Fatalf("prize order = %+v, %v", o, err)
	}
}

// TestGiveawayLocalKeepsLastN: past maxKeptGiveaways ended giveaways in a
// room, the oldest are dropped from memory and from the database.
func TestGiveawayLocalKeepsLastN(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	now := t0
	clock := func() time.Time { return now }
	s, err := OpenLocal(dir, testConfig())
	if err != nil {
		t.Fatal(err)
	}
	gs, err := NewLocalGiveaways(s, GiveawayOptions{Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for range maxKeptGiveaways + 3 {
		g, err := gs.StartGiveaway(ctx, "r1", GiveawayParams{Prize: Prize{Text: "a hug"}, EntryS: 1, Host: "host"})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, g.ID)
		now = now.Add(2 * time.Second)
		if ended, err := gs.EndDue(ctx); err != nil || len(ended) != 1 {
			t.Fatalf("EndDue = %v, %v", ended, err)
		}
		if err := gs.MarkAnnounced(ctx, "r1", g.ID); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	s, err = OpenLocal(dir, testConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	gs, err = NewLocalGiveaways(s, GiveawayOptions{Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	// The last start pruned down to maxKeptGiveaways including itself (then running).
	kept := 0
	for i, id := range ids {
		_, err := gs.Giveaway(ctx, "r1", id)
		if err == nil {
			kept++
		}
		if i == len(ids)-1 && err != nil {
			t.Fatalf("newest giveaway lost: %v", err)
		}
		if i == 0 && err == nil {
			t.Fatal("oldest giveaway kept")
		}
	}
	if kept != maxKeptGiveaways {
		t.Fatalf("kept %d giveaways after restart, want %d", kept, maxKeptGiveaways)
	}
}
