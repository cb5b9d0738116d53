package cart

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestAuctionConformance holds the LocalStore (room lock, node clock) and
// the RedisStore (Lua, Redis TIME, on a real redis-server) to the same
// answers. Auctions run on the wall clock (the Redis store has no other), so
// the cases that wait for an end run in parallel.
func TestAuctionConformance(t *testing.T) {
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			s := st.open(t, testConfig())
			runAuctionConformance(t, s)
		})
	}
}

type aucFixture struct {
	t    *testing.T
	s    Store
	as   AuctionStore
	ctx  context.Context
	room string
	n    atomic.Int64
}

var aucRooms atomic.Int64

func newAucFixture(t *testing.T, s Store, stock int) *aucFixture {
	f := &aucFixture{t: t, s: s, as: s.(AuctionStore), ctx: context.Background(), room: fmt.Sprintf("auc%d", aucRooms.Add(1))}
	if _, err := s.PutProduct(f.ctx, f.room, Product{SKU: "lamp", Title: "Lamp", PriceCents: 9000, Currency: "EUR", Stock: stock}); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *aucFixture) start(p AuctionParams) Auction {
	f.t.Helper()
	if p.Host == "" {
		p.Host = "host"
	}
	if p.SKU == "" {
		p.SKU = "lamp"
	}
	a, err := f.as.StartAuction(f.ctx, f.room, p)
	if err != nil {
		f.t.Fatalf("StartAuction: %v", err)
	}
	return a
}

func (f *aucFixture) stock() int {
	f.t.Helper()
	p, err := f.s.Product(f.ctx, f.room, "lamp")
	if err != nil {
		f.t.Fatal(err)
	}
	return p.Stock
}

func (f *aucFixture) try(id, user string, cents int64, max bool) (BidResult, error) {
	return f.as.Bid(f.ctx, f.room, BidParams{AuctionID: id, User: user, Name: "N " + user, Cents: cents, Key: fmt.Sprintf("k%d", f.n.Add(1)), Max: max})
}

func (f *aucFixture) bid(id, user string, cents int64, max bool) BidResult {
	f.t.Helper()
	r, err := f.try(id, user, cents, max)
	if err != nil {
		f.t.Fatalf("bid %s %d (max %v): %v", user, cents, max, err)
	}
	return r
}

func (f *aucFixture) lead(a Auction, user string, cents int64) {
	f.t.Helper()
	got := ""
	if a.Leader != nil {
		got = a.Leader.ID
	}
	if got != user || a.AmountCents != cents {
		f.t.Fatalf("lead: got %q at %d, want %q at %d", got, a.AmountCents, user, cents)
	}
}

// closeWhenDue closes the auction as a closer would: until its end has come.
func (f *aucFixture) closeWhenDue(id string) CloseResult {
	f.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		r, err := f.as.CloseAuction(f.ctx, f.room, id)
		if err != nil {
			f.t.Fatalf("CloseAuction: %v", err)
		}
		if r.Auction.State != AuctionRunning {
			return r
		}
		time.Sleep(50 * time.Millisecond)
	}
	f.t.Fatal("the auction never closed")
	return CloseResult{}
}

