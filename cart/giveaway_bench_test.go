package cart

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// BenchmarkGiveawayDraw is the draw alone (hash the list, pick 20 winners).
func BenchmarkGiveawayDraw(b *testing.B) {
	for _, n := range []int{5_000, 100_000} {
		list := make([]string, n)
		for i := range list {
			list[i] = newEntryID()
		}
		seed, _ := newSeed()
		b.Run(fmt.Sprintf("entries=%d", n), func(b *testing.B) {
			for b.Loop() {
				if _, err := drawWinners(seed, "g_1", list, MaxGiveawayWinners); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkGiveawayEnd is a whole end on each store: close, read the list,
// draw, store the prize orders and the result (one giveaway per op, with
// its entries made beforehand, outside the timer).
func BenchmarkGiveawayEnd(b *testing.B) {
	for _, st := range giveawayStores {
		for _, n := range []int{5_000, 100_000} {
			b.Run(fmt.Sprintf("%s/entries=%d", st.name, n), func(b *testing.B) {
				clock := &testClock{t: t0}
				cs, gs := st.open(b, GiveawayOptions{Now: clock.Now})
				ctx := context.Background()
				if _, err := cs.PutProduct(ctx, "r1", Product{SKU: "tee", Title: "T", PriceCents: 100, Currency: "USD", Stock: 1_000_000}); err != nil {
					b.Fatal(err)
				}
				for b.Loop() {
					b.StopTimer()
					g, err := gs.StartGiveaway(ctx, "r1", GiveawayParams{Prize: Prize{SKU: "tee"}, EntryS: 1, Winners: 3, Host: "h"})
					if err != nil {
						b.Fatal(err)
					}
					for i := range n {
						if _, err := gs.EnterGiveaway(ctx, "r1", g.ID, Entrant{User: fmt.Sprintf("u%d", i), Name: "x"}); err != nil {
							b.Fatal(err)
						}
					}
					clock.Add(time.Second)
					b.StartTimer()
					if e, err := gs.EndDue(ctx); err != nil || len(e) != 1 {
						b.Fatalf("EndDue: %d, %v", len(e), err)
					}
				}
			})
		}
	}
}
