package record_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"liveroom/media"
	"liveroom/media/mediatest"
	"liveroom/record"
	"liveroom/room"
)

// rig is a real SFU and a recorder in one process (so -race sees them
// together), with one room that records.
type rig struct {
	rooms *room.FileStore
	sfu   *media.SFU
	rec   *record.Recorder
	rm    room.Room
	ran   chan error
	stop  context.CancelFunc
}

// newRig makes the room and starts the recorder; deps, if set, adjusts the
// recorder's dependencies.
func newRig(t *testing.T, roomID string, cfg record.Config, deps func(*record.Deps)) *rig {
	t.Helper()
	needFFmpegExt(t)
	g := &rig{ran: make(chan error, 1)}
	var err error
	if g.rooms, err = room.OpenFileStore(t.TempDir()); err != nil {
		t.Fatal(err)
	}
	yes := true
	rm, err := room.NewRoom(room.Room{ID: roomID, Title: roomID, Record: &yes}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if g.rm, err = g.rooms.Create(context.Background(), rm); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	onLive := func(id string, live bool) {
		mu.Lock()
		r := g.rec
		mu.Unlock()
		if r != nil {
			r.OnLive(id, live)
		}
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if g.sfu, err = media.New(media.Config{ListenIP: "127.0.0.1"}, media.Options{Logger: log, Registerer: prometheus.NewRegistry(), OnLive: onLive}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = g.sfu.Shutdown(ctx)
	})
	cfg.Dir, cfg.MinFreeBytes = t.TempDir(), 1
	d := record.Deps{Media: g.sfu, Rooms: g.rooms, Log: log}
	if deps != nil {
		deps(&d)
	}
	r, err := record.New(cfg, d)
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	g.rec = r
	mu.Unlock()
	var runCtx context.Context
	runCtx, g.stop = context.WithCancel(context.Background())
	t.Cleanup(g.stop)
	go func() { g.ran <- r.Run(runCtx) }()
	return g
}

// signal publishes an offer as the room's host.
func (g *rig) signal() mediatest.Signal {
	return func(ctx context.Context, offer string) (string, error) {
		sess, err := g.sfu.Publish(ctx, g.rm.ID, "host", offer)
		if err != nil {
			return "", err
		}
		return sess.AnswerSDP, nil
	}
}

// publish connects a pion publisher as the room's host.
func (g *rig) publish(t *testing.T, ctx context.Context, opts mediatest.PublisherOptions) *mediatest.Publisher {
	t.Helper()
	pub, err := mediatest.NewPublisher(ctx, g.signal(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pub.Close() })
	if err := pub.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	return pub
}

// end ends the room and returns its one show once it is ended.
func (g *rig) end(t *testing.T, ctx context.Context) record.Show {
	t.Helper()
	if _, err := g.rooms.Update(ctx, g.rm.ID, func(x *room.Room) error { x.Status = room.StatusEnded; return nil }); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(15 * time.Second); ; {
		shows, err := g.rec.Library().List(g.rm.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(shows) == 1 && shows[0].Ended {
			return shows[0]
		}
		if time.Now().After(deadline) {
			t.Fatalf("show not ended: %+v", shows)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// segments are the playlist's segment durations.
func segments(t *testing.T, pl string) []float64 {
	t.Helper()
	var d []float64
	for _, line := range strings.Split(pl, "\n") {
		if v, ok := strings.CutPrefix(line, "#EXTINF:"); ok {
			f, err := strconv.ParseFloat(strings.TrimSuffix(v, ","), 64)
			if err != nil {
				t.Fatalf("playlist line %q: %v", line, err)
			}
			d = append(d, f)
		}
	}
	return d
}

// TestRecorderInProcess: the show starts when the room goes live, room
// events arriving from many goroutines land in its product script, the room
// being ended ends it with a closed playlist, and Run returns once its
// context ends.
func TestRecorderInProcess(t *testing.T) {
	g := newRig(t, "inproc", record.Config{Segment: time.Second, Grace: 5 * time.Second}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// A 4 s GOP: like a WebRTC encoder, the source sends a keyframe
	// sooner only when asked.
	pub := g.publish(t, ctx, mediatest.PublisherOptions{Clip: longGOPClip(t)})
	time.Sleep(2 * time.Second)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 20 {
				ev := room.MustEvent("chat.message", map[string]any{"message": map[string]any{"id": "m" + string(rune('a'+i)) + string(rune('a'+j)), "text": "hi"}})
				g.rec.Observe(g.rm.Scope(), ev)
			}
		})
	}
	g.rec.Observe(g.rm.Scope(), room.MustEvent("product.pinned", map[string]any{"product": map[string]any{"sku": "a", "title": "Thing"}}))
	g.rec.Observe("other~scope", room.MustEvent("product.pinned", map[string]any{"product": map[string]any{"sku": "b", "title": "Not ours"}}))
	wg.Wait()
	time.Sleep(2 * time.Second)
	_ = pub.Close()
	sh := g.end(t, ctx)
	b, _ := json.Marshal(sh.Chapters)
	t.Logf("show %s: %.1f s, %d bytes, chapters %s", sh.ID, sh.DurationS, sh.Bytes, b)
	if len(sh.Chapters) != 1 || sh.Chapters[0].Title != "Thing" {
		t.Errorf("chapters %s, want the one pin of this room", b)
	}
	if sh.DurationS < 3 || sh.Stopped != "" {
		t.Errorf("show %+v, want 4 s that simply ended", sh.Meta)
	}
	chat, err := g.rec.Library().Chat("inproc", sh.ID)
	if err != nil || len(chat) != 160 {
		t.Errorf("chat log: %d messages (%v), want 160", len(chat), err)
	}
	pl, err := g.rec.Library().Playlist("inproc", sh.ID, nil)
	if err != nil || !strings.Contains(pl, "#EXT-X-ENDLIST") {
		t.Fatalf("playlist: %v", err)
	}
	// Segments stay near their 1 s target although the GOP is 4 s: the
	// recorder asked for keyframes as each came due.
	for _, d := range segments(t, pl) {
		if d > 2.5 {
			t.Errorf("a segment of %.3f s with a 1 s target (keyframes not requested?); PLIs %d:\n%s", d, pub.PLIs(), pl)
		}
	}
	g.stop()
	select {
	case <-g.ran:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
}

// TestRecorderHostReplacesStalledSource: the host's uplink dies (its session
// stays, silent) and the host publishes again before the old session timed
// out, replacing it without the room going offline. The show goes on from
// the new source without the stall in its timeline: no segment spans it and
// the show is as long as the media published.
func TestRecorderHostReplacesStalledSource(t *testing.T) {
	g := newRig(t, "stall", record.Config{Segment: time.Second, Grace: 5 * time.Second}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	first := g.publish(t, ctx, mediatest.PublisherOptions{})
	time.Sleep(2 * time.Second)
	first.Stall()
	time.Sleep(3 * time.Second)
	second := g.publish(t, ctx, mediatest.PublisherOptions{})
	time.Sleep(2 * time.Second)
	_ = second.Close()
	sh := g.end(t, ctx)
	pl, err := g.rec.Library().Playlist("stall", sh.ID, nil)
	if err != nil {
		t.Fatal(err)
	}
	segs := segments(t, pl)
	t.Logf("show %.2f s in %d segments %v", sh.DurationS, len(segs), segs)
	if sh.DurationS < 3 || sh.DurationS > 5 {
		t.Errorf("show of %.2f s, want about 4 (2 s before the stall, 2 s after; not the 3 s stall)", sh.DurationS)
	}
	for _, d := range segs {
		if d > 2 {
			t.Errorf("a segment of %.3f s with a 1 s target: the stall is in the timeline\n%s", d, pl)
		}
	}
	if len(listShows(t, g)) != 1 {
		t.Error("the replacement started a second show")
	}
}

func listShows(t *testing.T, g *rig) []record.Show {
	t.Helper()
	shows, err := g.rec.Library().List(g.rm.ID)
	if err != nil {
		t.Fatal(err)
	}
	return shows
}

func needFFmpegExt(t *testing.T) {
	t.Helper()
	if err := media.OpusTranscoderAvailable(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
}

// TestRecorderRefusesVP8: a VP8 room cannot be recorded (fMP4 here carries
// H264): the recording stops at once and the hosts are told why; the room
// is not retried while its host stays live.
func TestRecorderRefusesVP8(t *testing.T) {
	var mu sync.Mutex
	var told []string
	g := newRig(t, "vp8", record.Config{}, func(d *record.Deps) {
		d.Notify = func(_ context.Context, scope string, ev room.Event) error {
			mu.Lock()
			defer mu.Unlock()
			told = append(told, scope+" "+ev.Type+" "+string(ev.Body))
			return nil
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	g.publish(t, ctx, mediatest.PublisherOptions{VideoCodec: "video/VP8"})
	deadline := time.Now().Add(15 * time.Second)
	for {
		mu.Lock()
		n := len(told)
		mu.Unlock()
		if n > 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(2 * time.Second) // the host is still live: no second show, no second notice
	mu.Lock()
	defer mu.Unlock()
	if len(told) != 1 || !strings.HasPrefix(told[0], g.rm.Scope()+" record.stopped ") || !strings.Contains(told[0], "VP8") {
		t.Fatalf("hosts told %q, want one record.stopped naming VP8", told)
	}
	shows := listShows(t, g)
	if len(shows) != 1 || !shows[0].Ended || !strings.Contains(shows[0].Stopped, "VP8") {
		t.Errorf("shows %+v, want one, ended, stopped for VP8", shows)
	}
}

// longGOPClip is the committed clip with its H264 re-encoded at one
// keyframe every 4 s.
func longGOPClip(t *testing.T) *mediatest.Clip {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30",
		"-t", "8", "-c:v", "libx264", "-profile:v", "baseline", "-bf", "0", "-g", "120", "-keyint_min", "120", "-sc_threshold", "0",
		"-x264-params", "repeat-headers=1:aud=1", "-f", "h264", filepath.Join(dir, "clip.h264")).CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v %s", err, out)
	}
	for _, f := range []string{"clip.ivf", "clip.ogg"} {
		b, err := os.ReadFile(filepath.Join(mediatest.TestdataDir(), f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	c, err := mediatest.LoadClip(dir)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
