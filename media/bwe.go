package media

import (
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
)

// Per-viewer bandwidth estimation from transport-wide congestion control
// (TWCC) feedback. The viewer's writer stamps every packet it sends (both
// kinds) with a transport-wide sequence number (downtrack.go) and logs its
// send time and size here; the viewer's RTCP readers turn each feedback
// into a sample: the queuing delay the path adds (one-way delay above its
// recent minimum), the loss, and the rate that got through. A viewer
// without TWCC (an old client) falls back to receiver reports' loss.
//
// Deliberately not pion's gcc package: its pacer copies every packet per
// viewer (the thing the room's shared packets avoid), and the layer
// selection only needs "congested or not" and "how much gets through".
// Packets are paced per frame by the viewer's send queue (send_queue.go).

// twccSlots bounds the send log: feedback arrives every ~100 ms, so 2048
// packets is a second or more of any viewer's stream.
const twccSlots = 2048

// twccLog is written by the viewer's writer and read by its RTCP readers.
// A slot holds send time (µs since epoch, 32 bits, wraps after 71 min:
// differences only) << 32 | seq << 16 | size.
type twccLog struct {
	epoch time.Time
	slots [twccSlots]atomic.Uint64
}

// now is at in the log's µs (computed once per batch of sends).
func (l *twccLog) now(at time.Time) uint32 { return uint32(at.Sub(l.epoch) / time.Microsecond) }

func (l *twccLog) sent(seq uint16, us uint32, size int) {
	l.slots[int(seq)%twccSlots].Store(uint64(us)<<32 | uint64(seq)<<16 | uint64(min(size, 0x7fff)))
}

// lookup returns the send time (µs) and size of seq, if still logged.
func (l *twccLog) lookup(seq uint16) (us uint32, size int, ok bool) {
	v := l.slots[int(seq)%twccSlots].Load()
	if v == 0 || uint16(v>>16) != seq {
		return 0, 0, false
	}
	return uint32(v >> 32), int(v & 0x7fff), true
}

// received marks seq as reported received (bit 15 of the size field) and
// reports whether it was already: feedback may report a packet lost and,
// once it arrived late, received (pion records arrivals where the
// application reads them; a busy receiver reorders its kinds).
func (l *twccLog) received(seq uint16) (already bool) {
	slot := &l.slots[int(seq)%twccSlots]
	for {
		v := slot.Load()
		if v == 0 || uint16(v>>16) != seq {
			return true
		}
		if v&0x8000 != 0 {
			return true
		}
		if slot.CompareAndSwap(v, v|0x8000) {
			return false
		}
	}
}

func (l *twccLog) wasReceived(seq uint16) bool {
	v := l.slots[int(seq)%twccSlots].Load()
	return v == 0 || uint16(v>>16) != seq || v&0x8000 != 0
}

// eachTWCC calls fn for every packet status of fb, in sequence order, with
// the arrival time in µs on the receiver's clock for received packets.
func eachTWCC(fb *rtcp.TransportLayerCC, fn func(seq uint16, received bool, arrUs int64)) {
	seq := fb.BaseSequenceNumber
	left := int(fb.PacketStatusCount)
	arr := int64(fb.ReferenceTime) * 64000
	di := 0
	status := func(sym uint16) {
		if left <= 0 {
			return
		}
		left--
		recv := sym == rtcp.TypeTCCPacketReceivedSmallDelta || sym == rtcp.TypeTCCPacketReceivedLargeDelta
		if recv && di < len(fb.RecvDeltas) {
			arr += fb.RecvDeltas[di].Delta
			di++
			fn(seq, true, arr)
		} else {
			fn(seq, false, 0)
		}
		seq++
	}
	for _, c := range fb.PacketChunks {
		switch c := c.(type) {
		case *rtcp.RunLengthChunk:
			for range min(int(c.RunLength), left) {
				status(c.PacketStatusSymbol)
			}
		case *rtcp.StatusVectorChunk:
			for _, s := range c.SymbolList {
				status(s)
			}
		}
	}
}

// bwe turns feedback into samples. Not safe for concurrent use: the
// viewer's layerControl holds it under its lock.
type bwe struct {
	log *twccLog

	haveRef    bool
	ref        uint32   // the first packet's raw delay
	minDelay   [2]int64 // windowed minimum one-way delay (µs): current, previous bucket
	minAt      time.Time
	queueDelay float64   // smoothed, ms
	loss       float64   // smoothed fraction
	overSince  time.Time // zero = not over the thresholds
	// Packets reported lost are counted lost only if no later feedback
	// reports them received within lossGrace.
	pending   []pendingLoss
	rateBytes int
	rateFrom  time.Time // start of the rate window (feedback arrivals here)
	recvBps   float64
	est       float64
	lastAt    time.Time
	cl        cluster // a probe step's packets (probe.go), when clOn
	clOn      bool
}

