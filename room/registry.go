package room

import (
	"context"
	"log/slog"
	"slices"
	"sort"
	"sync"
	"time"
)

// Registry is the cluster's list of live nodes. Each node reports itself
// every few seconds; a node that stops reporting drops out after its TTL.
type Registry interface {
	// Heartbeat records n as alive for ttl.
	Heartbeat(ctx context.Context, n NodeInfo, ttl time.Duration) error
	// Leave removes the node at once (clean shutdown).
	Leave(ctx context.Context, id string) error
	// Nodes returns the live nodes, by id.
	Nodes(ctx context.Context) ([]NodeInfo, error)
}

// NodeInfo is what a node tells the cluster about itself.
type NodeInfo struct {
	ID      string `json:"id"`
	HTTPURL string `json:"http_url"`           // advertised base URL of its HTTP API
	RTSPURL string `json:"rtsp_url,omitempty"` // advertised RTSP base URL
	Conns   int    `json:"conns"`              // WebSocket connections: its load
	Started int64  `json:"started"`            // unix ms
	Seen    int64  `json:"seen"`               // unix ms of the last heartbeat (set by the registry)
}

// Beat reports info() to reg every ttl/3 until ctx ends, then leaves.
func Beat(ctx context.Context, reg Registry, ttl time.Duration, info func() NodeInfo, log *slog.Logger) {
	every := ttl / 3
	t := time.NewTicker(every)
	defer t.Stop()
	failing := false
	for {
		n := info()
		bctx, cancel := context.WithTimeout(ctx, every)
		err := reg.Heartbeat(bctx, n, ttl)
		cancel()
		switch {
		case err != nil && !failing && ctx.Err() == nil:
			log.Warn("node heartbeat failing", "err", err)
			failing = true
		case err == nil && failing:
			log.Info("node heartbeat back")
			failing = false
		}
		select {
		case <-ctx.Done():
			lctx, cancel := context.WithTimeout(context.Background(), time.Second)
			_ = reg.Leave(lctx, n.ID)
			cancel()
			return
		case <-t.C:
		}
	}
}

// memoryRegistry is the one-process Registry (tests, and one node).
type memoryRegistry struct {
	now   func() time.Time
	mu    sync.Mutex
	nodes map[string]memNode
}

type memNode struct {
	info    NodeInfo
	expires time.Time
}

var _ Registry = (*memoryRegistry)(nil)

// NewMemoryRegistry returns a Registry held in memory.
func NewMemoryRegistry() Registry {
	return &memoryRegistry{now: time.Now, nodes: map[string]memNode{}}
}

func (r *memoryRegistry) Heartbeat(_ context.Context, n NodeInfo, ttl time.Duration) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	n.Seen = now.UnixMilli()
	r.nodes[n.ID] = memNode{info: n, expires: now.Add(ttl)}
	return nil
}

func (r *memoryRegistry) Leave(_ context.Context, id string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.nodes, id)
	return nil
}

func (r *memoryRegistry) Nodes(_ context.Context) ([]NodeInfo, error) {
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
