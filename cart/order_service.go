package cart

import (
	"context"
	"time"
)

// The Service's part of the order life: transitions asked by the admin API
// (the merchant's backend) and by buyers, and the lapse sweep; each change
// that happened is told to OnOrderChange (the buyer's tabs, the outbox)
// and units that went back to a running sale move its sale.stock.

// lapsePerSweep bounds the orders one sweep lapses (the rest wait for the next).
const lapsePerSweep = 5000

// OnOrderChange is told of every transition that happened, with the room
// (data scope) of the order.
func (s *Service) OnOrderChange(fn func(room string, c OrderChange)) {
	s.hmu.Lock()
	s.onChange = append(s.onChange, fn)
	s.hmu.Unlock()
}

// TransitionOrder moves an order (POST …/orders/{id}/paid|fulfilled|cancel,
// the buyer's order.cancel). Asking again for where the order is answers it
// unchanged.
func (s *Service) TransitionOrder(ctx context.Context, room, id string, t Transition) (OrderChange, error) {
	if !orderIDPattern.MatchString(id) {
		return OrderChange{}, errf(CodeNotFound, "no order %q", id)
	}
	c, err := s.store.TransitionOrder(ctx, room, id, t, s.now())
	if err != nil || !c.Changed {
		return c, err
	}
	s.orderChanged(ctx, room, c)
	return c, nil
}

// Lapse cancels the orders whose payment window ended (Sweep calls it).
func (s *Service) Lapse(ctx context.Context) (int, error) {
	res, err := s.store.Lapse(ctx, s.now(), lapsePerSweep)
	for _, c := range res.Lapsed {
		s.orderChanged(ctx, c.Room, c.OrderChange)
	}
	return len(res.Lapsed), err
}

func (s *Service) orderChanged(ctx context.Context, room string, c OrderChange) {
	o := c.Order
	s.log.Info("order "+string(o.State), "room", room, "order", o.ID, "reason", o.CancelReason, "total_cents", o.TotalCents)
	if s.m != nil {
		s.m.transitions.WithLabelValues(string(o.State), string(o.CancelReason)).Inc()
	}
	for _, r := range c.Returned {
		if r.ToSale {
			s.stockChanged(ctx, room, r.SaleID, r.Remaining)
		}
	}
	s.hmu.RLock()
	defer s.hmu.RUnlock()
	for _, fn := range s.onChange {
		fn(room, c)
	}
}

// PayURL is the pay_url of an awaiting order: the room's checkout URL
// template if roomTemplate is set, else cart.checkout_url; "" without
// cart.pay_secret.
func (s *Service) PayURL(o Order, roomTemplate string) string {
	t := s.cfg.CheckoutURL
	if roomTemplate != "" {
		t = roomTemplate
	}
	if s.cfg.PaySecret == "" {
		return "" // never an unsigned (forgeable) pay_url: a room's template needs cart.pay_secret too
	}
	return PayURL(t, s.cfg.PaySecret, o)
}

// orderView is an order as its buyer sees it (order.confirmed,
// order.updated).
type orderView struct {
	ID           string       `json:"id"`
	Items        []OrderItem  `json:"items"`
	Currency     string       `json:"currency"`
	TotalCents   int64        `json:"total_cents"`
	Key          string       `json:"key"`
	CreatedAt    time.Time    `json:"created_at"`
	State        OrderState   `json:"state"`
	PayBy        *time.Time   `json:"pay_by,omitempty"`
	PayURL       string       `json:"pay_url,omitempty"`
	CancelReason CancelReason `json:"cancel_reason,omitempty"`
}

func viewOrder(o Order, payURL string) orderView {
	return orderView{ID: o.ID, Items: o.Items, Currency: o.Currency, TotalCents: o.TotalCents, Key: o.Key,
		CreatedAt: o.CreatedAt, State: o.stateOf(), PayBy: o.PayBy, PayURL: payURL, CancelReason: o.CancelReason}
}
