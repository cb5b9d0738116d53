package cart

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	bolt "go.etcd.io/bbolt"
)

// The bbolt layout (all values JSON unless noted):
//
//	rooms/<room>/products/<sku>     Product; Stock = reservable + held, i.e. not sold and not in a sale
//	rooms/<room>/sales/<id>/sale    saleRecord: the sale with its durable sold count
//	rooms/<room>/sales/<id>/users/<user>  units bought (decimal)
//	rooms/<room>/orders/<order id>  Order (ids sort by time)
//	rooms/<room>/okeys/<user\0key>  order id of a checkout key
//	rooms/<room>/rkeys/<user\0key>  the checked-out Reservation of a cart.add key
//	rooms/<room>/ukeys/<user\0 ms kind key>  (empty) one okeys (kind 'o') or rkeys ('r')
//	                                entry of the buyer, by time: cart.max_keys and
//	                                cart.key_retention evict the oldest at the
//	                                buyer's next checkout; reads ignore expired ones
//	rooms/<room>/meta/pin           pinned sku
//	outbox/<room\0order id>         outboxEntry (order id.state for a transition's event)
//	rooms/<room>/due/<ms><order id>  (empty) awaiting orders by the end of their window
//
// Held reservations are never written: a restart releases them all, which is
// exactly what "remaining = quantity − sold" and the product Stock above say.
var (
	bRooms    = []byte("rooms")
	bOutbox   = []byte("outbox")
	bProducts = []byte("products")
	bSales    = []byte("sales")
	bUsers    = []byte("users")
	bOrders   = []byte("orders")
	bOKeys    = []byte("okeys")
	bRKeys    = []byte("rkeys")
	bUKeys    = []byte("ukeys")
	bMeta     = []byte("meta")
	kSale     = []byte("sale")
	kPin      = []byte("pin")
)

type saleRecord struct {
	ID           string    `json:"id"`
	SKU          string    `json:"sku"`
	PriceCents   int64     `json:"price_cents"`
	Currency     string    `json:"currency"`
	Quantity     int       `json:"quantity"`
	Sold         int       `json:"sold"`
	PerUserLimit int       `json:"per_user_limit"`
	StartsAt     time.Time `json:"starts_at"`
	EndsAt       time.Time `json:"ends_at"`
	Settled      bool      `json:"settled"`
	PayWithinS   *int      `json:"pay_within_s,omitempty"`
}

func saleRecordOf(s Sale, settled bool) saleRecord {
	return saleRecord{ID: s.ID, SKU: s.SKU, PriceCents: s.PriceCents, Currency: s.Currency, Quantity: s.Quantity,
		Sold: s.Sold, PerUserLimit: s.PerUserLimit, StartsAt: s.StartsAt, EndsAt: s.EndsAt, Settled: settled, PayWithinS: s.PayWithinS}
}

type outboxEntry struct {
	Next     int64 `json:"next_ms"`
	Attempts int   `json:"attempts"`
}

func roomBucket(tx *bolt.Tx, room string, name []byte) (*bolt.Bucket, error) {
	rb, err := tx.Bucket(bRooms).CreateBucketIfNotExists([]byte(room))
	if err != nil {
		return nil, err
	}
	return rb.CreateBucketIfNotExists(name)
}

// roomBucketRO returns nil when the bucket does not exist.
func roomBucketRO(tx *bolt.Tx, room string, name []byte) *bolt.Bucket {
	rb := tx.Bucket(bRooms).Bucket([]byte(room))
	if rb == nil {
		return nil
	}
	return rb.Bucket(name)
}

func putJSON(b *bolt.Bucket, key []byte, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.Put(key, data)
}

func putProduct(tx *bolt.Tx, room string, p Product) error {
	b, err := roomBucket(tx, room, bProducts)
	if err != nil {
		return err
	}
	return putJSON(b, []byte(p.SKU), p)
}

func deleteProduct(tx *bolt.Tx, room, sku string, unpin bool) error {
	b, err := roomBucket(tx, room, bProducts)
	if err != nil {
		return err
	}
	if err := b.Delete([]byte(sku)); err != nil {
		return err
	}
	if unpin {
		return putPin(tx, room, "")
	}
	return nil
}

func putPin(tx *bolt.Tx, room, sku string) error {
	b, err := roomBucket(tx, room, bMeta)
	if err != nil {
		return err
	}
	if sku == "" {
		return b.Delete(kPin)
	}
	return b.Put(kPin, []byte(sku))
}

func putSale(tx *bolt.Tx, room string, rec saleRecord) error {
	sb, err := roomBucket(tx, room, bSales)
	if err != nil {
		return err
	}
	b, err := sb.CreateBucketIfNotExists([]byte(rec.ID))
	if err != nil {
		return err
	}
	if _, err := b.CreateBucketIfNotExists(bUsers); err != nil {
		return err
	}
	return putJSON(b, kSale, rec)
}

