package media_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"liveroom/media"
	"liveroom/media/mediatest"

	"github.com/pion/webrtc/v4"
)

// edgeVia signals an edge's offer straight to the origin SFU (the cluster
// does it over HTTP with a cluster token; see web/edge.go).
func edgeVia(origin *media.SFU, room string) media.Signal {
	return func(ctx context.Context, offer string) (string, error) {
		sess, err := origin.SubscribeEdge(ctx, room, offer)
		if err != nil {
			return "", err
		}
		return sess.AnswerSDP, nil
	}
}

func TestEdgePullServesViewersFromOrigin(t *testing.T) {
	a, b := newSFU(t), newSFU(t)
	ctx := testCtx(t, 60*time.Second)

	// Viewers on the edge arrive before anything is published.
	var viewers []*mediatest.Viewer
	for range 3 {
		v, _ := startViewer(t, ctx, b.SFU, "show")
		viewers = append(viewers, v)
	}
	if got := b.Watched(); len(got) != 1 || got[0] != "show" {
		t.Fatalf("Watched on the edge: %v, want [show]", got)
	}
	// An edge cannot pull from a node where nobody publishes.
	if _, err := b.Pull(ctx, "show", edgeVia(a.SFU, "show")); !errors.Is(err, media.ErrNotOrigin) {
		t.Fatalf("pull before the host is live: %v, want ErrNotOrigin", err)
	}

	startPublisher(t, ctx, a.SFU, "show", "host")
	edge, err := b.Pull(ctx, "show", edgeVia(a.SFU, "show"))
	if err != nil {
		t.Fatalf("pull: %v", err)
	}
	for i, v := range viewers {
		st := waitStats(t, ctx, v, "keyframe through the edge", func(st mediatest.ViewerStats) bool {
			return !st.FirstKeyframeAt.IsZero() && st.Audio.Packets > 20
		})
		if !st.FirstVideoKeyframe || !st.FirstKeyframeParams {
			t.Errorf("edge viewer %d: first video packet keyframe %v, SPS/PPS %v; want both", i, st.FirstVideoKeyframe, st.FirstKeyframeParams)
		}
	}
	// The origin serves one edge session, not three viewers; the edge has
	// three viewers and one pull, and it announces nothing (the origin does).
	if got := metricValue(t, a.reg, "liveroom_media_edge_sessions", nil); got != 1 {
		t.Errorf("origin edge sessions: %v, want 1", got)
	}
	if got := a.Viewers("show"); got != 0 {
		t.Errorf("origin viewers: %d, want 0 (the edge is not a viewer)", got)
	}
	if got := metricValue(t, b.reg, "liveroom_media_edge_pulls", nil); got != 1 {
		t.Errorf("edge pulls: %v, want 1", got)
	}
	if got := b.Viewers("show"); got != 3 {
		t.Errorf("edge viewers: %d, want 3", got)
	}
	if got := b.live.get(); len(got) != 0 {
		t.Errorf("edge raised live events %v, want none", got)
	}
	waitLive(t, ctx, a.live, []string{"show:live"})

	// Closing the pull frees the origin's session.
	edge.Close()
	select {
	case <-edge.Done():
	case <-ctx.Done():
		t.Fatal("edge not done after Close")
	}
	waitMetric(t, ctx, a, "liveroom_media_edge_sessions", 0)
}

// The host moves from origin a to node c: the edge pulls from c instead and
// its viewers continue in the same session, on one SSRC with continuous
// sequence numbers.
func TestEdgeFollowsOriginMove(t *testing.T) {
	a, b, c := newSFU(t), newSFU(t), newSFU(t)
	ctx := testCtx(t, 60*time.Second)
	pubA, _ := startPublisher(t, ctx, a.SFU, "mv", "host")
	v, _ := startViewer(t, ctx, b.SFU, "mv")
	if _, err := b.Pull(ctx, "mv", edgeVia(a.SFU, "mv")); err != nil {
		t.Fatalf("pull from a: %v", err)
	}
	waitStats(t, ctx, v, "media from a", func(st mediatest.ViewerStats) bool {
		return !st.FirstKeyframeAt.IsZero() && st.Video.Packets > 60
	})

	movedAt := time.Now()
	_ = pubA.Close()
	startPublisher(t, ctx, c.SFU, "mv", "host")
	if _, err := b.Pull(ctx, "mv", edgeVia(c.SFU, "mv")); err != nil {
		t.Fatalf("pull from c: %v", err)
	}
	before := v.Stats()
	st := waitStats(t, ctx, v, "media from c", func(st mediatest.ViewerStats) bool {
		return st.LastKeyframeAt.After(movedAt) && st.Video.Packets > before.Video.Packets+60 && st.Audio.Packets > before.Audio.Packets+50
	})
	if st.Video.SSRCChanges != 0 || st.Video.SeqJumps != 0 || st.Video.TSBackwards != 0 {
		t.Errorf("video across the move: %d SSRC changes, %d sequence jumps, %d timestamps backwards; want 0",
			st.Video.SSRCChanges, st.Video.SeqJumps, st.Video.TSBackwards)
	}
	if got := metricValue(t, b.reg, "liveroom_media_edge_pulls", nil); got != 1 {
		t.Errorf("edge pulls after the move: %v, want 1", got)
	}
	waitMetric(t, ctx, a, "liveroom_media_edge_sessions", 0)
}

