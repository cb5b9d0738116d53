package cart

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Service is what the WebSocket layer calls: a Store plus the clock,
// metrics, the sweeper, and notifications of changes that viewers must see.
// The admin API reads catalogs and orders from the Store directly.
//
// Callbacks run on the goroutine that caused the change (a request or Run)
// and must not block: publish to the room bus and return.
type Service struct {
	store Store
	cfg   Config
	now   func() time.Time
	log   *slog.Logger
	m     *Metrics

	hmu     sync.RWMutex
	onStock []func(room, saleID string, remaining int)
	onSale  []func(SaleEvent)
	onCart  []func(room, user string)
	onOrder []func(Order)
	// onChange hears of order transitions (order_service.go).
	onChange []func(room string, c OrderChange)

	onAucClosed []func(room string, r CloseResult) // auction_service.go

	// smu orders sale.stock notifications: it is held while one is decided
	// and sent, so a stale count can never follow a newer one.
	smu   sync.Mutex
	stock map[saleRef]*stockState

	gw *giveaways // giveaway_service.go
}

type saleRef struct{ room, id string }

type stockState struct {
	dirty   bool
	sent    int
	hasSent bool
	last    time.Time
}

// SaleEventKind says what happened to a sale.
type SaleEventKind string

const (
	EventSaleStarted SaleEventKind = "started" // created, scheduled or open: send sale.started
	EventSaleEnded   SaleEventKind = "ended"   // by time or stopped: send sale.ended with Sale.Sold
	EventSaleSettled SaleEventKind = "settled" // nothing held any more; remaining is back in the product
)

// SaleEvent is a change of a sale's lifecycle.
type SaleEvent struct {
	Kind SaleEventKind
	Room string
	Sale Sale
}

// ServiceOptions are the optional parts of a Service.
type ServiceOptions struct {
	Metrics *Metrics
	Now     func() time.Time // default time.Now
	Log     *slog.Logger     // default slog.Default()
	// Giveaways default to the ones next to the store (local or Redis).
	Giveaways GiveawayStore
}

// NewService wraps store. cfg is the same `cart:` section the store got.
func NewService(store Store, cfg Config, opt ServiceOptions) (*Service, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.Log == nil {
		opt.Log = slog.Default()
	}
	gw, err := giveawaysFor(store, opt.Giveaways)
	if err != nil {
		return nil, err
	}
	return &Service{store: store, cfg: cfg, now: opt.Now, log: opt.Log, m: opt.Metrics, stock: map[saleRef]*stockState{},
		gw: gw}, nil
}

// Store is the store under the service.
func (s *Service) Store() Store { return s.store }

// OnStock is told a sale's remaining stock, at most once per
// cart.stock_interval per sale, and at once when it reaches 0.
func (s *Service) OnStock(fn func(room, saleID string, remaining int)) {
	s.hmu.Lock()
	s.onStock = append(s.onStock, fn)
	s.hmu.Unlock()
}

// OnSale is told when a sale starts, ends and settles.
func (s *Service) OnSale(fn func(SaleEvent)) {
	s.hmu.Lock()
	s.onSale = append(s.onSale, fn)
	s.hmu.Unlock()
}

// OnCart is told that a buyer's cart changed by itself (a hold expired), so
// that every tab and phone of theirs gets a fresh `cart` event. Changes a
// caller makes with Add, Remove or Checkout are the caller's to announce
// (it knows the request's ref).
func (s *Service) OnCart(fn func(room, user string)) {
	s.hmu.Lock()
	s.onCart = append(s.onCart, fn)
	s.hmu.Unlock()
}

// OnOrder is told of every new order after it is stored (wake the Outbox).
func (s *Service) OnOrder(fn func(Order)) {
	s.hmu.Lock()
	s.onOrder = append(s.onOrder, fn)
	s.hmu.Unlock()
}

func (s *Service) saleEvent(e SaleEvent) {
	s.hmu.RLock()
	defer s.hmu.RUnlock()
	for _, fn := range s.onSale {
		fn(e)
	}
}

func (s *Service) cartChanged(room, user string) {
	s.hmu.RLock()
	defer s.hmu.RUnlock()
	for _, fn := range s.onCart {
		fn(room, user)
	}
}

