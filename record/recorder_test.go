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

// TestRecorderInProcess: a real SFU, a real pion publisher and the
// recorder in one process (so -race sees them together): the show starts
// when the room goes live, room events arriving from many goroutines land
// in its product script, the room being ended ends it with a closed
// playlist, and Run returns once its context ends.
func TestRecorderInProcess(t *testing.T) {
	needFFmpegExt(t)
	rooms, err := room.OpenFileStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	yes := true
	rm, err := room.NewRoom(room.Room{ID: "inproc", Title: "In process", Record: &yes}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if rm, err = rooms.Create(context.Background(), rm); err != nil {
		t.Fatal(err)
	}
	var rec *record.Recorder
	var recMu sync.Mutex
	onLive := func(id string, live bool) {
		recMu.Lock()
		r := rec
		recMu.Unlock()
		if r != nil {
			r.OnLive(id, live)
		}
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	sfu, err := media.New(media.Config{ListenIP: "127.0.0.1"}, media.Options{Logger: log, Registerer: prometheus.NewRegistry(), OnLive: onLive})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = sfu.Shutdown(ctx)
	}()
	r, err := record.New(record.Config{Dir: t.TempDir(), Segment: time.Second, Grace: 5 * time.Second, MinFreeBytes: 1}, record.Deps{Media: sfu, Rooms: rooms, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	recMu.Lock()
	rec = r
	recMu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	runCtx, stop := context.WithCancel(ctx)
	ran := make(chan error, 1)
	go func() { ran <- r.Run(runCtx) }()

	signal := func(ctx context.Context, offer string) (string, error) {
		sess, err := sfu.Publish(ctx, "inproc", "host", offer)
		if err != nil {
			return "", err
		}
		return sess.AnswerSDP, nil
	}
	// A 4 s GOP: like a WebRTC encoder, the source sends a keyframe
	// sooner only when asked.
	pub, err := mediatest.NewPublisher(ctx, signal, mediatest.PublisherOptions{Clip: longGOPClip(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	if err := pub.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 20 {
				ev := room.MustEvent("chat.message", map[string]any{"message": map[string]any{"id": "m" + string(rune('a'+i)) + string(rune('a'+j)), "text": "hi"}})
				r.Observe(rm.Scope(), ev)
			}
		})
	}
	r.Observe(rm.Scope(), room.MustEvent("product.pinned", map[string]any{"product": map[string]any{"sku": "a", "title": "Thing"}}))
	r.Observe("other~scope", room.MustEvent("product.pinned", map[string]any{"product": map[string]any{"sku": "b", "title": "Not ours"}}))
	wg.Wait()
	time.Sleep(2 * time.Second)
	_ = pub.Close()
	if _, err := rooms.Update(ctx, "inproc", func(x *room.Room) error { x.Status = room.StatusEnded; return nil }); err != nil {
		t.Fatal(err)
	}
	var sh record.Show
	for deadline := time.Now().Add(15 * time.Second); ; {
		shows, err := r.Library().List("inproc")
		if err != nil {
			t.Fatal(err)
		}
		if len(shows) == 1 && shows[0].Ended {
			sh = shows[0]
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("show not ended: %+v", shows)
		}
		time.Sleep(100 * time.Millisecond)
	}
	b, _ := json.Marshal(sh.Chapters)
	t.Logf("show %s: %.1f s, %d bytes, chapters %s", sh.ID, sh.DurationS, sh.Bytes, b)
	if len(sh.Chapters) != 1 || sh.Chapters[0].Title != "Thing" {
		t.Errorf("chapters %s, want the one pin of this room", b)
	}
	if sh.DurationS < 3 || sh.Stopped != "" {
		t.Errorf("show %+v, want 4 s that simply ended", sh.Meta)
	}
	chat, err := r.Library().Chat("inproc", sh.ID)
	if err != nil || len(chat) != 160 {
		t.Errorf("chat log: %d messages (%v), want 160", len(chat), err)
	}
	pl, err := r.Library().Playlist("inproc", sh.ID, nil)
	if err != nil || !strings.Contains(pl, "#EXT-X-ENDLIST") {
		t.Fatalf("playlist: %v", err)
	}
	// Segments stay near their 1 s target although the GOP is 4 s: the
	// recorder asked for keyframes as each came due.
	for _, line := range strings.Split(pl, "\n") {
		if v, ok := strings.CutPrefix(line, "#EXTINF:"); ok {
			if d, _ := strconv.ParseFloat(strings.TrimSuffix(v, ","), 64); d > 2.5 {
				t.Errorf("a segment of %.3f s with a 1 s target (keyframes not requested?); PLIs %d:\n%s", d, pub.PLIs(), pl)
			}
		}
	}
	stop()
	select {
	case <-ran:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
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
	needFFmpegExt(t)
	rooms, err := room.OpenFileStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	yes := true
	rm, _ := room.NewRoom(room.Room{ID: "vp8", Title: "VP8", Record: &yes}, time.Now())
	if rm, err = rooms.Create(context.Background(), rm); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var rec *record.Recorder
	var told []string
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	sfu, err := media.New(media.Config{ListenIP: "127.0.0.1"}, media.Options{Logger: log, Registerer: prometheus.NewRegistry(),
		OnLive: func(id string, live bool) {
			mu.Lock()
			r := rec
			mu.Unlock()
			if r != nil {
				r.OnLive(id, live)
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = sfu.Shutdown(ctx)
	}()
	r, err := record.New(record.Config{Dir: t.TempDir(), MinFreeBytes: 1}, record.Deps{Media: sfu, Rooms: rooms, Log: log,
		Notify: func(_ context.Context, scope string, ev room.Event) error {
			mu.Lock()
			defer mu.Unlock()
			told = append(told, scope+" "+ev.Type+" "+string(ev.Body))
			return nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	rec = r
	mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	go func() { _ = r.Run(ctx) }()
	signal := func(ctx context.Context, offer string) (string, error) {
		sess, err := sfu.Publish(ctx, "vp8", "host", offer)
		if err != nil {
			return "", err
		}
		return sess.AnswerSDP, nil
	}
	api, err := mediatest.NewAPI()
	if err != nil {
		t.Fatal(err)
	}
	pub, err := mediatest.NewPublisher(ctx, signal, mediatest.PublisherOptions{API: api, VideoCodec: "video/VP8"})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	if err := pub.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
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
	if len(told) != 1 || !strings.HasPrefix(told[0], rm.Scope()+" record.stopped ") || !strings.Contains(told[0], "VP8") {
		t.Fatalf("hosts told %q, want one record.stopped naming VP8", told)
	}
	shows, _ := r.Library().List("vp8")
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
