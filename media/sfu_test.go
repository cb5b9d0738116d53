package media_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"liveroom/media"
	"liveroom/media/mediatest"

	"github.com/prometheus/client_golang/prometheus"
)

func TestPublisherAndThreeViewers(t *testing.T) {
	s := newSFU(t)
	ctx := testCtx(t, 30*time.Second)
	pub, _ := startPublisher(t, ctx, s.SFU, "r1", "host1")
	var viewers []*mediatest.Viewer
	for range 3 {
		v, _ := startViewer(t, ctx, s.SFU, "r1")
		viewers = append(viewers, v)
	}
	for i, v := range viewers {
		st := waitStats(t, ctx, v, "keyframe and audio", func(st mediatest.ViewerStats) bool {
			return !st.FirstKeyframeAt.IsZero() && st.Audio.Packets > 10 && st.Video.Packets > 50
		})
		if !st.FirstVideoKeyframe {
			t.Errorf("viewer %d: first video packet is not a keyframe start", i)
		}
		if !st.FirstKeyframeParams {
			t.Errorf("viewer %d: first keyframe came without SPS/PPS", i)
		}
		// Packets keep flowing.
		before := st.Video.Packets
		waitStats(t, ctx, v, "more video", func(st mediatest.ViewerStats) bool { return st.Video.Packets > before+30 })
	}
	if got := s.Viewers("r1"); got != 3 {
		t.Errorf("Viewers: got %d, want 3", got)
	}
	if !s.Live("r1") {
		t.Errorf("Live: got false, want true")
	}
	for _, m := range []struct {
		name   string
		labels map[string]string
		min    float64
		max    float64
	}{
		{"liveroom_media_publishers", nil, 1, 1},
		{"liveroom_media_viewers", nil, 3, 3},
		{"liveroom_media_packets_forwarded_total", map[string]string{"kind": "video"}, 100, 1e9},
		{"liveroom_media_packets_forwarded_total", map[string]string{"kind": "audio"}, 30, 1e9},
		{"liveroom_media_bytes_forwarded_total", map[string]string{"kind": "video"}, 10000, 1e12},
		// No keyframe_requests row: viewers joining a live room start from
		// the cached GOP (faststart.go) and ask for none.
	} {
		if got := metricValue(t, s.reg, m.name, m.labels); got < m.min || got > m.max {
			t.Errorf("%s%v: got %v, want %v..%v", m.name, m.labels, got, m.min, m.max)
		}
	}
	t.Log(pub)
}

func TestViewerBeforeLive(t *testing.T) {
	s := newSFU(t)
	ctx := testCtx(t, 30*time.Second)
	v, _ := startViewer(t, ctx, s.SFU, "early")
	if s.Live("early") {
		t.Fatalf("Live before any publisher: got true, want false")
	}
	startPublisher(t, ctx, s.SFU, "early", "host")
	st := waitStats(t, ctx, v, "media after going live", func(st mediatest.ViewerStats) bool {
		return !st.FirstKeyframeAt.IsZero() && st.Audio.Packets > 10
	})
	if !st.FirstVideoKeyframe || !st.FirstKeyframeParams {
		t.Errorf("first video: keyframe start %v, SPS/PPS %v; want both true", st.FirstVideoKeyframe, st.FirstKeyframeParams)
	}
	waitLive(t, ctx, s.live, []string{"early:live"})
}

func TestHostReconnectKeepsViewers(t *testing.T) {
	s := newSFU(t)
	ctx := testCtx(t, 40*time.Second)
	pub1, _ := startPublisher(t, ctx, s.SFU, "re", "host")
	v1, _ := startViewer(t, ctx, s.SFU, "re")
	v2, _ := startViewer(t, ctx, s.SFU, "re")
	for _, v := range []*mediatest.Viewer{v1, v2} {
		waitStats(t, ctx, v, "first keyframe", func(st mediatest.ViewerStats) bool {
			return !st.FirstKeyframeAt.IsZero() && st.Audio.Packets > 10
		})
	}

	// The host reconnects with a new PeerConnection (new SSRCs, new random
	// sequence numbers and timestamps) while the old one is still sending.
	reconnectAt := time.Now()
	startPublisher(t, ctx, s.SFU, "re", "host")
	for i, v := range []*mediatest.Viewer{v1, v2} {
		before := v.Stats()
		st := waitStats(t, ctx, v, "keyframe after reconnect", func(st mediatest.ViewerStats) bool {
			return st.LastKeyframeAt.After(reconnectAt) && st.Video.Packets > before.Video.Packets+60 &&
				st.Audio.Packets > before.Audio.Packets+50
		})
		t.Logf("viewer %d after reconnect: %+v", i, st)
		for _, c := range []struct {
			kind string
			s    mediatest.StreamStats
		}{{"video", st.Video}, {"audio", st.Audio}} {
			if c.s.SSRCChanges != 0 {
				t.Errorf("viewer %d %s: SSRC changed %d times, want 0", i, c.kind, c.s.SSRCChanges)
			}
			if c.s.SeqJumps != 0 {
				t.Errorf("viewer %d %s: %d sequence discontinuities, want 0", i, c.kind, c.s.SeqJumps)
			}
			if c.s.TSBackwards != 0 {
				t.Errorf("viewer %d %s: timestamp went backwards %d times, want 0", i, c.kind, c.s.TSBackwards)
			}
			if c.s.Lost > 20 {
				t.Errorf("viewer %d %s: %d packets missing across the reconnect, want a continuous sequence", i, c.kind, c.s.Lost)
			}
		}
	}
	if got, want := s.Viewers("re"), 2; got != want {
		t.Errorf("Viewers: got %d, want %d", got, want)
	}
	waitLive(t, ctx, s.live, []string{"re:live"})
	_ = pub1
}