// cluster measures the packets sent from a point on (a probe step): what
// was sent and what got through, over the send and the arrival times.
type cluster struct {
	from                uint32 // send clock (µs) of the step's start
	bytes, recv, miss   int
	sendMin, sendMax    int64 // µs, relative to from
	arrMin, arrMax      int64 // µs, receiver clock
	firstSize, lastSize int
	queueSum            float64 // ms, this feedback's cluster packets
	queueN              int
	queueLast           float64 // ms: mean queueing of the cluster in the latest feedback
	haveArr             bool
}

// bweSample is what layer selection gets after each feedback.
type bweSample struct {
	est       int64 // bits/s the path is believed to carry
	recvBps   int64
	probe     probeSample // the running probe step's packets, if any
	congested bool        // overuse or loss, for congestedFor (a down-switch)
	severe    bool        // congested for severeFor with heavy loss or a long queue: pause
	loss      float64
	queueMs   float64
}

const (
	overuseDelay = 80.0  // ms of queuing the path adds: it is congested
	overuseLoss  = 0.08  // loss fraction (smoothed) counted as congestion
	severeDelay  = 200.0 // ms of queue, held for severeFor: not even a lower layer drains it
	severeLoss   = 0.10
	minWindow    = 5 * time.Second
	// A loaded server or a noisy path shows short bursts of delay or loss;
	// only a signal that holds counts.
	congestedFor = 300 * time.Millisecond
	severeFor    = 2 * time.Second
)

type pendingLoss struct {
	seq uint16
	at  time.Time
}

const (
	lossGrace  = 300 * time.Millisecond
	maxPending = 2048 // bounds the work a viewer's feedback can cause
)

func newBWE(log *twccLog) *bwe { return &bwe{log: log} }

// feedback digests one TWCC feedback at now; walk calls its argument for
// every packet status (eachTWCCRaw over the bytes, or eachTWCC).
func (e *bwe) feedback(now time.Time, walk func(func(seq uint16, received bool, arrUs int64)) bool) (bweSample, bool) {
	var recv, lost int
	var qsum float64
	var nq int
	if e.minAt.IsZero() || now.Sub(e.minAt) > minWindow {
		e.minDelay[1], e.minDelay[0] = e.minDelay[0], 0
		e.minAt = now
	}
	walk(func(seq uint16, received bool, arrUs int64) {
		sendUs, size, ok := e.log.lookup(seq)
		if !ok {
			return
		}
		if !received {
			if !e.log.wasReceived(seq) && len(e.pending) < maxPending {
				e.pending = append(e.pending, pendingLoss{seq: seq, at: now})
			}
			return
		}
		if e.log.received(seq) {
			return // reported twice
		}
		recv++
		// One-way delay up to a constant (the two clocks' offset), taken
		// relative to the first packet's so the 32-bit send clock's wrap
		// cancels out.
		raw := uint32(arrUs) - sendUs
		if !e.haveRef {
			e.haveRef, e.ref = true, raw
		}
		d := int64(int32(raw-e.ref)) + 1<<40 // > 0: 0 means "none" below
		if e.minDelay[0] == 0 || d < e.minDelay[0] {
			e.minDelay[0] = d
		}
		q := float64(d - e.anyMin())
		qsum += q
		nq++
		e.rateBytes += size
		if e.clOn && int32(sendUs-e.cl.from) >= 0 {
			e.cl.add(int64(int32(sendUs-e.cl.from)), arrUs, size, q/1000)
		}
	})
	if e.clOn && e.cl.queueN > 0 {
		e.cl.queueLast = e.cl.queueSum / float64(e.cl.queueN)
		e.cl.queueSum, e.cl.queueN = 0, 0
	}
	// Losses whose grace is over and that never arrived.
	kept := e.pending[:0]
	for _, p := range e.pending {
		switch {
		case now.Sub(p.at) < lossGrace:
			kept = append(kept, p)
		case !e.log.wasReceived(p.seq):
			lost++
			if sendUs, _, ok := e.log.lookup(p.seq); ok && e.clOn && int32(sendUs-e.cl.from) >= 0 {
				e.cl.miss++ // a probe step's packet that never arrived
			}
		}
	}
	e.pending = kept
	if recv+lost == 0 {
		return bweSample{}, false
	}
	if nq > 0 {
		e.queueDelay = 0.5*e.queueDelay + 0.5*qsum/float64(nq)/1000
	}
	e.loss = 0.7*e.loss + 0.3*float64(lost)/float64(recv+lost)
	// The rate that got through, over the feedback's own arrival here
	// (so that a viewer receiving nothing measures nothing).
	if e.rateFrom.IsZero() {
		e.rateFrom, e.rateBytes = now, 0
	} else if span := now.Sub(e.rateFrom); span >= 500*time.Millisecond {
		bps := float64(e.rateBytes*8) / span.Seconds()
		if e.recvBps == 0 {
			e.recvBps = bps
		} else {
			e.recvBps = 0.5*e.recvBps + 0.5*bps
		}
		e.rateFrom, e.rateBytes = now, 0
	}
	return e.sample(now), true
}

