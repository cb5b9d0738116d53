package media

import (
	"time"
)

// A viewer's fast start (issue 16). When its connection is up, a viewer
// starts from the forwarder's cached GOP (faststart_gop.go) instead of
// waiting for the next keyframe. What that costs, and how it is bounded:
//
//   - The backlog (the keyframe and every packet since, at most
//     fastStartMaxBytes) is sent by the viewer's own writer, paced: the
//     keyframe at once (the first picture), the rest at catchUpFactor times
//     the GOP's own bitrate, so a 2 s GOP reaches live after about a second
//     instead of arriving as one burst.
//   - What the viewer's link carries bounds it (faststart_window.go): at
//     most catchUpWindow bytes beyond the keyframe go out before the
//     viewer's transport-wide feedback reports them received, the window
//     grows only by what is reported received while the path adds no queue,
//     and the catch-up stops (video jumps to live at the next keyframe) as
//     soon as the feedback shows a queue, loss or congestion.
//   - Its RTP timestamps are rewritten for this viewer (the shared packets
//     are not touched): the backlog is compressed towards its last frame by
//     the same factor it is sent faster than real time, so arrival times
//     match timestamps (no jitter spike in the receiver) and the player
//     fast-forwards through the cached GOP instead of playing it late. The
//     last cached frame keeps its timestamp, so the live frames that follow
//     and the sender reports (room clock -> outgoing timestamp) stay as for
//     any other viewer.
//   - Audio is live from the start: packets that arrive during the catch-up
//     are sent at once; live video is queued behind the backlog.
//   - No keyframe is requested for a viewer that starts from the cache, so a
//     join storm no longer turns the publisher's stream into keyframes.
//
// Edge pulls (another node's forwarder) start at a keyframe as before.
const (
	catchUpFactor = 3
	// catchUpMinRate paces a backlog too short to have a rate of its own
	// (little more than its keyframe).
	catchUpMinRate = 2_000_000 / 8 // bytes per second
	// catchUpMaxPackets bounds the video waiting behind the backlog; a viewer
	// that cannot keep up drops to the next keyframe like any slow viewer.
	catchUpMaxPackets = 4096
	// catchUpQuantum is the shortest pause of the pacing: at 2 Mbit/s about
	// four packets go per wake-up.
	catchUpQuantum = 20 * time.Millisecond
)

// catchUp is one viewer's start from the cache. Made under the forwarder's
// lock before the viewer is ready; from then on only the viewer's writer
// goroutine touches it.
type catchUp struct {
	backlog []*packet // to send before any live video, each retained
	head    int
	cached  int    // backlog[:cached] is the cached GOP, the rest live video
	left    int    // bytes of the cached GOP not sent yet
	layer   uint8  // the layer (forwarder slot) the backlog is from
	first   uint16 // seq of the cached keyframe's first packet
	// The compression of the cached packets' timestamps: a cached
	// timestamp ts becomes tsLast - (tsLast-ts)/factor. A function of the
	// packet's own timestamp, not of its place: a GOP's packets are in
	// forwarding order, and a retransmission that reached this node late
	// sits at its end; by place, it and every packet after it would get a
	// neighbour's timestamp, splitting frames the receiver then never
	// completes (no loss to report, no keyframe asked: a frozen picture).
	tsLast uint32
	factor float64
	rate   float64 // bytes per second
	tokens float64 // bytes that may go now
	at     time.Time
	done   bool // the backlog is sent

	// for the log and the load tool's report
	bytes  int
	behind time.Duration

	win window // what the viewer's link is known to carry (faststart_window.go)
}

// startForwarder is the layer a new viewer's video starts from: its target,
// which newViewer set to the lowest layer arriving (its GOP is the smallest
// burst); the estimator moves it up from there (viewer_layer.go).
func (v *viewer) startForwarder() *forwarder {
	if t := v.target.Load(); t >= 0 {
		return v.r.layers[t]
	}
	return v.r.video
}

