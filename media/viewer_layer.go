package media

import (
	"errors"

	"fmt"
	"github.com/pion/rtcp"
	"sync"
	"time"
)

// A viewer's video layer (simulcast.go): which layer it is sent, switching
// only at a keyframe of the target layer, pausing at a frame boundary, and
// the per-viewer rewriting that makes the layers one continuous stream.
//
// State: target is what selection wants (a slot, or curPaused); cur is what
// is being forwarded. Only packets of cur (and the keyframe of target that
// switches to it) are queued. cur changes on the packet path with a
// compare-and-swap, so the goroutines of two layers never both move it.
const (
	curJoining = -1 // no video sent yet
	curPaused  = -2 // paused: connection too slow (or target paused)
	curClosed  = -3
)

// Quality preferences a viewer can set (POST /whep/{room}/{session}/layer).
const (
	QualityAuto = "auto" // bandwidth estimation picks
	QualityHigh = "high" // always the top layer
	QualityLow  = "low"  // always the lowest layer
)

// ErrBadQuality: a preference that is none of auto, high, low or a layer's rid.
var ErrBadQuality = errors.New("media: quality must be auto, high, low or a layer rid")

// layerControl is a viewer's estimator, selector and preference; the RTCP
// readers (one per kind) feed it under mu.
type layerControl struct {
	mu      sync.Mutex
	bwe     *bwe
	sel     selector
	pref    string // QualityAuto, QualityHigh, QualityLow or a rid
	last    bweSample
	lastObs time.Time
	buf     []layerInfo
}

// offerVideo is offer for video packets (viewer.go).
func (v *viewer) offerVideo(f *forwarder, pk *packet) {
	cur := v.cur.Load()
	if cur == curClosed {
		return
	}
	tgt := v.target.Load()
	l := int32(pk.layer)
	switch {
	case l == tgt && (cur != tgt || v.needKey.Load()):
		// Joining, switching, resuming or recovering: start at a keyframe.
		if !pk.keyframe {
			f.metrics.drop(pk.kind, dropKeyframeWait)
			f.requestKeyframe() // repeated (throttled) until this viewer gets one
			return
		}
		// cur moves first: the writer takes this keyframe as the switch
		// point only once cur names its layer.
		if cur != tgt {
			v.moveCur(cur, tgt)
		}
		v.resumeSeq.Store(uint32(pk.seq))
		v.needKey.Store(false)
		pk.retain()
		if !v.queue.push(pk) {
			pk.release()
			v.needKey.Store(true)
			f.metrics.drop(pk.kind, dropQueueFull)
			return
		}
		v.queue.kickIfDue(pk)
		return
	case l != cur || v.needKey.Load():
		return
	case tgt == curPaused:
		// Pause at a frame boundary: this frame's remaining packets go out.
		if pk.marker {
			v.moveCur(cur, curPaused)
		}
	}
	v.push(f, pk)
}

// moveCur moves cur from old to next once, counting it.
func (v *viewer) moveCur(old, next int32) {
	if !v.cur.CompareAndSwap(old, next) || v.edge {
		return // edge pulls are not viewers in the layer metrics
	}
	m := v.s.metrics
	m.layerGauge(old, -1)
	m.layerGauge(next, +1)
	switch {
	case old == curJoining:
	case next == curPaused:
		m.layerSwitch("pause")
	case old == curPaused:
		m.layerSwitch("resume")
	case v.r.layers[next].rate.bps.Load() > v.r.layers[old].rate.bps.Load():
		m.layerSwitch("up")
	default:
		m.layerSwitch("down")
	}
}

// leaveLayers takes a closing viewer out of the layer gauges.
func (v *viewer) leaveLayers() {
	if old := v.cur.Swap(curClosed); old != curClosed && !v.edge {
		v.s.metrics.layerGauge(old, -1)
	}
}

// setTarget makes slot the target and asks its layer for a keyframe at
// once (throttled), so the switch is not left waiting for the encoder's
// next periodic one.
func (v *viewer) setTarget(slot int) {
	t := int32(slot)
	if slot == slotPaused {
		t = curPaused
	}
	if v.target.Swap(t) == t {
		return
	}
	if t < 0 {
		// Nothing of the current layer is in flight: pause now.
		if cur := v.cur.Load(); cur == curJoining || (cur >= 0 && v.needKey.Load()) {
			v.moveCur(cur, curPaused)
		}
		return
	}
	v.r.layers[t].requestKeyframe()
}

