package room

// CloseServiceRestart tells a client that this node is draining (RFC 6455
// 1012, "service restart"): reconnect at once, the balancer picks another node.
const CloseServiceRestart = 1012

// CodeDraining is the error event a draining node sends before the close.
const CodeDraining = "draining"

// Drain refuses new WebSocket connections and closes every open one with
// 1012 after telling it to move, so clients reconnect through the balancer to
// another node while this one still serves their video. It returns how many
// connections were told; Run's shutdown later waits for them to close.
func (h *Hub) Drain() int {
	h.mu.Lock()
	h.stopped = true
	h.mu.Unlock()
	bye := h.prepared(errorEvent("", CodeDraining, "this server is restarting; reconnecting you elsewhere"))
	n := 0
	for _, lr := range h.localRooms() {
		lr.mu.RLock()
		for _, c := range lr.conns {
			c.kick(CloseServiceRestart, CodeDraining, bye)
			n++
		}
		lr.mu.RUnlock()
	}
	return n
}