// start makes a connected viewer ready, from the cached GOP when there is
// one; it reports whether this call did it (the first "connected").
func (v *viewer) start() bool {
	f := v.startForwarder()
	now := time.Now()
	f.mu.Lock()
	if v.ready.Load() {
		f.mu.Unlock()
		return false
	}
	var cu *catchUp
	// Only while nothing has moved the viewer off its starting layer (a
	// preference set before it connected, a pause): cur goes from joining
	// to that layer here, under its forwarder's lock, so the layer's live
	// packets queue behind the backlog (offerVideo).
	if dt := v.tracks[kindVideo]; dt != nil && !v.edge && v.target.Load() == int32(f.layer) && v.cur.Load() == curJoining {
		cu = newCatchUp(f, dt, now)
	}
	var bytes, pkts, kbps, key int
	var behind time.Duration
	if cu != nil {
		bytes, pkts, behind, kbps, key = cu.bytes, len(cu.backlog), cu.behind, int(cu.rate*8/1000), int(cu.tokens)
		v.catchup.Store(cu)
		v.resumeSeq.Store(uint32(cu.first))
		v.needKey.Store(false)
		v.moveCur(curJoining, int32(f.layer))
	}
	v.ready.Store(true)
	f.mu.Unlock()
	v.queue.kick() // the writer starts on the backlog
	if cu == nil {
		// Keyframe on join, at once: DTLS is done (the state follows it
		// immediately) and the throttle lets a joiner's request through
		// unless one is already on its way.
		if kf := v.keyframeLayer(); kf != nil {
			kf.requestKeyframe()
		}
		v.log.Info("viewer connected")
		return true
	}
	v.log.Info("viewer connected", "fast_start_layer", f.ridName(), "fast_start_bytes", bytes, "fast_start_packets", pkts, "unpaced_bytes", key,
		"behind_ms", behind.Milliseconds(), "catch_up_kbps", kbps)
	return true
}

// newCatchUp snapshots f's GOP for dt; nil if there is none to start from.
// Called with f.mu held.
func newCatchUp(f *forwarder, dt *downTrack, now time.Time) *catchUp {
	pkts, bytes, age := f.gop.snapshot(now, dt.canSend)
	if len(pkts) == 0 {
		return nil
	}
	last := pkts[0].ts // the newest timestamp (the last packet may be a late one)
	for _, pk := range pkts[1:] {
		if int32(pk.ts-last) > 0 {
			last = pk.ts
		}
	}
	cu := &catchUp{backlog: pkts, cached: len(pkts), left: bytes, layer: f.layer, first: pkts[0].seq, tsLast: last, at: now, bytes: bytes, behind: age}
	span := float64(last - pkts[0].ts)
	if f.clockHz > 0 {
		span /= float64(f.clockHz)
	}
	cu.rate = catchUpMinRate
	factor := 1.0
	if span > 0.01 {
		own := float64(bytes) / span
		cu.rate = catchUpFactor * own
		factor = catchUpFactor
	}
	cu.factor = factor
	// The first frame (the keyframe, up to its marker) goes at once.
	for _, pk := range pkts {
		cu.tokens += float64(pk.n)
		if pk.marker {
			break
		}
	}
	cu.win = newWindow(dt.twccID() != 0, int(cu.tokens), now)
	return cu
}

// shift is what a cached packet's timestamp gains by the compression (0
// for any other packet).
func (cu *catchUp) shift(pk *packet) (uint32, bool) {
	i := int(pk.seq - cu.first)
	if pk.layer != cu.layer || i >= cu.cached {
		return 0, false
	}
	return cu.tsLast - uint32(float64(cu.tsLast-pk.ts)/cu.factor) - pk.ts, true
}

// wait is how long to wait before n more bytes may go.
func (cu *catchUp) wait(n int, now time.Time) time.Duration {
	cu.tokens = min(cu.tokens+now.Sub(cu.at).Seconds()*cu.rate, max(cu.tokens, 64<<10))
	cu.at = now
	if cu.tokens >= float64(n) {
		cu.tokens -= float64(n)
		return 0
	}
	d := time.Duration((float64(n) - cu.tokens) / cu.rate * float64(time.Second))
	// Sleep for a few packets at a time, not one: a join storm of viewers
	// each woken per packet costs more in scheduling than in sending.
	return max(d, catchUpQuantum)
}