func updateSaleRecord(tx *bolt.Tx, room, id string, fn func(*saleRecord)) error {
	sb := roomBucketRO(tx, room, bSales)
	if sb == nil || sb.Bucket([]byte(id)) == nil {
		return fmt.Errorf("sale %s missing from the database", id)
	}
	b := sb.Bucket([]byte(id))
	var rec saleRecord
	if err := json.Unmarshal(b.Get(kSale), &rec); err != nil {
		return fmt.Errorf("sale %s: %w", id, err)
	}
	fn(&rec)
	return putJSON(b, kSale, rec)
}

// writeOrder is the checkout transaction. It returns the buyer's cart.add
// keys (user\0key) that it evicted to stay within cart.max_keys.
func writeOrder(tx *bolt.Tx, r *localRoom, o Order, items []Reservation, cfg Config, now time.Time) ([]string, error) {
	if err := createOrder(tx, r.id, o, now); err != nil {
		return nil, err
	}
	okeys, err := roomBucket(tx, r.id, bOKeys)
	if err != nil {
		return nil, err
	}
	if err := okeys.Put([]byte(userKey(o.User, o.Key)), []byte(o.ID)); err != nil {
		return nil, err
	}
	rkeys, err := roomBucket(tx, r.id, bRKeys)
	if err != nil {
		return nil, err
	}
	ukeys, err := roomBucket(tx, r.id, bUKeys)
	if err != nil {
		return nil, err
	}
	if err := ukeys.Put(userKeyEntry(o.User, now, 'o', o.Key), nil); err != nil {
		return nil, err
	}
	products, err := roomBucket(tx, r.id, bProducts)
	if err != nil {
		return nil, err
	}
	for _, it := range items {
		done := it
		done.Status, done.OrderID = StatusCheckedOut, o.ID
		if err := putJSON(rkeys, []byte(userKey(it.User, it.Key)), done); err != nil {
			return nil, err
		}
		if err := ukeys.Put(userKeyEntry(o.User, now, 'r', it.Key), nil); err != nil {
			return nil, err
		}
		if it.SaleID != "" {
			if err := addSold(tx, r.id, it.SaleID, o.User, it.Qty); err != nil {
				return nil, err
			}
			continue
		}
		// A list-price unit leaves the product for good.
		var p Product
		if v := products.Get([]byte(it.SKU)); v != nil {
			if err := json.Unmarshal(v, &p); err != nil {
				return nil, fmt.Errorf("product %s: %w", it.SKU, err)
			}
			p.Stock -= it.Qty
			if err := putJSON(products, []byte(it.SKU), p); err != nil {
				return nil, err
			}
		}
	}
	evicted, err := evictKeys(ukeys, okeys, rkeys, o.User, cfg, now)
	if err != nil {
		return nil, err
	}
	return evicted, nil
}

// userKeyEntry is the ukeys key of one idempotency key of user, kept since
// at: user \0, at in ms (8 bytes big-endian, so a user's entries sort by
// time), kind ('o' checkout, 'r' cart.add), key.
func userKeyEntry(user string, at time.Time, kind byte, key string) []byte {
	b := make([]byte, 0, len(user)+10+len(key))
	b = append(b, user...)
	b = append(b, 0)
	b = binary.BigEndian.AppendUint64(b, uint64(toMS(at)))
	b = append(b, kind)
	return append(b, key...)
}

// evictKeys drops user's idempotency keys that are past cart.key_retention
// and, beyond those, the oldest over cart.max_keys. It returns the evicted
// cart.add keys as user\0key.
func evictKeys(ukeys, okeys, rkeys *bolt.Bucket, user string, cfg Config, now time.Time) ([]string, error) {
	prefix := append([]byte(user), 0)
	var all [][]byte
	c := ukeys.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		if len(k) >= len(prefix)+9 {
			all = append(all, bytes.Clone(k))
		}
	}
	cutoff := uint64(toMS(now.Add(-cfg.KeyRetention)))
	var evicted []string
	for i, k := range all {
		rest := k[len(prefix):]
		if binary.BigEndian.Uint64(rest) >= cutoff && len(all)-i <= cfg.MaxKeys {
			break
		}
		uk := []byte(userKey(user, string(rest[9:])))
		// The key may have been used again since it lapsed: only the
		// entry's own checkout is forgotten.
		target, orderID := okeys, string(okeys.Get(uk))
		if rest[8] == 'r' {
			target = rkeys
			var res Reservation
			if v := rkeys.Get(uk); v != nil && json.Unmarshal(v, &res) == nil {
				orderID = res.OrderID
			}
		}
		if orderMS(orderID) == int64(binary.BigEndian.Uint64(rest)) {
			if err := target.Delete(uk); err != nil {
				return nil, err
			}
			if rest[8] == 'r' {
				evicted = append(evicted, string(uk))
			}
		}
		if err := ukeys.Delete(k); err != nil {
			return nil, err
		}
	}
	return evicted, nil
}

