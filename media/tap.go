package media

import (
	"sync"
	"sync/atomic"
	"time"
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
	// The source's end is ordered with the packets: queued counts the
	// packets pushed into q, and gone is (1 + queued)<<1 | offline when the
	// source went away (0: nothing pending; offline 0: the host's next
	// source replaced it). run tells the consumer once the packets queued
	// before that are delivered, and before any queued after it (a
	// replacing source's first keyframe may be queued at once).
	queued  atomic.Uint64
	gone    atomic.Uint64
	offline chan struct{} // capacity 1: wakes run for gone
	done    chan struct{}
	once    sync.Once
	// tick, if set before run, is called on the consumer's goroutine every
	// tickEvery, packets or not (the stream's look at the layers sent).
	tick      func(now time.Time)
	tickEvery time.Duration
}

func newTap() *tap {
	t := &tap{q: make(chan *packet, tapQueue), offline: make(chan struct{}, 1), done: make(chan struct{})}
	t.needKey.Store(true)
	return t
}

// offer is called by a forwarder for every packet: it must not block and
// must not allocate.
//
// Of a simulcast room's video, only the layer the readers follow
// (reader_layer.go), or the one they are about to move to, ends or starts a
// wait for a keyframe: another layer's keyframe does not end it, and a
// keyframe is asked of the followed layer. (The wanted layer's keyframe
// ends it because the stream moves at that keyframe, and needs its middle
// packets, not only the first ones a wait lets through.)
func (t *tap) offer(f *forwarder, pk *packet) {
	followed := pk.kind != kindVideo || f.follow == nil || int32(f.layer) == f.follow.layer.Load() ||
		int32(f.layer) == f.follow.want.Load()
	if pk.kind == kindVideo && t.needKey.Load() {
		if !pk.keyframe {
			if followed {
				f.requestKeyframe() // throttled
			}
			return
		}
		if followed {
			t.needKey.Store(false)
		}
	}
	pk.retain()
	select {
	case t.q <- pk:
		t.queued.Add(1)
	default:
		pk.release()
		f.metrics.drop(pk.kind, dropQueueFull)
		t.dropped.Add(1)
		if pk.kind == kindVideo {
			t.needKey.Store(true)
			if followed {
				f.requestKeyframe()
			}
		}
	}
}

// sourceGone tells the consumer, after what is queued, that the room's
// source went away: offline, or replaced by the host's next source. Two
// ends before the consumer ran are told as one (offline if either was).
// Never blocks.
func (t *tap) sourceGone(offline bool) {
	for {
		prev := t.gone.Load()
		next := (t.queued.Load() + 1) << 1
		if offline || prev&1 == 1 {
			next |= 1
		}
		if t.gone.CompareAndSwap(prev, next) {
			break
		}
	}
	select {
	case t.offline <- struct{}{}:
	default:
	}
}

// close ends run; idempotent.
func (t *tap) close() { t.once.Do(func() { close(t.done) }) }

// run hands each packet to deliver (valid only during the call) and each
// "the room's source went away" to gone (offline, or replaced), on the
// consumer's goroutine, until close, stop, or one of them returns false.
func (t *tap) run(stop <-chan struct{}, deliver func(*packet) bool, gone func(offline bool) bool) {
	defer t.drain()
	var delivered uint64
	// due tells the consumer of a source's end once everything queued
	// before it was delivered.
	due := func() bool {
		g := t.gone.Load()
		if g == 0 || delivered < g>>1-1 || !t.gone.CompareAndSwap(g, 0) {
			return true
		}
		return gone(g&1 == 1)
	}
	var ticks <-chan time.Time
	if t.tick != nil {
		tk := time.NewTicker(t.tickEvery)
		defer tk.Stop()
		ticks = tk.C
	}
	for {
		select {
		case <-t.done:
			return
		case <-stop:
			return
		case now := <-ticks:
			t.tick(now)
		case <-t.offline:
			if !due() {
				return
			}
		case pk := <-t.q:
			if !due() {
				pk.release()
				return
			}
			ok := deliver(pk)
			pk.release()
			delivered++
			if !ok || !due() {
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