func TestPublisherConflict(t *testing.T) {
	s := newSFU(t)
	ctx := testCtx(t, 30*time.Second)
	startPublisher(t, ctx, s.SFU, "c", "alice")
	v, _ := startViewer(t, ctx, s.SFU, "c")
	waitStats(t, ctx, v, "media", func(st mediatest.ViewerStats) bool { return st.Video.Packets > 30 })

	_, err := mediatest.NewPublisher(ctx, publishVia(s.SFU, "c", "mallory", nil), mediatest.PublisherOptions{Clip: clip(t)})
	if !errors.Is(err, media.ErrPublisherConflict) {
		t.Fatalf("second host: got %v, want ErrPublisherConflict", err)
	}
	before := v.Stats().Video.Packets
	waitStats(t, ctx, v, "first publisher still streaming", func(st mediatest.ViewerStats) bool {
		return st.Video.Packets > before+60
	})
	if !s.Live("c") {
		t.Errorf("Live: got false, want true")
	}
}

func TestPublisherLeavesThenAnotherHostPublishes(t *testing.T) {
	cases := []struct {
		name  string
		leave func(s *media.SFU, room, session string, pub *mediatest.Publisher) error
	}{
		{"DELETE", func(s *media.SFU, room, session string, _ *mediatest.Publisher) error { return s.Close(room, session) }},
		{"client hangs up", func(_ *media.SFU, _, _ string, pub *mediatest.Publisher) error { return pub.Close() }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := newSFU(t)
			ctx := testCtx(t, 40*time.Second)
			pub, ref := startPublisher(t, ctx, s.SFU, "off", "alice")
			v, _ := startViewer(t, ctx, s.SFU, "off")
			waitStats(t, ctx, v, "media", func(st mediatest.ViewerStats) bool { return !st.FirstKeyframeAt.IsZero() })

			if err := c.leave(s.SFU, "off", ref.get(), pub); err != nil {
				t.Fatalf("leave: %v", err)
			}
			waitLive(t, ctx, s.live, []string{"off:live", "off:offline"})
			if s.Live("off") {
				t.Errorf("Live after the publisher left: got true, want false")
			}
			if got := s.Viewers("off"); got != 1 {
				t.Errorf("Viewers after the publisher left: got %d, want 1", got)
			}

			// Another host may now publish, and the same viewer session gets media.
			wentLive := time.Now()
			startPublisher(t, ctx, s.SFU, "off", "bob")
			st := waitStats(t, ctx, v, "keyframe from the new host", func(st mediatest.ViewerStats) bool {
				return st.LastKeyframeAt.After(wentLive) && st.Audio.LastAt.After(wentLive)
			})
			if st.Video.SSRCChanges != 0 || st.Video.SeqJumps != 0 {
				t.Errorf("video across hosts: %d SSRC changes, %d sequence jumps; want 0, 0", st.Video.SSRCChanges, st.Video.SeqJumps)
			}
			waitLive(t, ctx, s.live, []string{"off:live", "off:offline", "off:live"})
		})
	}
}

// metricValue reads one series from the SFU's registry.
func metricValue(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	metrics:
		for _, m := range f.GetMetric() {
			for _, lp := range m.GetLabel() {
				if v, ok := labels[lp.GetName()]; ok && v != lp.GetValue() {
					continue metrics
				}
			}
			switch {
			case m.GetGauge() != nil:
				return m.GetGauge().GetValue()
			case m.GetCounter() != nil:
				return m.GetCounter().GetValue()
			}
		}
	}
	t.Fatalf("metric %s%v not found", name, labels)
	return 0
}

// waitLive waits (bounded) for the OnLive hook to have seen exactly want;
// events are delivered asynchronously, in order.
func waitLive(t *testing.T, ctx context.Context, l *liveLog, want []string) {
	t.Helper()
	for {
		got := l.get()
		if equal(got, want) {
			return
		}
		if len(got) > len(want) || ctx.Err() != nil {
			t.Fatalf("OnLive events: got %v, want %v", got, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
