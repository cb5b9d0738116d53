package media

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"
)

// forwarder is one room's up-track of one kind. It turns the packets of
// whichever source is current into one continuous outgoing stream (sequence
// numbers and timestamps rewritten across publisher changes; the outgoing
// SSRC is each viewer's sender SSRC and never changes) and fans each packet
// out to the viewers. Its state outlives sources: that is what lets viewers
// keep their PeerConnections across a host reconnect.
type forwarder struct {
	kind    kind
	layer   uint8 // video: its slot in room.layers (0 = the room's default layer)
	table   codecTable
	pool    *sync.Pool
	hist    *history
	viewers *atomic.Pointer[[]*viewer]
	taps    *atomic.Pointer[[]*tap]
	follow  *readerFollow // which video layer the taps want (reader_layer.go)
	metrics *metrics
	epoch   time.Time              // monotonic base for the keyframe clock
	cur     atomic.Pointer[ingest] // lock-free view of in for keyframe requests
	kf      keyframeThrottle
	clk     *roomClock
	tmPub   atomic.Pointer[tsMap] // f.tm for sender reports (other goroutines)
	gop     packetGOP             // video: the current GOP, for fast start (faststart_gop.go)
	rate    layerRate             // bitrate and liveness, for layer selection (simulcast.go)

	mu sync.Mutex // serialises writes (one source at a time) and guards below
	in *ingest    // current source track; nil while offline
	// per-source mapping, established at the source's first forwarded packet
	started bool
	baseIn  uint16 // packets older than this (input numbering) are stale
	seqOff  uint16
	tsOff   uint32
	fam     family
	clockHz uint32
	// last forwarded packet, for continuity across sources
	haveLast bool
	lastSeq  uint16
	lastTS   uint32
	lastAt   time.Time
	// the room clock mapping of outgoing timestamps (clock.go)
	tm      tsMap
	havePTS bool
	lastPTS time.Duration
	// tapKeyTS: the outgoing timestamp of the last keyframe offered to the
	// taps (offerTap); 0 with tapKey false = none.
	tapKey   bool
	tapKeyTS uint32
}

func newForwarder(k kind, r *room) *forwarder {
	s := r.sfu
	size := s.cfg.NACKHistory
	if k == kindAudio {
		size /= 4
	}
	return &forwarder{
		kind:    k,
		table:   s.codecs,
		pool:    s.pool,
		hist:    newHistory(size),
		viewers: &r.viewers,
		taps:    &r.taps,
		follow:  &r.follow,
		metrics: s.metrics,
		epoch:   time.Now(),
		kf:      keyframeThrottle{pending: s.cfg.PLIInterval},
		clk:     r.clk,
	}
}

// setIngest makes in the current source (nil = offline). The next packet of a
// new video source is forwarded only if it starts a keyframe, so viewers
// switch publishers at a decodable point.
func (f *forwarder) setIngest(in *ingest) {
	f.mu.Lock()
	f.in = in
	f.started = false
	if in != nil {
		spec := f.table[in.codec]
		f.fam = spec.fam
		f.clockHz = spec.params.ClockRate
	}
	f.mu.Unlock()
	f.cur.Store(in)
	f.kf.reset() // a new publisher gets its first request at once
}

// detach clears the current ingest if it belongs to src.
func (f *forwarder) detach(src source) {
	f.mu.Lock()
	match := f.in != nil && f.in.src == src
	if match {
		f.in = nil
		f.started = false
	}
	f.mu.Unlock()
	if match {
		f.cur.Store(nil)
	}
}

// requestKeyframe asks the current source for a keyframe unless one is
// already on its way (see keyframeThrottle). Safe from any goroutine, never
// blocks; callers repeat it until their viewer got a keyframe.
func (f *forwarder) requestKeyframe() { f.askKeyframe() }

// askKeyframe is requestKeyframe, reporting whether a request went to the
// source now (false: throttled, or no source), for a caller that asks only
// once per wait and must therefore know when it has.
func (f *forwarder) askKeyframe() bool {
	if f.kind != kindVideo {
		return false
	}
	in := f.cur.Load()
	if in == nil {
		return false
	}
	if !f.kf.request(f.clock()) {
		return false
	}
	if lk, ok := in.src.(layerKeyframer); ok {
		lk.requestLayerKeyframe(int(f.layer))
	} else {
		in.src.requestKeyframe()
	}
	return true
}

// clock is a monotonic time in ns since the forwarder was made, never 0.
func (f *forwarder) clock() int64 { return int64(time.Since(f.epoch)) + 1 }

