//go:build linux

// Adaptation tests of issue 16 (simulcast in, per-viewer bandwidth
// estimation, layer selection, pause/resume), against a Chromium viewer
// behind a tbf-shaped veth link (netshape). Run them with
//
//	cd web/e2e && go test -count=1 -run 'TestAdapt' -v .
//
// The layer a viewer actually gets is read in the browser, where it cannot
// be wrong: frameWidth of the decoded video (1280, 640, 320 for the layers
// of mediatest.LayerSpec). Freezes are getStats freezeCount. The server's
// view is read from /metrics (serverLayers).
package e2e

import (
	"bufio"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"liveroom/media/mediatest"
	"liveroom/media/netshape"
)

// The server's layer metrics (media/metrics_layers.go): viewers per layer,
// labelled by slot, and paused viewers.
const (
	metricViewersPerLayer = "liveroom_media_layer_viewers"
	metricPausedViewers   = "liveroom_media_viewers_paused"
)

// slotRID names the slots of a LayeredPublisher's simulcast (rids f, h, q;
// the server ranks them top first, media/simulcast.go rankRIDs). A
// single-layer room uses slot 0 only.
var slotRID = map[string]string{"0": "f", "1": "h", "2": "q", "3": "3"}

// layerWidth is the decoded width of each layer of mediatest.LayerSpec.
var layerWidth = map[string]int{"f": 1280, "h": 640, "q": 320}

// eachMetric calls fn for every sample line of the server's /metrics:
// the series (name and labels) and its value.
func eachMetric(t *testing.T, srv *server, fn func(series string, v float64)) {
	t.Helper()
	resp, err := http.Get(srv.base + "/metrics")
	if err != nil {
		t.Fatalf("metrics: %v", err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 2 {
			continue
		}
		if v, err := strconv.ParseFloat(f[1], 64); err == nil {
			fn(f[0], v)
		}
	}
}

// metricLabel is the value of label key in series (name{k="v",...}).
func metricLabel(series, key string) (string, bool) {
	_, v, ok := strings.Cut(series, key+`="`)
	if !ok {
		return "", false
	}
	v, _, _ = strings.Cut(v, `"`)
	return v, true
}

// serverLayers reads how many viewers the server has on each layer (by rid)
// and how many are paused.
func serverLayers(t *testing.T, srv *server) (perLayer map[string]int, paused int) {
	perLayer = map[string]int{}
	eachMetric(t, srv, func(series string, v float64) {
		switch {
		case strings.HasPrefix(series, metricViewersPerLayer+"{"):
			if l, ok := metricLabel(series, "layer"); ok {
				perLayer[slotRID[l]] += int(v)
			}
		case series == metricPausedViewers || strings.HasPrefix(series, metricPausedViewers+"{"):
			paused += int(v)
		}
	})
	return perLayer, paused
}

// serverSwitches reads the server's layer switches by direction (up, down,
// pause, resume).
func serverSwitches(t *testing.T, srv *server) map[string]int {
	out := map[string]int{}
	eachMetric(t, srv, func(series string, v float64) {
		if !strings.HasPrefix(series, "liveroom_media_layer_switches_total{") {
			return
		}
		if d, ok := metricLabel(series, "direction"); ok {
			out[d] += int(v)
		}
	})
	return out
}

// serverProbes reads the server's bandwidth probes by result (passed,
// failed) and the padding bytes they sent (media/probe.go).
func serverProbes(t *testing.T, srv *server) (byResult map[string]int, paddingBytes int64) {
	byResult = map[string]int{}
	eachMetric(t, srv, func(series string, v float64) {
		switch {
		case series == "liveroom_media_probe_padding_bytes_total":
			paddingBytes = int64(v)
		case strings.HasPrefix(series, "liveroom_media_probes_total{"):
			if r, ok := metricLabel(series, "result"); ok {
				byResult[r] += int(v)
			}
		}
	})
	return byResult, paddingBytes
}

// latest is the newest sample so far (zero value if none).
func (v *shapedViewer) latest() shapedStats {
	v.mu.Lock()
	defer v.mu.Unlock()
	if len(v.samples) == 0 {
		return shapedStats{}
	}
	return v.samples[len(v.samples)-1]
}

// waitSample waits up to within for a sample that satisfies cond and
// returns it; it fails the test with the last sample otherwise.
func (v *shapedViewer) waitSample(t *testing.T, what string, within time.Duration, cond func(shapedStats) bool) shapedStats {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if s := v.latest(); s.T != 0 && cond(s) {
			return s
		}
		select {
		case <-v.done:
			t.Fatalf("%s: the viewer ended first (%v)\nstderr:\n%s", what, v.err, v.stderr.String())
		case <-time.After(250 * time.Millisecond):
		}
	}
	t.Fatalf("%s: not within %v; last sample %+v", what, within, v.latest())
	return shapedStats{}
}