// catchUp sends the backlog, paced, on the writer goroutine; send does what
// the writer does with a packet (and releases it). It returns false if the
// viewer closed meanwhile.
func (v *viewer) catchUp(cu *catchUp, send func(*packet)) bool {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	sleep := func(d time.Duration) bool {
		timer.Reset(d)
		select {
		case <-v.done:
			v.abandon(cu, "")
			return false
		case <-timer.C:
			return true
		}
	}
	for cu.head < len(cu.backlog) {
		// What arrived meanwhile: audio at once, video behind the backlog.
		for pk := v.queue.pop(); pk != nil; pk = v.queue.pop() {
			if pk.kind != kindVideo {
				send(pk)
				continue
			}
			if len(cu.backlog)-cu.head >= catchUpMaxPackets {
				pk.release()
				v.abandon(cu, "backlog full")
				return true
			}
			cu.backlog = append(cu.backlog, pk)
		}
		pk := cu.backlog[cu.head]
		now := time.Now()
		// What the feedback says about the link so far; the window only
		// holds back what comes after the keyframe.
		if why := cu.win.check(v, now, cu.left); why != "" {
			v.abandon(cu, why)
			return true
		}
		if !cu.win.open(pk.n) {
			cu.at = now // no pacing credit builds up while the window is shut
			cu.win.shut++
			if !sleep(catchUpQuantum) {
				return false
			}
			continue
		}
		if d := cu.wait(pk.n, now); d > 0 {
			if !sleep(d) {
				return false
			}
			cu.tokens -= float64(pk.n)
		}
		cu.backlog[cu.head] = nil
		if cu.head < cu.cached {
			cu.left -= pk.n
		}
		cu.head++
		n, before := pk.n, v.out.tseq
		send(pk)
		if v.out.tseq != before {
			cu.win.sent(before, n) // its transport-wide number (downtrack.send)
		}
	}
	cu.backlog, cu.done = nil, true
	v.log.Info("viewer fast start caught up", "took_ms", time.Since(cu.win.start).Milliseconds(), "sent_bytes", cu.win.sentBytes,
		"window_bytes", cu.win.limit, "window_waits", cu.win.shut)
	return true
}

// abandon drops what is left of the backlog: the viewer's link cannot
// carry it (why says how we know), or the viewer closed (why ""). Video
// resumes at the next keyframe, which is asked for at once.
func (v *viewer) abandon(cu *catchUp, why string) {
	left := 0
	for _, pk := range cu.backlog[cu.head:] {
		left += pk.n
		pk.release()
	}
	cu.backlog, cu.head, cu.done = nil, 0, true
	v.needKey.Store(true)
	// The keyframe video resumes at continues the viewer's timestamps from
	// the last frame sent by as much room-clock time as passes from now
	// (viewer_rewrite.go, reanchor), not from that frame's own time: the
	// backlog's timestamps were compressed towards live, and the viewer
	// got them faster than real time.
	if at := v.r.clk.since(time.Now()); v.out.have && at > v.out.lastPTS {
		v.out.lastPTS = at
	}
	if kf := v.keyframeLayer(); kf != nil {
		kf.requestKeyframe()
	}
	if why != "" {
		smp := v.pathSample()
		v.log.Info("viewer fast start stopped, video resumes at the next keyframe", "reason", why,
			"sent_bytes", cu.win.sentBytes, "dropped_bytes", left, "after_ms", time.Since(cu.win.start).Milliseconds(),
			"queue_ms", int(smp.queueMs), "loss", int(smp.loss*100))
	}
}

// compress applies the catch-up's timestamp compression to o, already
// rewritten for this viewer (viewer_rewrite.go), if pk is one of the cached
// packets it started from (retransmissions included). Runs on the writer.
func (v *viewer) compress(pk *packet, o *outHdr) {
	cu := v.catchup.Load()
	if cu == nil {
		return
	}
	d, ok := cu.shift(pk)
	if !ok {
		if cu.done && (pk.layer != cu.layer || int16(pk.seq-cu.first) > int16(cu.cached+1024)) {
			v.catchup.Store(nil) // past the backlog: no NACK can reach it
		}
		return
	}
	if d == 0 {
		return
	}
	// The rewriting remembered the uncompressed timestamp as the newest;
	// a layer switch continues from what the viewer actually got.
	if v.out.lastSeq == o.seq && v.out.lastTS == o.ts {
		v.out.lastTS += d
	}
	o.ts += d
}
