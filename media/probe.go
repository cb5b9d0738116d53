package media

import "time"

// Up-switches probe: before a viewer is moved to a higher layer (or its
// paused video resumes), the link is tested at that layer's rate without
// switching. The viewer's writer adds padding-only packets on its video
// SSRC (probe_pad.go) so that media plus padding ramp up in steps of ×1.3
// towards the layer's bitrate × headroom; the viewer's transport-wide
// feedback reports them like any packet, and each step is judged on its
// own packets (bwe.go cluster): the rate they arrived at against the rate
// they were sent at, and the queueing delay they met. The first sign of a
// queue (probeQueue, well below the overuse threshold) ends the probe, so a
// link that cannot carry the layer costs tens of milliseconds of queueing
// instead of a frozen picture; a probe whose last step (at the full rate)
// gets through switches up.
//
// A probe is pure decision here (the selector holds it); the layerControl
// turns its steps into the padding rate and the estimator's cluster.

const (
	probeGrowth     = 1.3
	probeFine       = 1.1
	probeNear       = 0.85
	probePast       = 1.2
	probeForget     = time.Minute            // a ceiling older than this is not trusted
	probeStep       = 300 * time.Millisecond // each step but the last
	probeLastStep   = 600 * time.Millisecond // the full rate, held longer: a shaper's bucket hides a short excess
	probeCovered    = 0.7                    // a step is judged once its packets span this share of it
	probeNoFeedback = 1500 * time.Millisecond
	probeQueue      = 20.0 // ms of queueing (above the start's) that ends a probe
	probeQueueMin   = 20.0
	probeThrough    = 0.85 // a step passes if its packets arrive at ≥ this share of the rate they were sent at
	probeSentShare  = 0.7  // ... and were sent at ≥ this share of the step's rate (the padding went out)
	probeMissShare  = 0.05 // a step whose packets are reported missing beyond this share fails
	// maxProbePadBps caps the padding a probe sends on a viewer's behalf:
	// bytes the server spends on a client's request, at most this rate for
	// at most a few steps, and probes back off when they fail.
	maxProbePadBps = 3_000_000
	probeFirst     = time.Second     // stable this long (and after a switch) before a probe
	probeMaxWait   = 6 * time.Second // longest wait between failed probes (each costs tens of ms of queue: a link raised is found soon)
)

// probe is one up-switch probe's state.
type probe struct {
	active  bool
	to      int   // the slot it tests (the lowest, to resume a paused viewer)
	goal    int64 // bits/s: the layer's bitrate × headroom
	base    int64 // bits/s sent without padding when it began
	baseQ   float64
	rate    int64 // this step's total rate
	stepAt  time.Time
	newStep bool  // a step began: the caller restarts the estimator's cluster
	last    bool  // this step is at the goal
	over    int   // consecutive feedbacks whose step packets queued beyond the limit
	ceiling int64 // the last probe's failing rate, if known
	result  int64
	why     string      // what ended it, for the log
	seen    probeSample // the step's packets when it ended
}

type probeVerdict int

const (
	probeGoing probeVerdict = iota
	probePassed
	probeFailed
)

// start begins a probe of slot to; ceiling is the rate at which the last
// probe of it met a queue (0 = none known).
func (p *probe) start(now time.Time, to int, goal, base int64, baseQ float64, ceiling int64) {
	*p = probe{active: true, to: to, goal: goal, base: max(base, 0), baseQ: baseQ, ceiling: ceiling}
	p.rate = p.base
	p.next(now)
}

// next moves to the next step: ×probeGrowth (×1.5 let a step overshoot
// the link by half its rate: ~100 ms of queue before feedback stopped it),
// at most the goal, and at least the goal over 8 (a paused viewer's base
// is its audio alone). Near the rate where the last probe met a queue the
// steps are ×probeFine: a shaper's bucket lets a step through that the
// link cannot carry, so the step after it overshoots by all of its growth.
func (p *probe) next(now time.Time) {
	from := float64(max(p.rate, p.goal/8))
	r := int64(from * probeGrowth)
	if near := int64(probeNear * float64(p.ceiling)); p.ceiling > 0 && r > near && from < probePast*float64(p.ceiling) {
		r = max(near, int64(from*probeFine)) // past the ceiling by a margin, the link has changed: ×probeGrowth again
	}
	p.rate = min(r, p.goal)
	p.last = p.rate >= p.goal
	p.stepAt, p.newStep, p.over = now, true, 0
}

// videoBps is the video rate (media and padding) this step asks the
// viewer's writer for: it pads what its media leaves below this. At most
// maxProbePadBps above the layer's nominal rate.
func (p *probe) videoBps() int64 {
	if !p.active {
		return 0
	}
	return min(p.rate, p.base+maxProbePadBps)
}

// step judges the running step after a feedback.
func (p *probe) step(now time.Time, ps probeSample) probeVerdict {
	limit := max(p.baseQ+probeQueue, probeQueueMin)
	switch {
	case ps.packets == 0:
	case ps.queueMs > limit:
		p.over++
	default:
		p.over = 0
	}
	switch {
	case p.over >= 2:
		// A queue builds: stop before it is felt. Two feedbacks in a row,
		// because one alone is as often a stalled receiver or sender
		// (a loaded machine) as a full link.
		return p.fail(ps, "queue")
	case ps.packets+ps.missed >= 20 && float64(ps.missed) > probeMissShare*float64(ps.packets+ps.missed):
		return p.fail(ps, "loss")
	}
	dur := probeStep
	if p.last {
		dur = probeLastStep
	}
	if ps.sendSpan < time.Duration(probeCovered*float64(dur)) {
		if now.Sub(p.stepAt) > dur+probeNoFeedback {
			return p.fail(ps, "no feedback") // on the step's packets
		}
		return probeGoing
	}
	if float64(ps.sendBps) < probeSentShare*float64(p.rate) {
		return p.fail(ps, "not sent")
	}
	if float64(ps.recvBps) < probeThrough*float64(ps.sendBps) {
		return p.fail(ps, "rate")
	}
	if p.last {
		p.active, p.result, p.why, p.seen = false, ps.recvBps, "", ps
		return probePassed
	}
	p.next(now)
	return probeGoing
}

func (p *probe) fail(ps probeSample, why string) probeVerdict {
	p.active, p.why, p.seen = false, why, ps
	p.result = ps.recvBps
	if p.result <= 0 || p.result > p.rate {
		p.result = p.rate
	}
	return probeFailed
}

func (p *probe) stop() { p.active = false }