// Pin pins sku in room and returns the product card.
func (s *Service) Pin(ctx context.Context, room, sku string) (Product, error) {
	return s.store.Pin(ctx, room, sku)
}

// Unpin clears the pin; ok is false if nothing was pinned.
func (s *Service) Unpin(ctx context.Context, room string) (Product, bool, error) {
	return s.store.Unpin(ctx, room)
}

// Snapshot is the cart part of `welcome`: the pinned product and the sale
// to show (the latest scheduled or open one), each nil if none. It reads
// only the unsettled sales, so a welcome costs the same however many sales
// the room had.
func (s *Service) Snapshot(ctx context.Context, room string) (pinned *Product, sale *Sale, err error) {
	p, ok, err := s.store.Pinned(ctx, room)
	if err != nil {
		return nil, nil, err
	}
	if ok {
		pinned = &p
	}
	sales, err := s.store.Unsettled(ctx, room, s.now())
	if err != nil {
		return nil, nil, err
	}
	for i := len(sales) - 1; i >= 0; i-- {
		if sales[i].State != SaleEnded {
			sale = &sales[i]
			break
		}
	}
	return pinned, sale, nil
}

// StartSale starts a sale and tells OnSale.
func (s *Service) StartSale(ctx context.Context, room string, p SaleParams) (Sale, error) {
	sale, err := s.store.StartSale(ctx, room, p, s.now())
	if err != nil {
		return Sale{}, err
	}
	s.log.Info("sale started", "room", room, "sale", sale.ID, "sku", sale.SKU, "quantity", sale.Quantity, "starts_at", sale.StartsAt)
	s.saleEvent(SaleEvent{Kind: EventSaleStarted, Room: room, Sale: sale})
	return sale, nil
}

// StopSale ends a sale now; ended is false if it had ended already. OnSale
// hears of it if this call ended it.
func (s *Service) StopSale(ctx context.Context, room, saleID string) (sale Sale, ended bool, err error) {
	sale, ended, err = s.store.StopSale(ctx, room, saleID, s.now())
	if err != nil {
		return Sale{}, false, err
	}
	if ended {
		s.log.Info("sale stopped", "room", room, "sale", sale.ID, "sold", sale.Sold, "held", sale.Held)
		s.saleEvent(SaleEvent{Kind: EventSaleEnded, Room: room, Sale: sale})
	}
	return sale, ended, nil
}

// Add is `cart.add`.
func (s *Service) Add(ctx context.Context, room string, p ReserveParams) (ReserveResult, error) {
	now := s.now()
	res, err := s.store.Reserve(ctx, room, p, now)
	switch {
	case err != nil:
		if c := ErrorCode(err); c != "" {
			s.m.reserved(string(c))
		} else {
			s.m.reserved("error")
		}
		return res, err
	case res.Replayed:
		s.m.reserved("replay")
		return res, nil
	}
	s.m.reserved("ok")
	if p.SaleID != "" {
		s.stockChanged(ctx, room, p.SaleID, res.Remaining)
		if res.SoldOut {
			if sale, err := s.store.Sale(ctx, room, p.SaleID, now); err == nil {
				s.m.soldOutAfter(now.Sub(sale.StartsAt))
				s.log.Info("sale sold out", "room", room, "sale", sale.ID, "after", now.Sub(sale.StartsAt))
			}
		}
	}
	return res, nil
}

// Remove is `cart.remove`.
func (s *Service) Remove(ctx context.Context, room, user, reservationID string) (ReleaseResult, error) {
	res, err := s.store.Release(ctx, room, user, reservationID, s.now())
	if err != nil || !res.Released {
		return res, err
	}
	s.m.endedRes("released", 1)
	if res.Reservation.SaleID != "" {
		s.stockChanged(ctx, room, res.Reservation.SaleID, res.Remaining)
	}
	return res, nil
}

// Cart is the buyer's cart now.
func (s *Service) Cart(ctx context.Context, room, user string) ([]Reservation, error) {
	return s.store.Cart(ctx, room, user, s.now())
}

