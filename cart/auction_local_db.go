package cart

import (
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// The LocalStore's auctions are durable: every accepted change (start, bid,
// maximum, removal, stop, close) rewrites the auction's record in bbolt
// before the caller is answered, so a kill -9 loses no accepted bid.
//
//	rooms/<room>/auctions/<id>  auctionRecord (JSON)
//
// A running auction's unit stays in the product's durable Stock (which
// counts held units, as for carts); loadRoom takes it out again and counts
// it held. An auction whose end passed while the node was down is closed by
// the first closer tick after the restart, exactly once (its state is in
// the record, written in the close's transaction with the order).
var bAuctions = []byte("auctions")

// auctionRecord is everything a localAuction holds.
type auctionRecord struct {
	ID          string              `json:"id"`
	SKU         string              `json:"sku"`
	Currency    string              `json:"currency"`
	StartCents  int64               `json:"start_cents"`
	ExtendS     int                 `json:"extend_s"`
	AmountCents int64               `json:"amount_cents"`
	Leader      string              `json:"leader,omitempty"`
	Version     int64               `json:"version"`
	StartedAt   time.Time           `json:"started_at"`
	EndsAt      time.Time           `json:"ends_at"`
	State       AuctionState        `json:"state"`
	Winner      string              `json:"winner,omitempty"`
	OrderID     string              `json:"order_id,omitempty"`
	Host        string              `json:"host"`
	Reserve     int64               `json:"reserve_cents"`
	ExtendMS    int64               `json:"extend_ms"`
	Placed      map[string]int64    `json:"placed,omitempty"`
	Maxes       map[string][2]int64 `json:"maxes,omitempty"` // bidder -> [cents, seq]
	Seq         int64               `json:"seq"`
	NMax        map[string]int      `json:"nmax,omitempty"`
	Removed     []string            `json:"removed,omitempty"`
	Keys        []string            `json:"keys,omitempty"`
	Names       map[string]string   `json:"names,omitempty"`
	Increments  Ladder              `json:"increments,omitempty"`
}

func (x *localAuction) record() auctionRecord {
	rec := auctionRecord{
		ID: x.a.ID, SKU: x.a.SKU, Currency: x.a.Currency, StartCents: x.a.StartCents, ExtendS: x.a.ExtendS,
		AmountCents: x.a.AmountCents, Leader: x.leader(), Version: x.a.Version, StartedAt: x.a.StartedAt,
		EndsAt: x.a.EndsAt, State: x.a.State, OrderID: x.a.OrderID, Host: x.a.Host,
		Reserve: x.reserve, ExtendMS: x.extendMS, Seq: x.seq, Increments: x.a.Increments,
		Placed: make(map[string]int64, len(x.placed)), Maxes: make(map[string][2]int64, len(x.maxes)),
		NMax: make(map[string]int, len(x.nmax)), Names: make(map[string]string, len(x.names)),
	}
	if x.a.Winner != nil {
		rec.Winner = x.a.Winner.ID
	}
	for u, c := range x.placed {
		rec.Placed[u] = c
	}
	for u, m := range x.maxes {
		rec.Maxes[u] = [2]int64{m.cents, m.seq}
	}
	for u, n := range x.nmax {
		rec.NMax[u] = n
	}
	for u, n := range x.names {
		rec.Names[u] = n
	}
	for u := range x.removed {
		rec.Removed = append(rec.Removed, u)
	}
	for k := range x.keys {
		rec.Keys = append(rec.Keys, k)
	}
	return rec
}

// localAuctionOf rebuilds a localAuction from its record (after a restart,
// or to undo a change whose write failed).
func localAuctionOf(rec auctionRecord) *localAuction {
	x := &localAuction{
		a: Auction{ID: rec.ID, SKU: rec.SKU, Currency: rec.Currency, StartCents: rec.StartCents, ExtendS: rec.ExtendS,
			AmountCents: rec.AmountCents, Version: rec.Version, StartedAt: rec.StartedAt, EndsAt: rec.EndsAt,
			State: rec.State, OrderID: rec.OrderID, Host: rec.Host, Increments: rec.Increments},
		reserve: rec.Reserve, extendMS: rec.ExtendMS, seq: rec.Seq,
		placed: map[string]int64{}, maxes: map[string]localMax{}, nmax: map[string]int{},
		removed: map[string]bool{}, keys: map[string]bool{}, names: map[string]string{},
	}
	for u, c := range rec.Placed {
		x.placed[u] = c
	}
	for u, m := range rec.Maxes {
		x.maxes[u] = localMax{cents: m[0], seq: m[1]}
	}
	for u, n := range rec.NMax {
		x.nmax[u] = n
	}
	for u, n := range rec.Names {
		x.names[u] = n
	}
	for _, u := range rec.Removed {
		x.removed[u] = true
	}
	for _, k := range rec.Keys {
		x.keys[k] = true
	}
	x.setLeader(rec.Leader)
	if rec.Winner != "" {
		x.a.Winner = &Bidder{ID: rec.Winner, Name: x.names[rec.Winner]}
	}
	return x
}

// putAuction writes an auction's record in tx.
func putAuction(tx *bolt.Tx, room string, rec auctionRecord) error {
	b, err := roomBucket(tx, room, bAuctions)
	if err != nil {
		return err
	}
	return putJSON(b, []byte(rec.ID), rec)
}

// auctionBatchDelay is how long an auction's write waits for others (other
// rooms' bids) to share its transaction and fsync (bbolt's Batch).
const auctionBatchDelay = 2 * time.Millisecond

// saveAuction writes x's record; concurrent saves of other rooms share one
// transaction and fsync (a Batch function may run twice: writing a record
// is idempotent).
func (s *LocalStore) saveAuction(room string, x *localAuction) error {
	rec := x.record()
	if err := s.db.Batch(func(tx *bolt.Tx) error { return putAuction(tx, room, rec) }); err != nil {
		return fmt.Errorf("cart: save auction: %w", err)
	}
	return nil
}

// loadAuctions rebuilds a room's auctions; a running one holds its unit
// again (the durable Stock still counts it).
func loadAuctions(rb *bolt.Bucket, r *localRoom) error {
	b := rb.Bucket(bAuctions)
	if b == nil {
		return nil
	}
	return b.ForEach(func(k, v []byte) error {
		var rec auctionRecord
		if err := json.Unmarshal(v, &rec); err != nil {
			return fmt.Errorf("auction %s: %w", k, err)
		}
		if r.auc == nil {
			r.auc = map[string]*localAuction{}
		}
		r.auc[rec.ID] = localAuctionOf(rec)
		if rec.State == AuctionRunning {
			if p := r.products[rec.SKU]; p != nil {
				p.Stock--
			}
			r.pheld[rec.SKU]++
		}
		return nil
	})
}
