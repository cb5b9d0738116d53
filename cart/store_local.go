package cart

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

// LocalStore is the one-node Store. Hot state (stock counters, holds, carts)
// lives in memory under one mutex per room; durable facts live in bbolt:
// products, sales with their sold counts and per-buyer purchases, orders,
// idempotency keys of orders and of checked-out reservations, the pin and
// the webhook outbox. A checkout writes its order, the sales' sold counts and
// the outbox entry in one bbolt transaction and returns only after it commits.
//
// Holds are not durable: after a restart they are gone, so each sale's
// remaining is quantity − sold and each product's stock is what it was plus
// its held units (see store_local_db.go). sold + held + remaining = quantity
// therefore holds across a crash as it does while running. Idempotency keys
// of orders and of checked-out reservations are durable (cart.max_keys per
// buyer and room, for cart.key_retention); the key of a hold that was lost
// in a restart (or released or expired) is not, so re-sending that
// cart.add after a restart reserves afresh (once).
type LocalStore struct {
	db  *bolt.DB
	cfg Config

	mu     sync.Mutex
	rooms  map[string]*localRoom
	forget []func(scope string) // what else drops a scope with it (giveaways)

	obMu   sync.Mutex           // outbox claims
	leases map[string]time.Time // outbox key -> claimed until (one process: memory is enough)
}

var _ Store = (*LocalStore)(nil)

// localRoom is one room's state. Lock order: wmu, then mu. wmu serialises the
// room's durable writes so that a write computed from memory lands in bbolt
// in the same order as in memory; mu guards the maps and is never held across
// a checkout's fsync, so reservations keep flowing while orders are written.
type localRoom struct {
	id  string
	wmu sync.Mutex
	mu  sync.Mutex

	products  map[string]*Product // Stock = reservable now
	pheld     map[string]int      // product units held by list-price reservations
	sales     map[string]*localSale
	saleBySKU map[string]string // sku -> its latest sale
	pin       string

	res     map[string]*localRes
	rkeys   map[string]string // user\x00key -> reservation id
	carts   map[string]map[string]*localRes
	exp     expHeap
	lastExp map[string]time.Time // user -> when a hold of theirs last expired
	ended   []endedRes           // checked-out reservations, oldest first, for pruning
	pending map[string]*pendingCheckout
	auc     map[string]*localAuction // auction_local.go
}

type localRes struct {
	Reservation
	pending bool // in a checkout whose transaction has not committed yet
}

type localSale struct {
	Sale                   // counters are live; State is computed on read
	users   map[string]int // held + bought per buyer
	ended   bool           // sale.ended reported
	soldOut bool           // remaining reached 0 once
}

type endedRes struct {
	id string
	at time.Time
}

type pendingCheckout struct {
	done chan struct{}
	res  CheckoutResult
	err  error
}

// OpenLocal opens (creating if needed) dir/cart.db and loads every room's
// catalog and sales. Only one process may have it open.
func OpenLocal(dir string, cfg Config) (*LocalStore, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("cart: %w", err)
	}
	path := filepath.Join(dir, "cart.db")
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 2 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("cart: open %s: %w", path, err)
	}
	db.MaxBatchDelay = auctionBatchDelay // auction_local_db.go
	s := &LocalStore{db: db, cfg: cfg, rooms: map[string]*localRoom{}, leases: map[string]time.Time{}}
	if err := s.load(); err != nil {
		db.Close()
		return nil, fmt.Errorf("cart: load %s: %w", path, err)
	}
	return s, nil
}

// Close closes the database; the store must not be used after.
func (s *LocalStore) Close() error { return s.db.Close() }

func newLocalRoom(id string) *localRoom {
	return &localRoom{
		id: id, products: map[string]*Product{}, pheld: map[string]int{}, sales: map[string]*localSale{},
		saleBySKU: map[string]string{}, res: map[string]*localRes{}, rkeys: map[string]string{},
		carts: map[string]map[string]*localRes{}, lastExp: map[string]time.Time{}, pending: map[string]*pendingCheckout{},
	}
}

// room returns the room's state, creating it empty on first use.
func (s *LocalStore) room(id string) *localRoom {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.rooms[id]
	if r == nil {
		r = newLocalRoom(id)
		s.rooms[id] = r
	}
	return r
}

func userKey(user, key string) string { return user + "\x00" + key }

// ---- catalog ----

func (s *LocalStore) PutProduct(_ context.Context, room string, p Product) (Product, error) {
	if err := validRoom(room); err != nil {
		return Product{}, err
	}
	if err := p.Validate(); err != nil {
		return Product{}, err
	}
	r := s.room(room)
	r.wmu.Lock()
	defer r.wmu.Unlock()
	r.mu.Lock()
	defer r.mu.Unlock()
	durable := p
	durable.Stock += r.pheld[p.SKU]
	if err := s.db.Update(func(tx *bolt.Tx) error { return putProduct(tx, room, durable) }); err != nil {
		return Product{}, fmt.Errorf("cart: put product: %w", err)
	}
	c := p
	r.products[p.SKU] = &c
	return p, nil
}