// keyLive reports whether an idempotency key of order id is within
// cart.key_retention at now (order ids start with their time).
func keyLive(orderID string, retention time.Duration, now time.Time) bool {
	ms := orderMS(orderID)
	return ms >= 0 && now.Sub(fromMS(ms)) < retention
}

// orderMS is the time in an order id (unix ms), -1 if it has none.
func orderMS(orderID string) int64 {
	if len(orderID) < 14 {
		return -1
	}
	ms, err := strconv.ParseInt(orderID[2:14], 16, 64)
	if err != nil {
		return -1
	}
	return ms
}

func addSold(tx *bolt.Tx, room, saleID, user string, qty int) error {
	if err := updateSaleRecord(tx, room, saleID, func(rec *saleRecord) { rec.Sold += qty }); err != nil {
		return err
	}
	ub := roomBucketRO(tx, room, bSales).Bucket([]byte(saleID)).Bucket(bUsers)
	n, _ := strconv.Atoi(string(ub.Get([]byte(user))))
	return ub.Put([]byte(user), []byte(strconv.Itoa(n+qty)))
}

// load rebuilds every room's memory from bbolt.
func (s *LocalStore) load() error {
	return s.db.Update(func(tx *bolt.Tx) error {
		rooms, err := tx.CreateBucketIfNotExists(bRooms)
		if err != nil {
			return err
		}
		if _, err := tx.CreateBucketIfNotExists(bOutbox); err != nil {
			return err
		}
		return rooms.ForEachBucket(func(k []byte) error {
			r, err := loadRoom(rooms.Bucket(k), string(k))
			if err != nil {
				return fmt.Errorf("room %s: %w", k, err)
			}
			s.rooms[r.id] = r
			return nil
		})
	})
}

