package cart

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// The LocalStore's auctions live in memory under the room's lock: the room
// lock orders the bids, the node's clock is the one clock. The held unit is
// counted in pheld (so PutProduct and DeleteProduct treat it as held). Every
// accepted change is written to bbolt before it is answered
// (auction_local_db.go), under wmu and mu, and undone in memory if the write
// fails; the winner's order is written with the close in one bbolt
// transaction with its outbox entry and the auction's ended record. A
// restart resumes running auctions.

type localMax struct {
	cents int64
	seq   int64
}

type localAuction struct {
	a        Auction // State, Leader and Winner are kept current
	reserve  int64
	extendMS int64
	placed   map[string]int64 // bidder -> highest bid placed (explicitly or by proxy)
	maxes    map[string]localMax
	seq      int64
	nmax     map[string]int
	removed  map[string]bool
	keys     map[string]bool // user\0key of accepted calls
	names    map[string]string
}

func (x *localAuction) leader() string {
	if x.a.Leader == nil {
		return ""
	}
	return x.a.Leader.ID
}

func (x *localAuction) setLeader(u string) {
	if u == "" {
		x.a.Leader = nil
		return
	}
	x.a.Leader = &Bidder{ID: u, Name: x.names[u]}
}

// view is the auction as callers see it, with the derived fields.
func (x *localAuction) view() Auction {
	a := x.a
	a.HasReserve = x.reserve > 0
	a.ReserveMet = a.Leader != nil && a.AmountCents >= x.reserve
	a.NextCents = nextMin(a.Increments, a.StartCents, a.AmountCents, a.Leader != nil)
	a.reserveCents = x.reserve
	a.Now = truncMS(time.Now())
	if a.Leader != nil {
		b := *a.Leader
		a.Leader = &b
	}
	if a.Winner != nil {
		b := *a.Winner
		a.Winner = &b
	}
	return a
}

// resolve lets maximums answer: while a bidder other than the leader has a
// maximum at least the next minimum, the highest (set first on a tie) bids
// the next minimum. Maximums do not change meanwhile, so the two highest
// are all it needs.
func (x *localAuction) resolve() {
	type cand struct {
		user string
		m    localMax
	}
	var c [2]*cand
	better := func(a localMax, b *cand) bool {
		return b == nil || a.cents > b.m.cents || (a.cents == b.m.cents && a.seq < b.m.seq)
	}
	for u, m := range x.maxes {
		switch {
		case better(m, c[0]):
			c[1], c[0] = c[0], &cand{u, m}
		case better(m, c[1]):
			c[1] = &cand{u, m}
		}
	}
	for range proxyRounds {
		ch := c[0]
		if ch != nil && ch.user == x.leader() {
			ch = c[1]
		}
		if ch == nil {
			return
		}
		n := nextMin(x.a.Increments, x.a.StartCents, x.a.AmountCents, x.a.Leader != nil)
		if ch.m.cents < n || n > MaxPriceCents {
			return
		}
		x.a.AmountCents = n
		x.setLeader(ch.user)
		x.placed[ch.user] = n
	}
}

func (r *localRoom) auction(id string) (*localAuction, error) {
	x := r.auc[id]
	if x == nil {
		return nil, auctionNotFound(id)
	}
	return x, nil
}

