package media

import (
	"sync"
	"sync/atomic"
)

// tapQueue bounds what a tap may hold: about two seconds of a 2 Mbit/s
// stream. A tap whose consumer falls further behind loses packets, never
// the forwarder's time.
const tapQueue = 512

// tap is a consumer of a room's outgoing packets other than a WebRTC viewer:
// the input of the room's access-unit stream (stream.go), which RTSP
// readers, and later the recorder and the HLS muxer, read. Forwarders offer
// it every packet after rewrite, next to the viewers, on the publisher's
// goroutine: offer only retains the shared packet and pushes it into a
// bounded queue, dropping on overflow (video then waits for a keyframe). The
// consumer drains q on its own goroutine (stream.run, or run).
type tap struct {
	q       chan *packet
	needKey atomic.Bool // video waits for a keyframe (start, after a drop, on request)
	dropped atomic.Uint64
	offline chan struct{} // capacity 1: the room's source went away
	done    chan struct{}
	once    sync.Once
}

func newTap() *tap {
	t := &tap{q: make(chan *packet, tapQueue), offline: make(chan struct{}, 1), done: make(chan struct{})}
	t.needKey.Store(true)
	return t
}

// offer is called by a forwarder for every packet: it must not block and
// must not allocate.
func (t *tap) offer(f *forwarder, pk *packet) {
	if pk.kind == kindVideo && t.needKey.Load() {
		if !pk.keyframe {
			f.requestKeyframe() // throttled
			return
		}
		t.needKey.Store(false)
	}
	pk.retain()
	select {
	case t.q <- pk:
	default:
		pk.release()
		f.metrics.drop(pk.kind, dropQueueFull)
		t.dropped.Add(1)
		if pk.kind == kindVideo {
			t.needKey.Store(true)
			f.requestKeyframe()
		}
	}
}

// sourceGone tells the consumer the room went offline. Never blocks.
func (t *tap) sourceGone() {
	select {
	case t.offline <- struct{}{}:
	default:
	}
}

// close ends run; idempotent.
func (t *tap) close() { t.once.Do(func() { close(t.done) }) }

// run hands each packet to deliver (valid only during the call) and each
// "the room's source went away" to offline, on the consumer's goroutine,
// until close, stop, or one of them returns false.
func (t *tap) run(stop <-chan struct{}, deliver func(*packet) bool, offline func() bool) {
	defer t.drain()
	for {
		select {
		case <-t.done:
			return
		case <-stop:
			return
		case <-t.offline:
			if !offline() {
				return
			}
		case pk := <-t.q:
			ok := deliver(pk)
			pk.release()
			if !ok {
				return
			}
		}
	}
}

// drain releases what is queued. A forwarder that loaded the tap list just
// before removal may still push afterwards; like a viewer's, those packets
// are left to the GC.
func (t *tap) drain() {
	for {
		select {
		case pk := <-t.q:
			pk.release()
		default:
			return
		}
	}
}