func runAuctionConformance(t *testing.T, s Store) {
	t.Run("an auction's own increment ladder", func(t *testing.T) {
		t.Parallel()
		f := newAucFixture(t, s, 1)
		for _, bad := range []Ladder{
			{{UpToCents: 0, StepCents: 10}},
			{{UpToCents: 2000, StepCents: 50}, {UpToCents: 2000, StepCents: 100}},
			{{UpToCents: 2000, StepCents: 0}},
			{{UpToCents: MaxPriceCents + 1, StepCents: 100_000_000}},
			{{UpToCents: 1_000_000, StepCents: 1}}, // a million steps
			make(Ladder, MaxLadderBands+1),
		} {
			if _, err := f.as.StartAuction(f.ctx, f.room, AuctionParams{Host: "h", SKU: "lamp", StartCents: 1000, DurationS: 60, Increments: bad}); ErrorCode(err) != CodeBadRequest {
				t.Fatalf("ladder %v: %v, want bad_request", bad, err)
			}
		}
		if got := f.stock(); got != 1 {
			t.Fatalf("stock after refused starts: %d", got)
		}
		l := Ladder{{UpToCents: 2000, StepCents: 50}, {UpToCents: 5000, StepCents: 250}}
		a := f.start(AuctionParams{StartCents: 1000, DurationS: 60, Increments: l})
		if len(a.Increments) != 2 || a.Increments[1] != l[1] {
			t.Fatalf("started with ladder %v: %+v", l, a.Increments)
		}
		if r := f.bid(a.ID, "ann", 1000, false); r.Auction.NextCents != 1050 {
			t.Fatalf("next after 1000: %d, want 1050 (step 50 below 2000)", r.Auction.NextCents)
		}
		if _, err := f.try(a.ID, "bob", 1040, false); ErrorCode(err) != CodeBidTooLow {
			t.Fatalf("bid under the ladder's step: %v", err)
		}
		if r := f.bid(a.ID, "bob", 2000, false); r.Auction.NextCents != 2250 {
			t.Fatalf("next after 2000: %d, want 2250", r.Auction.NextCents)
		}
		// A maximum climbs by the ladder: ann's 3000 answers bob's 2000 at
		// 2250, then cat's 2500 is answered at 2750.
		if r := f.bid(a.ID, "ann", 3000, true); r.Auction.AmountCents != 2250 || r.Auction.Leader.ID != "ann" {
			t.Fatalf("ann's maximum: %+v", r.Auction)
		}
		if r := f.bid(a.ID, "cat", 2500, false); r.Auction.AmountCents != 2750 || r.Auction.Leader.ID != "ann" {
			t.Fatalf("cat against ann's maximum: %+v", r.Auction)
		}
		// Above the last band, the default ladder.
		if r := f.bid(a.ID, "bob", 5000, false); r.Auction.NextCents != 5000+Increment(5000) {
			t.Fatalf("next after 5000: %d, want %d", r.Auction.NextCents, 5000+Increment(5000))
		}
		got, err := f.as.Auction(f.ctx, f.room, a.ID)
		if err != nil || len(got.Increments) != 2 || got.NextCents != 5000+Increment(5000) {
			t.Fatalf("read back: %v %+v", err, got)
		}
	})
	t.Run("views carry the auction's clock", func(t *testing.T) {
		t.Parallel()
		f := newAucFixture(t, s, 1)
		a := f.start(AuctionParams{StartCents: 1000, DurationS: 60})
		if a.Now.Before(a.StartedAt) || !a.Now.Before(a.EndsAt) {
			t.Fatalf("start: now %v, want within [%v, %v)", a.Now, a.StartedAt, a.EndsAt)
		}
		r := f.bid(a.ID, "ann", 1000, false)
		if r.Auction.Now.Before(a.Now) || !r.Auction.Now.Before(a.EndsAt) {
			t.Fatalf("bid: now %v, want within [%v, %v)", r.Auction.Now, a.Now, a.EndsAt)
		}
		list, err := f.as.RunningAuctions(f.ctx, f.room)
		if err != nil || len(list) != 1 || list[0].Now.Before(r.Auction.Now) || !list[0].Now.Before(a.EndsAt) {
			t.Fatalf("running: %v %+v", err, list)
		}
	})
	t.Run("start holds a unit, one at a time, bad starts change nothing", func(t *testing.T) {
		t.Parallel()
		f := newAucFixture(t, s, 3)
		a := f.start(AuctionParams{StartCents: 1000, DurationS: 60, ExtendS: 10})
		if a.State != AuctionRunning || a.NextCents != 1000 || a.Leader != nil || !a.EndsAt.After(a.StartedAt) {
			t.Fatalf("started: %+v", a)
		}
		if got := f.stock(); got != 2 {
			t.Fatalf("stock after start: got %d, want 2", got)
		}
		for _, c := range []struct {
			p    AuctionParams
			code Code
		}{
			{AuctionParams{Host: "host", SKU: "lamp", StartCents: 1000, DurationS: 60}, CodeLimitReached},
			{AuctionParams{Host: "host", SKU: "lamp", StartCents: -1, DurationS: 60}, CodeBadRequest},
			{AuctionParams{Host: "host", SKU: "lamp", StartCents: 1, DurationS: 0}, CodeBadRequest},
			{AuctionParams{Host: "host", SKU: "lamp", StartCents: 1, DurationS: 10, ExtendS: -1}, CodeBadRequest},
			{AuctionParams{Host: "host", SKU: "lamp", StartCents: 1, DurationS: 10, ReserveCents: MaxPriceCents + 1}, CodeBadRequest},
			{AuctionParams{Host: "host", SKU: "nope", StartCents: 1, DurationS: 10}, CodeNotFound},
			{AuctionParams{SKU: "lamp", StartCents: 1, DurationS: 10}, CodeBadRequest},
		} {
			_, err := f.as.StartAuction(f.ctx, f.room, c.p)
			wantCode(t, fmt.Sprintf("start %+v", c.p), err, c.code)
		}
		if got := f.stock(); got != 2 {
			t.Fatalf("stock after refused starts: got %d, want 2", got)
		}
		list, err := f.as.RunningAuctions(f.ctx, f.room)
		if err != nil || len(list) != 1 || list[0].ID != a.ID {
			t.Fatalf("RunningAuctions: %v %+v", err, list)
		}
		if _, err := f.as.StopAuction(f.ctx, f.room, a.ID); err != nil {
			t.Fatal(err)
		}
		if got := f.stock(); got != 3 {
			t.Fatalf("stock after stop: got %d, want 3", got)
		}
		_, err = f.as.StopAuction(f.ctx, f.room, a.ID)
		wantCode(t, "stop twice", err, CodeAuctionEnded)
		_, err = f.try(a.ID, "ann", 5000, false)
		wantCode(t, "bid on a stopped auction", err, CodeAuctionEnded)
		g := newAucFixture(t, s, 0)
		_, err = g.as.StartAuction(g.ctx, g.room, AuctionParams{Host: "h", SKU: "lamp", StartCents: 1, DurationS: 10})
		wantCode(t, "start without stock", err, CodeSoldOut)
	})

	t.Run("bids: increments, bad bids, idempotency", func(t *testing.T) {
		t.Parallel()
		f := newAucFixture(t, s, 1)
		a := f.start(AuctionParams{StartCents: 1000, DurationS: 60, ExtendS: 5})
		_, err := f.try(a.ID, "ann", 999, false)
		wantCode(t, "below start", err, CodeBidTooLow)
		r := f.bid(a.ID, "ann", 1000, false)
		f.lead(r.Auction, "ann", 1000)
		if !r.Changed || r.Extended || r.Auction.NextCents != 1100 || r.Auction.Leader.Name != "N ann" || r.Auction.Version != 1 {
			t.Fatalf("first bid: %+v", r)
		}
		bad := []struct {
			user  string
			cents int64
			id    string
			code  Code
		}{
			{"ann", 2000, a.ID, CodeAlreadyLeader},
			{"bob", 1099, a.ID, CodeBidTooLow},
			{"host", 5000, a.ID, CodeNotAllowed},
			{"bob", 0, a.ID, CodeBadRequest},
			{"bob", -5, a.ID, CodeBadRequest},
			{"bob", MaxPriceCents + 1, a.ID, CodeBadRequest},
			{"bob", 5000, "a_00000000", CodeNotFound},
			{"bob", 5000, "nonsense", CodeBadRequest},
		}
		for _, b := range bad {
			_, err := f.try(b.id, b.user, b.cents, false)
			wantCode(t, fmt.Sprintf("bid %+v", b), err, b.code)
		}
		key := BidParams{AuctionID: a.ID, User: "bob", Name: "Bob", Cents: 2500, Key: "once"}
		r1, err := f.as.Bid(f.ctx, f.room, key)
		if err != nil {
			t.Fatal(err)
		}
		r2, err := f.as.Bid(f.ctx, f.room, key)
		if err != nil || !r2.Replayed || r2.Auction.Version != r1.Auction.Version || r2.Changed {
			t.Fatalf("replay: %v %+v", err, r2)
		}
		f.lead(r2.Auction, "bob", 2500)
		if r1.Auction.NextCents != 2700 {
			t.Fatalf("next after 2500: got %d, want 2700 (ladder $2 from $20)", r1.Auction.NextCents)
		}
		got, err := f.as.Auction(f.ctx, f.room, a.ID)
		if err != nil || got.Version != 2 {
			t.Fatalf("Auction: %v %+v", err, got)
		}
	})

	t.Run("proxy maximums answer, never above the maximum", func(t *testing.T) {
		t.Parallel()
		f := newAucFixture(t, s, 1)
		a := f.start(AuctionParams{StartCents: 1000, DurationS: 60})
		r := f.bid(a.ID, "ann", 5000, true)
		f.lead(r.Auction, "ann", 1000)
		r = f.bid(a.ID, "bob", 1100, false)
		f.lead(r.Auction, "ann", 1200)
		if r.Prev != "ann" || !r.Changed {
			t.Fatalf("proxy answer: %+v", r)
		}
		r = f.bid(a.ID, "bob", 4000, false)
		f.lead(r.Auction, "ann", 4200)
		r = f.bid(a.ID, "bob", 4900, false)
		f.lead(r.Auction, "bob", 4900) // ann's 5000 < 4900 + 200
		_, err := f.try(a.ID, "ann", 4900, true)
		wantCode(t, "maximum below next", err, CodeBidTooLow)
		// Two maximums take turns at the next minimum until one runs out.
		g := newAucFixture(t, s, 1)
		b := g.start(AuctionParams{StartCents: 1000, DurationS: 60})
		g.bid(b.ID, "ann", 3000, true)
		r = g.bid(b.ID, "bob", 5000, true)
		g.lead(r.Auction, "bob", 3000)
		r = g.bid(b.ID, "bob", 9000, true) // the leader raises: price stays
		g.lead(r.Auction, "bob", 3000)
		if r.Changed {
			t.Fatalf("raising one's own maximum changed the lead: %+v", r)
		}
		r = g.bid(b.ID, "cat", 8000, false)
		g.lead(r.Auction, "bob", 8200)
	})

	t.Run("removing a bidder falls back to the best remaining bid", func(t *testing.T) {
		t.Parallel()
		f := newAucFixture(t, s, 1)
		a := f.start(AuctionParams{StartCents: 1000, DurationS: 60})
		f.bid(a.ID, "ann", 1000, false)
		f.bid(a.ID, "bob", 1500, false)
		f.bid(a.ID, "cat", 3000, false)
		r, err := f.as.RemoveBidder(f.ctx, f.room, a.ID, "cat")
		if err != nil {
			t.Fatal(err)
		}
		f.lead(r.Auction, "bob", 1500)
		if !r.Changed || r.Prev != "cat" {
			t.Fatalf("remove: %+v", r)
		}
		_, err = f.try(a.ID, "cat", 9000, false)
		wantCode(t, "removed bidder bids", err, CodeNotAllowed)
		r, _ = f.as.RemoveBidder(f.ctx, f.room, a.ID, "bob")
		f.lead(r.Auction, "ann", 1000)
		r, _ = f.as.RemoveBidder(f.ctx, f.room, a.ID, "ann")
		if r.Auction.Leader != nil || r.Auction.AmountCents != 0 || r.Auction.NextCents != 1000 {
			t.Fatalf("all removed: %+v", r.Auction)
		}
		// A maximum of a remaining bidder answers after the fallback.
		g := newAucFixture(t, s, 1)
		b := g.start(AuctionParams{StartCents: 1000, DurationS: 60})
		g.bid(b.ID, "ann", 2500, true)
		g.bid(b.ID, "bob", 2000, false) // ann answers 2200
		r = g.bid(b.ID, "cat", 6000, false)
		g.lead(r.Auction, "cat", 6000)
		r, _ = g.as.RemoveBidder(g.ctx, g.room, b.ID, "cat")
		g.lead(r.Auction, "ann", 2200)
	})

	t.Run("soft close extends, sudden death does not", func(t *testing.T) {
		t.Parallel()
		f := newAucFixture(t, s, 2)
		a := f.start(AuctionParams{StartCents: 100, DurationS: 2, ExtendS: 1})
		r := f.bid(a.ID, "ann", 100, false)
		if r.Extended || !r.Auction.EndsAt.Equal(a.EndsAt) {
			t.Fatalf("early bid moved the end: %+v", r.Auction)
		}
		time.Sleep(time.Until(a.EndsAt.Add(-600 * time.Millisecond)))
		r = f.bid(a.ID, "bob", 200, false)
		if !r.Extended || !r.Auction.EndsAt.After(a.EndsAt) {
			t.Fatalf("late bid did not extend: %+v (start ends %v)", r.Auction, a.EndsAt)
		}
		c := f.closeWhenDue(a.ID)
		if !c.Closed || c.Order == nil || c.Order.User != "bob" || c.Order.TotalCents != 200 || c.Auction.Winner == nil || c.Auction.Winner.ID != "bob" {
			t.Fatalf("close: %+v", c)
		}
		if c.Auction.EndsAt.Before(r.Auction.EndsAt) || !c.Order.CreatedAt.Equal(r.Auction.EndsAt) {
			t.Fatalf("closed before the extended end: %+v", c.Auction)
		}
		g := newAucFixture(t, s, 1)
		b := g.start(AuctionParams{StartCents: 100, DurationS: 1, ExtendS: 0})
		time.Sleep(time.Until(b.EndsAt.Add(-300 * time.Millisecond)))
		r = g.bid(b.ID, "ann", 100, false)
		if r.Extended || !r.Auction.EndsAt.Equal(b.EndsAt) {
			t.Fatalf("sudden death moved the end: %+v", r.Auction)
		}
		time.Sleep(time.Until(b.EndsAt.Add(50 * time.Millisecond)))
		_, err := g.try(b.ID, "bob", 5000, false)
		wantCode(t, "bid after the end", err, CodeAuctionEnded)
		_, err = g.as.RemoveBidder(g.ctx, g.room, b.ID, "ann")
		wantCode(t, "remove after the end", err, CodeAuctionEnded)
		_, err = g.as.StopAuction(g.ctx, g.room, b.ID)
		wantCode(t, "stop after the end", err, CodeAuctionEnded)
	})

	t.Run("close: exactly once, the order through the outbox, stock true", func(t *testing.T) {
		t.Parallel()
		f := newAucFixture(t, s, 5)
		a := f.start(AuctionParams{StartCents: 1000, DurationS: 1, ExtendS: 0})
		f.bid(a.ID, "ann", 1000, false)
		f.bid(a.ID, "bob", 2000, true)
		early, err := f.as.CloseAuction(f.ctx, f.room, a.ID)
		if err != nil || early.Closed || early.Auction.State != AuctionRunning {
			t.Fatalf("close before the end: %v %+v", err, early)
		}
		time.Sleep(time.Until(a.EndsAt))
		var closed atomic.Int64
		var order *Order
		var mu sync.Mutex
		var wg sync.WaitGroup
		for range 8 { // every node's closer tries
			wg.Add(1)
			go func() {
				defer wg.Done()
				c := f.closeWhenDue(a.ID)
				if c.Closed {
					closed.Add(1)
					mu.Lock()
					order = c.Order
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if closed.Load() != 1 || order == nil {
			t.Fatalf("closes: got %d, want 1 (order %v)", closed.Load(), order)
		}
		if order.User != "bob" || order.TotalCents != 1100 || order.Items[0].AuctionID != a.ID || order.Currency != "EUR" {
			t.Fatalf("order: %+v", order)
		}
		stored, err := f.s.Order(f.ctx, f.room, order.ID)
		if err != nil || stored.TotalCents != 1100 || stored.User != "bob" {
			t.Fatalf("stored order: %v %+v", err, stored)
		}
		page, err := f.s.Orders(f.ctx, f.room, "", 10)
		if err != nil || len(page.Orders) != 1 {
			t.Fatalf("orders: %v %+v", err, page)
		}
		found := false
		for range 50 {
			ds, err := f.s.ClaimDeliveries(f.ctx, time.Now().Add(time.Hour), time.Minute, 100)
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range ds {
				if d.OrderID == order.ID {
					found = true
				}
			}
			if found {
				break
			}
		}
		if !found {
			t.Fatal("the winner's order is not on the webhook outbox")
		}
		if got := f.stock(); got != 4 {
			t.Fatalf("stock after a sale: got %d, want 4", got)
		}
		again, err := f.as.CloseAuction(f.ctx, f.room, a.ID)
		if err != nil || again.Closed || again.Auction.Winner == nil || again.Auction.OrderID != order.ID {
			t.Fatalf("close again: %v %+v", err, again)
		}
		if err := f.s.DeleteProduct(f.ctx, f.room, "lamp"); err != nil {
			t.Fatalf("delete after the auction settled: %v", err)
		}
	})

	t.Run("no sale: no bids, reserve not met; the unit comes back", func(t *testing.T) {
		t.Parallel()
		f := newAucFixture(t, s, 2)
		a := f.start(AuctionParams{StartCents: 1000, DurationS: 1})
		err := f.s.DeleteProduct(f.ctx, f.room, "lamp")
		wantCode(t, "delete a product in an auction", err, CodeBadRequest)
		c := f.closeWhenDue(a.ID)
		if !c.Closed || c.Order != nil || c.Auction.Winner != nil || c.Auction.State != AuctionEnded {
			t.Fatalf("no bids: %+v", c)
		}
		if got := f.stock(); got != 2 {
			t.Fatalf("stock after no sale: got %d, want 2", got)
		}
		b := f.start(AuctionParams{StartCents: 1000, DurationS: 1, ReserveCents: 5000})
		r := f.bid(b.ID, "ann", 4000, false)
		if !r.Auction.HasReserve || r.Auction.ReserveMet {
			t.Fatalf("reserve flags: %+v", r.Auction)
		}
		c = f.closeWhenDue(b.ID)
		if !c.Closed || c.Order != nil || c.Auction.Winner != nil {
			t.Fatalf("reserve not met: %+v", c)
		}
		if got := f.stock(); got != 2 {
			t.Fatalf("stock after reserve not met: got %d, want 2", got)
		}
		page, _ := f.s.Orders(f.ctx, f.room, "", 10)
		if len(page.Orders) != 0 {
			t.Fatalf("orders without a sale: %+v", page.Orders)
		}
	})

	t.Run("concurrent bids: each accepted one beats the one before", func(t *testing.T) {
		t.Parallel()
		f := newAucFixture(t, s, 1)
		a := f.start(AuctionParams{StartCents: 100, DurationS: 60, ExtendS: 10})
		type acc struct {
			v     int64
			cents int64
			user  string
		}
		var mu sync.Mutex
		var accepted []acc
		var wg sync.WaitGroup
		for w := range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				user := fmt.Sprintf("u%d", w)
				for i := range 40 {
					cur, err := f.as.Auction(f.ctx, f.room, a.ID)
					if err != nil {
						t.Error(err)
						return
					}
					r, err := f.try(a.ID, user, cur.NextCents+int64(i%3)*100, i%7 == 0)
					if err != nil {
						if c := ErrorCode(err); c != CodeBidTooLow && c != CodeAlreadyLeader {
							t.Error(err)
						}
						continue
					}
					if r.Changed {
						mu.Lock()
						accepted = append(accepted, acc{r.Auction.Version, r.Auction.AmountCents, r.Auction.Leader.ID})
						mu.Unlock()
					}
				}
			}()
		}
		wg.Wait()
		byV := map[int64]acc{}
		for _, x := range accepted {
			byV[x.v] = x
		}
		final, _ := f.as.Auction(f.ctx, f.room, a.ID)
		if int64(len(byV)) != final.Version || len(accepted) != len(byV) {
			t.Fatalf("versions: %d accepted, %d distinct, final version %d", len(accepted), len(byV), final.Version)
		}
		for v := int64(2); v <= final.Version; v++ {
			if byV[v].cents <= byV[v-1].cents {
				t.Fatalf("version %d at %d does not beat version %d at %d", v, byV[v].cents, v-1, byV[v-1].cents)
			}
		}
		if last := byV[final.Version]; last.cents != final.AmountCents || last.user != final.Leader.ID {
			t.Fatalf("final %+v, last accepted %+v", final, last)
		}
	})
}
