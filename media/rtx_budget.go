package media

import (
	"sync"
	"time"
)

// Retransmissions are capped per viewer by what its link is believed to
// carry, as libwebrtc caps RTX at the bandwidth estimate over a one-second
// window: on a congested link every NACK answered adds to the queue that
// caused the loss, and a viewer (or an attacker) asking for the whole
// history again and again would make the node send it again and again.
// The budget refills at the viewer's estimate (rtxMinRate at least, so
// audio and a viewer without feedback can still recover) and holds at most
// one second of it; a retransmission that does not fit is skipped (the
// receiver asks for a keyframe if it cannot do without it).
const (
	rtxWindow      = time.Second
	rtxMinRate     = 300_000   // bits/s
	rtxDefaultRate = 2_500_000 // bits/s before the first estimate: the top layer's rate
)

type rtxBudget struct {
	mu     sync.Mutex
	rate   int64 // bits/s
	tokens float64
	last   time.Time
}

func newRTXBudget() *rtxBudget { return &rtxBudget{rate: rtxDefaultRate} }

// setRate follows the viewer's estimate (its RTCP readers).
func (b *rtxBudget) setRate(bps int64) {
	if b == nil || bps <= 0 {
		return
	}
	b.mu.Lock()
	b.rate = max(bps, rtxMinRate)
	b.mu.Unlock()
}

// take spends n bytes of the budget at now; false if they do not fit. A
// nil budget (an edge pull: another node) takes everything.
func (b *rtxBudget) take(now time.Time, n int) bool {
	if b == nil {
		return true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	capBytes := float64(b.rate) / 8 * rtxWindow.Seconds()
	if b.last.IsZero() {
		b.tokens = capBytes
	} else if dt := now.Sub(b.last).Seconds(); dt > 0 {
		b.tokens = min(capBytes, b.tokens+dt*float64(b.rate)/8)
	}
	b.last = now
	if float64(n) > b.tokens {
		return false
	}
	b.tokens -= float64(n)
	return true
}
