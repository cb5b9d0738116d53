package cart

import (
	"context"
	"time"
)

// Store keeps catalogs, sales, carts and orders. LocalStore serves one node,
// RedisStore a cluster; runStoreConformance holds both to the same answers.
//
// Every method that depends on the clock takes now, so that tests (and the
// Service's clock) decide when things expire. Failures a client caused are
// *Error with a Code; anything else is a storage failure.
type Store interface {
	// Catalog. PutProduct sets Stock to the units reservable now (held
	// units are not touched and return on top of it when released).
	PutProduct(ctx context.Context, room string, p Product) (Product, error)
	Product(ctx context.Context, room, sku string) (Product, error)
	Products(ctx context.Context, room string) ([]Product, error)
	// DeleteProduct refuses while units are held in carts or a sale of the
	// product is not settled; it unpins the product.
	DeleteProduct(ctx context.Context, room, sku string) error

	// Pin makes sku the room's pinned product; Unpin clears it and returns
	// what was pinned (ok false if nothing was).
	Pin(ctx context.Context, room, sku string) (Product, error)
	Unpin(ctx context.Context, room string) (p Product, ok bool, err error)
	Pinned(ctx context.Context, room string) (p Product, ok bool, err error)

	// StartSale takes p.Quantity from the product's stock. At most one sale
	// per product is scheduled or open at a time.
	StartSale(ctx context.Context, room string, p SaleParams, now time.Time) (Sale, error)
	// StopSale ends a scheduled or open sale now. Ended reports whether this
	// call ended it (false: it had ended already).
	StopSale(ctx context.Context, room, saleID string, now time.Time) (s Sale, ended bool, err error)
	Sale(ctx context.Context, room, saleID string, now time.Time) (Sale, error)
	// Sales lists the room's sales, oldest first.
	Sales(ctx context.Context, room string, now time.Time) ([]Sale, error)
	// Unsettled lists the sales that are scheduled, open, or ended with
	// units still held, oldest first: what a welcome needs, however many
	// sales the room had before.
	Unsettled(ctx context.Context, room string, now time.Time) ([]Sale, error)

	// Reserve holds units for p.User until now + Config.Hold. A key of a
	// reservation that is held, or was checked out (within
	// Config.KeyRetention and the buyer's last Config.MaxKeys keys),
	// returns that reservation as it is now with Replayed set and changes
	// nothing; a retry asking for something else under the same key is
	// bad_request. A released or expired reservation is forgotten with its
	// key: that key reserves afresh. Past the buyer's caps
	// (Config.MaxHolds, MaxHeldUnits, ListPriceLimit) it is limit_reached.
	Reserve(ctx context.Context, room string, p ReserveParams, now time.Time) (ReserveResult, error)
	// Release returns a held reservation's units and forgets it. One that
	// ended (released, expired) is gone, so not_found, as is another
	// buyer's; one that was checked out is bad_request.
	Release(ctx context.Context, room, user, reservationID string, now time.Time) (ReleaseResult, error)
	// Cart lists the buyer's held reservations that have not expired.
	Cart(ctx context.Context, room, user string, now time.Time) ([]Reservation, error)
	// Checkout turns the buyer's held, unexpired reservations into one order,
	// stored durably (with its outbox delivery) before it returns. A key
	// the buyer used before (within Config.KeyRetention and the buyer's
	// last Config.MaxKeys keys) returns that order with Replayed set. An empty
	// cart is expired if some hold of the buyer expired within Config.Hold,
	// bad_request otherwise.
	Checkout(ctx context.Context, room, user, key string, now time.Time) (CheckoutResult, error)
	// Sweep expires due reservations, ends sales whose time is up and
	// settles ended sales with nothing held, in every room. It reports what
	// it changed so that the caller can tell viewers.
	Sweep(ctx context.Context, now time.Time) (SweepResult, error)

	// Orders lists a room's orders newest first, limit at a time; pass the
	// returned Next as cursor for the following page ("" = no more).
	Orders(ctx context.Context, room, cursor string, limit int) (OrderPage, error)
	Order(ctx context.Context, room, id string) (Order, error)
	// OrderLife moves orders through their states (order_life.go).
	OrderLife

	Deliveries
	Close() error
}

// Deliveries is the webhook outbox queue: every order is put on it in the
// checkout's own transaction, and stays until CompleteDelivery.
type Deliveries interface {
	// ClaimDeliveries returns up to max due deliveries and hides each from
	// other claimers until now + lease (a claimer that dies loses them to
	// the next one after the lease).
	ClaimDeliveries(ctx context.Context, now time.Time, lease time.Duration, max int) ([]Delivery, error)
	CompleteDelivery(ctx context.Context, d Delivery) error
	// RetryDelivery makes d due again at next (unless it was completed).
	RetryDelivery(ctx context.Context, d Delivery, next time.Time) error

	// ParkDelivery takes d off the queue after its last failed attempt and
	// keeps it as failed, with why (unless it was completed meanwhile).
	ParkDelivery(ctx context.Context, d Delivery, reason string, now time.Time) error
	// FailedDeliveries lists parked deliveries by room, then order id (so
	// by time within a room), limit at a time; pass the returned Next as
	// cursor for the following page.
	FailedDeliveries(ctx context.Context, cursor string, limit int) (FailedPage, error)
	// RequeueDelivery puts a parked delivery back on the queue, due at now
	// with its attempts counted from 0 again; not_found if none is parked.
	RequeueDelivery(ctx context.Context, room, orderID string, now time.Time) error
}

// Delivery is one order waiting for the webhook.
type Delivery struct {
	Room    string
	OrderID string
	Attempt int    // 1 for the first claim
	Order   []byte // the order as stored (JSON)
}

// ReserveResult is what Reserve did.
type ReserveResult struct {
	Reservation Reservation
	// Replayed: the key was used before; nothing changed.
	Replayed bool
	// Remaining is the sale's (or, without a sale, the product's) remaining
	// stock after the call.
	Remaining int
	// SoldOut: this call took the sale's last unit, for the first time.
	SoldOut bool
	// Cart is the buyer's cart after the call, as Cart lists it at now:
	// the answer to the buyer comes with the reservation, no second read.
	Cart []Reservation
}

// ReleaseResult is what Release did.
type ReleaseResult struct {
	Reservation Reservation
	// Released: this call returned the units (always, without an error).
	Released  bool
	Remaining int // of the sale or product, when Released
	// Cart is the buyer's cart after the call, as Cart lists it at now.
	Cart []Reservation
}

// CheckoutResult is what Checkout did.
type CheckoutResult struct {
	Order    Order
	Replayed bool
	// Cart is what the buyer still holds after the call (reservations made
	// while the order was being stored), as Cart lists it at now.
	Cart []Reservation
}

// SweepResult lists what a Sweep changed.
type SweepResult struct {
	Expired []Expired  // reservations that expired, with the stock after
	Ended   []RoomSale // sales that ended by time
	Settled []RoomSale // sales whose remaining went back to the product
}

// RoomSale is a sale with its room.
type RoomSale struct {
	Room string
	Sale Sale
}

// Expired is one expired reservation.
type Expired struct {
	Room        string
	Reservation Reservation
	Remaining   int
}

// OrderPage is one page of Orders.
type OrderPage struct {
	Orders []Order `json:"orders"`
	Next   string  `json:"next,omitempty"`
}

const maxOrdersPage = 500

func pageLimit(limit int) int {
	if limit <= 0 || limit > maxOrdersPage {
		return 100
	}
	return limit
}