func (s *LocalStore) Product(_ context.Context, room, sku string) (Product, error) {
	r := s.room(room)
	r.mu.Lock()
	defer r.mu.Unlock()
	p := r.products[sku]
	if p == nil {
		return Product{}, errf(CodeNotFound, "no product %q", sku)
	}
	return *p, nil
}

func (s *LocalStore) Products(_ context.Context, room string) ([]Product, error) {
	r := s.room(room)
	r.mu.Lock()
	list := make([]Product, 0, len(r.products))
	for _, p := range r.products {
		list = append(list, *p)
	}
	r.mu.Unlock()
	sort.Slice(list, func(i, j int) bool { return list[i].SKU < list[j].SKU })
	return list, nil
}

func (s *LocalStore) DeleteProduct(_ context.Context, room, sku string) error {
	r := s.room(room)
	r.wmu.Lock()
	defer r.wmu.Unlock()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.products[sku] == nil {
		return errf(CodeNotFound, "no product %q", sku)
	}
	if n := r.pheld[sku]; n > 0 {
		return errf(CodeBadRequest, "%d units of %s are held in carts; try again when they are released", n, sku)
	}
	if id := r.saleBySKU[sku]; id != "" && !r.sales[id].Settled {
		return errf(CodeBadRequest, "sale %s of %s has not ended and settled", id, sku)
	}
	unpin := r.pin == sku
	if err := s.db.Update(func(tx *bolt.Tx) error { return deleteProduct(tx, room, sku, unpin) }); err != nil {
		return fmt.Errorf("cart: delete product: %w", err)
	}
	delete(r.products, sku)
	delete(r.pheld, sku)
	if unpin {
		r.pin = ""
	}
	return nil
}

func (s *LocalStore) Pin(_ context.Context, room, sku string) (Product, error) {
	r := s.room(room)
	r.wmu.Lock()
	defer r.wmu.Unlock()
	r.mu.Lock()
	defer r.mu.Unlock()
	p := r.products[sku]
	if p == nil {
		return Product{}, errf(CodeNotFound, "no product %q", sku)
	}
	if err := s.db.Update(func(tx *bolt.Tx) error { return putPin(tx, room, sku) }); err != nil {
		return Product{}, fmt.Errorf("cart: pin: %w", err)
	}
	r.pin = sku
	return *p, nil
}

func (s *LocalStore) Unpin(_ context.Context, room string) (Product, bool, error) {
	r := s.room(room)
	r.wmu.Lock()
	defer r.wmu.Unlock()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.pin == "" {
		return Product{}, false, nil
	}
	if err := s.db.Update(func(tx *bolt.Tx) error { return putPin(tx, room, "") }); err != nil {
		return Product{}, false, fmt.Errorf("cart: unpin: %w", err)
	}
	p := r.products[r.pin]
	r.pin = ""
	if p == nil {
		return Product{}, false, nil
	}
	return *p, true, nil
}

func (s *LocalStore) Pinned(_ context.Context, room string) (Product, bool, error) {
	r := s.room(room)
	r.mu.Lock()
	defer r.mu.Unlock()
	if p := r.products[r.pin]; p != nil {
		return *p, true, nil
	}
	return Product{}, false, nil
}

// ---- sales ----

func (s *LocalStore) StartSale(_ context.Context, room string, p SaleParams, now time.Time) (Sale, error) {
	if err := validRoom(room); err != nil {
		return Sale{}, err
	}
	if err := p.Validate(); err != nil {
		return Sale{}, err
	}
	now = truncMS(now)
	r := s.room(room)
	r.wmu.Lock()
	defer r.wmu.Unlock()
	r.mu.Lock()
	defer r.mu.Unlock()
	prod := r.products[p.SKU]
	if prod == nil {
		return Sale{}, &Error{Code: CodeNotFound, Field: "sku", Message: fmt.Sprintf("no product %q", p.SKU)}
	}
	if id := r.saleBySKU[p.SKU]; id != "" {
		if old := r.sales[id]; saleState(old.StartsAt, old.EndsAt, now) != SaleEnded {
			return Sale{}, &Error{Code: CodeBadRequest, Field: "sku", Message: fmt.Sprintf("sale %s of %s is still running", id, p.SKU)}
		}
	}
	if prod.Stock < p.Quantity {
		return Sale{}, &Error{Code: CodeBadRequest, Field: "quantity", Message: fmt.Sprintf("only %d of %s in stock", prod.Stock, p.SKU)}
	}
	starts := now.Add(time.Duration(p.StartsInS) * time.Second)
	sale := Sale{
		ID: newID("s"), SKU: p.SKU, PriceCents: p.PriceCents, Currency: prod.Currency,
		Quantity: p.Quantity, Remaining: p.Quantity, PerUserLimit: p.PerUserLimit,
		StartsAt: starts, EndsAt: starts.Add(time.Duration(p.DurationS) * time.Second), PayWithinS: p.PayWithinS,
	}
	durable := *prod
	durable.Stock += r.pheld[p.SKU] - p.Quantity
	err := s.db.Update(func(tx *bolt.Tx) error {
		if err := putProduct(tx, room, durable); err != nil {
			return err
		}
		return putSale(tx, room, saleRecordOf(sale, false))
	})
	if err != nil {
		return Sale{}, fmt.Errorf("cart: start sale: %w", err)
	}
	prod.Stock -= p.Quantity
	r.sales[sale.ID] = &localSale{Sale: sale, users: map[string]int{}}
	r.saleBySKU[p.SKU] = sale.ID
	sale.State = saleState(sale.StartsAt, sale.EndsAt, now)
	return sale, nil
}

