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
//   - two requests are never closer than minKeyframeGap, and beyond a burst
//     of keyframeBurst they are paced at keyframeRate, for the encoder's sake:
//     each keyframe is several times a normal frame, and a join storm must
//     not turn the stream into keyframes only. Pacing (rather than "N per
//     second") spreads a storm's keyframes over it instead of spending them
//     all at its start.
const (
	minKeyframeGap = 50 * time.Millisecond
	keyframeRate   = 200 * time.Millisecond // sustained: 5 a second
	keyframeBurst  = 2
)

// keyframeThrottle decides when a keyframe request goes to the publisher.
// Times are ns on the forwarder's monotonic clock (never 0). request is
// called on every packet of every viewer waiting for a keyframe, so its
// "no" path is lock-free.
type keyframeThrottle struct {
	pending time.Duration // how long an unanswered request is waited for

	lastReq atomic.Int64 // last request sent; 0 = none
	lastKey atomic.Int64 // last keyframe start forwarded; 0 = none

	mu  sync.Mutex
	tat int64 // pacing: theoretical arrival time of the next request (GCRA)
}

// reset forgets the history (a new source: its first request goes at once).
func (t *keyframeThrottle) reset() {
	t.mu.Lock()
	t.tat = 0
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
	if now < t.tat-int64(keyframeBurst-1)*int64(keyframeRate) {
		return false
	}
	t.tat = max(t.tat, now) + int64(keyframeRate)
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
