package media_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"liveroom/media"
	"liveroom/media/mediatest"
	"liveroom/room"
)

// nodeSignal reaches the origin SFUs of an in-process cluster directly
// (web.EdgeClient does it over HTTP), counting the offers.
func nodeSignal(nodes map[string]*media.SFU, calls *atomic.Int64) media.NodeSignal {
	return func(ctx context.Context, node, roomID, offer string) (string, func(context.Context), error) {
		calls.Add(1)
		sess, err := nodes[node].SubscribeEdge(ctx, roomID, offer)
		if err != nil {
			return "", nil, err
		}
		return sess.AnswerSDP, func(context.Context) { _ = nodes[node].Close(roomID, sess.ID) }, nil
	}
}

// The edge reconciler pulls a watched room from the origin the directory
// names, follows it when it moves, backs off while the named origin cannot
// serve, and ends the pull with the last viewer.
func TestEdgesFollowTheOrigin(t *testing.T) {
	a, b, c := newSFU(t), newSFU(t), newSFU(t)
	ctx := testCtx(t, 60*time.Second)
	origins := room.NewMemoryOrigins()
	var calls atomic.Int64
	edges := media.NewEdges(b.SFU, "b", origins, nodeSignal(map[string]*media.SFU{"a": a.SFU, "c": c.SFU}, &calls))
	run, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- edges.Run(run) }()
	defer func() { stop(); <-done }()

	v, ref := startViewer(t, ctx, b.SFU, "show")
	// a is named the origin but has no host yet: a failed pull, retried
	// after 1 s, then 2 s, not every tick.
	if err := origins.Claim(ctx, "show", "a", time.Minute); err != nil {
		t.Fatal(err)
	}
	edges.Watch("show")
	time.Sleep(2500 * time.Millisecond)
	if n := calls.Load(); n < 1 || n > 3 {
		t.Fatalf("offers to an origin without a host in 2.5 s: got %d, want 1-3 (backing off)", n)
	}

	startPublisher(t, ctx, a.SFU, "show", "host")
	waitStats(t, ctx, v, "video pulled from a", func(st mediatest.ViewerStats) bool {
		return !st.FirstKeyframeAt.IsZero() && st.Video.Packets > 30
	})

	// The host moves to c: the pull follows, the viewer stays in its session.
	startPublisher(t, ctx, c.SFU, "show", "host")
	if err := origins.Claim(ctx, "show", "c", time.Minute); err != nil {
		t.Fatal(err)
	}
	movedAt := time.Now()
	st := waitStats(t, ctx, v, "video pulled from c", func(st mediatest.ViewerStats) bool {
		return st.LastKeyframeAt.After(movedAt) && st.Video.Packets > 60
	})
	if st.Video.SSRCChanges != 0 {
		t.Errorf("SSRC changes: got %d, want 0", st.Video.SSRCChanges)
	}
	for a.Viewers("show")+int(metricValue(t, a.reg, "liveroom_media_edge_sessions", nil)) != 0 {
		if ctx.Err() != nil {
			t.Fatal("a still serves the edge after the origin moved")
		}
		time.Sleep(50 * time.Millisecond)
	}

	// The last viewer leaves: the pull and c's edge session end.
	if err := b.Close("show", ref.get()); err != nil {
		t.Fatal(err)
	}
	for metricValue(t, c.reg, "liveroom_media_edge_sessions", nil) != 0 || metricValue(t, b.reg, "liveroom_media_edge_pulls", nil) != 0 {
		if ctx.Err() != nil {
			t.Fatal("the pull outlived the last viewer")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
