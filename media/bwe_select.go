package media

import "time"

// Layer selection for one viewer: the highest layer that fits the estimate
// with headroom, down at once on congestion, up only after a probe (the
// estimate cannot see bandwidth the viewer is not being sent): padding at
// the next layer's rate tests the link first (probe.go), and a probe that
// passes switches up. Hysteresis: a hold-down after each switch, a trial
// after an up-switch (congestion within trialWindow goes back), and probes
// or attempts that fail back off (doubling) so a viewer on a link just
// below a layer neither flaps nor keeps testing it.
//
// Viewers without transport-wide feedback (receiver-report fallback) cannot
// be probed: they climb by timed attempts, switching up and back on
// congestion.
//
// The slot -1 means "paused": not even the lowest layer fits; the viewer
// keeps audio and is probed (or tried) again on the lowest layer.

const (
	headroom     = 1.15             // a layer fits if its bitrate × headroom ≤ estimate
	holdDown     = time.Second      // after a switch, congestion is the old layer's queue draining
	upFirst      = 3 * time.Second  // stable this long before the first up-attempt
	upMax        = 20 * time.Second // longest wait between failed attempts
	trialWindow  = 3 * time.Second  // an up-switch congested within this fails
	probedTrial  = time.Second      // the same after a probe passed: the link was just shown to carry it
	upResetAfter = 60 * time.Second // holding a layer this long forgives failed attempts (15 s let a viewer below the next layer try every 15 s: a freeze each)
	slotPaused   = -1
	starvedDown  = 0.85 // a down-switch needs the rate received below this share of the layer's
	starvedPause = 0.7  // and a pause below this one
)

// selector is one viewer's layer choice; not safe for concurrent use
// (layerControl holds it under its lock).
type selector struct {
	slot        int // current target slot, slotPaused
	switchedAt  time.Time
	stableSince time.Time
	upAfter     time.Duration // timed attempts (no probing)
	trial       bool          // an up-switch on trial
	trialFrom   int
	trialUntil  time.Time

	canProbe  bool // the viewer sends transport-wide feedback
	startup   bool // a fast start's catch-up is still being sent: the link is full of it, no probe starts
	pr        probe
	probeWait time.Duration // before the next probe: probeFirst, doubled by failures
	probeEnd  time.Time
	probes    [3]int // started, passed, failed (for the log and tests)
	ceiling   int64  // the step rate at which the last probe of ceilingTo failed
	ceilingTo int
	ceilingAt time.Time
}

func newSelector(slot int, now time.Time) selector {
	return selector{slot: slot, switchedAt: now, stableSince: now, upAfter: upFirst, probeWait: probeFirst}
}

func fits(l layerInfo, est int64) bool {
	return est > 0 && float64(l.bps)*headroom <= float64(est)
}

// next returns the slot to forward given the active layers (highest
// bitrate first), the estimate and whether the path is congested now.
func (s *selector) next(now time.Time, layers []layerInfo, smp bweSample) int {
	if len(layers) == 0 {
		return s.slot
	}
	idx := -1
	for i, l := range layers {
		if l.slot == s.slot {
			idx = i
		}
	}
	if s.slot != slotPaused && idx < 0 {
		// Our layer stopped (the publisher dropped it): the best that fits.
		s.endProbe(now, false)
		return s.switchTo(now, s.bestFit(layers, smp.est, len(layers)-1), false)
	}
	if smp.congested {
		s.stableSince = now
		s.endProbe(now, false)
		if now.Sub(s.switchedAt) < holdDown || s.slot == slotPaused {
			return s.slot
		}
		// The layer still gets through at (nearly) its rate: the delay or
		// loss is not this link failing to carry it (a busy receiver, a
		// short burst). Hold, and do not climb.
		if cur := layers[idx].bps; cur > 0 && float64(smp.recvBps) > starvedDown*float64(cur) && !s.trial {
			return s.slot
		}
		if s.trial {
			s.upAfter = min(2*s.upAfter, upMax)
			s.probeWait = min(2*s.probeWait, probeMaxWait)
			return s.switchTo(now, s.trialFrom, false)
		}
		if idx == len(layers)-1 {
			if cur := layers[idx].bps; !smp.severe || cur > 0 && float64(smp.recvBps) > starvedPause*float64(cur) {
				return s.slot // the lowest layer: pausing needs a signal that holds, and a link that cannot carry it
			}
			return s.switchTo(now, slotPaused, false)
		}
		// Down: the highest lower layer that fits, else the lowest (one
		// more congested round there pauses).
		return s.switchTo(now, s.bestFit(layers[idx+1:], smp.est, len(layers)-1-(idx+1)), false)
	}
	if s.trial && !now.Before(s.trialUntil) {
		s.trial = false
		s.probeWait = probeFirst // the layer held: the next one may be probed soon
	}
	if !s.trial && now.Sub(s.switchedAt) >= upResetAfter {
		s.upAfter = upFirst
	}
	if idx == 0 || s.trial {
		s.endProbe(now, false)
		return s.slot
	}
	up := len(layers) - 1 // resume on the lowest
	if idx > 0 {
		up = idx - 1
	}
	if s.canProbe {
		return s.probeUp(now, layers, idx, up, smp)
	}
	waited := now.Sub(s.stableSince) >= s.upAfter && now.Sub(s.switchedAt) >= s.upAfter
	if fits(layers[up], smp.est) && now.Sub(s.switchedAt) >= holdDown || waited {
		from := s.slot
		s.switchTo(now, layers[up].slot, true)
		s.trialFrom = from
		return s.slot
	}
	return s.slot
}