func simulcastPublisher(t *testing.T, srv *server, key string, layers []mediatest.Layer) {
	t.Helper()
	startLayeredPublisher(t, srv, key, mediatest.LayeredPublisherOptions{Layers: layers, Simulcast: true})
}

// TestAdaptSettlesLower: behind 800 kbit/s a viewer of a three-layer room
// settles on a layer below the top within a few seconds, then plays 30 s
// on it: the server probes the link at the top layer's rate (padding,
// media/probe.go) instead of switching to it, so the probes fail without
// stalling the picture; the server counts it on that layer.
func TestAdaptSettlesLower(t *testing.T) {
	srv, layers, key := shapedSetup(t)
	link := netshape.New(t)
	link.Shape(t, "800kbit", "20kb", "200ms")
	simulcastPublisher(t, srv, key, layers)
	v := startShapedViewer(t, link, srv.base, "shaped", 50, nil)
	settled := v.waitSample(t, "settle below the top layer", 10*time.Second, func(s shapedStats) bool {
		return s.Video.FrameWidth > 0 && s.Video.FrameWidth < layerWidth["f"]
	})
	settleAt := time.UnixMilli(settled.T).Sub(v.PostAt)
	time.Sleep(3 * time.Second) // a down-switch may still be in flight
	before := v.latest()
	probesBefore, padBefore := serverProbes(t, srv)
	// 30 s of play. Probes of the top layer (1 s, then 2, 4, 8, 10 s after
	// each failure) cost tens of ms of queueing each, not a stall; the
	// bounds still allow one stray stall (a loaded machine's Chromium).
	onLower, polls := 0, 0
	for end := time.Now().Add(30 * time.Second); time.Now().Before(end); time.Sleep(time.Second) {
		polls++
		if per, _ := serverLayers(t, srv); per["f"] == 0 && per["h"]+per["q"] == 1 {
			onLower++
		}
	}
	after := v.latest()
	probesAfter, padAfter := serverProbes(t, srv)
	if onLower < polls-2 {
		t.Errorf("the server had the viewer on h or q in %d of %d polls, want all (but a stray trial)", onLower, polls)
	}
	var window []shapedStats
	v.mu.Lock()
	for _, s := range v.samples {
		if s.T >= before.T && s.T <= after.T {
			window = append(window, s)
		}
	}
	v.mu.Unlock()
	top := 0
	for _, s := range window {
		if s.Video.FrameWidth >= layerWidth["f"] {
			top++
		}
	}
	if top*3 > len(window) {
		t.Errorf("%d of %d samples on the top layer behind 800 kbit/s", top, len(window))
	}
	if fps := float64(after.Video.FramesDecoded-before.Video.FramesDecoded) / 30; fps < 15 {
		t.Errorf("%.1f frames a second after settling, want about 30", fps)
	}
	checkThroughVeth(t, link, v, after)
	stalledSecs, stallEvents := stalls(window)
	if stalledSecs > 4 {
		t.Errorf("stalled %.1f s of 30 after settling, want about none", stalledSecs)
	}
	if probesAfter["failed"]+probesAfter["passed"] == probesBefore["failed"]+probesBefore["passed"] {
		t.Errorf("no probe of the top layer in 30 s on h (probes %v)", probesAfter)
	}
	writeFigure(t, "adapt_settles_lower", map[string]any{
		"stalled_seconds_after_settling":   stalledSecs, // as TestShapedSingleLayer's stalled_seconds
		"stalls_per_minute_after_settling": float64(stallEvents) * 2,
		"fps_after_settling":               float64(after.Video.FramesDecoded-before.Video.FramesDecoded) / 30,
		"link_kbps":                        800, "settle_ms": settleAt.Milliseconds(), "width": after.Video.FrameWidth,
		"freezes_per_minute_after_settling": float64(after.Video.FreezeCount-before.Video.FreezeCount) * 2,
		"freezes_per_minute_whole_run":      float64(after.Video.FreezeCount) / (float64(after.T-v.PostAt.UnixMilli()) / 60000),
		"frozen_seconds_after_settling":     after.Video.TotalFreezesDuration - before.Video.TotalFreezesDuration,
		"switches":                          serverSwitches(t, srv),
		"probes_whole_run":                  probesAfter,
		"probes_after_settling":             probesAfter["failed"] + probesAfter["passed"] - probesBefore["failed"] - probesBefore["passed"],
		"padding_bytes_after_settling":      padAfter - padBefore,
		"padding_kbps_after_settling":       float64(padAfter-padBefore) * 8 / 30 / 1000,
	})
}

