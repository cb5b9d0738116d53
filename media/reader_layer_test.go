package media_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"liveroom/media"
	"liveroom/media/mediatest"
)

// A simulcast host stops sending its top layer (a browser does under CPU or
// uplink pressure): the room's readers (recorder, LL-HLS, RTSP) move to the
// next layer at its keyframe, with ParamsChanged (the resolution) on the
// same clock and audio going on throughout, instead of freezing with the
// layer that stopped; when the top layer is sent again they move back.
func TestReadersFollowActiveLayer(t *testing.T) {
	ctx := testCtx(t, 2*time.Minute)
	a := newSFU(t)
	layers, pub := simulcastHost(t, ctx, a.SFU, "rl")
	rd, err := a.OpenReader("rl", media.ReaderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()

	var lastVideo, lastAudio time.Duration // PTS of the last units read
	var lastVideoAt time.Time
	read := func(rctx context.Context) (*media.AccessUnit, error) {
		au, err := rd.Read(rctx)
		if err != nil {
			return nil, err
		}
		if au.Video {
			if au.PTS < lastVideo {
				t.Fatalf("video PTS went back: %v after %v", au.PTS, lastVideo)
			}
			if au.Key && au.Params != nil && !lastVideoAt.IsZero() && au.ParamsChanged {
				t.Logf("keyframe %dpx at PTS %v, %v after the previous video unit (PTS +%v)", au.Params.Width, au.PTS, time.Since(lastVideoAt), au.PTS-lastVideo)
			}
			lastVideo = au.PTS
			lastVideoAt = time.Now()
		} else {
			lastAudio = au.PTS
		}
		return au, nil
	}
	// next reads until a video keyframe of the given width; it returns
	// the video PTS gap before it and the audio units read meanwhile.
	next := func(what string, width int, within time.Duration) (gap time.Duration, audio int) {
		t.Helper()
		rctx, cancel := context.WithTimeout(ctx, within)
		defer cancel()
		for {
			prev := lastVideo
			au, err := read(rctx)
			if err != nil {
				t.Fatalf("%s: %v (%d audio units meanwhile)", what, err, audio)
			}
			if !au.Video {
				audio++
				continue
			}
			if au.Key && au.Params != nil && au.Params.Width == width {
				if prev != 0 && !au.ParamsChanged {
					t.Errorf("%s: the keyframe at %dpx does not say ParamsChanged", what, width)
				}
				return au.PTS - prev, audio
			}
		}
	}
	// count reads for d: video units, and the widths of their keyframes.
	count := func(d time.Duration) (frames int, widths []int) {
		rctx, cancel := context.WithTimeout(ctx, d)
		defer cancel()
		for {
			au, err := read(rctx)
			if err != nil {
				if !errors.Is(err, context.DeadlineExceeded) {
					t.Fatalf("reading: %v", err)
				}
				return frames, widths
			}
			if au.Video {
				frames++
				if au.Key && au.Params != nil {
					widths = append(widths, au.Params.Width)
				}
			}
		}
	}
	sameLayer := func(what string, widths []int, want int) {
		t.Helper()
		for _, w := range widths {
			if w != want {
				t.Fatalf("%s: a keyframe %dpx wide, want only %dpx", what, w, want)
			}
		}
	}

	next("the top layer at first", layers[0].Width, 10*time.Second)
	f, w := count(time.Second)
	if f < 15 {
		t.Fatalf("on the top layer: %d video units in 1 s, want ~30", f)
	}
	sameLayer("on the top layer", w, layers[0].Width)

	pub.DropLayer(layers[0].RID)
	gap, audio := next("the next layer after the top one stopped", layers[1].Width, 10*time.Second)
	t.Logf("moving down: %v without video (%d audio units meanwhile, up to %v)", gap, audio, lastAudio)
	if audio < int(gap/(40*time.Millisecond)) {
		t.Errorf("moving down: %d audio units in a %v video gap; audio must go on", audio, gap)
	}
	f, w = count(2 * time.Second)
	if f < 30 {
		t.Fatalf("on the next layer: %d video units in 2 s, want ~60", f)
	}
	sameLayer("on the next layer", w, layers[1].Width)

	pub.ResumeLayer(layers[0].RID)
	gap, _ = next("the top layer again", layers[0].Width, 20*time.Second)
	t.Logf("moving up: %v between the last frame of the next layer and the top layer's keyframe", gap)
	if gap > time.Second {
		t.Errorf("moving up: a %v gap in the video; the next layer goes on until the top one's keyframe", gap)
	}
	f, w = count(time.Second)
	if f < 15 {
		t.Fatalf("back on the top layer: %d video units in 1 s", f)
	}
	sameLayer("back on the top layer", w, layers[0].Width)
	if got := metricValue(t, a.reg, "liveroom_media_reader_layer_switches_total", nil); got != 2 {
		t.Errorf("reader layer switches %v, want 2", got)
	}
}

// A publisher's layers do not all start together: a browser adds its top
// layer once its bandwidth estimate allows, anywhere from a few packets to
// seconds after the others. A top layer a little late is where the readers
// start (no move through the next layer, no extra resolution change in a
// recording); one seconds late is taken at its first keyframe, without the
// readerUpHold that only a layer which stopped and came back waits.
func TestReadersTakeALateTopLayer(t *testing.T) {
	for _, tc := range []struct {
		name     string
		late     time.Duration
		topFirst bool    // the readers start on the top layer
		switches float64 // down and back up, or none
	}{
		{"late by 150ms", 150 * time.Millisecond, true, 0},
		{"late by 1.5s", 1500 * time.Millisecond, false, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			needFFmpeg(t)
			ctx := testCtx(t, 2*time.Minute)
			a := newSFU(t)
			room := "late"
			rd, err := a.OpenReader(room, media.ReaderOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer rd.Close()
			layers, err := mediatest.EncodeLayers(ctx)
			if err != nil {
				t.Fatal(err)
			}
			pub, err := mediatest.NewLayeredPublisher(ctx, publishVia(a.SFU, room, "host", nil), mediatest.LayeredPublisherOptions{Layers: layers, Simulcast: true})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = pub.Close() })
			pub.DropLayer(layers[0].RID) // not sent yet
			if err := pub.WaitConnected(ctx); err != nil {
				t.Fatal(err)
			}
			waitLayers(t, ctx, a.SFU, room, 2) // the two lower ones
			time.Sleep(tc.late)
			pub.ResumeLayer(layers[0].RID)
			resumed := time.Now()

			var widths []int
			var topAt time.Time
			rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			for topAt.IsZero() {
				au, err := rd.Read(rctx)
				if err != nil {
					t.Fatalf("reading, keyframes so far %v px wide: %v", widths, err)
				}
				if au.Video && au.Key && au.Params != nil {
					widths = append(widths, au.Params.Width)
					if au.Params.Width == layers[0].Width {
						topAt = time.Now()
					}
				}
			}
			t.Logf("keyframes %v px wide; the top layer's %v after it was first sent", widths, topAt.Sub(resumed))
			if tc.topFirst && widths[0] != layers[0].Width {
				t.Errorf("the first keyframe is %d px wide: the readers left the top layer before it was late", widths[0])
			}
			if !tc.topFirst && (len(widths) < 2 || widths[0] != layers[1].Width) {
				t.Errorf("keyframes %v px wide: the readers did not take the next layer while the top one was not sent", widths)
			}
			if d := topAt.Sub(resumed); !tc.topFirst && d >= 3*time.Second {
				t.Errorf("the top layer taken %v after it was first sent: a layer that starts late waits for no hold", d)
			}
			if got := metricValue(t, a.reg, "liveroom_media_reader_layer_switches_total", nil); got != tc.switches {
				t.Errorf("reader layer switches %v, want %v", got, tc.switches)
			}
		})
	}
}
