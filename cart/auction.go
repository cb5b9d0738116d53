package cart

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"time"
	"unicode/utf8"
)

// Live auctions: one unit of a product, sold to the highest bidder.
//
// Rules (docs/auctions.md has the long form; AuctionStore implementations
// and the property test's model follow exactly these):
//
//   - The unit is taken from the product's stock at start and held (counted
//     with units held in carts) until the end: sold to the winner, or back
//     to stock if there is no sale.
//   - A bid is accepted only if it is at least the next minimum: the start
//     price while nobody has bid, else the leading amount plus the increment
//     of the ladder (Increment). The leader cannot bid against themselves,
//     the host cannot bid, a removed bidder cannot bid again.
//   - A proxy maximum bids for its owner: while a bidder other than the
//     leader has a maximum at least the next minimum, the one with the
//     highest maximum (set first on a tie; raising a maximum sets it anew)
//     bids exactly the next minimum. Maximums are never published.
//   - Soft close: a bid accepted less than extend_s before the end moves the
//     end to now + extend_s. extend_s 0 is sudden death: the end never moves.
//   - Time is one clock: Redis TIME inside the scripts (the room lock and
//     the node's clock on one node). A bid at or after the end is refused.
//   - At the end the leader wins if the leading amount is at least the
//     reserve; the order is created with the close, through the durable order
//     path and webhook outbox of a checkout. Closing is idempotent: every
//     node's sweep may try, exactly one close happens.
//   - auction.stop (host) cancels a running auction: no sale, unit back.
//   - A removed bidder's bids and maximum stop counting: the lead falls back
//     to the best remaining bid (then maximums may answer as above).

// Auction limits.
const (
	MaxAuctionDuration = 60 * 60 // seconds
	MaxAuctionExtend   = 120     // seconds
	// MaxRunningAuctions per room: one auction at a time is what a live
	// show runs; it also bounds what a host can make the server hold.
	MaxRunningAuctions = 1
	// maxMaxSets bounds how often one bidder may set a maximum in one
	// auction while leading (a non-leader's accepted maximum raises the
	// price, so the ladder bounds those).
	maxMaxSets  = 50
	maxRemoved  = 1000
	maxBidName  = 64
	proxyRounds = 1_000_000 // a safety bound; the ladder ends long before
)

// Auction error codes (besides bad_request, not_found, limit_reached).
const (
	CodeBidTooLow     Code = "bid_too_low"     // below the next minimum
	CodeAuctionEnded  Code = "auction_ended"   // at or after the end, or stopped
	CodeAlreadyLeader Code = "already_leading" // the leader bidding again
)

// Increment is the default ladder: the smallest raise over a leading
// amount of price cents.
//
//	under $20       $1
//	$20 - $100      $2
//	$100 - $500     $5
//	$500 - $1,000   $10
//	$1,000 - $5,000 $25
//	from $5,000     1% of the price, rounded up to whole dollars
//
// The ladder keeps the number of steps from any start to MaxPriceCents
// under 1,700, which bounds both a proxy war and the bids an auction keeps.
// auction_redis_lua.go has the same ladder in Lua.
func Increment(price int64) int64 {
	switch {
	case price < 2_000:
		return 100
	case price < 10_000:
		return 200
	case price < 50_000:
		return 500
	case price < 100_000:
		return 1_000
	case price < 500_000:
		return 2_500
	}
	return (price + 9_999) / 10_000 * 100
}

// AuctionParams is what a host sends in `auction.start`.
type AuctionParams struct {
	SKU          string `json:"sku"`
	StartCents   int64  `json:"start_cents"`
	DurationS    int    `json:"duration_s"`
	ExtendS      int    `json:"extend_s"` // 0 = sudden death
	ReserveCents int64  `json:"reserve_cents"`
	Increments   Ladder `json:"increments,omitempty"` // auction_ladder.go; empty = the default
	Host         string `json:"-"`
}

