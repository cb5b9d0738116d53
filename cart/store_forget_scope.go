package cart

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// ForgetScope removes everything stored under a room's data scope
// (room.Scope): catalog, sales, orders, keys and its outbox entries,
// pending or parked. The retired-incarnation sweep calls it once the
// retention of a deleted room's incarnation has passed.
func (s *LocalStore) ForgetScope(_ context.Context, scope string) error {
	if err := validRoom(scope); err != nil {
		return err
	}
	s.mu.Lock()
	delete(s.rooms, scope)
	hooks := s.forget
	s.mu.Unlock()
	for _, fn := range hooks { // outside s.mu: a hook's lock comes first
		fn(scope)
	}
	prefix := []byte(scope + "\x00")
	err := s.db.Update(func(tx *bolt.Tx) error {
		if err := tx.Bucket(bRooms).DeleteBucket([]byte(scope)); err != nil && !errors.Is(err, bolt.ErrBucketNotFound) {
			return err
		}
		for _, name := range [][]byte{bOutbox, bOutboxFailed} {
			b := tx.Bucket(name)
			if b == nil {
				continue
			}
			var keys [][]byte
			c := b.Cursor()
			for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
				keys = append(keys, bytes.Clone(k))
			}
			for _, k := range keys {
				if err := b.Delete(k); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("cart: forget %s: %w", scope, err)
	}
	return nil
}

// ForgetScope drops the scope from the store's indexes; its keys (which all
// carry the {room:scope} hash tag) are removed by room.ForgetRedisScope.
func (s *RedisStore) ForgetScope(ctx context.Context, scope string) error {
	if err := validRoom(scope); err != nil {
		return err
	}
	pl := s.rdb.TxPipeline()
	pl.ZRem(ctx, s.sweepIndex(), scope)
	pl.ZRem(ctx, s.outboxIndex(), scope)
	if _, err := pl.Exec(ctx); err != nil {
		return fmt.Errorf("cart: forget %s: %w", scope, err)
	}
	return s.forgetGiveaways(ctx, scope)
}
