package media_test

import (
	"context"
	"testing"
	"time"

	"liveroom/media"
	"liveroom/media/mediatest"
)

// Layers as the studio page names them (docs/architecture.md): q, h, f,
// listed smallest first like a browser's sendEncodings. Index in this list
// is the mark a SimulcastPublisher writes into each packet.
var threeLayers = []mediatest.SimulcastLayer{
	{RID: "q", Packets: 1, Size: 300},
	{RID: "h", Packets: 2, Size: 700},
	{RID: "f", Packets: 4, Size: 1100},
}

const (
	markQ = 0
	markH = 1
	markF = 2
)

func startSimulcast(t *testing.T, ctx context.Context, s *media.SFU, room string, layers []mediatest.SimulcastLayer) *mediatest.SimulcastPublisher {
	t.Helper()
	p, err := mediatest.NewSimulcastPublisher(ctx, publishVia(s, room, "host", nil), mediatest.SimulcastOptions{
		Layers: layers, Audio: true, GOP: 90,
	})
	if err != nil {
		t.Fatalf("simulcast publisher: %v", err)
	}
	t.Cleanup(func() { _ = p.Close() })
	if err := p.WaitConnected(ctx); err != nil {
		t.Fatalf("publisher connect: %v", err)
	}
	return p
}

func startLayerViewer(t *testing.T, ctx context.Context, s *media.SFU, room string) (*mediatest.LayerViewer, *sessionRef) {
	t.Helper()
	ref := &sessionRef{}
	v, err := mediatest.NewLayerViewer(ctx, subscribeVia(s, room, ref))
	if err != nil {
		t.Fatalf("viewer: %v", err)
	}
	t.Cleanup(func() { _ = v.Close() })
	if err := v.WaitConnected(ctx); err != nil {
		t.Fatalf("viewer connect: %v", err)
	}
	return v, ref
}