// keyframeLayer is the forwarder a keyframe request of this viewer goes to.
func (v *viewer) keyframeLayer() *forwarder {
	if t := v.target.Load(); t >= 0 {
		return v.r.layers[t]
	}
	return nil
}

// feedback digests a TWCC feedback packet from the viewer (its RTCP
// readers), read from its bytes (bwe_twcc.go).
func (v *viewer) feedback(pkt []byte) {
	now := time.Now()
	v.ctl.mu.Lock()
	smp, ok := v.ctl.bwe.feedback(now, func(fn func(uint16, bool, int64)) bool { return eachTWCCRaw(pkt, fn) })
	v.ctl.mu.Unlock()
	if ok {
		v.adapt(smp, now)
	}
}

// receiverReport is the fallback for viewers that send no TWCC: the loss
// their receiver reports give for our video stream.
func (v *viewer) receiverReport(rr *rtcp.ReceiverReport, ssrc uint32) {
	if v.tracks[kindVideo] == nil || v.tracks[kindVideo].twccID() != 0 {
		return
	}
	for _, r := range rr.Reports {
		if r.SSRC != ssrc {
			continue
		}
		now := time.Now()
		v.ctl.mu.Lock()
		smp := v.ctl.bwe.receiverReport(now, r.FractionLost)
		v.ctl.mu.Unlock()
		v.adapt(smp, now)
	}
}

// adapt runs layer selection after a bandwidth sample (the RTCP readers).
func (v *viewer) adapt(smp bweSample, now time.Time) {
	v.rtx.setRate(smp.est)
	c := &v.ctl
	c.mu.Lock()
	c.last = smp
	c.buf = v.r.activeLayers(now, c.buf)
	slot := -2
	var ended probeEnd
	switch c.pref {
	case QualityAuto:
		if !v.edge {
			// Probes need the viewer's transport-wide feedback (bwe.go).
			c.sel.canProbe = v.tracks[kindVideo] != nil && v.tracks[kindVideo].twccID() != 0
			c.sel.startup = v.pad.catching.Load()
			ended = c.selectProbing(now, c.buf, smp)
			slot = c.sel.slot
		} else {
			slot = edgeLayer(c.buf)
		}
	default:
		slot = pinned(c.pref, c.buf, v.r)
		if c.sel.pr.active {
			c.sel.endProbe(now, false)
			c.bwe.stopCluster()
		}
	}
	pad := c.sel.pr.videoBps()
	observe := now.Sub(c.lastObs) >= time.Second && smp.est > 0
	if observe {
		c.lastObs = now
	}
	c.mu.Unlock()
	// The padding this step wants, until a little after the next feedback
	// is due: a viewer whose feedback stops gets no more.
	if v.pad.set(pad, now.Add(probeStep)) {
		v.queue.kick()
	}
	if observe {
		v.s.metrics.estimate(smp.est)
	}
	if ended.done && !v.edge {
		v.s.metrics.probeDone(ended.passed)
		v.log.Debug("bandwidth probe", "to_layer", ended.to, "passed", ended.passed, "goal_kbps", ended.goal/1000,
			"step_kbps", ended.rate/1000, "result_kbps", ended.result/1000, "why", ended.why,
			"sent_kbps", ended.seen.sendBps/1000, "packets", ended.seen.packets, "missed", ended.seen.missed,
			"span_ms", ended.seen.sendSpan.Milliseconds(), "queue_ms", int(ended.seen.queueMs))
	}
	if slot != -2 {
		if slot == slotPaused && v.target.Load() != curPaused {
			v.log.Info("viewer video paused: connection too slow", "estimate_kbps", smp.est/1000,
				"received_kbps", smp.recvBps/1000, "loss", fmt.Sprintf("%.2f", smp.loss), "queue_ms", int(smp.queueMs))
		}
		v.setTarget(slot)
	}
}

// pinned is the slot a fixed preference names among the active layers;
// -2 = none active (leave the target alone).
func pinned(pref string, layers []layerInfo, r *room) int {
	if len(layers) == 0 {
		return -2
	}
	switch pref {
	case QualityHigh:
		return layers[0].slot
	case QualityLow:
		return layers[len(layers)-1].slot
	}
	for _, l := range layers {
		if p := r.layers[l.slot].rate.rid.Load(); p != nil && *p == pref {
			return l.slot
		}
	}
	return layers[0].slot
}

