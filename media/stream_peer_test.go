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

// auLog reads a Reader on its own goroutine and checks the seam's promises
// as units arrive: PTS never decreases per kind, every video run starts at
// a keyframe with parameters.
type auLog struct {
	t    *testing.T
	rd   *media.Reader
	unit chan *media.AccessUnit
	errs chan error
}

func readAll(t *testing.T, ctx context.Context, rd *media.Reader) *auLog {
	l := &auLog{t: t, rd: rd, unit: make(chan *media.AccessUnit, 4096), errs: make(chan error, 16)}
	go func() {
		for {
			au, err := rd.Read(ctx)
			if err != nil {
				l.errs <- err
				if !errors.Is(err, media.ErrOffline) {
					return
				}
				continue
			}
			l.unit <- au
		}
	}()
	return l
}

// until reads units until cond holds for one, checking monotonic PTS; it
// fails on a reader error (other than offline when allowed).
func (l *auLog) until(ctx context.Context, what string, last *[2]time.Duration, cond func(*media.AccessUnit) bool) *media.AccessUnit {
	l.t.Helper()
	for {
		select {
		case <-ctx.Done():
			l.t.Fatalf("waiting for %s: %v", what, ctx.Err())
		case err := <-l.errs:
			l.t.Fatalf("waiting for %s: reader: %v", what, err)
		case au := <-l.unit:
			k := 1
			if au.Video {
				k = 0
			}
			if au.PTS < last[k] {
				l.t.Fatalf("%s PTS went back from %v to %v", au.Codec, last[k], au.PTS)
			}
			last[k] = au.PTS
			if cond(au) {
				return au
			}
		}
	}
}

// TestReaderAcrossCodecSwitchAndReconnect, with real pion peers: a reader
// opened before anyone publishes gets VP8 from a first publisher, then H264
// when the same host comes back with H264 (ErrNewSource at the switch-over,
// then a parameter change, PTS continuing), then ErrOffline when the host
// leaves. A reader that never
// reads drops without disturbing a WHEP viewer.
func TestReaderAcrossCodecSwitchAndReconnect(t *testing.T) {
	ctx := testCtx(t, 60*time.Second)
	s := newSFU(t)
	const room = "seam"
	rd, err := s.OpenReader(room, media.ReaderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	slow, err := s.OpenReader(room, media.ReaderOptions{Queue: 8})
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	log := readAll(t, ctx, rd)
	var last [2]time.Duration

	vp8, err := mediatest.NewPublisher(ctx, publishVia(s.SFU, room, "host", nil), mediatest.PublisherOptions{Clip: clip(t), VideoCodec: webrtc.MimeTypeVP8})
	if err != nil {
		t.Fatal(err)
	}
	defer vp8.Close()
	if err := vp8.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	v, _ := startViewer(t, ctx, s.SFU, room)
	key := log.until(ctx, "a VP8 keyframe", &last, func(au *media.AccessUnit) bool { return au.Video && au.Key })
	if key.Codec != "VP8" || key.Params == nil || key.Params.Width == 0 || !key.ParamsChanged {
		t.Fatalf("first keyframe: %s params %+v changed %v, want VP8 with its size", key.Codec, key.Params, key.ParamsChanged)
	}
	log.until(ctx, "Opus", &last, func(au *media.AccessUnit) bool { return !au.Video && au.Codec == "Opus" && len(au.Frame) > 0 })
	n := 0
	vpLast := log.until(ctx, "a second of VP8", &last, func(au *media.AccessUnit) bool {
		if au.Video {
			n++
		}
		return n >= 30
	})

	// The same host again, now with H264: viewers and readers stay; readers
	// are told of the switch-over (ErrNewSource) before the new source's units.
	h264, _ := startPublisher(t, ctx, s.SFU, room, "host")
	_ = vp8.Close()
	select {
	case err := <-log.errs:
		if err != media.ErrNewSource {
			t.Fatalf("at the switch-over: %v, want ErrNewSource", err)
		}
	case <-ctx.Done():
		t.Fatal("reader not told of the host's new source")
	}
	key = log.until(ctx, "an H264 keyframe", &last, func(au *media.AccessUnit) bool { return au.Video && au.Codec == "H264" })
	if !key.Key || !key.ParamsChanged || key.Params == nil || key.Params.Codec != "H264" || len(key.Params.SPS) == 0 || key.Params.Width == 0 {
		t.Fatalf("first H264 unit: key %v changed %v params %+v, want a keyframe with new parameters", key.Key, key.ParamsChanged, key.Params)
	}
	if gap := key.PTS - vpLast.PTS; gap <= 0 || gap > 3*time.Second {
		t.Errorf("PTS from the last VP8 frame to the first H264 keyframe: %v, want a short pause", gap)
	}
	if types := nalTypes(key.NALUs); types[0] != 7 || types[1] != 8 {
		t.Errorf("H264 keyframe NAL types %v, want SPS, PPS first", types)
	}
	n = 0
	log.until(ctx, "a second of H264", &last, func(au *media.AccessUnit) bool {
		if au.Video {
			n++
		}
		return n >= 30
	})

	// The viewer got everything meanwhile; the slow reader dropped.
	st := waitStats(t, ctx, v, "video after the switch", func(st mediatest.ViewerStats) bool { return st.Keyframes >= 2 && st.Video.Packets > 100 })
	if st.Video.Lost > 5 {
		t.Errorf("viewer lost %d video packets next to a stuck reader", st.Video.Lost)
	}
	if slow.Dropped() == 0 {
		t.Error("a reader that never read dropped nothing")
	}

	// The host leaves: the reader is told and stays open.
	_ = h264.Close()
	select {
	case err := <-log.errs:
		if err != media.ErrOffline {
			t.Fatalf("after the host left: %v, want ErrOffline", err)
		}
	case <-ctx.Done():
		t.Fatal("reader not told that the room went offline")
	}
	if _, err := s.OpenReader(room, media.ReaderOptions{Layer: "720p"}); !errors.Is(err, media.ErrNoLayer) {
		t.Errorf("layer 720p: %v, want ErrNoLayer", err)
	}
}

func nalTypes(nalus [][]byte) []int {
	out := make([]int, len(nalus))
	for i, n := range nalus {
		out[i] = int(n[0] & 0x1f)
	}
	return out
}

// TestViewerSenderReports: a pion viewer gets sender reports for both
// streams from the SFU, and their NTP↔RTP mapping puts the packets it
// receives at about the time they arrive (the room clock runs at wall
// rate and is anchored at arrival for a publisher whose reports match it).
func TestViewerSenderReports(t *testing.T) {
	ctx := testCtx(t, 30*time.Second)
	s := newSFU(t)
	startPublisher(t, ctx, s.SFU, "sr", "host")
	v, _ := startViewer(t, ctx, s.SFU, "sr")
	st := waitStats(t, ctx, v, "two sender reports per stream", func(st mediatest.ViewerStats) bool {
		return st.Video.SenderReports >= 2 && st.Audio.SenderReports >= 2
	})
	for _, c := range []struct {
		kind string
		s    mediatest.StreamStats
		rate float64
	}{{"video", st.Video, 90000}, {"audio", st.Audio, 48000}} {
		at := c.s.SRNTP.Add(time.Duration(float64(int32(c.s.LastTS-c.s.SRRTP)) / c.rate * float64(time.Second)))
		if off := at.Sub(c.s.LastAt); off.Abs() > 500*time.Millisecond {
			t.Errorf("%s: the sender report maps the last packet to %v from its arrival, want within 500 ms", c.kind, off)
		}
	}
}
