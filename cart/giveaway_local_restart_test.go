package cart

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// TestGiveawayLocalRestart: a running giveaway with a product prize, its
// seed and its entries survive closing and reopening the database; the
// prize units stay held; after the restart it ends once, and the ended
// record (seed, list, winners) survives another restart and recomputes.
func TestGiveawayLocalRestart(t *testing.T) {
	ctx := context.Background()
	clk := &restartClock{now: t0}
	open := reopener(t, clk)
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
	clk.advance(61 * time.Second)
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
	clk.advance(time.Hour)
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

// TestGiveawayLocalChattersSurviveRestart: who has chatted in a room (rule
// "chatted") is kept across a restart for a day: after reopening, a
// chatter may enter a "chatted" giveaway and a silent viewer may not; a
// day later the old post no longer counts and is gone from the database.
func TestGiveawayLocalChattersSurviveRestart(t *testing.T) {
	ctx := context.Background()
	clk := &restartClock{now: t0}
	open := reopener(t, clk)
	s, gs := open()
	for _, u := range []string{"talker", "other-room"} {
		room := map[string]string{"talker": "r1", "other-room": "r2"}[u]
		if err := gs.NoteChat(ctx, room, u); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s, gs = open()
	g, err := gs.StartGiveaway(ctx, "r1", GiveawayParams{Prize: Prize{Text: "a tote"}, EntryS: 60, Rule: RuleChatted, Host: "host"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := gs.EnterGiveaway(ctx, "r1", g.ID, Entrant{User: "talker"}); err != nil {
		t.Errorf("a chatter after the restart: %v, want entered", err)
	}
	for _, u := range []string{"silent", "other-room"} {
		if _, err := gs.EnterGiveaway(ctx, "r1", g.ID, Entrant{User: u}); ErrorCode(err) != CodeNotAllowed {
			t.Errorf("%s: %v, want not_allowed", u, err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	clk.advance(chatterTTL + time.Minute)
	s, gs = open()
	defer s.Close()
	if len(gs.chatters) != 0 {
		t.Errorf("a day later the chatters loaded are %v, want none", gs.chatters)
	}
	_ = s.db.View(func(tx *bolt.Tx) error {
		for _, room := range []string{"r1", "r2"} {
			if b := roomBucketRO(tx, room, bChatters); b != nil && b.Stats().KeyN != 0 {
				t.Errorf("room %s: %d chatters still stored a day later", room, b.Stats().KeyN)
			}
		}
		return nil
	})
}

// restartClock is the giveaways' clock across reopenings.
type restartClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *restartClock) get() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }

func (c *restartClock) advance(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }

// reopener returns what opens the local store of one directory with its
// giveaways on clk, again after each Close.
func reopener(t *testing.T, clk *restartClock) func() (*LocalStore, *LocalGiveaways) {
	dir := t.TempDir()
	return func() (*LocalStore, *LocalGiveaways) {
		t.Helper()
		s, err := OpenLocal(dir, testConfig())
		if err != nil {
			t.Fatal(err)
		}
		gs, err := NewLocalGiveaways(s, GiveawayOptions{Now: clk.get})
		if err != nil {
			t.Fatal(err)
		}
		return s, gs
	}
}
