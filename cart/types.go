package cart

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"liveroom/room"
)

// Bounds on what a client may ask for. Prices and totals stay far below 2^53
// so they are exact in JavaScript and in Redis' Lua numbers.
const (
	MaxPriceCents   = 100_000_000_000 // 1e9 in major units
	MaxStock        = 1_000_000_000
	MaxSaleQuantity = 10_000_000
	MaxQtyPerAdd    = 1000
	// MaxOrderTotalCents bounds one order's total, about 900 times below
	// 2^53 (no cart may add up to a total a float64 cannot hold exactly).
	MaxOrderTotalCents = 10_000_000_000_000
	MaxStartsIn        = 24 * 60 * 60 // seconds
	MaxDuration        = 24 * 60 * 60 // seconds
	maxTitle           = 200
	maxImageURL        = 2048
	maxKey             = 128
	maxUser            = 128
)

var (
	skuPattern      = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)
	currencyPattern = regexp.MustCompile(`^[A-Z]{3}$`)
	idPattern       = regexp.MustCompile(`^[a-z]_[0-9a-f]{1,40}$`)
)

// Product is one item of a room's catalog. Stock is the number of units that
// can be reserved right now at the list price: it excludes units held in
// carts and units given to a sale. An admin upsert sets it; held units that
// are released later come back on top of it.
type Product struct {
	SKU        string `json:"sku"`
	Title      string `json:"title"`
	PriceCents int64  `json:"price_cents"`
	Currency   string `json:"currency"`
	ImageURL   string `json:"image_url"`
	Stock      int    `json:"stock"`
}

// Validate reports the first invalid field by its JSON name.
func (p Product) Validate() error {
	if !skuPattern.MatchString(p.SKU) {
		return fieldErr("sku", "must be 1-64 of A-Z, a-z, 0-9, '.', '_' or '-', starting with a letter or digit")
	}
	if n := utf8.RuneCountInString(p.Title); n == 0 || n > maxTitle || !utf8.ValidString(p.Title) || strings.TrimSpace(p.Title) == "" || hasControl(p.Title) {
		return fieldErr("title", "must be 1-%d characters of printable UTF-8", maxTitle)
	}
	if p.PriceCents < 0 || p.PriceCents > MaxPriceCents {
		return fieldErr("price_cents", "must be 0..%d", int64(MaxPriceCents))
	}
	if !currencyPattern.MatchString(p.Currency) {
		return fieldErr("currency", "must be an ISO 4217 code such as USD or EUR")
	}
	if p.ImageURL != "" {
		u, err := url.Parse(p.ImageURL)
		// An absolute path is an image this server hosts (same origin).
		sameOrigin := err == nil && u.Scheme == "" && u.Host == "" && strings.HasPrefix(p.ImageURL, "/") && !strings.HasPrefix(p.ImageURL, "//")
		absolute := err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
		if len(p.ImageURL) > maxImageURL || hasControl(p.ImageURL) || !(sameOrigin || absolute) {
			return fieldErr("image_url", "must be empty, an http(s) URL or a path on this server (/...) of at most %d bytes", maxImageURL)
		}
	}
	if p.Stock < 0 || p.Stock > MaxStock {
		return fieldErr("stock", "must be 0..%d", MaxStock)
	}
	return nil
}

func hasControl(s string) bool {
	return strings.IndexFunc(s, unicode.IsControl) >= 0
}

// SaleParams is what a host sends in `sale.start`.
type SaleParams struct {
	SKU          string `json:"sku"`
	PriceCents   int64  `json:"price_cents"`
	Quantity     int    `json:"quantity"`
	PerUserLimit int    `json:"per_user_limit"` // 0 = no limit
	StartsInS    int    `json:"starts_in_s"`    // countdown before it opens
	DurationS    int    `json:"duration_s"`     // how long it is open
	// PayWithinS overrides cart.pay_within for orders of this sale's units
	// (order_life.go); nil = the config's, 0 = paid at once.
	PayWithinS *int `json:"pay_within_s,omitempty"`
}

