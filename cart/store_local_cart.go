package cart

import (
	"container/heap"
	"context"
	"fmt"
	"slices"
	"sort"
	"time"

	bolt "go.etcd.io/bbolt"
)

// The LocalStore's hot path: reservations, checkout and the sweep.

// ---- reservations ----

func (s *LocalStore) Reserve(_ context.Context, room string, p ReserveParams, now time.Time) (ReserveResult, error) {
	if err := validRoom(room); err != nil {
		return ReserveResult{}, err
	}
	if err := p.Validate(); err != nil {
		return ReserveResult{}, err
	}
	now = truncMS(now)
	uk := userKey(p.User, p.Key)
	// A key is in bbolt but not in memory only when its reservation was
	// bought before a restart or long ago (pruned): a state that no longer
	// changes, so it can be read before taking the room's lock. Memory wins.
	bought, inDB, err := s.checkedOutReservation(room, uk, now)
	if err != nil {
		return ReserveResult{}, err
	}
	r := s.room(room)
	r.mu.Lock()
	defer r.mu.Unlock()
	if id, ok := r.rkeys[uk]; ok {
		if res := r.res[id]; res.Status != StatusCheckedOut || keyLive(res.OrderID, s.cfg.KeyRetention, now) {
			return r.replay(res.Reservation, p, now)
		}
		delete(r.rkeys, uk) // bought longer ago than key_retention: forgotten
	}
	if inDB {
		return r.replay(bought, p, now)
	}
	if err := r.admitHold(s.cfg, p, now); err != nil {
		return ReserveResult{}, err
	}

	res := &localRes{Reservation: Reservation{
		ID: newID("r"), SaleID: p.SaleID, SKU: p.SKU, Qty: p.Qty,
		ExpiresAt: now.Add(s.cfg.Hold), Status: StatusHeld, Key: p.Key, User: p.User,
	}}
	var out ReserveResult
	if p.SaleID != "" {
		ls := r.sales[p.SaleID]
		if ls == nil {
			return ReserveResult{}, errf(CodeNotFound, "no sale %q", p.SaleID)
		}
		if err := ls.admit(p.User, p.Qty, now); err != nil {
			return ReserveResult{}, err
		}
		ls.Remaining -= p.Qty
		ls.Held += p.Qty
		ls.users[p.User] += p.Qty
		if ls.Remaining == 0 && !ls.soldOut {
			ls.soldOut, out.SoldOut = true, true
		}
		res.SKU, res.PriceCents, res.Currency = ls.SKU, ls.PriceCents, ls.Currency
		out.Remaining = ls.Remaining
	} else {
		prod := r.products[p.SKU]
		if prod == nil {
			return ReserveResult{}, errf(CodeNotFound, "no product %q", p.SKU)
		}
		if prod.Stock < p.Qty {
			return ReserveResult{}, soldOut(prod.Stock)
		}
		prod.Stock -= p.Qty
		r.pheld[p.SKU] += p.Qty
		res.PriceCents, res.Currency = prod.PriceCents, prod.Currency
		out.Remaining = prod.Stock
	}
	r.res[res.ID] = res
	r.rkeys[uk] = res.ID
	cart := r.carts[p.User]
	if cart == nil {
		cart = map[string]*localRes{}
		r.carts[p.User] = cart
	}
	cart[res.ID] = res
	heap.Push(&r.exp, expEntry{at: res.ExpiresAt, id: res.ID})
	out.Reservation = res.Reservation
	out.Cart = r.cartLocked(p.User, now)
	return out, nil
}

// replay answers a known key with the buyer's cart (r.mu held).
func (r *localRoom) replay(old Reservation, p ReserveParams, now time.Time) (ReserveResult, error) {
	res, err := replayReservation(old, p)
	if err == nil {
		res.Cart = r.cartLocked(p.User, now)
	}
	return res, err
}

// admitHold checks the buyer's caps (r.mu held): held reservations, units
// held, and units of one product held at list price. Holds past their
// expiry that the sweeper has not reached yet do not count.
func (r *localRoom) admitHold(cfg Config, p ReserveParams, now time.Time) error {
	var holds, units, list int
	for _, res := range r.carts[p.User] {
		if !res.ExpiresAt.After(now) {
			continue
		}
		holds++
		units += res.Qty
		if res.SaleID == "" && res.SKU == p.SKU {
			list += res.Qty
		}
	}
	return holdCaps(cfg, p, holds, units, list)
}

