package cart

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
)

// aucModel is the bid rules written the plain way: the whole bid history,
// every proxy step one at a time, the challenger found by scanning all
// maximums. The stores keep less (each bidder's best bid, the two highest
// maximums) and jump; both must answer as this does.
type aucModel struct {
	start   int64
	host    string
	top     int64
	leader  string
	version int64
	history []struct {
		user  string
		cents int64
	}
	maxes   map[string][2]int64 // user -> {cents, seq}
	seq     int64
	nmax    map[string]int
	removed map[string]bool
}

func (m *aucModel) next() int64 {
	if m.leader == "" {
		return m.start
	}
	return m.top + Increment(m.top)
}

func (m *aucModel) place(user string, cents int64) {
	m.top, m.leader = cents, user
	m.history = append(m.history, struct {
		user  string
		cents int64
	}{user, cents})
}

func (m *aucModel) proxies() {
	for {
		best := ""
		for u, x := range m.maxes {
			if u == m.leader || m.removed[u] {
				continue
			}
			if b, ok := m.maxes[best]; best == "" || !ok || x[0] > b[0] || (x[0] == b[0] && x[1] < b[1]) {
				best = u
			}
		}
		n := m.next()
		if best == "" || m.maxes[best][0] < n || n > MaxPriceCents {
			return
		}
		m.place(best, n)
	}
}

// bid returns the error code the rules give ("" when accepted).
func (m *aucModel) bid(user string, cents int64, max bool) Code {
	if user == m.host || m.removed[user] {
		return CodeNotAllowed
	}
	n := m.next()
	switch {
	case !max && user == m.leader:
		return CodeAlreadyLeader
	case !max && cents < n:
		return CodeBidTooLow
	case max && user == m.leader && cents <= m.top:
		return CodeBidTooLow
	case max && user != m.leader && cents < n:
		return CodeBidTooLow
	case max && m.nmax[user] >= maxMaxSets:
		return CodeLimitReached
	}
	top, leader := m.top, m.leader
	if max {
		m.seq++
		m.nmax[user]++
		m.maxes[user] = [2]int64{cents, m.seq}
	} else {
		m.place(user, cents)
	}
	m.proxies()
	if m.top != top || m.leader != leader {
		m.version++
	}
	return ""
}

func (m *aucModel) remove(user string) {
	top, leader := m.top, m.leader
	m.removed[user] = true
	delete(m.maxes, user)
	m.top, m.leader = 0, ""
	for _, h := range m.history {
		if !m.removed[h.user] && h.cents > m.top {
			m.top, m.leader = h.cents, h.user
		}
	}
	m.proxies()
	if m.top != top || m.leader != leader {
		m.version++
	}
}

func TestAuctionBidRulesProperty(t *testing.T) {
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			s := st.open(t, testConfig())
			for seed := uint64(1); seed <= 12; seed++ {
				runAuctionProperty(t, s, seed)
			}
		})
	}
}

func runAuctionProperty(t *testing.T, s Store, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 7))
	ctx := context.Background()
	room := fmt.Sprintf("aprop%d", seed)
	as := s.(AuctionStore)
	if _, err := s.PutProduct(ctx, room, Product{SKU: "vase", Title: "Vase", PriceCents: 100, Currency: "USD", Stock: 1}); err != nil {
		t.Fatal(err)
	}
	start := int64(rng.IntN(3)) * 950
	a, err := as.StartAuction(ctx, room, AuctionParams{Host: "host", SKU: "vase", StartCents: start, DurationS: 600})
	if err != nil {
		t.Fatal(err)
	}
	m := &aucModel{start: start, host: "host", maxes: map[string][2]int64{}, nmax: map[string]int{}, removed: map[string]bool{}}
	users := []string{"host", "u1", "u2", "u3", "u4", "u5", "u6"}
	for i := range 300 {
		user := users[rng.IntN(len(users))]
		var what string
		var gotCode, wantCode Code
		var got Auction
		if rng.IntN(12) == 0 {
			what = "remove " + user
			r, err := as.RemoveBidder(ctx, room, a.ID, user)
			if err != nil {
				t.Fatalf("seed %d step %d %s: %v", seed, i, what, err)
			}
			m.remove(user)
			got = r.Auction
		} else {
			max := rng.IntN(3) == 0
			// amounts around the next minimum, sometimes far above it
			cents := m.next() + int64(rng.IntN(5)-2)*50
			if rng.IntN(10) == 0 {
				cents += int64(rng.IntN(100_000))
			}
			if max && rng.IntN(2) == 0 { // round maximums, so that some tie
				cents = (m.next()/1000 + int64(rng.IntN(3))) * 1000
			}
			if cents < 1 {
				cents = 1
			}
			what = fmt.Sprintf("%s %d max=%v", user, cents, max)
			r, err := as.Bid(ctx, room, BidParams{AuctionID: a.ID, User: user, Name: user, Cents: cents, Key: fmt.Sprintf("k%d", i), Max: max})
			gotCode, wantCode = ErrorCode(err), m.bid(user, cents, max)
			if err != nil && gotCode == "" {
				t.Fatalf("seed %d step %d %s: %v", seed, i, what, err)
			}
			if err == nil {
				got = r.Auction
			} else if got, err = as.Auction(ctx, room, a.ID); err != nil {
				t.Fatal(err)
			}
		}
		if gotCode != wantCode {
			t.Fatalf("seed %d step %d %s: got code %q, want %q", seed, i, what, gotCode, wantCode)
		}
		lead := ""
		if got.Leader != nil {
			lead = got.Leader.ID
		}
		if lead != m.leader || got.AmountCents != m.top || got.Version != m.version || got.NextCents != m.next() {
			t.Fatalf("seed %d step %d %s: got %q at %d v%d next %d, model %q at %d v%d next %d",
				seed, i, what, lead, got.AmountCents, got.Version, got.NextCents, m.leader, m.top, m.version, m.next())
		}
	}
}