// receiverReport is the fallback without TWCC: loss only.
func (e *bwe) receiverReport(now time.Time, fractionLost uint8) bweSample {
	e.loss = 0.7*e.loss + 0.3*float64(fractionLost)/256
	return e.sample(now)
}

func (e *bwe) sample(now time.Time) bweSample {
	over := e.queueDelay > overuseDelay || e.loss > overuseLoss
	switch {
	case !over:
		e.overSince = time.Time{}
	case e.overSince.IsZero():
		e.overSince = now
	}
	congested := over && now.Sub(e.overSince) >= congestedFor
	severe := over && now.Sub(e.overSince) >= severeFor && (e.loss > severeLoss || e.queueDelay > severeDelay)
	switch {
	case congested && e.recvBps > 0:
		e.est = e.recvBps * 0.85
	case !congested && e.recvBps > e.est:
		e.est = e.recvBps
	case !congested && e.est > 0:
		// Let the estimate grow slowly past what is sent (8 %/s), so a
		// layer a little above the current rate can be chosen without a
		// timed attempt.
		dt := min(now.Sub(e.lastAt).Seconds(), 1)
		e.est = min(e.est*(1+0.08*dt), e.recvBps*1.5+50_000)
	}
	e.lastAt = now
	smp := bweSample{est: int64(e.est), recvBps: int64(e.recvBps), congested: congested, severe: severe,
		loss: e.loss, queueMs: e.queueDelay}
	if e.clOn {
		smp.probe = e.cl.sample()
	}
	return smp
}

func (c *cluster) add(sendUs, arrUs int64, size int, queueMs float64) {
	if c.recv == 0 || sendUs < c.sendMin {
		c.sendMin, c.firstSize = sendUs, size
	}
	if c.recv == 0 || sendUs > c.sendMax {
		c.sendMax, c.lastSize = sendUs, size
	}
	if !c.haveArr || arrUs < c.arrMin {
		c.arrMin = arrUs
	}
	if !c.haveArr || arrUs > c.arrMax {
		c.arrMax = arrUs
	}
	c.haveArr = true
	c.recv++
	c.bytes += size
	c.queueSum += queueMs
	c.queueN++
}

// probeSample is what a probe step's packets showed so far.
type probeSample struct {
	packets  int           // reported received
	missed   int           // reported not received (yet)
	sendSpan time.Duration // first to last send of the received ones
	sendBps  int64         // the rate they were sent at
	recvBps  int64         // the rate they arrived at
	queueMs  float64       // their mean queueing delay in the latest feedback
}

func (c *cluster) sample() probeSample {
	p := probeSample{packets: c.recv, missed: c.miss, queueMs: c.queueLast,
		sendSpan: time.Duration(c.sendMax-c.sendMin) * time.Microsecond}
	if c.recv < 2 {
		return p
	}
	// A rate over a span counts the bytes after its first packet (sending)
	// or up to its last one (arriving).
	if d := c.sendMax - c.sendMin; d > 0 {
		p.sendBps = int64(c.bytes-c.lastSize) * 8 * 1e6 / d
	}
	if d := c.arrMax - c.arrMin; d > 0 {
		p.recvBps = int64(c.bytes-c.firstSize) * 8 * 1e6 / d
	}
	return p
}

// startCluster starts measuring the packets sent from at on (a probe step).
func (e *bwe) startCluster(at time.Time) {
	e.cl = cluster{from: e.log.now(at)}
	e.clOn = true
}

func (e *bwe) stopCluster() { e.clOn = false }

// probed tells the estimator what a probe found: the rate that got through
// (a probe that passed: the estimate is at least that) or the rate at which
// the path queued (one that failed: the estimate is below it).
func (e *bwe) probed(bps int64, passed bool) {
	e.clOn = false
	switch {
	case bps <= 0:
	case passed:
		e.est = max(e.est, float64(bps))
	default:
		e.est = min(e.est, float64(bps)*0.9)
	}
}

func (e *bwe) anyMin() int64 {
	switch {
	case e.minDelay[1] != 0 && (e.minDelay[0] == 0 || e.minDelay[1] < e.minDelay[0]):
		return e.minDelay[1]
	}
	return e.minDelay[0]
}