func (s *LocalStore) StopSale(_ context.Context, room, saleID string, now time.Time) (Sale, bool, error) {
	now = truncMS(now)
	r := s.room(room)
	r.wmu.Lock()
	defer r.wmu.Unlock()
	r.mu.Lock()
	defer r.mu.Unlock()
	ls := r.sales[saleID]
	if ls == nil {
		return Sale{}, false, errf(CodeNotFound, "no sale %q", saleID)
	}
	if saleState(ls.StartsAt, ls.EndsAt, now) == SaleEnded {
		return ls.view(now), false, nil
	}
	next := ls.Sale
	next.EndsAt = now
	if next.StartsAt.After(now) {
		next.StartsAt = now
	}
	if err := s.db.Update(func(tx *bolt.Tx) error {
		return updateSaleRecord(tx, room, saleID, func(rec *saleRecord) { rec.StartsAt, rec.EndsAt = next.StartsAt, next.EndsAt })
	}); err != nil {
		return Sale{}, false, fmt.Errorf("cart: stop sale: %w", err)
	}
	ls.StartsAt, ls.EndsAt, ls.ended = next.StartsAt, next.EndsAt, true
	return ls.view(now), true, nil
}

func (ls *localSale) view(now time.Time) Sale {
	v := ls.Sale
	v.State = saleState(v.StartsAt, v.EndsAt, now)
	return v
}

func (s *LocalStore) Sale(_ context.Context, room, saleID string, now time.Time) (Sale, error) {
	r := s.room(room)
	r.mu.Lock()
	defer r.mu.Unlock()
	ls := r.sales[saleID]
	if ls == nil {
		return Sale{}, errf(CodeNotFound, "no sale %q", saleID)
	}
	return ls.view(truncMS(now)), nil
}

func (s *LocalStore) Sales(_ context.Context, room string, now time.Time) ([]Sale, error) {
	now = truncMS(now)
	r := s.room(room)
	r.mu.Lock()
	list := make([]Sale, 0, len(r.sales))
	for _, ls := range r.sales {
		list = append(list, ls.view(now))
	}
	r.mu.Unlock()
	sortSales(list)
	return list, nil
}

func (s *LocalStore) Unsettled(_ context.Context, room string, now time.Time) ([]Sale, error) {
	now = truncMS(now)
	r := s.room(room)
	r.mu.Lock()
	var list []Sale
	for _, ls := range r.sales {
		if !ls.Settled {
			list = append(list, ls.view(now))
		}
	}
	r.mu.Unlock()
	sortSales(list)
	return list, nil
}

func sortSales(list []Sale) {
	sort.Slice(list, func(i, j int) bool {
		if !list[i].StartsAt.Equal(list[j].StartsAt) {
			return list[i].StartsAt.Before(list[j].StartsAt)
		}
		return list[i].ID < list[j].ID
	})
}

// settle returns an ended sale's remaining to its product once nothing is
// held. It reports false if the sale was not ready (or already settled).
func (s *LocalStore) settle(r *localRoom, saleID string, now time.Time) (Sale, bool, error) {
	r.wmu.Lock()
	defer r.wmu.Unlock()
	r.mu.Lock()
	defer r.mu.Unlock()
	ls := r.sales[saleID]
	if ls == nil || ls.Settled || ls.Held > 0 || saleState(ls.StartsAt, ls.EndsAt, now) != SaleEnded {
		return Sale{}, false, nil
	}
	prod := r.products[ls.SKU]
	err := s.db.Update(func(tx *bolt.Tx) error {
		if prod != nil {
			durable := *prod
			durable.Stock += r.pheld[ls.SKU] + ls.Remaining
			if err := putProduct(tx, r.id, durable); err != nil {
				return err
			}
		}
		return updateSaleRecord(tx, r.id, saleID, func(rec *saleRecord) { rec.Settled = true })
	})
	if err != nil {
		return Sale{}, false, fmt.Errorf("cart: settle sale: %w", err)
	}
	if prod != nil {
		prod.Stock += ls.Remaining
	}
	ls.Settled = true
	return ls.view(now), true, nil
}