// holdCaps is the caps' verdict, shared by both stores' tests of the
// answer (the Redis script says the same in Lua).
func holdCaps(cfg Config, p ReserveParams, holds, units, list int) error {
	switch {
	case holds >= cfg.MaxHolds:
		return errf(CodeLimitReached, "at most %d items held per buyer in this room; check out or remove one", cfg.MaxHolds)
	case units+p.Qty > cfg.MaxHeldUnits:
		return errf(CodeLimitReached, "at most %d units held per buyer in this room; you hold %d", cfg.MaxHeldUnits, units)
	case p.SaleID == "" && list+p.Qty > cfg.ListPriceLimit:
		return errf(CodeLimitReached, "at most %d of %s held per buyer at list price; you hold %d", cfg.ListPriceLimit, p.SKU, list)
	}
	return nil
}

// admit checks a sale can give qty units to user now.
func (ls *localSale) admit(user string, qty int, now time.Time) error {
	switch saleState(ls.StartsAt, ls.EndsAt, now) {
	case SaleScheduled:
		return errf(CodeSaleNotActive, "sale %s opens at %s", ls.ID, ls.StartsAt.Format(time.RFC3339))
	case SaleEnded:
		return errf(CodeSaleNotActive, "sale %s has ended", ls.ID)
	}
	if ls.Remaining < qty {
		return soldOut(ls.Remaining)
	}
	if ls.PerUserLimit > 0 && ls.users[user]+qty > ls.PerUserLimit {
		return errf(CodeLimitReached, "at most %d per buyer in this sale; you have %d", ls.PerUserLimit, ls.users[user])
	}
	return nil
}

func soldOut(left int) error {
	if left <= 0 {
		return errf(CodeSoldOut, "sold out")
	}
	return errf(CodeSoldOut, "only %d left", left)
}

// replayReservation answers a Reserve whose key was used before.
func replayReservation(old Reservation, p ReserveParams) (ReserveResult, error) {
	if (p.SaleID != "" && p.SaleID != old.SaleID) || (p.SaleID == "" && (old.SaleID != "" || p.SKU != old.SKU)) || p.Qty != old.Qty {
		return ReserveResult{}, &Error{Code: CodeBadRequest, Field: "key", Message: "this key was used for another item or quantity"}
	}
	return ReserveResult{Reservation: old, Replayed: true}, nil
}

func (s *LocalStore) Release(_ context.Context, room, user, id string, now time.Time) (ReleaseResult, error) {
	now = truncMS(now)
	r := s.room(room)
	r.mu.Lock()
	defer r.mu.Unlock()
	res := r.res[id]
	if res == nil || res.User != user {
		return ReleaseResult{}, errf(CodeNotFound, "no reservation %q in your cart", id)
	}
	switch {
	case res.Status == StatusCheckedOut:
		return ReleaseResult{}, errf(CodeBadRequest, "reservation %s is already checked out", id)
	case res.pending:
		return ReleaseResult{}, errf(CodeBadRequest, "reservation %s is being checked out", id)
	}
	rem := r.end(res, StatusReleased)
	return ReleaseResult{Reservation: res.Reservation, Released: true, Remaining: rem, Cart: r.cartLocked(user, now)}, nil
}

// end turns a held reservation into st and returns its units; it is the
// only place units go back, and it runs once per reservation because only a
// held one gets here, under r.mu. The reservation and its key are
// forgotten at once: a released or expired hold leaves nothing behind.
func (r *localRoom) end(res *localRes, st ResStatus) int {
	res.Status = st
	delete(r.carts[res.User], res.ID)
	if len(r.carts[res.User]) == 0 {
		delete(r.carts, res.User)
	}
	delete(r.res, res.ID)
	if uk := userKey(res.User, res.Key); r.rkeys[uk] == res.ID {
		delete(r.rkeys, uk)
	}
	if res.SaleID != "" {
		ls := r.sales[res.SaleID]
		ls.Remaining += res.Qty
		ls.Held -= res.Qty
		ls.users[res.User] -= res.Qty
		return ls.Remaining
	}
	r.pheld[res.SKU] -= res.Qty
	if prod := r.products[res.SKU]; prod != nil {
		prod.Stock += res.Qty
		return prod.Stock
	}
	return 0
}

