package cart

import (
	"context"
	"strings"
	"time"
)

// An order's life (docs/orders.md):
//
//	awaiting_payment ──paid──▶ paid ──fulfilled──▶ fulfilled
//	        │                   │
//	        └──cancel/lapse──▶ cancelled ◀──cancel (merchant)
//
// Every transition is one compare-and-set in the store (a bbolt transaction
// or one Lua script), idempotent (asking for the state the order is already
// in answers the order and changes nothing), and enqueues its own webhook
// delivery in the same write. A cancel returns the order's units: to the
// sale while it runs, else to the product.

// OrderState is where an order is in its life.
type OrderState string

const (
	OrderAwaitingPayment OrderState = "awaiting_payment"
	OrderPaid            OrderState = "paid"
	OrderFulfilled       OrderState = "fulfilled"
	OrderCancelled       OrderState = "cancelled"
)

// ValidOrderState reports whether s names a state (for the ?state= filter).
func ValidOrderState(s string) bool {
	switch OrderState(s) {
	case OrderAwaitingPayment, OrderPaid, OrderFulfilled, OrderCancelled:
		return true
	}
	return false
}

// CancelReason says who cancelled an order.
type CancelReason string

const (
	CancelByBuyer    CancelReason = "buyer"
	CancelByMerchant CancelReason = "merchant"
	CancelByLapse    CancelReason = "lapse" // unpaid past its window
)

// MaxPayWithinS bounds a payment window (a week).
const MaxPayWithinS = 7 * 24 * 60 * 60

// Codes of transitions that are no longer possible (HTTP 409).
const (
	CodeOrderCancelled Code = "order_cancelled" // e.g. a payment reported after the lapse: refund it
	CodeOrderNotPaid   Code = "order_not_paid"  // fulfilled before paid
	CodeOrderPaid      Code = "order_paid"      // the buyer cancels after paying
	CodeOrderFulfilled Code = "order_fulfilled" // cancelled after it was fulfilled
)

// Action is a transition asked for.
type Action string

const (
	ActPay     Action = "paid"
	ActFulfill Action = "fulfilled"
	ActCancel  Action = "cancel"
)

// Transition is one request to move an order. User, for a buyer's cancel,
// must own the order (someone else's is not_found).
type Transition struct {
	Action Action
	By     CancelReason // for ActCancel: buyer, merchant or lapse
	User   string
}

// OrderChange is what a transition did.
type OrderChange struct {
	Order Order
	// Changed: this call moved the order (false: it was there already).
	Changed bool
	// Returned lists where a cancel put the units back.
	Returned []StockReturn
}

// StockReturn is units of a cancelled order going back: to a running sale
// (ToSale, Remaining the sale's count after) or to the product.
type StockReturn struct {
	SaleID    string
	SKU       string
	Qty       int
	ToSale    bool
	Remaining int
}

// LapseResult lists the orders a sweep cancelled for lapse, with their room.
type LapseResult struct {
	Lapsed []RoomOrderChange
}

// RoomOrderChange is an OrderChange with its room (data scope).
type RoomOrderChange struct {
	Room string
	OrderChange
}

// OrderLife is what a Store adds for the order's life; both stores have it.
type OrderLife interface {
	// TransitionOrder moves an order (see the package's order life).
	TransitionOrder(ctx context.Context, room, id string, t Transition, now time.Time) (OrderChange, error)
	// Lapse cancels up to max awaiting orders whose window ended by now,
	// in every room, returning their units.
	Lapse(ctx context.Context, now time.Time, max int) (LapseResult, error)
	// OrdersIn is Orders filtered by state ("" = all). A page may hold
	// fewer than limit orders with Next set (the scan is bounded).
	OrdersIn(ctx context.Context, room string, state OrderState, cursor string, limit int) (OrderPage, error)
	// AwaitingOrders lists the buyer's orders awaiting payment (at most
	// maxAwaitingShown, oldest first): what their page shows after a
	// reload.
	AwaitingOrders(ctx context.Context, room, user string) ([]Order, error)
}

// maxAwaitingShown bounds the awaiting orders a welcome carries.
const maxAwaitingShown = 20

