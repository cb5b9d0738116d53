package media

import (
	"sync"
	"sync/atomic"
	"time"
)

// Keyframe request policy. A viewer that joins (or drops packets) needs a
// keyframe; every one of them asks, on every packet, until it gets one. The
// throttle turns that into as few requests as still give each viewer the
// earliest keyframe it can get:
//
//   - while a request is outstanding (sent, and no keyframe has started
//     since), askers simply wait for the keyframe it will bring;
//   - once a keyframe has started, a viewer that missed its start asks again
//     at once, rather than waiting out a fixed interval;
//   - a request left unanswered for `pending` (a lost PLI, a slow encoder)
//     is sent again;
//   - two requests are never closer than minKeyframeGap, and at most
//     maxKeyframeRequests go out in any second, for the encoder's sake: each
//     keyframe is several times a normal frame, and a join storm must not turn
//     the stream into keyframes only.
const (
	minKeyframeGap      = 50 * time.Millisecond
	maxKeyframeRequests = 5 // per rolling second
)

// keyframeThrottle decides when a keyframe request goes to the publisher.
// Times are ns on the forwarder's monotonic clock (never 0). request is
// called on every packet of every viewer waiting for a keyframe, so its
// "no" path is lock-free.
type keyframeThrottle struct {
	pending time.Duration // how long an unanswered request is waited for

	lastReq atomic.Int64 // last request sent; 0 = none
	lastKey atomic.Int64 // last keyframe start forwarded; 0 = none

	mu   sync.Mutex
	sent [maxKeyframeRequests]int64 // ring of recent request times
	next int
}

// reset forgets the history (a new source: its first request goes at once).
func (t *keyframeThrottle) reset() {
	t.mu.Lock()
	t.sent = [maxKeyframeRequests]int64{}
	t.next = 0
	t.lastReq.Store(0)
	t.lastKey.Store(0)
	t.mu.Unlock()
}

// keyframe records that a keyframe started being forwarded at now.
func (t *keyframeThrottle) keyframe(now int64) { t.lastKey.Store(now) }

// request reports whether a keyframe request should be sent at now, and if
// so records it.
func (t *keyframeThrottle) request(now int64) bool {
	if !t.due(now, t.lastReq.Load()) {
		return false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	last := t.lastReq.Load()
	if !t.due(now, last) {
		return false // another asker got here first
	}
	if oldest := t.sent[t.next]; oldest != 0 && now-oldest < int64(time.Second) {
		return false
	}
	t.sent[t.next] = now
	t.next = (t.next + 1) % maxKeyframeRequests
	t.lastReq.Store(now)
	return true
}

func (t *keyframeThrottle) due(now, last int64) bool {
	if last == 0 {
		return true
	}
	since := now - last
	if since < int64(minKeyframeGap) {
		return false
	}
	answered := t.lastKey.Load() >= last
	return answered || since >= int64(t.pending)
}
