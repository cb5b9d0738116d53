package cart

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// The LocalStore's order life. A transition is one bbolt transaction under
// the room's write lock (so it is serialised with checkouts, settles and
// other transitions): the order's new state, its event in the outbox, the
// lapse index and, for a cancel, the sale's sold count and the product's
// stock. Memory follows only after the commit, so a kill -9 at any point
// leaves either the whole transition or none of it.

var (
	bDue  = []byte("due")  // <pay-by ms><order id>: the lapse index
	bUDue = []byte("udue") // <user\0order id>: a buyer's awaiting orders
)

// maxOrderScan bounds one OrdersIn call's scan.
const maxOrderScan = 10_000

// createOrder writes a new order with its initial state (startLife), its
// order.created delivery and, when it awaits payment, its place in the
// lapse index. Every source of orders writes through it (a checkout's
// writeOrder; auctions and giveaways likewise), inside its own transaction.
func createOrder(tx *bolt.Tx, room string, o Order, now time.Time) error {
	orders, err := roomBucket(tx, room, bOrders)
	if err != nil {
		return err
	}
	if err := putJSON(orders, []byte(o.ID), o); err != nil {
		return err
	}
	if o.State == OrderAwaitingPayment && o.PayBy != nil {
		due, err := roomBucket(tx, room, bDue)
		if err != nil {
			return err
		}
		if err := due.Put(dueKey(*o.PayBy, o.ID), nil); err != nil {
			return err
		}
		udue, err := roomBucket(tx, room, bUDue)
		if err != nil {
			return err
		}
		if err := udue.Put([]byte(userKey(o.User, o.ID)), nil); err != nil {
			return err
		}
	}
	return putJSON(tx.Bucket(bOutbox), []byte(room+"\x00"+o.ID), outboxEntry{Next: toMS(now)})
}

func dueKey(at time.Time, id string) []byte {
	return append(binary.BigEndian.AppendUint64(nil, uint64(toMS(at))), id...)
}

// payWindow is the window of an order of items (r.mu held).
func (r *localRoom) payWindow(cfg Config, items []Reservation) time.Duration {
	var ws []*int
	list := false
	for _, it := range items {
		if ls := r.sales[it.SaleID]; it.SaleID != "" && ls != nil {
			ws = append(ws, ls.PayWithinS)
		} else {
			list = true
		}
	}
	return payWindow(cfg.PayWithin, ws, list)
}

func (s *LocalStore) TransitionOrder(_ context.Context, room, id string, t Transition, now time.Time) (OrderChange, error) {
	if err := validRoom(room); err != nil {
		return OrderChange{}, err
	}
	now = truncMS(now)
	r := s.room(room)
	r.wmu.Lock()
	defer r.wmu.Unlock()
	var o Order
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		o, err = readOrder(tx, room, id)
		return err
	})
	if err != nil {
		return OrderChange{}, err
	}
	n, changed, err := o.next(t, now)
	if err != nil || !changed {
		return OrderChange{Order: n}, err
	}
	out, err := s.apply(r, []Order{o}, []Order{n}, now)
	if err != nil {
		return OrderChange{}, err
	}
	return out[0], nil
}

func readOrder(tx *bolt.Tx, room, id string) (Order, error) {
	var o Order
	b := roomBucketRO(tx, room, bOrders)
	var v []byte
	if b != nil {
		v = b.Get([]byte(id))
	}
	if v == nil {
		return o, errf(CodeNotFound, "no order %q", id)
	}
	if err := json.Unmarshal(v, &o); err != nil {
		return o, fmt.Errorf("cart: order %s: %w", id, err)
	}
	return o, nil
}

// localReturn is where one cancelled item's units go, decided under r.mu.
type localReturn struct {
	it      OrderItem
	toSale  bool // the sale runs: its remaining goes up
	settled bool // the sale settled: the product's stock goes up too
}

