//go:build linux && adapt_pause_unreliable

// TestAdaptPauseSingleLayer is kept out of the default run: it passed once
// in three runs on the loaded 2-core machine (3 December). Failures seen:
// 18 frames decoded in the 8 s "paused" window (a resume attempt on the
// only layer, bounded since), and a run where the viewer's audio got 7
// packets in 8 s after the pause and video did not resume within 20 s of
// the link being raised to 5 Mbit/s (the viewer's selected pair was not on
// the veth address; the fast-start burst, 81 KB of the 500 kbit/s layer
// paced at >= 2 Mbit/s, also floods a 300 kbit/s link at the join). Run it
// with
//
//	cd web/e2e && go test -tags adapt_pause_unreliable -count=1 -run TestAdaptPauseSingleLayer -v .
package e2e

import (
	"testing"
	"time"

	"liveroom/media/mediatest"
	"liveroom/media/netshape"
)

// TestAdaptPauseSingleLayer: a single 500 kbit/s layer to a viewer behind
// 300 kbit/s: its video pauses cleanly (no frames decoded, no smeared
// picture: no freeze counted as playing, the server says paused) while its
// audio continues; raising the link resumes video at a keyframe.
func TestAdaptPauseSingleLayer(t *testing.T) {
	srv, layers, key := shapedSetup(t)
	link := netshape.New(t)
	link.Shape(t, "300kbit", "10kb", "200ms")
	startLayeredPublisher(t, srv, key, mediatest.LayeredPublisherOptions{Layers: layers, Single: 1})
	v := startShapedViewer(t, link, srv.base, "shaped", 60, nil)
	deadline := time.Now().Add(15 * time.Second)
	for {
		if _, paused := serverLayers(t, srv); paused == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the server never paused the viewer's video behind 300 kbit/s; last sample %+v", v.latest())
		}
		time.Sleep(250 * time.Millisecond)
	}
	time.Sleep(2 * time.Second) // what was in flight drains
	a := v.latest()
	time.Sleep(8 * time.Second)
	b := v.latest()
	// Paused video decodes nothing, but a resume attempt on the lowest
	// layer (3 s, then 6, 12... after the pause: bwe_select.go) starts at a
	// keyframe and may decode some frames before the congestion pauses it
	// again; a viewer that was never paused decodes ~240.
	if d := b.Video.FramesDecoded - a.Video.FramesDecoded; d > 8*mediatest.LayerFPS/3 {
		t.Errorf("video paused: %d frames decoded in 8 s, want at most a resume attempt's few", d)
	}
	if d := b.Audio.PacketsReceived - a.Audio.PacketsReceived; d < 8*40 {
		t.Errorf("audio during the pause: %d packets in 8 s, want about 50 a second", d)
	}
	resumed := time.Now()
	link.Shape(t, "5mbit", "32kb", "200ms")
	s := v.waitSample(t, "video resumes", 20*time.Second, func(s shapedStats) bool {
		return s.Video.FramesDecoded > b.Video.FramesDecoded+30 && s.Video.KeyFramesDecoded > b.Video.KeyFramesDecoded
	})
	if _, paused := serverLayers(t, srv); paused != 0 {
		t.Errorf("the server still counts %d paused viewers after the link was raised", paused)
	}
	writeFigure(t, "adapt_pause_single_layer", map[string]any{"resume_ms": time.UnixMilli(s.T).Sub(resumed).Milliseconds()})
}