func (s *LocalStore) Cart(_ context.Context, room, user string, now time.Time) ([]Reservation, error) {
	now = truncMS(now)
	r := s.room(room)
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cartLocked(user, now), nil
}

func (r *localRoom) cartLocked(user string, now time.Time) []Reservation {
	var list []Reservation
	for _, res := range r.carts[user] {
		if res.ExpiresAt.After(now) {
			list = append(list, res.Reservation)
		}
	}
	sortCart(list)
	return list
}

func sortCart(list []Reservation) {
	sort.Slice(list, func(i, j int) bool {
		if !list[i].ExpiresAt.Equal(list[j].ExpiresAt) {
			return list[i].ExpiresAt.Before(list[j].ExpiresAt)
		}
		return list[i].ID < list[j].ID
	})
}

// ---- checkout ----

func (s *LocalStore) Checkout(ctx context.Context, room, user, key string, now time.Time) (CheckoutResult, error) {
	if err := validCheckout(room, user, key); err != nil {
		return CheckoutResult{}, err
	}
	now = truncMS(now)
	r := s.room(room)
	uk := userKey(user, key)

	r.mu.Lock()
	if p := r.pending[uk]; p != nil { // the same checkout is in flight: share its answer
		r.mu.Unlock()
		select {
		case <-p.done:
			res := p.res // shared with the owner and other waiters: copy
			res.Replayed = p.err == nil
			res.Cart = slices.Clone(res.Cart)
			return res, p.err
		case <-ctx.Done():
			return CheckoutResult{}, ctx.Err()
		}
	}
	if o, ok, err := s.orderByKey(room, uk, now); err != nil || ok {
		var cart []Reservation
		if ok {
			cart = r.cartLocked(user, now)
		}
		r.mu.Unlock()
		return CheckoutResult{Order: o, Replayed: ok, Cart: cart}, err
	}
	var held []*localRes
	for _, res := range r.carts[user] {
		if !res.pending && res.ExpiresAt.After(now) {
			held = append(held, res)
		}
	}
	if len(held) == 0 {
		err := r.emptyCart(user, now, s.cfg.Hold)
		r.mu.Unlock()
		return CheckoutResult{}, err
	}
	sort.Slice(held, func(i, j int) bool { return held[i].ID < held[j].ID })
	items := make([]Reservation, len(held))
	for i, res := range held {
		items[i] = res.Reservation
	}
	o, err := newOrder(newOrderID(now), room, user, key, items, now)
	if err != nil {
		r.mu.Unlock()
		return CheckoutResult{}, err
	}
	startLife(&o, r.payWindow(s.cfg, items), now)
	for _, res := range held {
		res.pending = true
	}
	p := &pendingCheckout{done: make(chan struct{})}
	r.pending[uk] = p
	r.mu.Unlock()

	// The durable write: the order, its key, the keys of its reservations,
	// the sales' sold counts and buyers, the products' stock and the outbox
	// entry, all in one transaction.
	r.wmu.Lock()
	var evicted []string
	err = s.db.Update(func(tx *bolt.Tx) error {
		var err error
		evicted, err = writeOrder(tx, r, o, items, s.cfg, now)
		return err
	})
	r.mu.Lock()
	if err == nil {
		for _, uk := range evicted { // the buyer's oldest bought cart.add keys
			if id, ok := r.rkeys[uk]; ok && r.res[id].Status == StatusCheckedOut {
				delete(r.rkeys, uk)
				delete(r.res, id)
			}
		}
		for _, res := range held {
			res.pending = false
			res.Status, res.OrderID = StatusCheckedOut, o.ID
			delete(r.carts[user], res.ID)
			r.ended = append(r.ended, endedRes{id: res.ID, at: now})
			if res.SaleID != "" {
				ls := r.sales[res.SaleID]
				ls.Held -= res.Qty
				ls.Sold += res.Qty
			} else {
				r.pheld[res.SKU] -= res.Qty
			}
		}
		if len(r.carts[user]) == 0 {
			delete(r.carts, user)
		}
		p.res = CheckoutResult{Order: o, Cart: r.cartLocked(user, now)}
	} else {
		for _, res := range held { // still held: the sweeper expires them if due
			res.pending = false
		}
		p.err = fmt.Errorf("cart: store order: %w", err)
	}
	delete(r.pending, uk)
	close(p.done)
	r.mu.Unlock()
	r.wmu.Unlock()
	return p.res, p.err
}

