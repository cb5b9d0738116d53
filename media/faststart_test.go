package media_test

import (
	"context"
	"testing"
	"time"

	"liveroom/media/mediatest"
)

// TestFastStartFromCache: viewers who join a live room start from the
// forwarder's cached GOP: each gets a complete keyframe with SPS/PPS first,
// no keyframe request reaches the publisher for their joins, the stream they
// get has no gap and no timestamp going backwards (the backlog's timestamps
// are compressed towards live, not reset), and their sender reports map to
// the timestamps they receive.
func TestFastStartFromCache(t *testing.T) {
	s := newSFU(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pub, _ := startPublisher(t, ctx, s.SFU, "fast", "host")
	first, _ := startViewer(t, ctx, s.SFU, "fast")
	if _, err := first.WaitFor(ctx, func(st mediatest.ViewerStats) bool { return st.Keyframes > 0 }); err != nil {
		t.Fatalf("first viewer: %v (%v)", err, pub)
	}
	// Let the GOP grow past its keyframe: joiners now start behind live.
	time.Sleep(700 * time.Millisecond)
	plis := pub.PLIs()

	var joiners []*mediatest.Viewer
	for range 5 {
		v, _ := startViewer(t, ctx, s.SFU, "fast")
		joiners = append(joiners, v)
	}
	for i, v := range joiners {
		st, err := v.WaitFor(ctx, func(st mediatest.ViewerStats) bool {
			return st.Keyframes > 0 && st.Video.SenderReports > 1 && st.Video.Packets > 200
		})
		if err != nil {
			t.Fatalf("joiner %d: %v (%+v)", i, err, v.Stats())
		}
		if !st.FirstVideoKeyframe || !st.FirstKeyframeParams {
			t.Errorf("joiner %d: first video packet starts a keyframe %v, with SPS/PPS %v; want both", i, st.FirstVideoKeyframe, st.FirstKeyframeParams)
		}
		if st.Video.Lost != 0 || st.Video.SeqJumps != 0 || st.Video.TSBackwards != 0 {
			t.Errorf("joiner %d: lost %d, seq jumps %d, timestamps backwards %d; want a continuous stream", i, st.Video.Lost, st.Video.SeqJumps, st.Video.TSBackwards)
		}
		// The last sender report maps to the timestamps the joiner receives as
		// it does for the first viewer (who started at a keyframe): the joiner
		// is at live, and its reports describe what it gets. (Compared with
		// the first viewer rather than the wall clock: a publisher starved of
		// CPU drifts, for every viewer alike.)
		if d := srOffset(st) - srOffset(first.Stats()); d < -150*time.Millisecond || d > 150*time.Millisecond {
			t.Errorf("joiner %d: its received timestamps are %v off its sender reports' mapping compared with the first viewer's; want within 150 ms", i, d)
		}
	}
	if got := pub.PLIs(); got != plis {
		t.Errorf("publisher got %d keyframe requests while 5 viewers joined from the cache; want none", got-plis)
	}
}

// srOffset is how far the newest received video timestamp is from what the
// last sender report maps its arrival time to.
func srOffset(st mediatest.ViewerStats) time.Duration {
	want := st.Video.SRRTP + uint32(st.Video.LastAt.Sub(st.Video.SRNTP).Seconds()*90000)
	return time.Duration(int32(st.Video.LastTS-want)) * time.Second / 90000
}
