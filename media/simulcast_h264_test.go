package media_test

import (
	"testing"
	"time"

	"liveroom/media"
	"liveroom/media/mediatest"
)

// TestSimulcastH264SwitchesContinuously: a pion publisher sends three H264
// rid layers (pre-encoded once by ffmpeg, frame-aligned: 720p, 360p, 180p,
// keyframes at the same frames) and a pion viewer pinned through the
// quality API to one layer after another gets one continuous, decodable
// stream: one SSRC, sequence numbers +1 across every switch, timestamps
// that never go back and follow the time between packets, every frame
// byte-identical to a frame of the layer it claims to be (but for the old
// layer's last frame, which a switch may cut: it then has no marker and the
// new layer's keyframe follows), each switch on an IDR that carries its SPS
// and PPS, and within a layer no frame skipped except onto an IDR.
func TestSimulcastH264SwitchesContinuously(t *testing.T) {
	needFFmpeg(t)
	ctx := testCtx(t, 2*time.Minute)
	layers, err := mediatest.EncodeLayers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	const (
		layerF = iota // index in mediatest.LayerSpec
		layerH
		layerQ
	)
	index := mediatest.NewH264Index(layers)

	s := newSFU(t)
	pub, err := mediatest.NewLayeredPublisher(ctx, publishVia(s.SFU, "h264sc", "host", nil),
		mediatest.LayeredPublisherOptions{Layers: layers, Simulcast: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pub.Close() })
	if err := pub.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	for {
		if l, _ := s.Layers("h264sc"); len(l.Layers) == 3 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatal("the three layers did not arrive")
		case <-time.After(20 * time.Millisecond):
		}
	}

	ref := &sessionRef{}
	v, err := mediatest.NewLayerViewerWith(ctx, subscribeVia(s.SFU, "h264sc", ref), mediatest.LayerViewerOptions{Payloads: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = v.Close() })
	if err := v.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}

	// on waits until the newest complete frames (5 in a row) are of layer l.
	on := func(l int, what string) {
		t.Helper()
		for {
			pk := v.Video()
			fr := index.Frames(pk[max(0, len(pk)-400):])
			ok := len(fr) > 6
			for i := len(fr) - 6; ok && i < len(fr)-1; i++ { // the last may be incomplete
				ok = fr[i].Layer == l
			}
			if ok {
				return
			}
			select {
			case <-ctx.Done():
				last := -1
				if len(fr) > 1 {
					last = fr[len(fr)-2].Layer
				}
				t.Fatalf("%s: newest frames from layer %d after %d packets, want %d", what, last, len(pk), l)
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	// New viewers start on the lowest layer (fast start); pin it so that
	// the estimator does not move the viewer meanwhile.
	steps := []struct {
		quality string
		layer   int
	}{
		{media.QualityLow, layerQ}, {"h", layerH}, {media.QualityHigh, layerF},
		{"q", layerQ}, {"f", layerF}, {"h", layerH},
	}
	for _, st := range steps {
		got, err := s.SetViewerQuality("h264sc", ref.get(), st.quality)
		if err != nil {
			t.Fatalf("set quality %s: %v", st.quality, err)
		}
		if got.Quality != st.quality {
			t.Fatalf("quality = %q, want %q", got.Quality, st.quality)
		}
		on(st.layer, "quality "+st.quality)
	}

	pk := v.Video()
	fr := index.Frames(pk)
	fr = fr[:len(fr)-1] // the newest may still be arriving
	if len(fr) == 0 || fr[0].Layer != layerQ || !fr[0].IDR || !fr[0].SPS || !fr[0].PPS {
		t.Fatalf("first frame %+v: want the lowest layer's IDR with SPS and PPS", fr[0])
	}
	for i := 1; i < len(pk); i++ {
		a, b := pk[i-1], pk[i]
		if b.SSRC != a.SSRC {
			t.Fatalf("packet %d: SSRC changed %d -> %d", i, a.SSRC, b.SSRC)
		}
		if b.Seq != a.Seq+1 {
			t.Fatalf("packet %d: seq %d after %d, want +1", i, b.Seq, a.Seq)
		}
		// Never back; forward by at most the time between the packets
		// (the fast start's backlog is compressed, so less is fine).
		if d, limit := int64(int32(b.TS-a.TS)), (b.At.Sub(a.At)+500*time.Millisecond).Microseconds()*90/1000; d < 0 || d > limit {
			t.Fatalf("packet %d: timestamp moved %d ticks in %v", i, d, b.At.Sub(a.At))
		}
	}
	// The old layer's last frame may be cut by a switch: its packets come
	// on another goroutine than the new layer's keyframe, and what arrives
	// after the switch is dropped. A decoder drops such a frame (no marker)
	// and starts again at the keyframe that follows; anything else that
	// matches no frame is a failure.
	switches, cut := 0, 0
	var p *mediatest.H264Frame // the previous complete frame
	for i := range fr {
		f := &fr[i]
		if f.Layer < 0 {
			if !f.Marker && i+1 < len(fr) && p != nil && fr[i+1].Layer >= 0 && fr[i+1].Layer != p.Layer && fr[i+1].IDR {
				cut++
				continue
			}
			var sizes []int
			for _, p := range pk[f.First : f.Last+1] {
				sizes = append(sizes, len(p.Payload))
			}
			t.Fatalf("frame %d (packets %d-%d, ts %d, marker %v, payload sizes %v): matches no frame of any layer, and is not an old layer's frame cut by a switch",
				i, f.First, f.Last, f.TS, f.Marker, sizes)
		}
		if !f.Marker {
			t.Fatalf("frame %d: its last packet has no marker bit", i)
		}
		if p == nil {
			p = f
			continue
		}
		switch {
		case f.Layer != p.Layer:
			switches++
			if !f.IDR || !f.SPS || !f.PPS {
				t.Fatalf("frame %d: switched layer %d -> %d on a frame with IDR %v, SPS %v, PPS %v; want all three", i, p.Layer, f.Layer, f.IDR, f.SPS, f.PPS)
			}
			if f.TS == p.TS {
				t.Fatalf("frame %d: the new layer's keyframe has the old frame's timestamp", i)
			}
		case f.Index != (p.Index+1)%len(layers[f.Layer].Frames) && !f.IDR:
			t.Fatalf("frame %d: layer %d frame %d after frame %d, not an IDR: the decoder misses a reference", i, f.Layer, f.Index, p.Index)
		}
		p = f
	}
	if switches < len(steps)-1 {
		t.Fatalf("saw %d layer switches, want at least %d", switches, len(steps)-1)
	}
	if v.AudioPackets() == 0 {
		t.Fatal("no audio")
	}
	t.Logf("%d frames, %d packets, %d switches, %d old-layer frames cut by a switch", len(fr), len(pk), switches, cut)
}
