package media_test

import (
	"context"
	"log/slog"
	"runtime"
	"sync"
	"testing"
	"time"

	"liveroom/media"
	"liveroom/media/mediatest"

	"github.com/prometheus/client_golang/prometheus"
)

// testClip is loaded once: every publisher in the package plays it.
var testClip = sync.OnceValues(func() (*mediatest.Clip, error) { return mediatest.LoadClip("") })

func clip(t testing.TB) *mediatest.Clip {
	t.Helper()
	c, err := testClip()
	if err != nil {
		t.Fatalf("load clip: %v", err)
	}
	return c
}

type liveLog struct {
	mu     sync.Mutex
	events []string
}

func (l *liveLog) hook(room string, live bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	state := "offline"
	if live {
		state = "live"
	}
	l.events = append(l.events, room+":"+state)
}

func (l *liveLog) get() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.events...)
}

type testSFU struct {
	*media.SFU
	live *liveLog
	reg  *prometheus.Registry
}

// newSFU starts an SFU on a free loopback port and shuts it down at cleanup.
func newSFU(t testing.TB, tune ...func(*media.Config)) *testSFU {
	t.Helper()
	cfg := media.Config{ListenIP: "127.0.0.1"}
	for _, f := range tune {
		f(&cfg)
	}
	live := &liveLog{}
	reg := prometheus.NewRegistry()
	s, err := media.New(cfg, media.Options{
		Logger:     slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelInfo})),
		Registerer: reg,
		OnLive:     live.hook,
	})
	if err != nil {
		t.Fatalf("media.New: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return &testSFU{SFU: s, live: live, reg: reg}
}

// sessionRef records the session a signal created.
type sessionRef struct {
	mu sync.Mutex
	id string
}

func (r *sessionRef) set(id string) { r.mu.Lock(); r.id = id; r.mu.Unlock() }
func (r *sessionRef) get() string   { r.mu.Lock(); defer r.mu.Unlock(); return r.id }

func publishVia(s *media.SFU, room, host string, ref *sessionRef) mediatest.Signal {
	return func(ctx context.Context, offer string) (string, error) {
		sess, err := s.Publish(ctx, room, host, offer)
		if err != nil {
			return "", err
		}
		if ref != nil {
			ref.set(sess.ID)
		}
		return sess.AnswerSDP, nil
	}
}

func subscribeVia(s *media.SFU, room string, ref *sessionRef) mediatest.Signal {
	return func(ctx context.Context, offer string) (string, error) {
		sess, err := s.Subscribe(ctx, room, offer)
		if err != nil {
			return "", err
		}
		if ref != nil {
			ref.set(sess.ID)
		}
		return sess.AnswerSDP, nil
	}
}

func startPublisher(t testing.TB, ctx context.Context, s *media.SFU, room, host string) (*mediatest.Publisher, *sessionRef) {
	t.Helper()
	ref := &sessionRef{}
	p, err := mediatest.NewPublisher(ctx, publishVia(s, room, host, ref), mediatest.PublisherOptions{Clip: clip(t)})
	if err != nil {
		t.Fatalf("publisher %s/%s: %v", room, host, err)
	}
	t.Cleanup(func() { _ = p.Close() })
	if err := p.WaitConnected(ctx); err != nil {
		t.Fatalf("publisher %s/%s connect: %v", room, host, err)
	}
	return p, ref
}

func startViewer(t testing.TB, ctx context.Context, s *media.SFU, room string) (*mediatest.Viewer, *sessionRef) {
	t.Helper()
	ref := &sessionRef{}
	v, err := mediatest.NewViewer(ctx, subscribeVia(s, room, ref), mediatest.ViewerOptions{})
	if err != nil {
		t.Fatalf("viewer %s: %v", room, err)
	}
	t.Cleanup(func() { _ = v.Close() })
	if err := v.WaitConnected(ctx); err != nil {
		t.Fatalf("viewer %s connect: %v", room, err)
	}
	return v, ref
}

// waitStats waits (bounded by ctx) for cond and fails the test with what
// was received if it does not hold.
func waitStats(t testing.TB, ctx context.Context, v *mediatest.Viewer, what string, cond func(mediatest.ViewerStats) bool) mediatest.ViewerStats {
	t.Helper()
	st, err := v.WaitFor(ctx, cond)
	if err != nil {
		t.Fatalf("waiting for %s: %v; got %+v", what, err, st)
	}
	return st
}

// waitGoroutines waits for the goroutine count to fall back to at most n.
func waitGoroutines(t testing.TB, n int, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		got := runtime.NumGoroutine()
		if got <= n {
			return
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			t.Fatalf("goroutines: got %d, want <= %d\n%s", got, n, buf)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func testCtx(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// simulcastHost publishes the three pre-encoded layers (mediatest.EncodeLayers:
// 720p, 360p, 180p) as a simulcast host of room on s and waits until the room
// has all three.
func simulcastHost(t *testing.T, ctx context.Context, s *media.SFU, room string) ([]mediatest.Layer, *mediatest.LayeredPublisher) {
	t.Helper()
	needFFmpeg(t)
	layers, err := mediatest.EncodeLayers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := mediatest.NewLayeredPublisher(ctx, publishVia(s, room, "host", nil), mediatest.LayeredPublisherOptions{Layers: layers, Simulcast: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pub.Close() })
	if err := pub.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	waitLayers(t, ctx, s, room, 3)
	return layers, pub
}

// waitLayers waits until room has at least n layers being sent.
func waitLayers(t *testing.T, ctx context.Context, s *media.SFU, room string, n int) {
	t.Helper()
	for l, _ := s.Layers(room); len(l.Layers) < n; l, _ = s.Layers(room) {
		select {
		case <-ctx.Done():
			t.Fatalf("layers %+v, want %d", l, n)
		case <-time.After(5 * time.Millisecond):
		}
	}
}
