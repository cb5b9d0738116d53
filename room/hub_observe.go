package room

import (
	"context"
	"slices"
)

// PublishObserver is told of every room event published through this
// node's hub, after the bus stamped it; scope is the room incarnation's.
// It runs on the publisher's goroutine and must not block (the recorder
// queues what it keeps).
type PublishObserver func(scope string, ev Event)

// OnPublish adds an observer of published room events (the recorder's
// product script and chat log).
func (h *Hub) OnPublish(f PublishObserver) {
	for {
		cur := h.observers.Load()
		var next []PublishObserver
		if cur != nil {
			next = slices.Clone(*cur)
		}
		next = append(next, f)
		if h.observers.CompareAndSwap(cur, &next) {
			return
		}
	}
}

func (h *Hub) observe(scope string, ev Event) {
	if obs := h.observers.Load(); obs != nil {
		for _, f := range *obs {
			f(scope, ev)
		}
	}
}

// ObserveRoom makes fn receive every room event delivered to this node for
// scope, wherever it was published (the bus carries other nodes' pins,
// sales and chat), until cancel. fn runs on the bus's delivery goroutine
// and must not block. The recorder uses it so that the recording node's
// product script and chat log are complete in a cluster, whether or not a
// WebSocket of the room is open on this node.
func (h *Hub) ObserveRoom(ctx context.Context, scope string, fn func(Event)) (cancel func(), err error) {
	return h.bus.Subscribe(ctx, scope, func(d Delivery) {
		if d.Event.Seq > 0 { // room events only, not targeted ones
			fn(d.Event)
		}
	})
}