// waitLayer waits until the viewer's newest video packets come from layer
// mark (n in a row).
func waitLayer(t *testing.T, ctx context.Context, v *mediatest.LayerViewer, mark int, what string) {
	t.Helper()
	for {
		pk := mediaOnly(v.Video())
		ok := len(pk) >= 10
		for i := len(pk) - 10; ok && i < len(pk); i++ {
			ok = pk[i].Layer == mark
		}
		if ok {
			return
		}
		select {
		case <-ctx.Done():
			last := -1
			if len(pk) > 0 {
				last = pk[len(pk)-1].Layer
			}
			t.Fatalf("%s: still on layer %d after %d packets, want %d", what, last, len(pk), mark)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// checkContinuous is what a decoder needs across layer switches: one SSRC,
// sequence numbers without a gap or reset, timestamps that never go back
// and advance with the time between packets, VP8 picture ids that
// continue, and every change of layer on the first packet of a keyframe.
func checkContinuous(t *testing.T, pk []mediatest.RecvPacket) (switches int) {
	t.Helper()
	lastMedia := -1
	for i := 1; i < len(pk); i++ {
		a, b := pk[i-1], pk[i]
		if !a.Padding {
			lastMedia = i - 1
		}
		if b.SSRC != a.SSRC {
			t.Fatalf("packet %d: SSRC changed %d -> %d", i, a.SSRC, b.SSRC)
		}
		if b.Seq != a.Seq+1 {
			t.Fatalf("packet %d: seq %d after %d, want +1 (layer %d -> %d)", i, b.Seq, a.Seq, a.Layer, b.Layer)
		}
		if b.Padding {
			// A probe's padding: between frames, with the last frame's timestamp.
			if lastMedia >= 0 && !pk[lastMedia].Marker {
				t.Fatalf("packet %d: padding inside a frame (after seq %d without a marker)", i, pk[lastMedia].Seq)
			}
			if lastMedia >= 0 && b.TS != pk[lastMedia].TS {
				t.Fatalf("packet %d: padding timestamp %d, want the last frame's %d", i, b.TS, pk[lastMedia].TS)
			}
			continue
		}
		if lastMedia < 0 {
			continue
		}
		a = pk[lastMedia] // padding between is not part of the picture numbering
		// The timestamp follows the time between the packets (a pause
		// included), give or take half a second.
		if d, max := int64(int32(b.TS-a.TS)), (b.At.Sub(a.At)+500*time.Millisecond).Microseconds()*90/1000; d < 0 || d > max {
			t.Fatalf("packet %d: timestamp moved %d ticks in %v (layer %d -> %d)", i, d, b.At.Sub(a.At), a.Layer, b.Layer)
		}
		if b.HasPic && a.HasPic && b.Pic != a.Pic && b.Pic != (a.Pic+1)&0x7fff {
			t.Fatalf("packet %d: picture id %d after %d (layer %d -> %d)", i, b.Pic, a.Pic, a.Layer, b.Layer)
		}
		if b.Layer != a.Layer {
			switches++
			if !b.Keyframe {
				t.Fatalf("packet %d: switched layer %d -> %d on a non-keyframe packet", i, a.Layer, b.Layer)
			}
			if b.TS == a.TS {
				t.Fatalf("packet %d: the new layer's keyframe has the old frame's timestamp", i)
			}
		}
	}
	return switches
}

func TestSimulcastSwitchesAtKeyframesContinuously(t *testing.T) {
	s := newSFU(t)
	ctx := testCtx(t, 40*time.Second)
	pub := startSimulcast(t, ctx, s.SFU, "sc", threeLayers)
	v, ref := startLayerViewer(t, ctx, s.SFU, "sc")

	waitLayer(t, ctx, v, markF, "start on the top layer")
	steps := []struct {
		quality string
		mark    int
	}{{media.QualityLow, markQ}, {"h", markH}, {media.QualityHigh, markF}, {"h", markH}, {media.QualityLow, markQ}}
	for _, st := range steps {
		plis := pub.PLIs(st.mark)
		got, err := s.SetViewerQuality("sc", ref.get(), st.quality)
		if err != nil {
			t.Fatalf("set quality %s: %v", st.quality, err)
		}
		if got.Quality != st.quality {
			t.Fatalf("quality = %q, want %q", got.Quality, st.quality)
		}
		waitLayer(t, ctx, v, st.mark, "quality "+st.quality)
		// The switch asked the target layer for a keyframe at once rather
		// than waiting for the encoder's periodic one (GOP 3 s).
		if pub.PLIs(st.mark) == plis {
			t.Errorf("quality %s: no keyframe request reached layer %d", st.quality, st.mark)
		}
	}
	if n := checkContinuous(t, v.Video()); n < len(steps) {
		t.Fatalf("saw %d layer switches, want at least %d", n, len(steps))
	}
	if v.AudioPackets() == 0 {
		t.Fatal("no audio")
	}
	st, err := s.ViewerQuality("sc", ref.get())
	if err != nil || st.Layer != "q" || len(st.Layers) != 3 || st.Layers[0] != "f" || st.Layers[2] != "q" {
		t.Fatalf("viewer layer state = %+v, %v; want on q, layers f,h,q", st, err)
	}
	if _, err := s.SetViewerQuality("sc", ref.get(), "no such!"); err == nil {
		t.Fatal("a bad quality was accepted")
	}
	layers, _ := s.Layers("sc")
	if len(layers.Layers) != 3 || layers.Layers[2].RID != "q" || layers.Layers[2].Viewers != 1 {
		t.Fatalf("room layers = %+v, want 3 with the viewer on q", layers)
	}
	if got := metricValue(t, s.reg, "liveroom_media_layer_viewers", map[string]string{"layer": "2"}); got != 1 {
		t.Fatalf("viewers on slot 2 (q) = %v, want 1", got)
	}
}

// A viewer whose feedback says everything is lost goes down to the lowest
// layer, then pauses at a frame boundary while audio continues, and
// resumes (at a keyframe) once its feedback is healthy again.
func TestSimulcastCongestionDownPauseResume(t *testing.T) {
	s := newSFU(t)
	ctx := testCtx(t, 60*time.Second)
	startSimulcast(t, ctx, s.SFU, "cg", threeLayers)
	v, ref := startLayerViewer(t, ctx, s.SFU, "cg")
	// New viewers start low and climb (fast start); put this one on top
	// first, then hand it to the estimator.
	if _, err := s.SetViewerQuality("cg", ref.get(), media.QualityHigh); err != nil {
		t.Fatal(err)
	}
	waitLayer(t, ctx, v, markF, "on the top layer")
	if _, err := s.SetViewerQuality("cg", ref.get(), media.QualityAuto); err != nil {
		t.Fatal(err)
	}

	v.SetLossy(true)
	waitPaused(t, ctx, s, ref.get(), true)
	pausedAt := len(mediaOnly(v.Video()))
	audio := v.AudioPackets()
	time.Sleep(time.Second)
	pk := mediaOnly(v.Video())
	if n := len(pk) - pausedAt; n > 5 {
		t.Fatalf("%d video packets arrived while paused", n)
	}
	if last := pk[len(pk)-1]; !last.Marker {
		t.Fatalf("video paused mid-frame (last packet seq %d has no marker)", last.Seq)
	}
	if v.AudioPackets()-audio < 20 {
		t.Fatalf("audio stopped while video was paused: %d packets in 1 s", v.AudioPackets()-audio)
	}
	if got := metricValue(t, s.reg, "liveroom_media_viewers_paused", nil); got != 1 {
		t.Fatalf("paused viewers = %v, want 1", got)
	}

	v.SetLossy(false)
	waitPaused(t, ctx, s, ref.get(), false)
	waitLayer(t, ctx, v, markQ, "resume on the lowest layer")
	checkContinuous(t, v.Video())
	for _, d := range []string{"down", "pause", "resume"} {
		if metricValue(t, s.reg, "liveroom_media_layer_switches_total", map[string]string{"direction": d}) == 0 {
			t.Errorf("no %s switch counted", d)
		}
	}
}

func waitPaused(t *testing.T, ctx context.Context, s *testSFU, session string, paused bool) {
	t.Helper()
	for {
		st, err := s.ViewerQuality("cg", session)
		if err != nil {
			t.Fatal(err)
		}
		if st.Paused == paused {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("paused = %v, want %v (state %+v)", st.Paused, paused, st)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// A single-layer publisher's viewer gets the same stream as before, with
// the layer API answering for its one layer; congestion pauses it cleanly.
func TestSingleLayerViewerPausesAndResumes(t *testing.T) {
	s := newSFU(t)
	ctx := testCtx(t, 60*time.Second)
	startSimulcast(t, ctx, s.SFU, "cg", threeLayers[2:]) // one rid: still one layer
	v, ref := startLayerViewer(t, ctx, s.SFU, "cg")
	waitLayer(t, ctx, v, 0, "the only layer")
	v.SetLossy(true)
	waitPaused(t, ctx, s, ref.get(), true)
	v.SetLossy(false)
	waitPaused(t, ctx, s, ref.get(), false)
	n := len(mediaOnly(v.Video()))
	for len(mediaOnly(v.Video())) < n+30 {
		select {
		case <-ctx.Done():
			t.Fatalf("no video after resume: %d packets, had %d", len(v.Video()), n)
		case <-time.After(20 * time.Millisecond):
		}
	}
	checkContinuous(t, v.Video())
}

// mediaOnly leaves out padding packets.
func mediaOnly(pk []mediatest.RecvPacket) []mediatest.RecvPacket {
	out := pk[:0:0]
	for _, p := range pk {
		if !p.Padding {
			out = append(out, p)
		}
	}
	return out
}
