package cart

import (
	"context"
	"sync"
	"testing"
	"time"
)

// TestGiveawayLostAnnouncement: a giveaway's end is stored by a node that
// never publishes it (EndDue called directly, as if the node died right
// after); a later tick of a service on the same store publishes
// `giveaway.ended` for it, with its prize order, exactly once; an end that a
// tick published is not published again.
func TestGiveawayLostAnnouncement(t *testing.T) {
	for _, st := range giveawayStores {
		t.Run(st.name, func(t *testing.T) {
			ctx := context.Background()
			clock := &testClock{t: t0}
			cs, gs := st.open(t, GiveawayOptions{Now: clock.Now})
			if _, err := cs.PutProduct(ctx, "r1", Product{SKU: "tee", Title: "Tee", PriceCents: 2500, Currency: "USD", Stock: 5}); err != nil {
				t.Fatal(err)
			}
			svc, err := NewService(cs, testConfig(), ServiceOptions{Log: quietLog, Now: clock.Now, Giveaways: gs})
			if err != nil {
				t.Fatal(err)
			}
			var mu sync.Mutex
			var got []EndedGiveaway
			svc.OnGiveawayEnd(func(e EndedGiveaway) { mu.Lock(); got = append(got, e); mu.Unlock() })
			published := func() []EndedGiveaway { mu.Lock(); defer mu.Unlock(); return append([]EndedGiveaway(nil), got...) }

			lost, err := gs.StartGiveaway(ctx, "r1", GiveawayParams{Prize: Prize{SKU: "tee"}, EntryS: 5, Host: "host"})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := gs.EnterGiveaway(ctx, "r1", lost.ID, Entrant{User: "u1", Name: "U1"}); err != nil {
				t.Fatal(err)
			}
			clock.Add(6 * time.Second)
			if e, err := gs.EndDue(ctx); err != nil || len(e) != 1 { // stored, never published
				t.Fatalf("EndDue = %+v, %v; want 1", e, err)
			}
			svc.tickGiveaways(ctx) // within the dead node's lease: nothing yet
			if n := len(published()); n != 0 {
				t.Fatalf("%d ends published within the lease, want 0", n)
			}
			clock.Add(announceLease + time.Second)
			svc.tickGiveaways(ctx)
			p := published()
			if len(p) != 1 || p[0].Giveaway.ID != lost.ID || !p[0].Replay || p[0].Giveaway.Seed == "" ||
				len(p[0].Giveaway.Result) != 1 || len(p[0].Orders) != 1 || p[0].Orders[0].ID != p[0].Giveaway.Result[0].OrderID {
				t.Fatalf("published after the lease: %+v; want the lost end of %s with its order", p, lost.ID)
			}
			// Announced: later ticks, past any lease, stay quiet.
			clock.Add(2 * announceLease)
			svc.tickGiveaways(ctx)
			if n := len(published()); n != 1 {
				t.Fatalf("%d publications after the end was announced, want 1", n)
			}

			// The usual path: the tick that ends it publishes it, once.
			g, err := gs.StartGiveaway(ctx, "r1", GiveawayParams{Prize: Prize{Text: "a hug"}, EntryS: 5, Host: "host"})
			if err != nil {
				t.Fatal(err)
			}
			clock.Add(6 * time.Second)
			svc.tickGiveaways(ctx)
			clock.Add(2 * announceLease)
			svc.tickGiveaways(ctx)
			p = published()
			if len(p) != 2 || p[1].Giveaway.ID != g.ID || p[1].Replay {
				t.Fatalf("publications %+v; want %s's end once, not as a replay", p, g.ID)
			}
		})
	}
}