// emptyCart is the error for a checkout with nothing held.
func (r *localRoom) emptyCart(user string, now time.Time, hold time.Duration) error {
	if t, ok := r.lastExp[user]; ok && now.Sub(t) < hold {
		return errf(CodeExpired, "your reservations expired; add the items again")
	}
	for _, res := range r.carts[user] {
		if !res.ExpiresAt.After(now) {
			return errf(CodeExpired, "your reservations expired; add the items again")
		}
	}
	return errf(CodeBadRequest, "the cart is empty")
}

// ---- sweep ----

func (s *LocalStore) Sweep(_ context.Context, now time.Time) (SweepResult, error) {
	now = truncMS(now)
	s.mu.Lock()
	rooms := make([]*localRoom, 0, len(s.rooms))
	for _, r := range s.rooms {
		rooms = append(rooms, r)
	}
	s.mu.Unlock()

	var out SweepResult
	for _, r := range rooms {
		var settle []string
		r.mu.Lock()
		var skipped []expEntry
		for len(r.exp) > 0 && !r.exp[0].at.After(now) {
			e := heap.Pop(&r.exp).(expEntry)
			res := r.res[e.id]
			if res == nil || res.Status != StatusHeld {
				continue
			}
			if res.pending {
				skipped = append(skipped, e)
				continue
			}
			rem := r.end(res, StatusExpired)
			r.lastExp[res.User] = now
			out.Expired = append(out.Expired, Expired{Room: r.id, Reservation: res.Reservation, Remaining: rem})
		}
		for _, e := range skipped {
			heap.Push(&r.exp, e)
		}
		r.prune(now.Add(-s.cfg.KeyRetention), now.Add(-s.cfg.Hold))
		for id, ls := range r.sales {
			if ls.Settled || saleState(ls.StartsAt, ls.EndsAt, now) != SaleEnded {
				continue
			}
			if !ls.ended {
				ls.ended = true
				out.Ended = append(out.Ended, RoomSale{Room: r.id, Sale: ls.view(now)})
			}
			if ls.Held == 0 {
				settle = append(settle, id)
			}
		}
		r.mu.Unlock()
		for _, id := range settle {
			sale, ok, err := s.settle(r, id, now)
			if err != nil {
				return out, err
			}
			if ok {
				out.Settled = append(out.Settled, RoomSale{Room: r.id, Sale: sale})
			}
		}
	}
	return out, nil
}

// prune forgets reservations that ended before cutoff (their keys with
// them; checked-out ones stay findable in bbolt) and expiry marks older than
// expCutoff.
func (r *localRoom) prune(cutoff, expCutoff time.Time) {
	n := 0
	for n < len(r.ended) && r.ended[n].at.Before(cutoff) {
		if res := r.res[r.ended[n].id]; res != nil {
			if uk := userKey(res.User, res.Key); r.rkeys[uk] == res.ID {
				delete(r.rkeys, uk)
			}
			delete(r.res, res.ID)
		}
		n++
	}
	if n > 0 {
		r.ended = append(r.ended[:0:0], r.ended[n:]...)
	}
	for u, t := range r.lastExp {
		if t.Before(expCutoff) {
			delete(r.lastExp, u)
		}
	}
}

// ---- expiry heap ----

type expEntry struct {
	at time.Time
	id string
}

type expHeap []expEntry

func (h expHeap) Len() int           { return len(h) }
func (h expHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h expHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *expHeap) Push(x any)        { *h = append(*h, x.(expEntry)) }
func (h *expHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}
