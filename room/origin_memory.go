package room

import (
	"context"
	"sync"
	"time"
)

// MemoryOrigins is the one-process Origins (tests, and a single node).
type MemoryOrigins struct {
	now    func() time.Time
	mu     sync.Mutex
	leases map[string]lease
}

type lease struct {
	node    string
	expires time.Time
}

var _ Origins = (*MemoryOrigins)(nil)

// NewMemoryOrigins returns an Origins held in memory.
func NewMemoryOrigins() *MemoryOrigins {
	return &MemoryOrigins{now: time.Now, leases: map[string]lease{}}
}

// holder returns the live lease of roomID, dropping an expired one.
func (o *MemoryOrigins) holder(roomID string) string {
	l, ok := o.leases[roomID]
	if ok && !o.now().Before(l.expires) {
		delete(o.leases, roomID)
		return ""
	}
	return l.node
}

func (o *MemoryOrigins) Claim(_ context.Context, roomID, node string, ttl time.Duration) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.leases[roomID] = lease{node: node, expires: o.now().Add(ttl)}
	return nil
}

func (o *MemoryOrigins) ClaimFree(_ context.Context, roomID, node string, ttl time.Duration) (bool, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.holder(roomID) != "" {
		return false, nil
	}
	o.leases[roomID] = lease{node: node, expires: o.now().Add(ttl)}
	return true, nil
}

func (o *MemoryOrigins) Renew(_ context.Context, roomID, node string, ttl time.Duration) (bool, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.holder(roomID) != node {
		return false, nil
	}
	o.leases[roomID] = lease{node: node, expires: o.now().Add(ttl)}
	return true, nil
}

func (o *MemoryOrigins) Release(_ context.Context, roomID, node string) (bool, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	switch o.holder(roomID) {
	case node:
		delete(o.leases, roomID)
		return true, nil
	case "":
		return true, nil
	}
	return false, nil
}

func (o *MemoryOrigins) Get(_ context.Context, roomID string) (string, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.holder(roomID), nil
}
