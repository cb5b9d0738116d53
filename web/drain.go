package web

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"liveroom/room"
)

// NodeHeader names the node that answered. Pages compare the node holding
// their video session with the node of their room WebSocket: when the socket
// to that node dies, the video moves at once.
const NodeHeader = "X-Liveroom-Node"

// Drain is a node's way out of a cluster without a freeze for its viewers.
// Once started, /readyz fails (the balancer stops sending new clients) and new
// WHIP/WHEP offers and WebSockets are refused with 503 and Retry-After; what
// is already connected keeps working until the node tells it to move.
type Drain struct {
	node string
	on   atomic.Bool
}

// NewDrain makes the switch; node is this node's id, sent in NodeHeader on
// every response.
func NewDrain(node string) *Drain { return &Drain{node: node} }

// Start begins draining. It is safe to call more than once.
func (d *Drain) Start() { d.on.Store(true) }

// Draining reports whether Start was called.
func (d *Drain) Draining() bool { return d.on.Load() }

// Wrap puts the switch in front of the node's handler.
func (d *Drain) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if d.node != "" {
			w.Header().Set(NodeHeader, d.node)
		}
		if d.on.Load() && refusedWhileDraining(r) {
			w.Header().Set("Retry-After", "1")
			writeError(w, http.StatusServiceUnavailable, "draining", "this server is restarting: try again, another server will answer")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// refusedWhileDraining: what would start something new on this node. Session
// PATCH/DELETE and everything else keep working.
func refusedWhileDraining(r *http.Request) bool {
	p := r.URL.Path
	switch {
	case p == "/readyz":
		return true
	case strings.HasPrefix(p, "/ws/"):
		return true
	case r.Method == http.MethodPost && (strings.HasPrefix(p, "/whep/") || strings.HasPrefix(p, "/whip/")):
		return true
	}
	return false
}

// DrainDeps are what a drain moves clients off.
type DrainDeps struct {
	// Hub announces node.draining to rooms and closes WebSockets with 1012.
	Hub interface {
		Publish(ctx context.Context, scope string, ev room.Event) (room.Event, error)
		ScopeOf(ctx context.Context, roomID string) (string, error)
		Drain() int
	}
	// Media names the rooms with WebRTC sessions here and counts viewers.
	Media interface {
		RoomsServed() []string
		Sessions() int
	}
	Wait, Timeout time.Duration // http.drain_wait, http.drain_timeout
	Log           *slog.Logger
}

// Run takes the node out of a cluster without freezing its viewers (on
// SIGTERM): /readyz fails and new offers are refused at once; after Wait
// (the balancer's detection time) every room with a WebRTC session here
// hears `node.draining` (on whichever node its pages' WebSockets are: a page
// whose video is here moves it, make before break) and every WebSocket here
// is closed with 1012; then it waits, at most Timeout, for the WebRTC
// sessions to leave. ctx ends it early.
func (d *Drain) Run(ctx context.Context, deps DrainDeps) {
	start := time.Now()
	d.Start()
	deps.Log.Info("draining: not ready, refusing new sessions", "wait", deps.Wait, "timeout", deps.Timeout)
	if !sleepCtx(ctx, deps.Wait) {
		return
	}
	ev := room.MustEvent("node.draining", map[string]string{"node": d.node})
	ev.Transient = true
	for _, id := range deps.Media.RoomsServed() {
		scope, err := deps.Hub.ScopeOf(ctx, id)
		if err == nil {
			_, err = deps.Hub.Publish(ctx, scope, ev)
		}
		if err != nil {
			deps.Log.Warn("drain: tell the room", "room", id, "err", err)
		}
	}
	told := deps.Hub.Drain()
	deadline := time.Now().Add(deps.Timeout)
	for deps.Media.Sessions() > 0 && time.Now().Before(deadline) {
		if !sleepCtx(ctx, 100*time.Millisecond) {
			return
		}
	}
	deps.Log.Info("drained", "websockets_told", told, "sessions_left", deps.Media.Sessions(), "took", time.Since(start).Round(time.Millisecond))
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