// Validate reports the first invalid field by its JSON name.
func (p AuctionParams) Validate() error {
	if err := validUser(p.Host); err != nil {
		return err
	}
	if !skuPattern.MatchString(p.SKU) {
		return fieldErr("sku", "must name a product")
	}
	if p.StartCents < 0 || p.StartCents > MaxPriceCents {
		return fieldErr("start_cents", "must be 0..%d", int64(MaxPriceCents))
	}
	if p.DurationS < 1 || p.DurationS > MaxAuctionDuration {
		return fieldErr("duration_s", "must be 1..%d", MaxAuctionDuration)
	}
	if p.ExtendS < 0 || p.ExtendS > MaxAuctionExtend {
		return fieldErr("extend_s", "must be 0 (sudden death)..%d", MaxAuctionExtend)
	}
	if p.ReserveCents < 0 || p.ReserveCents > MaxPriceCents {
		return fieldErr("reserve_cents", "must be 0 (none)..%d", int64(MaxPriceCents))
	}
	return p.Increments.Validate()
}

// AuctionState is where an auction is in its life.
type AuctionState string

const (
	AuctionRunning AuctionState = "running"
	AuctionEnded   AuctionState = "ended"   // closed by time: sold or no sale
	AuctionStopped AuctionState = "stopped" // cancelled by the host
)

// Bidder is a bidder as viewers see them.
type Bidder struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// Auction is an auction as the store has it. Maximums and the reserve
// amount are never in it (ReserveMet says whether the lead meets it).
type Auction struct {
	ID          string       `json:"auction_id"`
	SKU         string       `json:"sku"`
	Currency    string       `json:"currency"`
	StartCents  int64        `json:"start_cents"`
	ExtendS     int          `json:"extend_s"`
	Increments  Ladder       `json:"increments,omitempty"` // the auction's ladder; absent = the default
	HasReserve  bool         `json:"has_reserve"`
	ReserveMet  bool         `json:"reserve_met"`
	AmountCents int64        `json:"amount_cents"` // the leading bid, 0 before the first
	Leader      *Bidder      `json:"leader"`
	NextCents   int64        `json:"next_cents"` // the smallest bid accepted now
	Version     int64        `json:"version"`    // +1 at every change of the lead
	StartedAt   time.Time    `json:"started_at"`
	EndsAt      time.Time    `json:"ends_at"`
	State       AuctionState `json:"state"`
	Winner      *Bidder      `json:"winner"`
	OrderID     string       `json:"order_id,omitempty"`
	// Now is the auction's clock (Redis TIME, or the node's on one node)
	// when this view was read, where the store reads it (omitted if not):
	// viewers count down with ends_at - now from their own clock's offset
	// to it, not from their own clock.
	Now          time.Time `json:"now,omitzero"`
	Host         string    `json:"-"`
	reserveCents int64
}

// nextMin is the smallest acceptable bid with lead amount top.
func nextMin(l Ladder, start, top int64, hasLeader bool) int64 {
	if !hasLeader {
		return start
	}
	return top + l.Increment(top)
}

// BidParams is an `auction.bid` (Max false) or `auction.max` (Max true).
type BidParams struct {
	AuctionID string
	User      string
	Name      string
	Cents     int64
	Key       string
	Max       bool
}

// Validate reports the first invalid field by its JSON name.
func (p BidParams) Validate() error {
	if err := validUser(p.User); err != nil {
		return err
	}
	if !idPattern.MatchString(p.AuctionID) {
		return fieldErr("auction_id", "is not an auction id")
	}
	field := "amount_cents"
	if p.Max {
		field = "max_cents"
	}
	if p.Cents < 1 || p.Cents > MaxPriceCents {
		return fieldErr(field, "must be 1..%d", int64(MaxPriceCents))
	}
	return validKey(p.Key)
}

// bidderName clips a display name for storage.
func bidderName(name, id string) string {
	if name == "" || !utf8.ValidString(name) || hasControl(name) {
		name = id
	}
	if utf8.RuneCountInString(name) > maxBidName {
		name = string([]rune(name)[:maxBidName])
	}
	return name
}

// BidResult is what a bid, a maximum or a removal did.
type BidResult struct {
	Auction  Auction
	Replayed bool   // the key was used before; nothing changed
	Extended bool   // the end moved
	Changed  bool   // the lead changed (publish auction.bid)
	Prev     string // the leader before the call ("" if none)
}

// CloseResult is what CloseAuction did.
type CloseResult struct {
	Auction Auction
	Closed  bool   // this call ended it (tell viewers, wake the outbox)
	Order   *Order // the winner's order, when Closed with a sale
}