func (s *LocalStore) StartAuction(_ context.Context, room string, p AuctionParams) (Auction, error) {
	if err := validRoom(room); err != nil {
		return Auction{}, err
	}
	if err := p.Validate(); err != nil {
		return Auction{}, err
	}
	r := s.room(room)
	r.wmu.Lock()
	defer r.wmu.Unlock()
	r.mu.Lock()
	defer r.mu.Unlock()
	now := truncMS(time.Now())
	pr := r.products[p.SKU]
	if pr == nil {
		return Auction{}, &Error{Code: CodeNotFound, Field: "sku", Message: fmt.Sprintf("no product %q", p.SKU)}
	}
	running := 0
	for _, x := range r.auc {
		if x.a.State == AuctionRunning {
			running++
		}
	}
	if running >= MaxRunningAuctions {
		return Auction{}, errf(CodeLimitReached, "an auction is already running in this room; stop it or wait for its end")
	}
	if pr.Stock < 1 {
		return Auction{}, &Error{Code: CodeSoldOut, Field: "sku", Message: fmt.Sprintf("%s is out of stock", p.SKU)}
	}
	x := &localAuction{
		a: Auction{ID: newID("a"), SKU: p.SKU, Currency: pr.Currency, StartCents: p.StartCents, ExtendS: p.ExtendS,
			StartedAt: now, EndsAt: now.Add(time.Duration(p.DurationS) * time.Second), State: AuctionRunning, Host: p.Host,
			Increments: p.Increments},
		reserve: p.ReserveCents, extendMS: int64(p.ExtendS) * 1000,
		placed: map[string]int64{}, maxes: map[string]localMax{}, nmax: map[string]int{},
		removed: map[string]bool{}, keys: map[string]bool{}, names: map[string]string{},
	}
	// Ended auctions are kept until the room's next start for reads; only
	// the latest few are needed.
	var drop []string
	for id, old := range r.auc {
		if old.a.State != AuctionRunning && len(r.auc)-len(drop) >= 16 {
			drop = append(drop, id)
		}
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		if err := putAuction(tx, room, x.record()); err != nil {
			return err
		}
		b, err := roomBucket(tx, room, bAuctions)
		if err != nil {
			return err
		}
		for _, id := range drop {
			if err := b.Delete([]byte(id)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return Auction{}, fmt.Errorf("cart: save auction: %w", err)
	}
	for _, id := range drop {
		delete(r.auc, id)
	}
	pr.Stock--
	r.pheld[p.SKU]++
	if r.auc == nil {
		r.auc = map[string]*localAuction{}
	}
	r.auc[x.a.ID] = x
	return x.view(), nil
}

func (s *LocalStore) Bid(_ context.Context, room string, p BidParams) (BidResult, error) {
	if err := p.Validate(); err != nil {
		return BidResult{}, err
	}
	r := s.room(room)
	r.wmu.Lock()
	defer r.wmu.Unlock()
	r.mu.Lock()
	defer r.mu.Unlock()
	x, err := r.auction(p.AuctionID)
	if err != nil {
		return BidResult{}, err
	}
	now := truncMS(time.Now())
	uk := userKey(p.User, p.Key)
	if x.keys[uk] {
		return BidResult{Auction: x.view(), Replayed: true, Prev: x.leader()}, nil
	}
	if err := x.open(now); err != nil {
		return BidResult{}, err
	}
	if p.User == x.a.Host {
		return BidResult{}, errf(CodeNotAllowed, "the host cannot bid in their own auction")
	}
	if x.removed[p.User] {
		return BidResult{}, errf(CodeNotAllowed, "a moderator removed you from this auction")
	}
	prev, top := x.leader(), x.a.AmountCents
	n := nextMin(x.a.Increments, x.a.StartCents, top, prev != "")
	if !p.Max {
		if p.User == prev {
			return BidResult{}, errf(CodeAlreadyLeader, "you are already the highest bidder")
		}
		if p.Cents < n {
			return BidResult{}, &Error{Code: CodeBidTooLow, Field: "amount_cents", Message: fmt.Sprintf("the next bid is at least %d", n)}
		}
	} else {
		if p.User == prev && p.Cents <= top {
			return BidResult{}, &Error{Code: CodeBidTooLow, Field: "max_cents", Message: fmt.Sprintf("your maximum must be above %d", top)}
		}
		if p.User != prev && p.Cents < n {
			return BidResult{}, &Error{Code: CodeBidTooLow, Field: "max_cents", Message: fmt.Sprintf("your maximum must be at least %d", n)}
		}
		if x.nmax[p.User] >= maxMaxSets {
			return BidResult{}, errf(CodeLimitReached, "you set a maximum %d times in this auction", maxMaxSets)
		}
	}
	before := x.record()
	x.names[p.User] = bidderName(p.Name, p.User)
	if p.Max {
		x.seq++
		x.nmax[p.User]++
		x.maxes[p.User] = localMax{p.Cents, x.seq}
	} else {
		x.a.AmountCents = p.Cents
		x.setLeader(p.User)
		x.placed[p.User] = p.Cents
	}
	x.resolve()
	x.keys[uk] = true
	res := BidResult{Prev: prev}
	if x.leader() != prev || x.a.AmountCents != top {
		res.Changed = true
		x.a.Version++
		if x.extendMS > 0 && toMS(x.a.EndsAt)-toMS(now) < x.extendMS {
			x.a.EndsAt = now.Add(time.Duration(x.extendMS) * time.Millisecond)
			res.Extended = true
		}
	}
	if err := s.saveAuction(room, x); err != nil {
		r.auc[x.a.ID] = localAuctionOf(before)
		return BidResult{}, err
	}
	res.Auction = x.view()
	return res, nil
}

// open reports whether bids and removals are taken at now.
func (x *localAuction) open(now time.Time) error {
	if x.a.State != AuctionRunning || !now.Before(x.a.EndsAt) {
		return errf(CodeAuctionEnded, "auction %s has ended", x.a.ID)
	}
	return nil
}

func (s *LocalStore) RemoveBidder(_ context.Context, room, auctionID, user string) (BidResult, error) {
	if err := validUser(user); err != nil {
		return BidResult{}, err
	}
	r := s.room(room)
	r.wmu.Lock()
	defer r.wmu.Unlock()
	r.mu.Lock()
	defer r.mu.Unlock()
	x, err := r.auction(auctionID)
	if err != nil {
		return BidResult{}, err
	}
	if err := x.open(truncMS(time.Now())); err != nil {
		return BidResult{}, err
	}
	if !x.removed[user] && len(x.removed) >= maxRemoved {
		return BidResult{}, errf(CodeLimitReached, "%d bidders were removed from this auction already", maxRemoved)
	}
	before := x.record()
	prev, top := x.leader(), x.a.AmountCents
	x.removed[user] = true
	delete(x.placed, user)
	delete(x.maxes, user)
	best, lead := int64(0), ""
	for u, c := range x.placed {
		if c > best {
			best, lead = c, u
		}
	}
	x.a.AmountCents = best
	x.setLeader(lead)
	x.resolve()
	res := BidResult{Prev: prev}
	if x.leader() != prev || x.a.AmountCents != top {
		res.Changed = true
		x.a.Version++
	}
	if err := s.saveAuction(room, x); err != nil {
		r.auc[x.a.ID] = localAuctionOf(before)
		return BidResult{}, err
	}
	res.Auction = x.view()
	return res, nil
}

func (s *LocalStore) StopAuction(_ context.Context, room, auctionID string) (Auction, error) {
	r := s.room(room)
	r.wmu.Lock()
	defer r.wmu.Unlock()
	r.mu.Lock()
	defer r.mu.Unlock()
	x, err := r.auction(auctionID)
	if err != nil {
		return Auction{}, err
	}
	if err := x.open(truncMS(time.Now())); err != nil {
		return Auction{}, err
	}
	x.a.State = AuctionStopped
	if err := s.saveAuction(room, x); err != nil {
		x.a.State = AuctionRunning
		return Auction{}, err
	}
	r.unhold(x.a.SKU)
	return x.view(), nil
}

// unhold returns an auction's unit to the product's stock.
func (r *localRoom) unhold(sku string) {
	r.pheld[sku]--
	if p := r.products[sku]; p != nil {
		p.Stock++
	}
}

func (s *LocalStore) CloseAuction(_ context.Context, room, auctionID string) (CloseResult, error) {
	r := s.room(room)
	r.wmu.Lock() // the order's write is ordered with the room's other durable writes
	defer r.wmu.Unlock()
	r.mu.Lock()
	defer r.mu.Unlock()
	x, err := r.auction(auctionID)
	if err != nil {
		return CloseResult{}, err
	}
	now := truncMS(time.Now())
	if x.a.State != AuctionRunning || now.Before(x.a.EndsAt) {
		return CloseResult{Auction: x.view()}, nil
	}
	a := x.view()
	res := CloseResult{Closed: true}
	if a.Leader != nil && a.AmountCents >= x.reserve {
		o, err := auctionOrder(room, a, newOrderID(a.EndsAt), s.cfg.PayWithin, now)
		if err != nil {
			return CloseResult{}, err
		}
		rec := x.record()
		rec.State, rec.Winner, rec.OrderID = AuctionEnded, a.Leader.ID, o.ID
		err = s.db.Update(func(tx *bolt.Tx) error {
			if err := writeAuctionOrderLocal(tx, room, o, now); err != nil {
				return err
			}
			return putAuction(tx, room, rec)
		})
		if err != nil {
			return CloseResult{}, fmt.Errorf("cart: auction order: %w", err)
		}
		r.pheld[a.SKU]-- // sold: the unit leaves for good
		x.a.Winner, x.a.OrderID = a.Leader, o.ID
		res.Order = &o
	} else {
		rec := x.record()
		rec.State = AuctionEnded
		if err := s.db.Update(func(tx *bolt.Tx) error { return putAuction(tx, room, rec) }); err != nil {
			return CloseResult{}, fmt.Errorf("cart: close auction: %w", err)
		}
		r.unhold(a.SKU)
	}
	x.a.State = AuctionEnded
	res.Auction = x.view()
	return res, nil
}

// writeAuctionOrderLocal stores the winner's order with its outbox entry and
// takes the sold unit out of the durable stock (which counts held units),
// in the close's transaction: the one place an auction creates an order in
// the LocalStore.
func writeAuctionOrderLocal(tx *bolt.Tx, room string, o Order, now time.Time) error {
	if err := createOrder(tx, room, o, now); err != nil {
		return err
	}
	products, err := roomBucket(tx, room, bProducts)
	if err != nil {
		return err
	}
	var p Product
	if v := products.Get([]byte(o.Items[0].SKU)); v != nil {
		if err := json.Unmarshal(v, &p); err != nil {
			return err
		}
		p.Stock--
		if err := putJSON(products, []byte(p.SKU), p); err != nil {
			return err
		}
	}
	return nil
}

func (s *LocalStore) Auction(_ context.Context, room, auctionID string) (Auction, error) {
	r := s.room(room)
	r.mu.Lock()
	defer r.mu.Unlock()
	x, err := r.auction(auctionID)
	if err != nil {
		return Auction{}, err
	}
	return x.view(), nil
}

func (s *LocalStore) RunningAuctions(_ context.Context, room string) ([]Auction, error) {
	r := s.room(room)
	r.mu.Lock()
	defer r.mu.Unlock()
	var list []Auction
	for _, x := range r.auc {
		if x.a.State == AuctionRunning {
			list = append(list, x.view())
		}
	}
	sortAuctions(list)
	return list, nil
}

func (s *LocalStore) DueAuctions(_ context.Context, max int) ([]RoomAuction, error) {
	s.mu.Lock()
	rooms := make([]*localRoom, 0, len(s.rooms))
	for _, r := range s.rooms {
		rooms = append(rooms, r)
	}
	s.mu.Unlock()
	now := time.Now()
	var out []RoomAuction
	for _, r := range rooms {
		r.mu.Lock()
		for id, x := range r.auc {
			if x.a.State == AuctionRunning && !now.Before(x.a.EndsAt) && len(out) < max {
				out = append(out, RoomAuction{Room: r.id, ID: id})
			}
		}
		r.mu.Unlock()
	}
	return out, nil
}