// Checkout is `cart.checkout`; the order is durable when it returns.
func (s *Service) Checkout(ctx context.Context, room, user, key string) (CheckoutResult, error) {
	res, err := s.store.Checkout(ctx, room, user, key, s.now())
	if err != nil || res.Replayed {
		return res, err
	}
	o := res.Order
	s.m.ordered(len(o.Items))
	s.m.endedRes("checked_out", len(o.Items))
	s.log.Info("order stored", "room", room, "order", o.ID, "items", len(o.Items), "total_cents", o.TotalCents, "currency", o.Currency)
	s.hmu.RLock()
	for _, fn := range s.onOrder {
		fn(o)
	}
	s.hmu.RUnlock()
	return res, nil
}

// Run sweeps (expiry, sale ends) every cart.sweep_interval and sends
// throttled stock updates, until ctx ends. Sweeping is idempotent, so every
// node of a cluster runs it.
func (s *Service) Run(ctx context.Context) error {
	defer s.startAuctionCloser(ctx)() // auction_service.go
	sweep := time.NewTicker(s.cfg.SweepInterval)
	defer sweep.Stop()
	flush := time.NewTicker(s.cfg.StockInterval)
	defer flush.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-sweep.C:
			if err := s.Sweep(ctx); err != nil && ctx.Err() == nil {
				s.log.Warn("cart sweep failed", "err", err)
			}
		case <-flush.C:
			s.flushStock(ctx)
			s.tickGiveaways(ctx)
		}
	}
}

// Sweep runs one sweep now and tells the listeners (Run calls it).
func (s *Service) Sweep(ctx context.Context) error {
	res, err := s.store.Sweep(ctx, s.now())
	for _, e := range res.Expired {
		if e.Reservation.SaleID != "" {
			s.stockChanged(ctx, e.Room, e.Reservation.SaleID, e.Remaining)
		}
		s.cartChanged(e.Room, e.Reservation.User)
	}
	s.m.endedRes("expired", len(res.Expired))
	for _, e := range res.Ended {
		s.log.Info("sale ended", "room", e.Room, "sale", e.Sale.ID, "sold", e.Sale.Sold, "held", e.Sale.Held)
		s.saleEvent(SaleEvent{Kind: EventSaleEnded, Room: e.Room, Sale: e.Sale})
	}
	for _, e := range res.Settled {
		s.log.Info("sale settled", "room", e.Room, "sale", e.Sale.ID, "sold", e.Sale.Sold, "returned", e.Sale.Remaining)
		s.smu.Lock()
		delete(s.stock, saleRef{e.Room, e.Sale.ID})
		s.smu.Unlock()
		s.saleEvent(SaleEvent{Kind: EventSaleSettled, Room: e.Room, Sale: e.Sale})
	}
	if _, lerr := s.Lapse(ctx); err == nil {
		err = lerr // unpaid orders past their window (order_service.go)
	}
	return err
}

// stockChanged records that a sale's stock moved. A 0 goes out at once;
// anything else waits for flushStock, which reads the count afresh.
func (s *Service) stockChanged(_ context.Context, room, saleID string, remaining int) {
	s.smu.Lock()
	defer s.smu.Unlock()
	ref := saleRef{room, saleID}
	st := s.stock[ref]
	if st == nil {
		st = &stockState{}
		s.stock[ref] = st
	}
	st.dirty = true
	if remaining == 0 && (!st.hasSent || st.sent != 0) {
		st.sent, st.hasSent, st.last = 0, true, s.now()
		s.emitStock(room, saleID, 0)
	}
}

// flushStock sends the current count of every sale that changed, if its
// last update is at least cart.stock_interval old.
func (s *Service) flushStock(ctx context.Context) {
	s.smu.Lock()
	defer s.smu.Unlock()
	now := s.now()
	for ref, st := range s.stock {
		if !st.dirty || now.Sub(st.last) < s.cfg.StockInterval {
			continue
		}
		sale, err := s.store.Sale(ctx, ref.room, ref.id, now)
		if err != nil {
			if ErrorCode(err) == CodeNotFound {
				delete(s.stock, ref)
			}
			continue
		}
		st.dirty, st.last = false, now
		if !st.hasSent || st.sent != sale.Remaining {
			st.sent, st.hasSent = sale.Remaining, true
			s.emitStock(ref.room, ref.id, sale.Remaining)
		}
	}
}

func (s *Service) emitStock(room, saleID string, remaining int) {
	s.hmu.RLock()
	defer s.hmu.RUnlock()
	for _, fn := range s.onStock {
		fn(room, saleID, remaining)
	}
}
