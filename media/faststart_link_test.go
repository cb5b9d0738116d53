package media_test

import (
	"testing"
	"time"

	"liveroom/media/mediatest"
)

// TestFastStartStopsWhenNothingGetsThrough: a viewer joins 2 s into a long
// GOP (a ~200 KB backlog) and its transport-wide feedback reports every
// packet lost. The catch-up sends the cached keyframe and at most the
// initial window of the backlog, then stops: the layer is asked for a
// keyframe and the viewer's video continues at it, numbered continuously;
// audio goes on. (Before the window, the whole backlog went out at three
// times the stream's rate whatever the viewer's link.)
func TestFastStartStopsWhenNothingGetsThrough(t *testing.T) {
	s := newSFU(t)
	ctx := testCtx(t, 40*time.Second)
	const gop = 300 // 10 s: no periodic keyframe during the test
	pub, err := mediatest.NewSimulcastPublisher(ctx, publishVia(s.SFU, "lossy", "host", nil), mediatest.SimulcastOptions{
		Layers: []mediatest.SimulcastLayer{{RID: "q", Packets: 3, Size: 1100}}, GOP: gop, Audio: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pub.Close() })
	if err := pub.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second) // the GOP grows: ~60 frames, 180 packets after the keyframe
	plis := pub.PLIs(0)

	v, err := mediatest.NewLayerViewer(ctx, subscribeVia(s.SFU, "lossy", nil))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = v.Close() })
	v.SetLossy(true) // before any media: the connection is still being made
	if err := v.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	// Wait for the keyframe the stop asks for (the next periodic one is
	// 8 s away).
	var pk []mediatest.RecvPacket
	second := -1
	for second < 0 {
		pk = v.Video()
		for i := 1; i < len(pk); i++ {
			if pk[i].Keyframe && pk[i].Frame != pk[0].Frame {
				second = i
				break
			}
		}
		if second >= 0 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no second keyframe: %d video packets received, the catch-up never stopped", len(pk))
		case <-time.After(20 * time.Millisecond):
		}
	}
	if !pk[0].Keyframe || pk[0].Frame%gop != 0 {
		t.Fatalf("first video packet: keyframe %v frame %d; want the cached keyframe", pk[0].Keyframe, pk[0].Frame)
	}
	if pk[second].Frame >= gop {
		t.Fatalf("the second keyframe (frame %d) is the periodic one, not one asked for", pk[second].Frame)
	}
	// The keyframe (3 packets) and catchUpWindow (16 KiB: 15 packets of
	// 1100 bytes), with some slack; the backlog was 180 packets.
	if second > 30 {
		t.Fatalf("%d backlog packets were sent before the catch-up stopped; want at most 30 (keyframe and initial window)", second)
	}
	if got := pub.PLIs(0); got == plis {
		t.Fatal("the catch-up stopped without asking the layer for a keyframe")
	}
	checkContinuous(t, pk)
	if v.AudioPackets() == 0 {
		t.Fatal("no audio")
	}
	t.Logf("%d video packets before the catch-up stopped; the live keyframe is frame %d (the cached one %d)", second, pk[second].Frame, pk[0].Frame)
}
