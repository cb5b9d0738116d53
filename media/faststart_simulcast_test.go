package media_test

import (
	"testing"
	"time"
)

// TestFastStartOnLowestLayer: a viewer joining a simulcast room starts from
// the lowest layer's cached GOP (its first packet is that layer's cached
// keyframe, and no keyframe is asked of the layer for it), then the
// estimator moves it up to the top layer; sequence numbers and timestamps
// stay continuous through the compressed catch-up and the switches.
func TestFastStartOnLowestLayer(t *testing.T) {
	s := newSFU(t)
	ctx := testCtx(t, 60*time.Second)
	pub := startSimulcast(t, ctx, s.SFU, "fl", threeLayers)
	for {
		l, _ := s.Layers("fl")
		if len(l.Layers) == 3 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("layers arriving: %+v", l)
		case <-time.After(20 * time.Millisecond):
		}
	}
	time.Sleep(300 * time.Millisecond) // a GOP's worth of frames after the keyframe
	plis := pub.PLIs(markQ)
	v, _ := startLayerViewer(t, ctx, s.SFU, "fl")
	for len(v.Video()) == 0 {
		select {
		case <-ctx.Done():
			t.Fatal("no video")
		case <-time.After(10 * time.Millisecond):
		}
	}
	first := v.Video()[0]
	if first.Layer != markQ || !first.Keyframe {
		t.Fatalf("first video packet: layer %d keyframe %v, want the lowest layer's (%d) keyframe", first.Layer, first.Keyframe, markQ)
	}
	if got := pub.PLIs(markQ); got != plis {
		t.Errorf("the lowest layer was asked for %d keyframes for a viewer that started from its cache", got-plis)
	}
	waitLayer(t, ctx, v, markF, "the estimator moves the viewer up to the top layer")
	if n := checkContinuous(t, v.Video()); n < 1 {
		t.Fatalf("saw %d layer switches, want at least 1", n)
	}
}