// Validate reports the first invalid field by its JSON name. Whether the
// product exists and has the stock is the store's check.
func (p SaleParams) Validate() error {
	if !skuPattern.MatchString(p.SKU) {
		return fieldErr("sku", "must name a product")
	}
	if p.PriceCents < 0 || p.PriceCents > MaxPriceCents {
		return fieldErr("price_cents", "must be 0..%d", int64(MaxPriceCents))
	}
	if p.Quantity < 1 || p.Quantity > MaxSaleQuantity {
		return fieldErr("quantity", "must be 1..%d", MaxSaleQuantity)
	}
	if p.PerUserLimit < 0 || p.PerUserLimit > p.Quantity {
		return fieldErr("per_user_limit", "must be 0 (no limit)..quantity")
	}
	if p.StartsInS < 0 || p.StartsInS > MaxStartsIn {
		return fieldErr("starts_in_s", "must be 0..%d", MaxStartsIn)
	}
	if p.DurationS < 1 || p.DurationS > MaxDuration {
		return fieldErr("duration_s", "must be 1..%d", MaxDuration)
	}
	if p.PayWithinS != nil && (*p.PayWithinS < 0 || *p.PayWithinS > MaxPayWithinS) {
		return fieldErr("pay_within_s", "must be 0 (paid at once)..%d", MaxPayWithinS)
	}
	return nil
}

// SaleState is derived from the clock: see the package comment.
type SaleState string

const (
	SaleScheduled SaleState = "scheduled"
	SaleOpen      SaleState = "open"
	SaleEnded     SaleState = "ended"
)

// Sale is a flash sale of one product. Quantity = Sold + Held + Remaining.
type Sale struct {
	ID           string    `json:"id"`
	SKU          string    `json:"sku"`
	PriceCents   int64     `json:"price_cents"`
	Currency     string    `json:"currency"`
	Quantity     int       `json:"quantity"`
	Remaining    int       `json:"remaining"`
	Held         int       `json:"held"`
	Sold         int       `json:"sold"`
	PerUserLimit int       `json:"per_user_limit"`
	StartsAt     time.Time `json:"starts_at"`
	EndsAt       time.Time `json:"ends_at"`
	State        SaleState `json:"state"`
	// Settled: ended with nothing held; Remaining went back to the product.
	Settled bool `json:"settled,omitempty"`
	// PayWithinS is the sale's own payment window (nil: cart.pay_within).
	PayWithinS *int `json:"pay_within_s,omitempty"`
}

func saleState(starts, ends, now time.Time) SaleState {
	switch {
	case !now.Before(ends):
		return SaleEnded
	case now.Before(starts):
		return SaleScheduled
	}
	return SaleOpen
}

// ReserveParams is a `cart.add`: exactly one of SaleID (the sale price, its
// stock and limit) or SKU (the product's list price and stock).
type ReserveParams struct {
	User   string `json:"-"`
	SaleID string `json:"sale_id"`
	SKU    string `json:"sku"`
	Qty    int    `json:"qty"`
	Key    string `json:"key"` // idempotency key, unique per buyer
}

// Validate reports the first invalid field by its JSON name.
func (p ReserveParams) Validate() error {
	if err := validUser(p.User); err != nil {
		return err
	}
	switch {
	case p.SaleID == "" && p.SKU == "":
		return fieldErr("sale_id", "one of sale_id or sku is required")
	case p.SaleID != "" && p.SKU != "":
		return fieldErr("sku", "give sale_id or sku, not both")
	case p.SaleID != "" && !idPattern.MatchString(p.SaleID):
		return fieldErr("sale_id", "is not a sale id")
	case p.SKU != "" && !skuPattern.MatchString(p.SKU):
		return fieldErr("sku", "is not a product sku")
	}
	if p.Qty < 1 || p.Qty > MaxQtyPerAdd {
		return fieldErr("qty", "must be 1..%d", MaxQtyPerAdd)
	}
	return validKey(p.Key)
}

// validCheckout checks what a checkout names: the room, the buyer and the
// idempotency key.
func validCheckout(room, user, key string) error {
	if err := validRoom(room); err != nil {
		return err
	}
	if err := validUser(user); err != nil {
		return err
	}
	return validKey(key)
}

func validKey(k string) error {
	if k == "" || len(k) > maxKey || !utf8.ValidString(k) || hasControl(k) {
		return fieldErr("key", "must be 1-%d printable bytes", maxKey)
	}
	return nil
}

func validUser(u string) error {
	if u == "" || len(u) > maxUser || !utf8.ValidString(u) {
		return &Error{Code: CodeBadRequest, Field: "user", Message: "a signed-in user is required"}
	}
	return nil
}

func validRoom(scope string) error {
	if !room.ValidScope(scope) { // a room's data scope: its id, maybe ~incarnation
		return fieldErr("room", "is not a room id")
	}
	return nil
}

// ResStatus is where a reservation is in its life.
type ResStatus string

const (
	StatusHeld       ResStatus = "held"
	StatusReleased   ResStatus = "released"
	StatusExpired    ResStatus = "expired"
	StatusCheckedOut ResStatus = "checked_out"
)