// RoomAuction is an auction with its room.
type RoomAuction struct {
	Room string
	ID   string
}

// AuctionStore runs auctions. The LocalStore orders bids under the room
// lock by the node's clock; the RedisStore in Lua scripts by Redis TIME. The
// conformance suite holds both to the same answers.
type AuctionStore interface {
	StartAuction(ctx context.Context, room string, p AuctionParams) (Auction, error)
	Bid(ctx context.Context, room string, p BidParams) (BidResult, error)
	// RemoveBidder takes user's bids and maximum out of a running auction
	// and bars them from it.
	RemoveBidder(ctx context.Context, room, auctionID, user string) (BidResult, error)
	// StopAuction cancels a running auction before its end (no sale);
	// auction_ended if it had ended.
	StopAuction(ctx context.Context, room, auctionID string) (Auction, error)
	// CloseAuction ends an auction whose time is up, exactly once whoever
	// calls it: Closed is true for that one call. Before the end it
	// changes nothing (Closed false, State running).
	CloseAuction(ctx context.Context, room, auctionID string) (CloseResult, error)
	Auction(ctx context.Context, room, auctionID string) (Auction, error)
	// RunningAuctions lists the room's running auctions (for a welcome).
	RunningAuctions(ctx context.Context, room string) ([]Auction, error)
	// DueAuctions lists up to max running auctions, in any room, that may
	// be at their end (CloseAuction decides).
	DueAuctions(ctx context.Context, max int) ([]RoomAuction, error)
}

var (
	_ AuctionStore = (*LocalStore)(nil)
	_ AuctionStore = (*RedisStore)(nil)
)

// auctionOrder is the winner's order. Its time is the auction's end and
// its key names the auction, so whichever node builds it builds the same
// one. The integrator of order states routes auction orders here.
//
// The order enters the order life like a checkout's (order_life.go): it
// awaits payment for cart.pay_within from the close (now), or is paid at
// once when that is 0; a lapse returns the unit to the product's stock.
func auctionOrder(scope string, a Auction, id string, within time.Duration, now time.Time) (Order, error) {
	r := Reservation{SKU: a.SKU, Qty: 1, PriceCents: a.AmountCents, Currency: a.Currency}
	o, err := newOrder(id, scope, a.Leader.ID, "auction:"+a.ID, []Reservation{r}, a.EndsAt)
	if err != nil {
		return Order{}, err
	}
	o.Items[0].AuctionID = a.ID
	startLife(&o, within, now)
	return o, nil
}

// auctionFromHash builds an Auction from the stored field map (the Redis
// hash; the local store keeps the same map shape via localAuction).
func auctionFromHash(h map[string]string, names func(string) string) Auction {
	i := func(k string) int64 { n, _ := strconv.ParseInt(h[k], 10, 64); return n }
	a := Auction{
		ID: h["id"], SKU: h["sku"], Currency: h["cur"], StartCents: i("start"), ExtendS: int(i("extend") / 1000),
		AmountCents: i("top"), Version: i("v"), StartedAt: fromMS(i("started")), EndsAt: fromMS(i("ends")),
		State: AuctionState(h["state"]), OrderID: h["order"], Host: h["host"], reserveCents: i("reserve"),
	}
	a.HasReserve = a.reserveCents > 0
	if l := h["leader"]; l != "" {
		a.Leader = &Bidder{ID: l, Name: names(l)}
		a.ReserveMet = a.AmountCents >= a.reserveCents
	}
	if w := h["winner"]; w != "" {
		a.Winner = &Bidder{ID: w, Name: names(w)}
	}
	a.Increments, _ = parseLadder(h["ladder"]) // written by StartAuction from a valid ladder
	a.NextCents = nextMin(a.Increments, a.StartCents, a.AmountCents, a.Leader != nil)
	return a
}

func auctionNotFound(id string) error {
	return &Error{Code: CodeNotFound, Field: "auction_id", Message: fmt.Sprintf("no auction %q", id)}
}

func sortAuctions(list []Auction) {
	sort.Slice(list, func(i, j int) bool { return list[i].StartedAt.Before(list[j].StartedAt) })
}