// ViewerLayer is a viewer's video as GET/POST /whep/{room}/{session}/layer
// answers it.
type ViewerLayer struct {
	Quality      string   `json:"quality"`       // auto, high, low or a rid
	Layer        string   `json:"layer"`         // rid being sent ("" for a single-layer source)
	Paused       bool     `json:"paused"`        // video paused: connection too slow
	Layers       []string `json:"layers"`        // active layers' rids, highest first
	EstimateKbps int64    `json:"estimate_kbps"` // bandwidth estimate, 0 = none yet
}

// ViewerQuality reports a viewer's layer state.
func (s *SFU) ViewerQuality(roomID, sessionID string) (ViewerLayer, error) {
	return s.SetViewerQuality(roomID, sessionID, "")
}

// SetViewerQuality sets a viewer's preference (auto, high, low or a rid;
// "" leaves it) and reports its layer state.
func (s *SFU) SetViewerQuality(roomID, sessionID, pref string) (ViewerLayer, error) {
	r, sess, err := s.session(roomID, sessionID)
	if err != nil {
		return ViewerLayer{}, err
	}
	v, ok := sess.(*viewer)
	if !ok {
		return ViewerLayer{}, fmt.Errorf("%w: %s is not a viewer", ErrSessionNotFound, sessionID)
	}
	switch {
	case pref == "", pref == QualityAuto, pref == QualityHigh, pref == QualityLow:
	case validRID(pref):
	default:
		return ViewerLayer{}, ErrBadQuality
	}
	now := time.Now()
	c := &v.ctl
	c.mu.Lock()
	if pref != "" && pref != c.pref {
		c.pref = pref
		if pref == QualityAuto {
			c.sel = newSelector(int(v.target.Load()), now)
			if c.sel.slot < 0 {
				c.sel.slot = slotPaused
			}
		}
	}
	out := ViewerLayer{Quality: c.pref, EstimateKbps: c.last.est / 1000, Layers: []string{}}
	layers := r.activeLayers(now, nil)
	slot := -2
	if c.pref != QualityAuto {
		slot = pinned(c.pref, layers, r)
	}
	c.mu.Unlock()
	if slot != -2 {
		v.setTarget(slot)
	}
	for _, l := range layers {
		out.Layers = append(out.Layers, r.layers[l.slot].ridName())
	}
	cur := v.cur.Load()
	out.Paused = cur == curPaused || (cur == curJoining && v.target.Load() == curPaused)
	if cur >= 0 {
		out.Layer = r.layers[cur].ridName()
	}
	return out, nil
}

func (f *forwarder) ridName() string {
	if p := f.rate.rid.Load(); p != nil {
		return *p
	}
	return ""
}

// probeEnd reports a probe that ended in a selection round.
type probeEnd struct {
	done, passed       bool
	to                 int
	goal, rate, result int64
	why                string
	seen               probeSample
}

// selectProbing runs the selector for one sample and keeps the estimator's
// probe cluster with it: restarted at each probe step, closed (with what it
// found) when the probe ends. Called with c.mu held.
func (c *layerControl) selectProbing(now time.Time, layers []layerInfo, smp bweSample) probeEnd {
	was := c.sel.pr
	passed := c.sel.probes[1]
	c.sel.next(now, layers, smp)
	pr := &c.sel.pr
	if pr.active && pr.newStep {
		pr.newStep = false
		c.bwe.startCluster(now)
	}
	if !was.active || pr.active && pr.to == was.to {
		return probeEnd{}
	}
	end := probeEnd{done: true, passed: c.sel.probes[1] != passed, to: was.to, goal: was.goal, rate: was.rate, result: pr.result,
		why: pr.why, seen: pr.seen}
	if end.why == "" && !end.passed {
		end.why = "congested"
	}
	if !end.passed && end.result == 0 {
		end.result = smp.probe.recvBps
	}
	c.bwe.probed(end.result, end.passed)
	return end
}

// edgeLayer is the layer an edge pull takes: the highest layer sent now.
// The top one, normally; when a browser drops it under CPU or uplink
// pressure the edge moves down (else every viewer of the edge freezes with
// it), and back up when it returns. -2 (no change) while nothing is sent.
func edgeLayer(active []layerInfo) int {
	if len(active) == 0 {
		return -2
	}
	return active[0].slot
}
