package web

import (
	"net/http"
	"strings"
	"sync/atomic"
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
