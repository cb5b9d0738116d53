package cart

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"
)

// testClock is a settable clock shared by a cart store and its giveaways.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *testClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// giveawayStores open a cart Store and its GiveawayStore on each backend.
var giveawayStores = []struct {
	name string
	open func(t testing.TB, opt GiveawayOptions) (Store, GiveawayStore)
}{
	{"local", func(t testing.TB, opt GiveawayOptions) (Store, GiveawayStore) {
		s := newTestLocalStore(t, testConfig())
		gs, err := NewLocalGiveaways(s, opt)
		if err != nil {
			t.Fatal(err)
		}
		return s, gs
	}},
	{"redis", func(t testing.TB, opt GiveawayOptions) (Store, GiveawayStore) {
		s := newTestRedisStore(t, testConfig())
		return s, NewRedisGiveaways(s, opt)
	}},
}

type gwFixture struct {
	t     *testing.T
	ctx   context.Context
	cs    Store
	gs    GiveawayStore
	clock *testClock
	room  string
}

func newGwFixture(t *testing.T, open func(testing.TB, GiveawayOptions) (Store, GiveawayStore), maxEntrants int) *gwFixture {
	clock := &testClock{t: t0}
	cs, gs := open(t, GiveawayOptions{MaxEntrants: maxEntrants, Now: clock.Now})
	f := &gwFixture{t: t, ctx: context.Background(), cs: cs, gs: gs, clock: clock, room: "r1"}
	if _, err := cs.PutProduct(f.ctx, f.room, Product{SKU: "tee", Title: "T-shirt", PriceCents: 2500, Currency: "USD", Stock: 10}); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *gwFixture) stock() int {
	f.t.Helper()
	p, err := f.cs.Product(f.ctx, f.room, "tee")
	if err != nil {
		f.t.Fatal(err)
	}
	return p.Stock
}

func (f *gwFixture) start(p GiveawayParams) Giveaway {
	f.t.Helper()
	if p.Host == "" {
		p.Host = "host"
	}
	g, err := f.gs.StartGiveaway(f.ctx, f.room, p)
	if err != nil {
		f.t.Fatalf("StartGiveaway: %v", err)
	}
	return g
}

func (f *gwFixture) enter(id, user string) EnterResult {
	f.t.Helper()
	r, err := f.gs.EnterGiveaway(f.ctx, f.room, id, Entrant{User: user, Name: "Name " + user})
	if err != nil {
		f.t.Fatalf("EnterGiveaway(%s): %v", user, err)
	}
	return r
}

func (f *gwFixture) endDue() []EndedGiveaway {
	f.t.Helper()
	e, err := f.gs.EndDue(f.ctx)
	if err != nil {
		f.t.Fatalf("EndDue: %v", err)
	}
	return e
}

