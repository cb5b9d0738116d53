package media

import (
	"sync"
	"sync/atomic"
	"time"
)

// padder is the writer's half of a bandwidth probe (probe.go): padding-only
// packets on the viewer's video SSRC, so that its video (media and padding)
// goes at the rate the probe's step asks for,
// paced by the viewer's own writer (a 10 ms timer while a probe runs, plus
// every wake-up for media), each stamped with the transport-wide sequence
// and logged like media so the estimator sees them. Padding goes only
// between frames (videoOut.padding) and with the last frame's timestamp.
//
// The rate is set by the viewer's RTCP reader (a probe is driven by
// feedback) with a deadline: a viewer whose feedback stops gets no more
// padding after it, whatever the probe was doing.
type padder struct {
	bps   atomic.Int64 // video bits/s wanted (media and padding), 0 = none
	until atomic.Int64 // unix ns: no padding after this without a newer set

	// padding packets a NACK asked for again (the RTCP reader adds, the
	// writer sends): a receiver that misses one cannot tell a lost frame
	// from it, and holds the frames after it until a keyframe.
	mu       sync.Mutex
	again    []uint16
	pendingN atomic.Int32

	catching atomic.Bool // a fast start's backlog is being sent (the writer says; no probe starts)

	// the writer's
	tokens float64 // bytes that may go now: the rate's, less the media sent
	media  uint64  // videoOut.bytes when last counted
	at     time.Time
	timer  *time.Timer
	c      <-chan time.Time // the timer's while armed, else nil (never ready)
}

const (
	padTick = 10 * time.Millisecond
	// padBurst bounds the padding sent at once: this much of the rate.
	padBurst = 50 * time.Millisecond // a writer late by this much (a loaded machine) still pads at the rate
	padDebt  = 100 * time.Millisecond
	// padWire is a padding packet's size on the wire (payload, RTP header
	// with the transport-wide extension, SRTP tag), for the token count.
	padWire = paddingSize + 12 + 8 + 10
	// padMaxRun bounds the packets sent in one go.
	padMaxRun = 32
)

// set asks for bps of padding until until (0: stop); true if padding
// starts (the writer's pacing timer is armed at its next wake-up: kick it).
func (p *padder) set(bps int64, until time.Time) bool {
	p.until.Store(until.UnixNano())
	return p.bps.Swap(bps) <= 0 && bps > 0
}

// padAgainMax bounds the padding retransmissions waiting.
const padAgainMax = 64

// resend asks v's writer to send padding packet seq again.
func (p *padder) resend(v *viewer, seq uint16) {
	p.mu.Lock()
	if len(p.again) < padAgainMax {
		p.again = append(p.again, seq)
		p.pendingN.Store(int32(len(p.again)))
	}
	p.mu.Unlock()
	v.queue.kick()
}

// padOut sends the padding due now; the viewer's writer calls it after each
// batch of media. It returns the bytes sent.
func (v *viewer) padOut() int {
	p := &v.pad
	sent := 0
	cu := v.catchup.Load()
	if catching := cu != nil && !cu.done; catching != p.catching.Load() {
		p.catching.Store(catching)
	}
	if p.pendingN.Load() > 0 {
		sent += v.padAgain()
	}
	bps := p.bps.Load()
	if bps <= 0 && p.c == nil {
		return sent // the common case: no probe, no clock read
	}
	now := time.Now()
	dt := v.tracks[kindVideo]
	// Not during a fast start's catch-up: its frames' timestamps are
	// rewritten after numbering (faststart.go), so padding there would
	// carry a timestamp ahead of the frames that follow it.
	if bps <= 0 || dt == nil || now.UnixNano() > p.until.Load() || cu != nil && !cu.done {
		p.tokens, p.at = 0, time.Time{}
		if p.c != nil {
			p.timer.Stop()
			p.c = nil
		}
		return 0
	}
	if !p.at.IsZero() {
		// The step's rate, less the video media sent meanwhile: padding
		// fills the gap, whatever the layer's actual rate; a keyframe
		// above the rate holds padding back for up to padDebt.
		p.tokens += float64(bps)/8*min(now.Sub(p.at), padBurst).Seconds() - float64(v.out.bytes-p.media)
	}
	p.at, p.media = now, v.out.bytes
	p.tokens = max(p.tokens, -float64(bps)/8*padDebt.Seconds())
	p.tokens = min(p.tokens, max(float64(bps)/8*padBurst.Seconds(), 2*padWire)) // a low rate still sends whole packets
	if n := min(int(p.tokens/padWire), padMaxRun); n > 0 {
		if seq, ts, ok := v.out.padding(n); ok {
			nowUs := v.tw.now(now)
			for i := range n {
				o := outHdr{seq: seq + uint16(i), ts: ts}
				m, err := dt.sendPadding(v.out.codec, &o, &v.out.tseq)
				if err != nil {
					break
				}
				if o.twcc {
					v.tw.sent(o.tseq, nowUs, max(m, padWire))
				}
				p.tokens -= padWire
				sent += m
			}
		}
	}
	if p.timer == nil {
		p.timer = time.NewTimer(padTick)
	} else {
		p.timer.Reset(padTick)
	}
	p.c = p.timer.C
	return sent
}

// padAgain sends the padding packets NACKs asked for again, with the
// newest frame's timestamp (a receiver uses a padding packet's number only).
func (v *viewer) padAgain() int {
	p := &v.pad
	p.mu.Lock()
	again := p.again
	p.again = nil
	p.pendingN.Store(0)
	p.mu.Unlock()
	dt := v.tracks[kindVideo]
	if dt == nil || !v.out.have {
		return 0
	}
	sent := 0
	nowUs := v.tw.now(time.Now())
	for _, seq := range again {
		o := outHdr{seq: seq, ts: v.out.lastTS}
		m, err := dt.sendPadding(v.out.codec, &o, &v.out.tseq)
		if err != nil {
			break
		}
		if o.twcc {
			v.tw.sent(o.tseq, nowUs, max(m, padWire))
		}
		sent += m
	}
	return sent
}