func loadRoom(rb *bolt.Bucket, id string) (*localRoom, error) {
	r := newLocalRoom(id)
	if b := rb.Bucket(bProducts); b != nil {
		err := b.ForEach(func(k, v []byte) error {
			var p Product
			if err := json.Unmarshal(v, &p); err != nil {
				return fmt.Errorf("product %s: %w", k, err)
			}
			r.products[p.SKU] = &p
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	if b := rb.Bucket(bMeta); b != nil {
		r.pin = string(b.Get(kPin))
	}
	if err := loadAuctions(rb, r); err != nil { // auction_local_db.go
		return nil, err
	}
	sb := rb.Bucket(bSales)
	if sb == nil {
		return r, nil
	}
	err := sb.ForEachBucket(func(k []byte) error {
		b := sb.Bucket(k)
		var rec saleRecord
		if err := json.Unmarshal(b.Get(kSale), &rec); err != nil {
			return fmt.Errorf("sale %s: %w", k, err)
		}
		ls := &localSale{users: map[string]int{}, Sale: Sale{
			ID: rec.ID, SKU: rec.SKU, PriceCents: rec.PriceCents, Currency: rec.Currency,
			Quantity: rec.Quantity, Sold: rec.Sold, Remaining: rec.Quantity - rec.Sold,
			PerUserLimit: rec.PerUserLimit, StartsAt: rec.StartsAt, EndsAt: rec.EndsAt, Settled: rec.Settled,
			PayWithinS: rec.PayWithinS,
		}}
		// Settled sales were reported; an unsettled one that ended while
		// we were down is reported (and settled) by the first sweep.
		ls.ended, ls.soldOut = rec.Settled, ls.Remaining == 0
		if ub := b.Bucket(bUsers); ub != nil {
			if err := ub.ForEach(func(u, v []byte) error {
				n, err := strconv.Atoi(string(v))
				ls.users[string(u)] = n
				return err
			}); err != nil {
				return fmt.Errorf("sale %s buyers: %w", k, err)
			}
		}
		r.sales[ls.ID] = ls
		if cur := r.sales[r.saleBySKU[ls.SKU]]; cur == nil || cur.StartsAt.Before(ls.StartsAt) {
			r.saleBySKU[ls.SKU] = ls.ID
		}
		return nil
	})
	return r, err
}

// checkedOutReservation finds a cart.add key whose reservation was bought
// (within cart.key_retention).
func (s *LocalStore) checkedOutReservation(room, uk string, now time.Time) (Reservation, bool, error) {
	var res Reservation
	var ok bool
	err := s.db.View(func(tx *bolt.Tx) error {
		b := roomBucketRO(tx, room, bRKeys)
		if b == nil {
			return nil
		}
		v := b.Get([]byte(uk))
		if v == nil {
			return nil
		}
		if err := json.Unmarshal(v, &res); err != nil {
			return err
		}
		ok = keyLive(res.OrderID, s.cfg.KeyRetention, now)
		return nil
	})
	if err != nil {
		return Reservation{}, false, fmt.Errorf("cart: read key: %w", err)
	}
	return res, ok, nil
}

// orderByKey finds the order of a checkout key (within cart.key_retention).
func (s *LocalStore) orderByKey(room, uk string, now time.Time) (Order, bool, error) {
	var o Order
	var ok bool
	err := s.db.View(func(tx *bolt.Tx) error {
		kb := roomBucketRO(tx, room, bOKeys)
		if kb == nil {
			return nil
		}
		id := kb.Get([]byte(uk))
		if id == nil || !keyLive(string(id), s.cfg.KeyRetention, now) {
			return nil
		}
		ok = true
		return json.Unmarshal(roomBucketRO(tx, room, bOrders).Get(id), &o)
	})
	if err != nil {
		return Order{}, false, fmt.Errorf("cart: read order key: %w", err)
	}
	return o, ok, nil
}

func (s *LocalStore) Order(_ context.Context, room, id string) (Order, error) {
	var o Order
	err := s.db.View(func(tx *bolt.Tx) error {
		b := roomBucketRO(tx, room, bOrders)
		var v []byte
		if b != nil {
			v = b.Get([]byte(id))
		}
		if v == nil {
			return errf(CodeNotFound, "no order %q", id)
		}
		return json.Unmarshal(v, &o)
	})
	return o, err
}

func (s *LocalStore) Orders(_ context.Context, room, cursor string, limit int) (OrderPage, error) {
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
		for ; k != nil; k, v = c.Prev() {
			if len(page.Orders) == limit {
				page.Next = page.Orders[limit-1].ID
				return nil
			}
			var o Order
			if err := json.Unmarshal(v, &o); err != nil {
				return fmt.Errorf("order %s: %w", k, err)
			}
			page.Orders = append(page.Orders, o)
		}
		return nil
	})
	return page, err
}

// ---- outbox ----

func (s *LocalStore) ClaimDeliveries(_ context.Context, now time.Time, lease time.Duration, max int) ([]Delivery, error) {
	s.obMu.Lock()
	defer s.obMu.Unlock()
	nowMS := toMS(now)
	type due struct {
		key []byte
		e   outboxEntry
	}
	var found []due
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bOutbox).Cursor()
		for k, v := c.First(); k != nil && len(found) < max; k, v = c.Next() {
			var e outboxEntry
			if err := json.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("outbox %q: %w", k, err)
			}
			if e.Next <= nowMS && !s.leases[string(k)].After(now) {
				found = append(found, due{bytes.Clone(k), e})
			}
		}
		return nil
	})
	if err != nil || len(found) == 0 {
		return nil, err
	}
	var out []Delivery
	err = s.db.Update(func(tx *bolt.Tx) error {
		ob := tx.Bucket(bOutbox)
		for _, f := range found {
			room, oid, _ := bytes.Cut(f.key, []byte{0})
			f.e.Attempts++
			if err := putJSON(ob, f.key, f.e); err != nil {
				return err
			}
			var body []byte
			if b := roomBucketRO(tx, string(room), bOrders); b != nil {
				base, _ := splitDelivery(string(oid)) // id.event of a transition
				body = bytes.Clone(b.Get([]byte(base)))
			}
			if body == nil { // cannot happen: the order is written with its entry
				return fmt.Errorf("outbox: order %s/%s missing", room, oid)
			}
			out = append(out, Delivery{Room: string(room), OrderID: string(oid), Attempt: f.e.Attempts, Order: body})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("cart: claim deliveries: %w", err)
	}
	for _, f := range found {
		s.leases[string(f.key)] = now.Add(lease)
	}
	return out, nil
}

func (s *LocalStore) CompleteDelivery(_ context.Context, d Delivery) error {
	key := d.Room + "\x00" + d.OrderID
	s.obMu.Lock()
	defer s.obMu.Unlock()
	delete(s.leases, key)
	return s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bOutbox).Delete([]byte(key)) })
}

func (s *LocalStore) RetryDelivery(_ context.Context, d Delivery, next time.Time) error {
	key := d.Room + "\x00" + d.OrderID
	s.obMu.Lock()
	defer s.obMu.Unlock()
	delete(s.leases, key)
	return s.db.Update(func(tx *bolt.Tx) error {
		ob := tx.Bucket(bOutbox)
		v := ob.Get([]byte(key))
		if v == nil {
			return nil // delivered meanwhile
		}
		var e outboxEntry
		if err := json.Unmarshal(v, &e); err != nil {
			return err
		}
		e.Next = toMS(next)
		return putJSON(ob, []byte(key), e)
	})
}
