package media_test

import (
	"testing"
	"time"
)

// Over loopback (a link that carries everything) a pion viewer with
// transport-wide feedback climbs q → h → f only through probes that
// passed: padding-only packets arrive on its video SSRC before each
// up-switch, between frames and numbered in sequence with the media, and
// the server counts the probes and the padding.
func TestProbeClimbsWithPadding(t *testing.T) {
	s := newSFU(t)
	ctx := testCtx(t, 60*time.Second)
	startSimulcast(t, ctx, s.SFU, "pr", threeLayers)
	for { // a viewer starts on the lowest layer arriving when it joins
		l, _ := s.Layers("pr")
		if len(l.Layers) == 3 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("layers arriving: %+v", l)
		case <-time.After(20 * time.Millisecond):
		}
	}
	time.Sleep(300 * time.Millisecond) // and their bitrates are measured
	v, _ := startLayerViewer(t, ctx, s.SFU, "pr")
	waitLayer(t, ctx, v, markF, "climb to the top layer")
	pk := v.Video()
	checkContinuous(t, pk) // padding only between frames, sequence unbroken

	// Every change to a higher layer comes after padding, sent while on
	// the layer below.
	layer, padded, ups := -1, false, 0
	for _, p := range pk {
		switch {
		case p.Padding:
			if layer >= 0 {
				padded = true
			}
		case layer < 0:
			layer = p.Layer
		case p.Layer > layer: // marks count up q=0, h=1, f=2
			ups++
			if !padded {
				t.Fatalf("switched up %d -> %d without padding before it", layer, p.Layer)
			}
			layer, padded = p.Layer, false
		case p.Layer != layer:
			layer, padded = p.Layer, false
		}
	}
	if ups < 2 {
		t.Fatalf("%d up-switches seen, want q -> h -> f", ups)
	}
	if got := metricValue(t, s.reg, "liveroom_media_probes_total", map[string]string{"result": "passed"}); got < 2 {
		t.Errorf("probes passed = %v, want at least 2", got)
	}
	if got := metricValue(t, s.reg, "liveroom_media_probe_padding_bytes_total", nil); got < 10_000 {
		t.Errorf("padding bytes = %v, want the probes' (tens of KB)", got)
	}
}