// Reservation holds Qty units for one buyer until ExpiresAt. It marshals as
// an item of the `cart` event.
type Reservation struct {
	ID         string    `json:"reservation_id"`
	SaleID     string    `json:"sale_id,omitempty"`
	SKU        string    `json:"sku"`
	Qty        int       `json:"qty"`
	PriceCents int64     `json:"price_cents"`
	Currency   string    `json:"currency"`
	ExpiresAt  time.Time `json:"expires_at"`
	Status     ResStatus `json:"status"`
	Key        string    `json:"key,omitempty"`
	User       string    `json:"user,omitempty"`
	OrderID    string    `json:"order_id,omitempty"`
}

// Order is a checked-out cart; it is stored durably before anyone is told.
type Order struct {
	ID   string `json:"id"`
	Room string `json:"room"` // the room's id, as clients see it
	// Incarnation is the incarnation of the room the order was placed in
	// (room.Scope): a room deleted and created again is a new one.
	Incarnation string      `json:"incarnation,omitempty"`
	User        string      `json:"user"`
	Items       []OrderItem `json:"items"`
	Currency    string      `json:"currency"`
	TotalCents  int64       `json:"total_cents"`
	Key         string      `json:"key"` // the buyer's checkout idempotency key
	CreatedAt   time.Time   `json:"created_at"`
	// The order's life (order_life.go): State, and when it got there.
	// PayBy is the end of the payment window of an awaiting order.
	State        OrderState   `json:"state,omitempty"`
	PayBy        *time.Time   `json:"pay_by,omitempty"`
	PaidAt       *time.Time   `json:"paid_at,omitempty"`
	FulfilledAt  *time.Time   `json:"fulfilled_at,omitempty"`
	CancelledAt  *time.Time   `json:"cancelled_at,omitempty"`
	CancelReason CancelReason `json:"cancel_reason,omitempty"`
}

// OrderItem is one reservation turned into a purchase.
type OrderItem struct {
	ReservationID string `json:"reservation_id"`
	SaleID        string `json:"sale_id,omitempty"`
	AuctionID     string `json:"auction_id,omitempty"` // an auction's winning bid (auction.go)
	SKU           string `json:"sku"`
	Qty           int    `json:"qty"`
	PriceCents    int64  `json:"price_cents"`
}

// newOrder builds the order for the held reservations rs (non-empty).
func newOrder(id, scope, user, key string, rs []Reservation, now time.Time) (Order, error) {
	roomID, inc := room.SplitScope(scope)
	o := Order{ID: id, Room: roomID, Incarnation: inc, User: user, Key: key, CreatedAt: now, Currency: rs[0].Currency}
	for _, r := range rs {
		if r.Currency != o.Currency {
			return Order{}, errf(CodeBadRequest, "the cart mixes %s and %s; check out one currency at a time", o.Currency, r.Currency)
		}
		o.Items = append(o.Items, OrderItem{ReservationID: r.ID, SaleID: r.SaleID, SKU: r.SKU, Qty: r.Qty, PriceCents: r.PriceCents})
		// Each term is at most MaxQtyPerAdd·MaxPriceCents and the sum is
		// checked at every step, so nothing overflows on the way.
		if r.Qty < 0 || r.PriceCents < 0 || r.Qty > MaxQtyPerAdd || r.PriceCents > MaxPriceCents {
			return Order{}, errf(CodeBadRequest, "a reservation of %s is out of bounds", r.SKU)
		}
		o.TotalCents += int64(r.Qty) * r.PriceCents
		if o.TotalCents > MaxOrderTotalCents {
			return Order{}, &Error{Code: CodeBadRequest, Field: "total_cents",
				Message: fmt.Sprintf("the order's total would pass %d cents, the most one order may be; check out fewer items", int64(MaxOrderTotalCents))}
		}
	}
	return o, nil
}

// Stores keep times at millisecond precision (Redis stores unix ms), so that
// both backends answer the same.
func toMS(t time.Time) int64        { return t.UnixMilli() }
func fromMS(ms int64) time.Time     { return time.UnixMilli(ms).UTC() }
func truncMS(t time.Time) time.Time { return fromMS(toMS(t)) }

// newID returns prefix_<hex>. Order ids start with the creation time so that
// their byte order is their time order (the orders cursor relies on it).
func newID(prefix string) string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return prefix + "_" + hex.EncodeToString(b[:])
}

func newOrderID(now time.Time) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("o_%012x%s", toMS(now), hex.EncodeToString(b[:]))
}
