package room

import (
	"context"
	"slices"
	"sort"
	"sync"
	"time"
)

// MemoryRegistry is the one-process Registry (tests, and one node).
type MemoryRegistry struct {
	now   func() time.Time
	mu    sync.Mutex
	nodes map[string]memNode
}

type memNode struct {
	info    NodeInfo
	expires time.Time
}

var _ Registry = (*MemoryRegistry)(nil)

// NewMemoryRegistry returns a Registry held in memory.
func NewMemoryRegistry() *MemoryRegistry {
	return &MemoryRegistry{now: time.Now, nodes: map[string]memNode{}}
}

func (r *MemoryRegistry) Heartbeat(_ context.Context, n NodeInfo, ttl time.Duration) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	n.Seen = now.UnixMilli()
	r.nodes[n.ID] = memNode{info: n, expires: now.Add(ttl)}
	return nil
}

func (r *MemoryRegistry) Leave(_ context.Context, id string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.nodes, id)
	return nil
}

func (r *MemoryRegistry) Nodes(_ context.Context) ([]NodeInfo, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	var out []NodeInfo
	for id, n := range r.nodes {
		if now.After(n.expires) {
			delete(r.nodes, id)
			continue
		}
		out = append(out, n.info)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return slices.Clip(out), nil
}
