package cart

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Parked deliveries of the LocalStore live in their own bucket, keyed like
// the outbox (room\x00order id), so that listing them is one ordered scan:
//
//	outbox_failed/<room\x00order id>  failedEntry
var bOutboxFailed = []byte("outbox_failed")

type failedEntry struct {
	Attempts  int    `json:"attempts"`
	LastError string `json:"last_error"`
	ParkedAt  int64  `json:"parked_at_ms"`
}

func (s *LocalStore) ParkDelivery(_ context.Context, d Delivery, reason string, now time.Time) error {
	key := []byte(d.Room + "\x00" + d.OrderID)
	s.obMu.Lock()
	defer s.obMu.Unlock()
	delete(s.leases, string(key))
	return s.db.Update(func(tx *bolt.Tx) error {
		ob := tx.Bucket(bOutbox)
		if ob.Get(key) == nil {
			return nil // delivered meanwhile
		}
		fb, err := tx.CreateBucketIfNotExists(bOutboxFailed)
		if err != nil {
			return err
		}
		if err := ob.Delete(key); err != nil {
			return err
		}
		return putJSON(fb, key, failedEntry{Attempts: d.Attempt, LastError: reason, ParkedAt: toMS(now)})
	})
}

func (s *LocalStore) FailedDeliveries(_ context.Context, cursor string, limit int) (FailedPage, error) {
	limit = failedPageLimit(limit)
	var after []byte
	if cursor != "" {
		k, err := parseFailedCursor(cursor)
		if err != nil {
			return FailedPage{}, err
		}
		after = []byte(k)
	}
	var page FailedPage
	err := s.db.View(func(tx *bolt.Tx) error {
		fb := tx.Bucket(bOutboxFailed)
		if fb == nil {
			return nil
		}
		c := fb.Cursor()
		k, v := c.First()
		if after != nil {
			k, v = c.Seek(after)
			if bytes.Equal(k, after) {
				k, v = c.Next()
			}
		}
		for ; k != nil; k, v = c.Next() {
			if n := len(page.Deliveries); n == limit {
				page.Next = failedCursor(page.Deliveries[n-1].Room, page.Deliveries[n-1].OrderID)
				return nil
			}
			room, oid, _ := bytes.Cut(k, []byte{0})
			var e failedEntry
			if err := json.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("outbox_failed %q: %w", k, err)
			}
			page.Deliveries = append(page.Deliveries, FailedDelivery{Room: string(room), OrderID: string(oid),
				Attempts: e.Attempts, LastError: e.LastError, ParkedAt: fromMS(e.ParkedAt)})
		}
		return nil
	})
	if err != nil {
		return FailedPage{}, fmt.Errorf("cart: failed deliveries: %w", err)
	}
	return page, nil
}

func (s *LocalStore) RequeueDelivery(_ context.Context, room, orderID string, now time.Time) error {
	key := []byte(room + "\x00" + orderID)
	s.obMu.Lock()
	defer s.obMu.Unlock()
	return s.db.Update(func(tx *bolt.Tx) error {
		fb := tx.Bucket(bOutboxFailed)
		if fb == nil || fb.Get(key) == nil {
			return errf(CodeNotFound, "no parked delivery of order %q in room %q", orderID, room)
		}
		if err := fb.Delete(key); err != nil {
			return err
		}
		return putJSON(tx.Bucket(bOutbox), key, outboxEntry{Next: toMS(now)})
	})
}
