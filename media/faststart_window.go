package media

import "time"

// The fast start's cap by what the viewer's link carries (issue 16). A
// viewer's link is unknown when it connects, and its bandwidth estimate
// (bwe.go) needs half a second of feedback before it says anything; a
// catch-up paced only by the GOP's own rate would by then have put most of
// a backlog into a slow link's queue (81 KB at 300 kbit/s is two seconds
// of everything, audio included, arriving late). So the catch-up is
// clocked by the feedback itself, like TCP's slow start:
//
//   - At most catchUpWindow bytes beyond the keyframe may be in flight (sent,
//     not yet reported received by the viewer's transport-wide feedback).
//     The keyframe itself goes at once, as it would for any joining viewer.
//   - Every byte reported received while the path adds less than
//     catchUpGrowQueue of queuing delay, and no more than the sample before
//     (a queue that grows is the link falling behind, even while it is
//     short), widens the window by one byte, so on a link that keeps up the
//     window doubles every feedback interval (~100 ms) and stops limiting
//     before the pacing does.
//   - The catch-up stops, and video jumps to live at the next keyframe (it
//     is requested), when the feedback shows the backlog is not getting
//     through: a queue over catchUpMaxQueue, loss over catchUpMaxLoss or
//     congestion as the estimator sees it, while more than catchUpWindow of
//     the cached GOP is still to send (less is cheaper to finish than a
//     freeze until the next keyframe, up to a GOP from a source that cannot
//     be asked), or nothing reported received for catchUpStall while the
//     window is full.
//
// The estimate is deliberately not used as a pacing rate: during a catch-up
// it measures what got through, which is what was sent, so it can only
// confirm the pacing, never raise it; its queue and loss are what tell.
// A viewer without transport-wide feedback has no window (nothing would
// open it); receiver reports' loss still stops its catch-up.
const (
	catchUpWindow    = 16 << 10 // like TCP's initial window (10 packets)
	catchUpGrowQueue = 40.0     // ms
	catchUpGrowTrend = 5.0      // ms more than the previous sample: growing
	catchUpMaxQueue  = 120.0    // ms: above the estimator's own overuse (80 ms)
	catchUpMaxLoss   = 0.10
	catchUpStall     = time.Second
	// catchUpFlight bounds the in-flight log; past it the window is
	// simply full until something is reported.
	catchUpFlight = 1024
)

type inFlight struct {
	seq uint16 // transport-wide
	n   int
}

// window is a catch-up's in-flight accounting, owned by the viewer's
// writer goroutine.
type window struct {
	on        bool // the viewer sends transport-wide feedback
	limit     int  // bytes that may be in flight
	flight    []inFlight
	inflight  int
	sentBytes int
	start     time.Time
	progress  time.Time // last time a packet was reported received
	lastQueue float64   // the previous sample's queuing delay (ms)
	shut      int       // pauses of catchUpQuantum the window imposed (for the log)
}

func newWindow(twcc bool, keyframe int, now time.Time) window {
	return window{on: twcc, limit: keyframe + catchUpWindow, start: now, progress: now}
}

// sent records a backlog packet sent with transport-wide number seq.
func (w *window) sent(seq uint16, n int) {
	w.sentBytes += n
	if !w.on {
		return
	}
	w.inflight += n
	if len(w.flight) < catchUpFlight {
		w.flight = append(w.flight, inFlight{seq, n})
	}
}

// open reports whether n more bytes may go now.
func (w *window) open(n int) bool {
	return !w.on || w.inflight == 0 || w.inflight+n <= w.limit && len(w.flight) < catchUpFlight
}

// check takes in what the feedback reported since the last call and says
// why the catch-up must stop ("" = go on); left is the bytes of the cached
// GOP not sent yet.
func (w *window) check(v *viewer, now time.Time, left int) string {
	smp := v.pathSample()
	growing := smp.queueMs > w.lastQueue+catchUpGrowTrend
	w.lastQueue = smp.queueMs
	switch {
	case left <= catchUpWindow:
	case smp.congested:
		return "congested"
	case smp.queueMs > catchUpMaxQueue:
		return "queue"
	case smp.loss > catchUpMaxLoss:
		return "loss"
	}
	if !w.on || len(w.flight) == 0 {
		return ""
	}
	acked := 0
	kept := w.flight[:0]
	for _, f := range w.flight {
		if v.tw.wasReceived(f.seq) {
			acked += f.n
			continue
		}
		kept = append(kept, f)
	}
	w.flight = kept
	if acked > 0 {
		w.inflight -= acked
		w.progress = now
		if smp.queueMs < catchUpGrowQueue && !growing {
			w.limit += acked
		}
		return ""
	}
	if w.inflight+maxPayload > w.limit && now.Sub(w.progress) > catchUpStall {
		return "no feedback"
	}
	return ""
}
