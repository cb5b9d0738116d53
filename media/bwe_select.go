package media

import "time"

// Layer selection for one viewer: the highest layer that fits the estimate
// with headroom, down at once on congestion, up by timed attempts (the
// estimate cannot see bandwidth the viewer is not being sent), with
// hysteresis: a hold-down after each switch, and attempts that fail back
// off (doubling) so a viewer on a link just below a layer does not flap.
//
// The slot -1 means "paused": not even the lowest layer fits; the viewer
// keeps audio and is tried again on the lowest layer like any up-attempt.

const (
	headroom     = 1.15             // a layer fits if its bitrate × headroom ≤ estimate
	holdDown     = time.Second      // after a switch, congestion is the old layer's queue draining
	upFirst      = 3 * time.Second  // stable this long before the first up-attempt
	upMax        = 20 * time.Second // longest wait between failed attempts
	probeWindow  = 3 * time.Second  // an attempt congested within this fails
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
	upAfter     time.Duration
	probing     bool
	probeFrom   int
	probeUntil  time.Time
}

func newSelector(slot int, now time.Time) selector {
	return selector{slot: slot, switchedAt: now, stableSince: now, upAfter: upFirst}
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
		return s.switchTo(now, s.bestFit(layers, smp.est, len(layers)-1), false)
	}
	if smp.congested {
		s.stableSince = now
		if now.Sub(s.switchedAt) < holdDown || s.slot == slotPaused {
			return s.slot
		}
		// The layer still gets through at (nearly) its rate: the delay or
		// loss is not this link failing to carry it (a busy receiver, a
		// short burst). Hold, and do not climb.
		if cur := layers[idx].bps; cur > 0 && float64(smp.recvBps) > starvedDown*float64(cur) && !s.probing {
			return s.slot
		}
		if s.probing {
			s.upAfter = min(2*s.upAfter, upMax)
			return s.switchTo(now, s.probeFrom, false)
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
	if s.probing && !now.Before(s.probeUntil) {
		s.probing = false
	}
	if !s.probing && now.Sub(s.switchedAt) >= upResetAfter {
		s.upAfter = upFirst
	}
	if idx == 0 || s.probing {
		return s.slot
	}
	up := len(layers) - 1 // resume on the lowest
	if idx > 0 {
		up = idx - 1
	}
	waited := now.Sub(s.stableSince) >= s.upAfter && now.Sub(s.switchedAt) >= s.upAfter
	if fits(layers[up], smp.est) && now.Sub(s.switchedAt) >= holdDown || waited {
		from := s.slot
		s.switchTo(now, layers[up].slot, true)
		s.probeFrom = from
		return s.slot
	}
	return s.slot
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

func (s *selector) switchTo(now time.Time, slot int, probe bool) int {
	if slot != s.slot {
		s.switchedAt = now
	}
	s.slot = slot
	s.probing = probe
	if probe {
		s.probeUntil = now.Add(probeWindow)
	}
	return slot
}