// stateOf reads an order's state; orders stored before orders had a life
// were paid at checkout.
func (o Order) stateOf() OrderState {
	if o.State == "" {
		return OrderPaid
	}
	return o.State
}

// startLife sets a new order's initial state: awaiting payment until
// now + within, or paid at once when within is 0. Every source of orders
// (checkout, auctions, giveaways) calls it before the store writes the
// order (LocalStore.createOrder, the Lua new_order).
func startLife(o *Order, within time.Duration, now time.Time) {
	now = truncMS(now)
	if within <= 0 {
		o.State, o.PaidAt, o.PayBy = OrderPaid, &now, nil
		return
	}
	by := now.Add(within)
	o.State, o.PayBy = OrderAwaitingPayment, &by
}

// payWindow is the window of an order of items: the shortest of its sales'
// windows, cart.pay_within for list-price items and sales without one.
func payWindow(def time.Duration, saleWindows []*int, hasList bool) time.Duration {
	w, set := time.Duration(0), false
	pick := func(d time.Duration) {
		if !set || d < w {
			w, set = d, true
		}
	}
	if hasList {
		pick(def)
	}
	for _, s := range saleWindows {
		if s == nil {
			pick(def)
		} else {
			pick(time.Duration(*s) * time.Second)
		}
	}
	if !set {
		return def
	}
	return w
}

// next applies t to o at now. It returns the order after, whether it
// changed, and the error for a transition no longer possible.
func (o Order) next(t Transition, now time.Time) (Order, bool, error) {
	now = truncMS(now)
	st := o.stateOf()
	if t.Action == ActCancel && t.By == CancelByBuyer && t.User != o.User {
		return o, false, errf(CodeNotFound, "no order %q of yours", o.ID)
	}
	n := o
	n.State = st
	switch t.Action {
	case ActPay:
		switch st {
		case OrderPaid, OrderFulfilled:
			return n, false, nil
		case OrderCancelled:
			return n, false, errf(CodeOrderCancelled, "order %s was cancelled (%s) before the payment was reported; refund it", o.ID, o.CancelReason)
		}
		n.State, n.PaidAt = OrderPaid, &now
	case ActFulfill:
		switch st {
		case OrderFulfilled:
			return n, false, nil
		case OrderCancelled:
			return n, false, errf(CodeOrderCancelled, "order %s was cancelled", o.ID)
		case OrderAwaitingPayment:
			return n, false, errf(CodeOrderNotPaid, "order %s is awaiting payment", o.ID)
		}
		n.State, n.FulfilledAt = OrderFulfilled, &now
	case ActCancel:
		switch {
		case st == OrderCancelled:
			return n, false, nil
		case st == OrderFulfilled:
			return n, false, errf(CodeOrderFulfilled, "order %s was fulfilled", o.ID)
		case st == OrderPaid && t.By != CancelByMerchant:
			return n, false, errf(CodeOrderPaid, "order %s is paid; ask the shop to cancel it", o.ID)
		case t.By == CancelByLapse && (o.PayBy == nil || now.Before(*o.PayBy)):
			return n, false, nil // not due (a payment window that was extended, a clock behind)
		}
		n.State, n.CancelledAt, n.CancelReason = OrderCancelled, &now, t.By
	default:
		return o, false, errf(CodeBadRequest, "unknown order action %q", t.Action)
	}
	return n, true, nil
}

// Webhook event types and the delivery id of each: the order id for
// order.created (as before), id.event for a transition, so that a receiver
// deduplicating by webhook-id sees each transition once.
const (
	EventOrderCreated   = "order.created"
	EventOrderPaid      = "order.paid"
	EventOrderFulfilled = "order.fulfilled"
	EventOrderCancelled = "order.cancelled"
)

func transitionEvent(s OrderState) string { return "order." + string(s) }

// deliveryID is the outbox key of an order's event.
func deliveryID(orderID string, s OrderState) string { return orderID + "." + string(s) }

// splitDelivery reads an outbox key: the order id and the event type.
func splitDelivery(id string) (orderID, event string) {
	oid, st, ok := strings.Cut(id, ".")
	if !ok {
		return id, EventOrderCreated
	}
	return oid, transitionEvent(OrderState(st))
}