// write is the hot path: one call per publisher packet, one copy, no
// allocation in steady state, no blocking on viewers.
func (f *forwarder) write(in *ingest, p *rtp.Packet) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if in != f.in {
		f.metrics.drop(f.kind, dropStale)
		return
	}
	if len(p.Payload) > maxPayload {
		f.metrics.drop(f.kind, dropOversize)
		return
	}
	key := f.kind == kindVideo && isKeyframeStart(f.fam, p.Payload)
	now := time.Now()
	if key {
		f.kf.keyframe(f.clock())
	}
	if !f.started {
		if f.kind == kindVideo && !key {
			// Wait for the new source's keyframe rather than send viewers
			// inter-frames they cannot decode.
			f.metrics.drop(f.kind, dropKeyframeWait)
			f.requestKeyframe()
			return
		}
		f.start(p, now)
	} else if d := int16(p.SequenceNumber - f.baseIn); d < 0 {
		// Reordered from before the switch point: its rewritten number would
		// collide with the previous source's.
		f.metrics.drop(f.kind, dropStale)
		return
	} else if d > 1<<14 {
		f.baseIn = p.SequenceNumber - 1<<14 // slide the window, keep the wrap test valid
	}

	seq := p.SequenceNumber + f.seqOff
	ts := p.Timestamp + f.tsOff
	if !f.haveLast || int16(seq-f.lastSeq) > 0 {
		f.haveLast, f.lastSeq, f.lastTS, f.lastAt = true, seq, ts, now
	}

	pk := getPacket(f.pool)
	pk.kind = f.kind
	pk.layer = f.layer
	pk.codec = uint8(in.codec)
	pk.keyframe = key
	pk.marker = p.Marker
	pk.seq = seq
	pk.ts = ts
	pk.pts = f.stamp(ts)
	pk.n = copy(pk.buf[:], p.Payload)
	f.rate.add(now, pk.n)

	pk.retain() // the history's reference
	f.hist.put(pk)
	if f.kind == kindVideo {
		f.gop.add(pk, now)
	}
	for _, v := range *f.viewers.Load() {
		v.offer(f, pk)
	}
	if taps := *f.taps.Load(); len(taps) > 0 && (f.kind != kindVideo || f.offerTap(pk)) {
		for _, t := range taps {
			t.offer(f, pk)
		}
	}
	pk.release()
}

// offerTap is the taps' pre-filter for a video packet (readerFollow.offers),
// which also lets through the rest of a keyframe whose first packets it let
// through: the readers may move to this layer at that keyframe, decided on
// the stream goroutine after this forwarder has gone on, and a keyframe
// without its middle makes them wait for the next (a GOP) instead. Called
// under f.mu.
func (f *forwarder) offerTap(pk *packet) bool {
	if pk.keyframe {
		f.tapKey, f.tapKeyTS = true, pk.ts
	}
	return f.follow.offers(f.layer, pk.keyframe) || (f.tapKey && pk.ts == f.tapKeyTS)
}

// start maps a new source's numbering onto the outgoing stream: the sequence
// continues at last+1 and the timestamp at last + elapsed wall time, so
// players see one stream with a pause rather than a reset; the room clock
// mapping is anchored the same way (anchor).
func (f *forwarder) start(p *rtp.Packet, now time.Time) {
	f.started = true
	f.baseIn = p.SequenceNumber
	defer func() { f.anchor(p.Timestamp+f.tsOff, now) }()
	if !f.haveLast {
		f.seqOff, f.tsOff = 0, 0
		return
	}
	f.seqOff = f.lastSeq + 1 - p.SequenceNumber
	elapsed := now.Sub(f.lastAt)
	if elapsed > time.Hour {
		elapsed = time.Hour
	}
	ticks := uint32(int64(elapsed/time.Microsecond) * int64(f.clockHz) / 1e6)
	if ticks == 0 {
		ticks = 1
	}
	f.tsOff = f.lastTS + ticks - p.Timestamp
}

// retransmit answers a viewer's NACK for seq from the history, or the
// cached GOP. gone: seq is older than both reach (history.evicted).
func (f *forwarder) retransmit(v *viewer, seq uint16, now time.Time) (sent, limited, gone bool) {
	pk := f.hist.get(seq)
	if pk == nil && f.kind == kindVideo {
		// A fast start sends the whole cached GOP, which can reach further
		// back than the history (a 2.6 s GOP of 1280x720 is ~580 packets).
		pk = f.gop.get(seq)
	}
	if pk == nil {
		return false, false, f.hist.evicted(seq)
	}
	if !v.rtx.take(now, pk.n) {
		pk.release()
		return false, true, false
	}
	if !v.enqueue(pk) {
		pk.release()
		return false, false, false
	}
	return true, false, false
}
