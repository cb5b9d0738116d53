package room

import (
	"context"
	"log/slog"
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

// NodeTTL is how long a node stays in the registry without a heartbeat.
const NodeTTL = 6 * time.Second

// Beat reports info() to reg every ttl/3 until ctx ends, then leaves and
// returns ctx's error.
func Beat(ctx context.Context, reg Registry, ttl time.Duration, info func() NodeInfo, log *slog.Logger) error {
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
			return ctx.Err()
		case <-t.C:
		}
	}
}
