//go:build linux

package media_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"liveroom/media"
	"liveroom/media/mediatest"
	"liveroom/media/netshape"
)

// TestShapedFastStartBurst: a pion viewer in its own network namespace
// behind 300 kbit/s (tbf with a deep queue, so that what the link cannot
// carry waits instead of being dropped, and the queue is what we see)
// joins a single-layer 500 kbit/s room about 1 s into its 2 s GOP, from a
// source that ignores keyframe requests (RTSP-like). The cached GOP is then
// the keyframe (~11 KB) and 60-90 KB of inter-frames: paced only by the
// stream's rate, it all went into the link at once, two seconds of queue in
// front of the audio. The catch-up now sends the keyframe and
// the initial window, sees the queue in the viewer's feedback and stops, so
// the link's queue stays near the keyframe and the window. Loose bound:
// the queue never holds more than 1.2 s at the link's rate until the
// source's next keyframe (after it, the live stream, which does not fit
// this link either, is what fills it: the estimator's to handle).
func TestShapedFastStartBurst(t *testing.T) {
	needFFmpeg(t)
	link := netshape.New(t)
	ctx := testCtx(t, 3*time.Minute)
	layers, err := mediatest.EncodeLayers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	s := newSFU(t, func(c *media.Config) { c.ListenIP = link.HostAddr.String() })
	pub, err := mediatest.NewLayeredPublisher(ctx, publishVia(s.SFU, "slow", "host", nil),
		mediatest.LayeredPublisherOptions{Layers: layers, Single: 1, NoKeyframeOnRequest: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pub.Close() })
	if err := pub.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}

	// WHEP for the viewer, on the link's root-side address.
	ln, err := net.Listen("tcp", net.JoinHostPort(link.HostAddr.String(), "0"))
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /whep/{room}", func(w http.ResponseWriter, r *http.Request) {
		offer, _ := io.ReadAll(r.Body)
		sess, err := s.Subscribe(r.Context(), r.PathValue("room"), string(offer))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Location", "/whep/"+r.PathValue("room")+"/"+sess.ID)
		w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(w, sess.AnswerSDP)
	})
	srv := &http.Server{Handler: mux}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })

	const rate = 300_000 // bits/s
	link.Shape(t, "300kbit", "4kb", "10s")
	for n := pub.SinceKeyframe(); n < 25 || n > 35; n = pub.SinceKeyframe() {
		select {
		case <-ctx.Done():
			t.Fatal("publisher not sending")
		case <-time.After(5 * time.Millisecond):
		}
	}
	h := startHelper(t, ctx, &mediatest.Netns{Name: link.NS}, "viewer",
		"URL=http://"+ln.Addr().String()+"/whep/slow", "NET=udp")

	// The link's queue (the tbf's backlog), every 10 ms, from the first
	// media (more than the DTLS handshake has gone through it) until the
	// publisher sends its next keyframe: what the link holds until then is
	// the fast start's doing.
	var started time.Time
	peak, peakAt := 0, time.Duration(0)
	var timeline []string
	for prev := pub.SinceKeyframe(); ; {
		since := pub.SinceKeyframe()
		if since < prev {
			if started.IsZero() {
				t.Fatal("the viewer's media started only after the next keyframe: the join took too long to measure the burst")
			}
			break
		}
		prev = since
		sent, backlog := tbfStats(t, link.HostDev)
		if started.IsZero() && sent > 8<<10 {
			started = time.Now()
		}
		if !started.IsZero() {
			if backlog > peak {
				peak, peakAt = backlog, time.Since(started)
			}
			timeline = append(timeline, fmt.Sprintf("%d:%d", time.Since(started).Milliseconds(), backlog>>10))
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no media through the link (sent %d bytes)", sent)
		case <-time.After(10 * time.Millisecond):
		}
	}
	t.Logf("link queue (ms since media started: KiB): %s", strings.Join(timeline, " "))
	st := h.waitStats(t, "the viewer gets a keyframe", 30*time.Second, func(s viewerStats) bool { return s.Keyframes > 0 })
	if st.Remote != link.HostAddr.String() {
		t.Fatalf("media came from %q, not through the shaped link (%s)", st.Remote, link.HostAddr)
	}
	queue := time.Duration(float64(peak*8) / rate * float64(time.Second))
	t.Logf("link queue peak %d bytes (%v at 300 kbit/s), %v after media started", peak, queue.Round(time.Millisecond), peakAt.Round(time.Millisecond))
	if limit := 1200 * time.Millisecond; queue > limit {
		t.Errorf("the join built a %v queue on a 300 kbit/s link (%d bytes); want at most %v (the keyframe and the initial window)", queue.Round(time.Millisecond), peak, limit)
	}
}

// tbfStats reads the bytes sent and the backlog of dev's root qdisc.
func tbfStats(t *testing.T, dev string) (sent, backlog int) {
	t.Helper()
	out, err := exec.Command("tc", "-s", "-j", "qdisc", "show", "dev", dev).Output()
	if err != nil {
		t.Fatalf("tc -s -j qdisc show dev %s: %v", dev, err)
	}
	var q []struct {
		Kind    string `json:"kind"`
		Bytes   int    `json:"bytes"`
		Backlog int    `json:"backlog"`
	}
	if err := json.Unmarshal(out, &q); err != nil {
		t.Fatalf("tc output: %v\n%s", err, out)
	}
	for _, e := range q {
		if e.Kind == "tbf" {
			return e.Bytes, e.Backlog
		}
	}
	t.Fatalf("no tbf on %s:\n%s", dev, out)
	return 0, 0
}