func TestGiveawayConformance(t *testing.T) {
	for _, st := range giveawayStores {
		t.Run(st.name, func(t *testing.T) {
			t.Run("refusals change nothing", func(t *testing.T) {
				f := newGwFixture(t, st.open, 0)
				for _, c := range []struct {
					name string
					p    GiveawayParams
					code Code
				}{
					{"no prize", GiveawayParams{EntryS: 10}, CodeBadRequest},
					{"sku and text", GiveawayParams{Prize: Prize{SKU: "tee", Text: "x"}, EntryS: 10}, CodeBadRequest},
					{"entry 0", GiveawayParams{Prize: Prize{Text: "x"}}, CodeBadRequest},
					{"entry too long", GiveawayParams{Prize: Prize{Text: "x"}, EntryS: MaxGiveawayEntryS + 1}, CodeBadRequest},
					{"too many winners", GiveawayParams{Prize: Prize{Text: "x"}, EntryS: 10, Winners: MaxGiveawayWinners + 1}, CodeBadRequest},
					{"negative winners", GiveawayParams{Prize: Prize{Text: "x"}, EntryS: 10, Winners: -1}, CodeBadRequest},
					{"bad rule", GiveawayParams{Prize: Prize{Text: "x"}, EntryS: 10, Rule: "follows"}, CodeBadRequest},
					{"unknown sku", GiveawayParams{Prize: Prize{SKU: "nope"}, EntryS: 10}, CodeNotFound},
					{"more winners than stock", GiveawayParams{Prize: Prize{SKU: "tee"}, EntryS: 10, Winners: 11}, CodeSoldOut},
					{"no host", GiveawayParams{Prize: Prize{Text: "x"}, EntryS: 10, Host: ""}, CodeBadRequest},
				} {
					p := c.p
					if c.name != "no host" {
						p.Host = "host"
					}
					_, err := f.gs.StartGiveaway(f.ctx, f.room, p)
					wantCode(t, c.name, err, c.code)
				}
				if _, ok, err := f.gs.RunningGiveaway(f.ctx, f.room); err != nil || ok {
					t.Fatalf("after refused starts: running %v, %v; want none", ok, err)
				}
				if got := f.stock(); got != 10 {
					t.Fatalf("stock after refused starts = %d, want 10", got)
				}
				_, err := f.gs.EnterGiveaway(f.ctx, f.room, "g_00", Entrant{User: "u1"})
				wantCode(t, "enter unknown", err, CodeNotFound)
			})

			t.Run("enter, close once, draw, prize orders", func(t *testing.T) {
				f := newGwFixture(t, st.open, 0)
				g := f.start(GiveawayParams{Prize: Prize{SKU: "tee"}, EntryS: 30, Winners: 3})
				if sum := g.Commitment; len(sum) != 64 || g.Seed != "" || g.State != GiveawayOpen {
					t.Fatalf("started %+v: want a 64-hex commitment, no seed, open", g)
				}
				if got := f.stock(); got != 7 {
					t.Fatalf("stock with 3 prize units held = %d, want 7", got)
				}
				_, err := f.gs.StartGiveaway(f.ctx, f.room, GiveawayParams{Prize: Prize{Text: "x"}, EntryS: 10, Host: "host"})
				wantCode(t, "second running giveaway", err, CodeBadRequest)
				entries := map[string]string{}
				for i := range 20 {
					u := fmt.Sprintf("u%d", i)
					r := f.enter(g.ID, u)
					if !entryPattern.MatchString(r.Entry) || r.Replayed || r.Entrants != i+1 {
						t.Fatalf("enter %s = %+v; want a new e_ id and %d entrants", u, r, i+1)
					}
					entries[u] = r.Entry
				}
				if r := f.enter(g.ID, "u3"); !r.Replayed || r.Entry != entries["u3"] || r.Entrants != 20 {
					t.Fatalf("re-enter u3 = %+v; want replay of %s with 20 entrants", r, entries["u3"])
				}
				_, err = f.gs.EnterGiveaway(f.ctx, f.room, g.ID, Entrant{User: "host"})
				wantCode(t, "host enters", err, CodeNotAllowed)
				if list, _ := f.gs.GiveawayEntries(f.ctx, f.room, g.ID); list != nil {
					t.Fatalf("entries while open = %v, want none", list)
				}
				if e := f.endDue(); len(e) != 0 {
					t.Fatalf("EndDue before the end ended %d", len(e))
				}
				f.clock.Add(30 * time.Second)
				_, err = f.gs.EnterGiveaway(f.ctx, f.room, g.ID, Entrant{User: "late"})
				wantCode(t, "enter at the end", err, CodeGiveawayClosed)
				ended := f.endDue()
				if len(ended) != 1 {
					t.Fatalf("EndDue ended %d, want 1", len(ended))
				}
				if again := f.endDue(); len(again) != 0 {
					t.Fatalf("second EndDue ended %d, want 0", len(again))
				}
				e := ended[0]
				got, err := f.gs.Giveaway(f.ctx, f.room, g.ID)
				if err != nil {
					t.Fatal(err)
				}
				list, err := f.gs.GiveawayEntries(f.ctx, f.room, g.ID)
				if err != nil {
					t.Fatal(err)
				}
				checkPublished(t, got, list)
				if got.State != GiveawayEnded || got.Entrants != 20 || len(got.Result) != 3 {
					t.Fatalf("ended giveaway %+v: want ended, 20 entrants, 3 winners", got)
				}
				if len(list) != 20 {
					t.Fatalf("entry list has %d, want 20", len(list))
				}
				for u, en := range entries {
					if !slices.Contains(list, en) {
						t.Fatalf("entry %s of %s missing from the list", en, u)
					}
				}
				if r := f.enter(g.ID, "u3"); r.Entry != entries["u3"] {
					t.Fatalf("re-enter after the end = %+v; want the same entry", r)
				}
				// Prize orders: one 0-price order per winner, stored and queued.
				if len(e.Orders) != 3 {
					t.Fatalf("prize orders %d, want 3", len(e.Orders))
				}
				for i, o := range e.Orders {
					w := e.Giveaway.Result[i]
					if o.User != w.User || entries[o.User] != w.Entry || o.TotalCents != 0 || o.Items[0].SKU != "tee" || w.OrderID != o.ID {
						t.Fatalf("order %d %+v does not match winner %+v", i, o, w)
					}
					stored, err := f.cs.Order(f.ctx, f.room, o.ID)
					if err != nil || stored.ID != o.ID {
						t.Fatalf("Order(%s) = %+v, %v", o.ID, stored, err)
					}
				}
				ds, err := f.cs.ClaimDeliveries(f.ctx, f.clock.Now().Add(time.Second), time.Minute, 10)
				if err != nil || len(ds) != 3 {
					t.Fatalf("deliveries %d, %v; want the 3 prize orders", len(ds), err)
				}
				if got := f.stock(); got != 7 {
					t.Fatalf("stock after giving 3 = %d, want 7", got)
				}
				if _, ok, _ := f.gs.RunningGiveaway(f.ctx, f.room); ok {
					t.Fatal("a giveaway still running after its end")
				}
				f.start(GiveawayParams{Prize: Prize{Text: "next"}, EntryS: 10}) // the room is free again
			})

			t.Run("no entrants gives the units back", func(t *testing.T) {
				f := newGwFixture(t, st.open, 0)
				g := f.start(GiveawayParams{Prize: Prize{SKU: "tee"}, EntryS: 5, Winners: 4})
				f.enter(g.ID, "only")
				f.clock.Add(5 * time.Second)
				e := f.endDue()
				if len(e) != 1 || len(e[0].Orders) != 1 || len(e[0].Giveaway.Result) != 1 {
					t.Fatalf("ended %+v: want one winner and one order", e)
				}
				if got := f.stock(); got != 9 {
					t.Fatalf("stock after 1 of 4 given = %d, want 9", got)
				}
				g = f.start(GiveawayParams{Prize: Prize{SKU: "tee"}, EntryS: 5, Winners: 2})
				f.clock.Add(5 * time.Second)
				if e := f.endDue(); len(e) != 1 || len(e[0].Orders) != 0 || len(e[0].Giveaway.Result) != 0 {
					t.Fatalf("ended %+v: want no winner", e)
				}
				if got := f.stock(); got != 9 {
					t.Fatalf("stock after an empty giveaway = %d, want 9", got)
				}
			})

			t.Run("entrant cap", func(t *testing.T) {
				f := newGwFixture(t, st.open, 3)
				g := f.start(GiveawayParams{Prize: Prize{Text: "a hug"}, EntryS: 5})
				for _, u := range []string{"a", "b", "c"} {
					f.enter(g.ID, u)
				}
				_, err := f.gs.EnterGiveaway(f.ctx, f.room, g.ID, Entrant{User: "d"})
				wantCode(t, "fourth entrant", err, CodeLimitReached)
				if r := f.enter(g.ID, "b"); !r.Replayed || r.Entrants != 3 {
					t.Fatalf("re-enter at the cap = %+v, want a replay", r)
				}
			})

			t.Run("rules", func(t *testing.T) {
				f := newGwFixture(t, st.open, 0)
				g := f.start(GiveawayParams{Prize: Prize{Text: "x"}, EntryS: 60, Rule: RuleChatted})
				_, err := f.gs.EnterGiveaway(f.ctx, f.room, g.ID, Entrant{User: "quiet"})
				wantCode(t, "enter without chatting", err, CodeNotAllowed)
				if err := f.gs.NoteChat(f.ctx, f.room, "quiet"); err != nil {
					t.Fatal(err)
				}
				f.enter(g.ID, "quiet")
				f.clock.Add(time.Minute)
				f.endDue()

				g = f.start(GiveawayParams{Prize: Prize{Text: "x"}, EntryS: 60, Rule: RuleBought})
				_, err = f.gs.EnterGiveaway(f.ctx, f.room, g.ID, Entrant{User: "buyer"})
				wantCode(t, "enter without buying", err, CodeNotAllowed)
				now := f.clock.Now()
				if _, err := f.cs.Reserve(f.ctx, f.room, ReserveParams{User: "buyer", SKU: "tee", Qty: 1, Key: "k1"}, now); err != nil {
					t.Fatal(err)
				}
				if _, err := f.cs.Checkout(f.ctx, f.room, "buyer", "c1", now); err != nil {
					t.Fatal(err)
				}
				f.enter(g.ID, "buyer")
			})
		})
	}
}

// checkPublished checks what a viewer checks: the seed opens the
// commitment, the list hashes to the published hash, and the winners
// recompute (with the independent draw of giveaway_verify_test.go).
func checkPublished(t *testing.T, g Giveaway, list []string) {
	t.Helper()
	seed, err := hex.DecodeString(g.Seed)
	if err != nil {
		t.Fatalf("seed %q: %v", g.Seed, err)
	}
	if sum := sha256.Sum256(seed); hex.EncodeToString(sum[:]) != g.Commitment {
		t.Fatalf("SHA-256(seed) = %x, commitment %s", sum, g.Commitment)
	}
	if h := verifyListHash(list); h != g.EntrantsHash {
		t.Fatalf("entry list hashes to %s, published %s", h, g.EntrantsHash)
	}
	want := verifyDraw(t, g.Seed, g.ID, list, g.Winners)
	var got []string
	for _, w := range g.Result {
		got = append(got, w.Entry)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("published winners %v, recomputed %v", got, want)
	}
}