// A host publishing to an edge node takes the room over from the pull; a
// pull never displaces a host of its own node.
func TestHostOnEdgeReplacesPull(t *testing.T) {
	a, b := newSFU(t), newSFU(t)
	ctx := testCtx(t, 60*time.Second)
	startPublisher(t, ctx, a.SFU, "tk", "host")
	v, _ := startViewer(t, ctx, b.SFU, "tk")
	edge, err := b.Pull(ctx, "tk", edgeVia(a.SFU, "tk"))
	if err != nil {
		t.Fatalf("pull: %v", err)
	}
	waitStats(t, ctx, v, "media from a", func(st mediatest.ViewerStats) bool { return st.Video.Packets > 30 })

	startPublisher(t, ctx, b.SFU, "tk", "host")
	select {
	case <-edge.Done():
	case <-ctx.Done():
		t.Fatal("the pull survived a host publishing on its node")
	}
	waitLive(t, ctx, b.live, []string{"tk:live"})
	if got := b.Watched(); len(got) != 0 {
		t.Errorf("Watched with a local host: %v, want none", got)
	}
	if _, err := b.Pull(ctx, "tk", edgeVia(a.SFU, "tk")); !errors.Is(err, media.ErrPublisherConflict) {
		t.Errorf("pull over a local host: %v, want ErrPublisherConflict", err)
	}
	before := v.Stats()
	waitStats(t, ctx, v, "media from the local host", func(st mediatest.ViewerStats) bool {
		return st.Video.Packets > before.Video.Packets+60
	})

	// The cluster moves the origin away: DropHost takes the room offline.
	b.DropHost("tk", "test")
	waitLive(t, ctx, b.live, []string{"tk:live", "tk:offline"})
	if got := b.Watched(); len(got) != 1 {
		t.Errorf("Watched after DropHost: %v, want [tk]", got)
	}
}

func waitMetric(t *testing.T, ctx context.Context, s *testSFU, name string, want float64) {
	t.Helper()
	for metricValue(t, s.reg, name, nil) != want {
		select {
		case <-ctx.Done():
			t.Fatalf("%s: %v, want %v", name, metricValue(t, s.reg, name, nil), want)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// TestEdgeFollowsActiveLayer: the host publishes simulcast and then stops
// sending its top layer (a browser under CPU or uplink pressure): the edge
// pull, which was on the top layer, moves to the highest layer still sent,
// so the edge's viewers keep getting video.
func TestEdgeFollowsActiveLayer(t *testing.T) {
	ctx := testCtx(t, 2*time.Minute)
	a, b := newSFU(t), newSFU(t)
	layers, pub := simulcastHost(t, ctx, a.SFU, "sc")
	if _, err := b.Pull(ctx, "sc", edgeVia(a.SFU, "sc")); err != nil {
		t.Fatal(err)
	}
	v, _ := startViewer(t, ctx, b.SFU, "sc")
	waitStats(t, ctx, v, "video through the edge", func(st mediatest.ViewerStats) bool { return st.Keyframes > 0 && st.Video.Packets > 50 })

	pub.DropLayer(layers[0].RID) // the top layer
	time.Sleep(2 * time.Second)  // the layer counts as gone after activeFor
	before := v.Stats()
	time.Sleep(2 * time.Second)
	after := v.Stats()
	if got := after.Video.Packets - before.Video.Packets; got < 60 {
		t.Fatalf("edge viewer got %d video packets in the 2 s after the top layer stopped, want the next layer's (~30 fps)", got)
	}
	if after.Keyframes <= before.Keyframes || after.Video.SeqJumps > 0 {
		t.Errorf("keyframes %d -> %d, sequence jumps %d: want the switch at a keyframe on one continuous stream", before.Keyframes, after.Keyframes, after.Video.SeqJumps)
	}
	// The top layer again (four times the next one's bitrate): the edge
	// goes back up to it.
	lower := after.Video.Bytes - before.Video.Bytes
	pub.ResumeLayer(layers[0].RID)
	for prev := after; ; {
		select {
		case <-ctx.Done():
			t.Fatalf("the top layer is back, the edge did not return to it (%d bytes per 2 s on the next layer)", lower)
		case <-time.After(2 * time.Second):
		}
		st := v.Stats()
		if st.Video.Bytes-prev.Video.Bytes > 2*lower {
			break
		}
		prev = st
	}
}

// The host publishes VP8 (a phone's browser), then reconnects with H264
// (OBS): the origin's edge session switches payload type mid-stream, and the
// edge follows it, so its viewers get the H264 stream at a keyframe.
func TestEdgeFollowsCodecSwitch(t *testing.T) {
	a, b := newSFU(t), newSFU(t)
	ctx := testCtx(t, 60*time.Second)
	pub, err := mediatest.NewPublisher(ctx, publishVia(a.SFU, "cs", "host", nil), mediatest.PublisherOptions{Clip: clip(t), VideoCodec: webrtc.MimeTypeVP8})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	if err := pub.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	v, _ := startViewer(t, ctx, b.SFU, "cs")
	if _, err := b.Pull(ctx, "cs", edgeVia(a.SFU, "cs")); err != nil {
		t.Fatalf("pull: %v", err)
	}
	waitStats(t, ctx, v, "VP8 through the edge", func(st mediatest.ViewerStats) bool { return st.Keyframes > 0 })
	vp8PT := v.Stats().Video.PayloadType

	switched := time.Now()
	startPublisher(t, ctx, a.SFU, "cs", "host") // H264 now
	st := waitStats(t, ctx, v, "H264 keyframe through the edge after the switch", func(st mediatest.ViewerStats) bool {
		return st.LastKeyframeAt.After(switched) && st.Video.PayloadType != vp8PT && st.Keyframes > 1
	})
	if st.Video.SSRCChanges != 0 {
		t.Errorf("codec switch through the edge: %d SSRC changes, want 0", st.Video.SSRCChanges)
	}
}
