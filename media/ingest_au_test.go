package media_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"liveroom/media"
	"liveroom/media/mediatest"

	mch264 "github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
)

// auFeeder plays the test clip into an AUSource at real time: H264 access
// units with in-band SPS/PPS only on the first IDR (the packer must put
// them before every later IDR), and Opus.
type auFeeder struct {
	aus   [][][]byte
	idr   []bool
	opus  []mediatest.OpusPacket
	sent  atomic.Int64
	first atomic.Pointer[time.Time]
}

func newAUFeeder(t *testing.T) *auFeeder {
	t.Helper()
	c := clip(t)
	f := &auFeeder{opus: c.Opus}
	for i, fr := range c.H264 {
		var au mch264.AnnexB
		if err := au.Unmarshal(fr.Data); err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		var keep [][]byte
		for _, n := range au {
			typ := mch264.NALUType(n[0] & 0x1f)
			if i > 0 && (typ == mch264.NALUTypeSPS || typ == mch264.NALUTypePPS) {
				continue
			}
			keep = append(keep, n)
		}
		f.aus = append(f.aus, keep)
		f.idr = append(f.idr, fr.IDR)
	}
	return f
}

// run feeds until ctx ends, looping the clip with continuous PTS.
func (f *auFeeder) run(ctx context.Context, src *media.AUSource) error {
	const frame = time.Second / 30
	start := time.Now()
	var vpts, apts time.Duration
	vi, ai := 0, 0
	for ctx.Err() == nil {
		if vpts <= apts {
			if f.first.Load() == nil {
				now := time.Now()
				f.first.Store(&now)
			}
			if err := src.WriteH264(f.aus[vi%len(f.aus)], vpts); err != nil {
				return err
			}
			f.sent.Add(1)
			vi++
			vpts += frame
		} else {
			p := f.opus[ai%len(f.opus)]
			src.WriteOpus(p.Data, apts)
			ai++
			apts += p.Duration
		}
		if d := time.Until(start.Add(min(vpts, apts))); d > 0 {
			select {
			case <-ctx.Done():
			case <-time.After(d):
			}
		}
	}
	return nil
}

// TestAUSourceH264Opus: access units become what a WHEP viewer can play: a
// keyframe with SPS/PPS (re-inserted before later IDRs), payloads <= 1200
// bytes, and Opus audio.
func TestAUSourceH264Opus(t *testing.T) {
	ctx := testCtx(t, 20*time.Second)
	s := newSFU(t)
	const room = "au-room"
	var closed atomic.Int32
	src, err := s.StartAUSource(room, "host1", media.AUSourceOptions{Protocol: "test", Close: func() { closed.Add(1) }})
	if err != nil {
		t.Fatal(err)
	}
	feed := newAUFeeder(t)
	fctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := feed.run(fctx, src); err != nil {
			t.Errorf("feed: %v", err)
		}
	})
	defer func() { stop(); wg.Wait() }()

	// Join after the first IDR (the only one with in-band SPS/PPS) went by.
	for feed.sent.Load() < 40 && ctx.Err() == nil {
		time.Sleep(10 * time.Millisecond)
	}
	v, _ := startViewer(t, ctx, s.SFU, room)
	st := waitStats(t, ctx, v, "keyframe and audio", func(st mediatest.ViewerStats) bool {
		return !st.FirstKeyframeAt.IsZero() && st.Audio.Packets >= 25 && st.Video.Packets >= 60
	})
	if !st.FirstVideoKeyframe || !st.FirstKeyframeParams {
		t.Errorf("first video packet starts a keyframe: %v, keyframe had SPS/PPS: %v; want both", st.FirstVideoKeyframe, st.FirstKeyframeParams)
	}
	if st.Video.MaxPayload > 1200 || st.Audio.MaxPayload > 1200 {
		t.Errorf("max payload video %d audio %d, want <= 1200", st.Video.MaxPayload, st.Audio.MaxPayload)
	}
	if !s.Live(room) {
		t.Errorf("room not live")
	}

	// Another host is refused; the same host replaces (the old one closed).
	if _, err := s.StartAUSource(room, "host2", media.AUSourceOptions{}); !errors.Is(err, media.ErrPublisherConflict) {
		t.Errorf("second host: err %v, want ErrPublisherConflict", err)
	}
	stop()
	wg.Wait()
	src2, err := s.StartAUSource(room, "host1", media.AUSourceOptions{Protocol: "test"})
	if err != nil {
		t.Fatalf("same host reconnecting: %v", err)
	}
	if closed.Load() != 1 {
		t.Errorf("replaced source closed %d times, want 1", closed.Load())
	}
	src.Close("gone") // the old connection ending must not take the room offline
	before := v.Stats().Keyframes
	fctx, stop = context.WithCancel(ctx)
	wg.Go(func() { _ = feed.run(fctx, src2) })
	waitStats(t, ctx, v, "keyframes from the reconnected host", func(st mediatest.ViewerStats) bool { return st.Keyframes > before+1 })
	if !s.Live(room) {
		t.Errorf("room not live after reconnect")
	}
	src2.Close("done")
	stop()
	wg.Wait()
	if s.Live(room) {
		t.Errorf("room still live after its source closed")
	}
}

// TestAUSourceAACNotice: AAC the transcoder cannot take (here a broken
// AudioSpecificConfig; on a server without ffmpeg, any) is dropped with one
// notice to the host.
func TestAUSourceAACNotice(t *testing.T) {
	s := newSFU(t)
	var mu sync.Mutex
	var got []string
	src, err := s.StartAUSource("aac", "h", media.AUSourceOptions{Protocol: "test", AAC: []byte{0xff},
		Notice: func(m string) { mu.Lock(); got = append(got, m); mu.Unlock() }})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close("done")
	src.WriteAAC([][]byte{{1, 2, 3}}, 0)
	src.WriteAAC([][]byte{{1, 2, 3}}, 20*time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 1 || !strings.Contains(got[0], "AAC audio cannot be played") {
		t.Errorf("notices %q, want one about AAC", got)
	}
}
