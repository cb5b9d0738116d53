package media

import "sync"

// liveEvents delivers OnLive calls in order on one goroutine the SFU owns,
// so the hook may block or call back into the SFU without deadlocking the
// room that raised the event.
type liveEvents struct {
	hook  func(roomID string, live bool)
	mu    sync.Mutex
	queue []liveEvent
	wake  chan struct{} // capacity 1
}

type liveEvent struct {
	room string
	live bool
}

func newLiveEvents(hook func(string, bool)) *liveEvents {
	return &liveEvents{hook: hook, wake: make(chan struct{}, 1)}
}

// live queues an event; it never blocks (rooms call it under their lock).
func (e *liveEvents) live(roomID string, live bool) {
	if e.hook == nil {
		return
	}
	e.mu.Lock()
	e.queue = append(e.queue, liveEvent{roomID, live})
	e.mu.Unlock()
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// run delivers events until stop is closed, then delivers what is left.
func (e *liveEvents) run(stop <-chan struct{}) {
	for {
		select {
		case <-e.wake:
			e.deliver()
		case <-stop:
			e.deliver()
			return
		}
	}
}

func (e *liveEvents) deliver() {
	for {
		e.mu.Lock()
		batch := e.queue
		e.queue = nil
		e.mu.Unlock()
		if len(batch) == 0 {
			return
		}
		for _, ev := range batch {
			e.hook(ev.room, ev.live)
		}
	}
}
