package room

import "slices"

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