// apply writes the transitions olds[i] -> news[i] in one transaction and
// then applies them to memory (r.wmu held).
func (s *LocalStore) apply(r *localRoom, olds, news []Order, now time.Time) ([]OrderChange, error) {
	plans := make([][]localReturn, len(news))
	r.mu.Lock()
	for i, n := range news {
		if n.State != OrderCancelled {
			continue
		}
		for _, it := range n.Items {
			lr := localReturn{it: it}
			if ls := r.sales[it.SaleID]; it.SaleID != "" && ls != nil {
				lr.settled = ls.Settled
				lr.toSale = !ls.Settled && saleState(ls.StartsAt, ls.EndsAt, now) != SaleEnded
			} else if it.SaleID != "" {
				continue // the sale is gone: nothing to return to
			}
			plans[i] = append(plans[i], lr)
		}
	}
	r.mu.Unlock()

	err := s.db.Update(func(tx *bolt.Tx) error {
		orders, err := roomBucket(tx, r.id, bOrders)
		if err != nil {
			return err
		}
		due, err := roomBucket(tx, r.id, bDue)
		if err != nil {
			return err
		}
		products, err := roomBucket(tx, r.id, bProducts)
		if err != nil {
			return err
		}
		udue, err := roomBucket(tx, r.id, bUDue)
		if err != nil {
			return err
		}
		for i, n := range news {
			if err := putJSON(orders, []byte(n.ID), n); err != nil {
				return err
			}
			if o := olds[i]; o.stateOf() == OrderAwaitingPayment && o.PayBy != nil {
				if err := due.Delete(dueKey(*o.PayBy, o.ID)); err != nil {
					return err
				}
				if err := udue.Delete([]byte(userKey(o.User, o.ID))); err != nil {
					return err
				}
			}
			key := []byte(r.id + "\x00" + deliveryID(n.ID, n.State))
			if err := putJSON(tx.Bucket(bOutbox), key, outboxEntry{Next: toMS(now)}); err != nil {
				return err
			}
			for _, lr := range plans[i] {
				if lr.it.SaleID != "" {
					if err := addSold(tx, r.id, lr.it.SaleID, n.User, -lr.it.Qty); err != nil {
						return err
					}
					if !lr.settled {
						continue // the remaining goes back to the product when it settles
					}
				}
				var p Product
				v := products.Get([]byte(lr.it.SKU))
				if v == nil {
					continue // deleted since: the units leave with it
				}
				if err := json.Unmarshal(v, &p); err != nil {
					return fmt.Errorf("product %s: %w", lr.it.SKU, err)
				}
				p.Stock += lr.it.Qty
				if err := putJSON(products, []byte(lr.it.SKU), p); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("cart: order transition: %w", err)
	}

	out := make([]OrderChange, len(news))
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, n := range news {
		out[i] = OrderChange{Order: n, Changed: true}
		for _, lr := range plans[i] {
			q := lr.it.Qty
			ret := StockReturn{SaleID: lr.it.SaleID, SKU: lr.it.SKU, Qty: q, ToSale: lr.toSale}
			if ls := r.sales[lr.it.SaleID]; lr.it.SaleID != "" && ls != nil {
				ls.Sold -= q
				ls.Remaining += q
				if ls.users[n.User] -= q; ls.users[n.User] <= 0 {
					delete(ls.users, n.User)
				}
				ret.Remaining = ls.Remaining
				if !lr.settled {
					out[i].Returned = append(out[i].Returned, ret)
					continue
				}
			}
			if p := r.products[lr.it.SKU]; p != nil {
				p.Stock += q
				if lr.it.SaleID == "" {
					ret.Remaining = p.Stock
				}
			}
			out[i].Returned = append(out[i].Returned, ret)
		}
	}
	return out, nil
}

func (s *LocalStore) Lapse(_ context.Context, now time.Time, max int) (LapseResult, error) {
	now = truncMS(now)
	s.mu.Lock()
	rooms := make([]*localRoom, 0, len(s.rooms))
	for _, r := range s.rooms {
		rooms = append(rooms, r)
	}
	s.mu.Unlock()
	var out LapseResult
	for _, r := range rooms {
		if len(out.Lapsed) >= max {
			break
		}
		// Batches of localLapseBatch, each one transaction: checkouts of
		// the room wait for one batch at most, not for the whole sweep.
		for len(out.Lapsed) < max {
			got, err := s.lapseRoom(r, now, min(localLapseBatch, max-len(out.Lapsed)))
			for _, c := range got {
				out.Lapsed = append(out.Lapsed, RoomOrderChange{Room: r.id, OrderChange: c})
			}
			if err != nil {
				return out, err
			}
			if len(got) < localLapseBatch {
				break
			}
		}
	}
	return out, nil
}

// localLapseBatch bounds the orders one lapse transaction cancels.
const localLapseBatch = 500

// lapseRoom cancels up to max due orders of r in one transaction.
func (s *LocalStore) lapseRoom(r *localRoom, now time.Time, max int) ([]OrderChange, error) {
	r.wmu.Lock()
	defer r.wmu.Unlock()
	var olds, news []Order
	var stale [][]byte
	limit := binary.BigEndian.AppendUint64(nil, uint64(toMS(now)+1))
	err := s.db.View(func(tx *bolt.Tx) error {
		due := roomBucketRO(tx, r.id, bDue)
		if due == nil {
			return nil
		}
		c := due.Cursor()
		for k, _ := c.First(); k != nil && bytes.Compare(k, limit) < 0 && len(news) < max; k, _ = c.Next() {
			o, err := readOrder(tx, r.id, string(k[8:]))
			if err != nil {
				return err
			}
			n, changed, err := o.next(Transition{Action: ActCancel, By: CancelByLapse}, now)
			if err != nil || !changed {
				stale = append(stale, bytes.Clone(k)) // not awaiting any more
				continue
			}
			olds, news = append(olds, o), append(news, n)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(stale) > 0 {
		if err := s.db.Update(func(tx *bolt.Tx) error {
			due := roomBucketRO(tx, r.id, bDue)
			for _, k := range stale {
				if err := due.Delete(k); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			return nil, fmt.Errorf("cart: lapse index: %w", err)
		}
	}
	if len(news) == 0 {
		return nil, nil
	}
	return s.apply(r, olds, news, now)
}

func (s *LocalStore) OrdersIn(_ context.Context, room string, state OrderState, cursor string, limit int) (OrderPage, error) {
	limit = pageLimit(limit)
	page := OrderPage{Orders: []Order{}}
	err := s.db.View(func(tx *bolt.Tx) error {
		b := roomBucketRO(tx, room, bOrders)
		if b == nil {
			return nil
		}
		c := b.Cursor()
		var k, v []byte
		if cursor == "" {
			k, v = c.Last()
		} else if k, _ = c.Seek([]byte(cursor)); k == nil {
			k, v = c.Last()
		} else {
			k, v = c.Prev()
		}
		for n := 0; k != nil; k, v = c.Prev() {
			if len(page.Orders) == limit {
				page.Next = page.Orders[limit-1].ID
				return nil
			}
			if n == maxOrderScan { // resume at k: a cursor just above it
				page.Next = string(k) + "\x00"
				return nil
			}
			n++
			var o Order
			if err := json.Unmarshal(v, &o); err != nil {
				return fmt.Errorf("order %s: %w", k, err)
			}
			if state == "" || o.stateOf() == state {
				o.State = o.stateOf()
				page.Orders = append(page.Orders, o)
			}
		}
		return nil
	})
	return page, err
}

func (s *LocalStore) AwaitingOrders(_ context.Context, room, user string) ([]Order, error) {
	var out []Order
	err := s.db.View(func(tx *bolt.Tx) error {
		b := roomBucketRO(tx, room, bUDue)
		if b == nil {
			return nil
		}
		prefix := []byte(userKey(user, ""))
		c := b.Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix) && len(out) < maxAwaitingShown; k, _ = c.Next() {
			o, err := readOrder(tx, room, string(k[len(prefix):]))
			if err != nil {
				return err
			}
			if o.stateOf() == OrderAwaitingPayment {
				out = append(out, o)
			}
		}
		return nil
	})
	return out, err
}