// TestAdaptUnshapedTop: an unshaped viewer gets the top layer.
func TestAdaptUnshapedTop(t *testing.T) {
	srv, layers, key := shapedSetup(t)
	link := netshape.New(t)
	simulcastPublisher(t, srv, key, layers)
	v := startShapedViewer(t, link, srv.base, "shaped", 20, nil)
	s := v.waitSample(t, "top layer", 15*time.Second, func(s shapedStats) bool { return s.Video.FrameWidth == layerWidth["f"] })
	if per, _ := serverLayers(t, srv); per["f"] != 1 {
		t.Errorf("server's viewers per layer: %v, want the viewer on f", per)
	}
	writeFigure(t, "adapt_unshaped_top", map[string]any{"top_ms": time.UnixMilli(s.T).Sub(v.PostAt).Milliseconds()})
}

// TestAdaptClimbsBack: behind 800 kbit/s, then the link is raised to
// 10 Mbit/s while it plays: the viewer climbs back to the top layer.
func TestAdaptClimbsBack(t *testing.T) { climbsBack(t, 0, "adapt_climbs_back") }

// TestAdaptClimbsBackLater: the same after 20 s on the slow link, when
// failed probes (or attempts) have backed off to their longest wait.
func TestAdaptClimbsBackLater(t *testing.T) { climbsBack(t, 20*time.Second, "adapt_climbs_back_later") }

func climbsBack(t *testing.T, hold time.Duration, figure string) {
	srv, layers, key := shapedSetup(t)
	link := netshape.New(t)
	link.Shape(t, "800kbit", "20kb", "200ms")
	simulcastPublisher(t, srv, key, layers)
	v := startShapedViewer(t, link, srv.base, "shaped", 60+int(hold.Seconds()), nil)
	v.waitSample(t, "settle below the top layer", 10*time.Second, func(s shapedStats) bool {
		return s.Video.FrameWidth > 0 && s.Video.FrameWidth < layerWidth["f"]
	})
	time.Sleep(hold)
	raised := time.Now()
	link.Shape(t, "10mbit", "64kb", "200ms")
	s := v.waitSample(t, "climb back to the top layer", 30*time.Second, func(s shapedStats) bool { return s.Video.FrameWidth == layerWidth["f"] })
	probes, pad := serverProbes(t, srv)
	writeFigure(t, figure, map[string]any{"climb_ms": time.UnixMilli(s.T).Sub(raised).Milliseconds(), "switches": serverSwitches(t, srv),
		"probes": probes, "padding_bytes": pad})
}