// probeUp runs (or starts) the probe of layers[up] from layers[idx] (idx -1:
// paused) and switches up once one passes.
func (s *selector) probeUp(now time.Time, layers []layerInfo, idx, up int, smp bweSample) int {
	to := layers[up]
	if s.pr.active && s.pr.to != to.slot {
		s.endProbe(now, false) // the layers changed under it
	}
	if !s.pr.active {
		if s.startup || now.Sub(s.stableSince) < s.probeWait || now.Sub(s.switchedAt) < max(holdDown, s.probeWait) ||
			now.Sub(s.probeEnd) < s.probeWait {
			return s.slot
		}
		// What is sent anyway: the layer's media (audio comes on top). Not
		// the rate measured, which a fast start's catch-up or a keyframe
		// inflates.
		var base int64
		if idx >= 0 {
			base = layers[idx].bps
		}
		var ceiling int64
		if s.ceiling > 0 && s.ceilingTo == to.slot && now.Sub(s.ceilingAt) < probeForget {
			ceiling = s.ceiling
		}
		s.pr.start(now, to.slot, int64(float64(to.bps)*headroom), base, smp.queueMs, ceiling)
		s.probes[0]++
		return s.slot
	}
	switch s.pr.step(now, smp.probe) {
	case probePassed:
		s.endProbe(now, true)
		from := s.slot
		s.switchTo(now, to.slot, true)
		s.trialFrom, s.trialUntil = from, now.Add(probedTrial)
	case probeFailed:
		s.endProbe(now, false)
	}
	return s.slot
}

// endProbe ends the running probe, if any: passed, or failed (or cut
// short), which doubles the wait before the next one.
func (s *selector) endProbe(now time.Time, passed bool) {
	if !s.pr.active && s.pr.stepAt.IsZero() {
		return
	}
	s.pr.stop()
	s.pr.stepAt = time.Time{}
	s.probeEnd = now
	if passed {
		s.probes[1]++
		s.ceiling = 0
		return
	}
	s.probes[2]++
	switch s.pr.why {
	case "not sent":
		// Our side did not pad at the rate (a loaded writer): nothing
		// learnt about the link, try again after the usual wait.
	case "queue", "loss", "rate":
		s.ceiling, s.ceilingTo, s.ceilingAt = s.pr.rate, s.pr.to, now
		fallthrough
	default:
		s.probeWait = min(2*s.probeWait, probeMaxWait)
	}
}

// bestFit is the slot of the first (highest) of layers that fits est, or
// that of layers[fallback].
func (s *selector) bestFit(layers []layerInfo, est int64, fallback int) int {
	for _, l := range layers {
		if fits(l, est) {
			return l.slot
		}
	}
	return layers[max(fallback, 0)].slot
}

func (s *selector) switchTo(now time.Time, slot int, trial bool) int {
	if slot != s.slot {
		s.switchedAt = now
	}
	s.slot = slot
	s.trial = trial
	if trial {
		s.trialUntil = now.Add(trialWindow)
	}
	return slot
}
