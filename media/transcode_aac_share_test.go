package media_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"liveroom/media"
)

// TestAACStreamsShareOnePerRoom: two outputs of one room share one AAC
// stream (one ffmpeg); both get video and AAC audio, the one that joined
// later from a keyframe; closing one leaves the other running, closing both
// stops the stream.
func TestAACStreamsShareOnePerRoom(t *testing.T) {
	needTranscoder(t)
	s := newSFU(t)
	ctx := testCtx(t, 30*time.Second)
	startPublisher(t, ctx, s.SFU, "share", "host")
	a := media.NewAACStreams(s.OpenReader)
	first, err := a.Open("share")
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	time.Sleep(time.Second)
	second, err := a.Open("share")
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	if n := a.Rooms(); n != 1 {
		t.Fatalf("%d shared streams for one room, want 1", n)
	}
	type counts struct{ video, aac int }
	read := func(sub *media.AACSub, d time.Duration) (c counts, firstVideoKey bool) {
		rctx, cancel := context.WithTimeout(ctx, d)
		defer cancel()
		seen := false
		for {
			au, err := sub.Read(rctx)
			if errors.Is(err, context.DeadlineExceeded) {
				return c, firstVideoKey
			}
			if err != nil {
				t.Fatalf("read: %v", err)
			}
			switch {
			case au.Video:
				if !seen {
					seen, firstVideoKey = true, au.Key
				}
				c.video++
			case au.Codec == "AAC":
				c.aac++
			default:
				t.Fatalf("an audio unit of codec %q, want AAC", au.Codec)
			}
		}
	}
	done := make(chan counts, 1)
	go func() { c, _ := read(first, 2*time.Second); done <- c }()
	c2, key2 := read(second, 2*time.Second)
	c1 := <-done
	t.Logf("first: %+v, second: %+v (starts at a keyframe: %v)", c1, c2, key2)
	for name, c := range map[string]counts{"first": c1, "second": c2} {
		if c.video < 20 || c.aac < 40 {
			t.Errorf("%s reader got %+v in 2 s, want video at ~30 fps and AAC at ~47/s", name, c)
		}
	}
	if !key2 {
		t.Errorf("the later reader's first video unit is not a keyframe")
	}
	first.Close()
	if c, _ := read(second, time.Second); c.video < 10 {
		t.Errorf("after the first closed the second got %+v, want it to go on", c)
	}
	second.Close()
	if n := a.Rooms(); n != 0 {
		t.Errorf("%d shared streams after both closed, want 0", n)
	}
}
