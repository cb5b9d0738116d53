package web

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/prometheus/client_golang/prometheus"

	"liveroom/media"
	"liveroom/room"
)

// An offer refused for what it is (wrong type, empty, not SDP, a codec we
// lack, a second host) frees its admission; an offer past a cap is refused
// before its body is read: 429 + Retry-After + JSON, for WHEP and WHIP.
func TestWHEPWHIPCaps(t *testing.T) {
	cfg := media.Config{ListenIP: "127.0.0.1"}
	cfg.Limits = media.Limits{UnconnectedPerAddress: 1, PublishersUnconnectedPerAddress: 1}
	sfu, err := media.New(cfg, media.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = sfu.Shutdown(ctx)
	})
	n := newTestNode(t, func(d *Deps) { d.WHIP, d.WHEP = sfu, sfu })
	rm := n.createRoom("caps", false)
	recvOffer := offer(t, webrtc.RTPTransceiverDirectionRecvonly, nil)
	sendOffer := offer(t, webrtc.RTPTransceiverDirectionSendonly, nil)
	noCodec := offer(t, webrtc.RTPTransceiverDirectionRecvonly, []webrtc.RTPCodecParameters{{
		RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: "video/x-nonsense", ClockRate: 90000}, PayloadType: 120,
	}})
	otherHost := n.token("someone-else", room.RoleHost, "caps")

	bad := []struct {
		name, path, bearer, ctype, body string
		status                          int
	}{
		{"wrong content type", "/whep/caps", "", "text/plain", recvOffer, 415},
		{"empty body", "/whep/caps", "", "application/sdp", "", 400},
		{"not sdp", "/whep/caps", "", "application/sdp", "v=0\r\nnonsense\r\n", 400},
		{"no codec", "/whep/caps", "", "application/sdp", noCodec, 400},
		{"whip wrong content type", "/whip/caps", rm.StreamKey, "text/plain", sendOffer, 415},
	}
	for range 3 { // past the cap of 1 if any of them leaked its place
		for _, b := range bad {
			if status, _, body := n.do("POST", b.path, b.bearer, b.ctype, []byte(b.body)); status != b.status {
				t.Fatalf("%s: got %d %s, want %d", b.name, status, body, b.status)
			}
		}
	}
	cases := []struct {
		name, path, bearer, body string
	}{
		{"whep", "/whep/caps", "", recvOffer},
		{"whip", "/whip/caps", rm.StreamKey, sendOffer},
	}
	for _, c := range cases {
		if status, _, body := n.do("POST", c.path, c.bearer, "application/sdp", []byte(c.body)); status != http.StatusCreated {
			t.Fatalf("%s: first offer: got %d %s, want 201", c.name, status, body)
		}
		// The one place is taken by a session that never connects.
		status, h, body := n.do("POST", c.path, c.bearer, "application/sdp", []byte(c.body))
		if status != http.StatusTooManyRequests || h.Get("Retry-After") != "2" || errorCode(t, body) != "rate_limited" {
			t.Errorf("%s: second offer: got %d Retry-After %q %s, want 429, Retry-After 2, rate_limited", c.name, status, h.Get("Retry-After"), body)
		}
	}
	// Another host's offer is refused by the cap first: the cap is checked
	// before anything about the offer.
	if status, _, body := n.do("POST", "/whip/caps", otherHost, "application/sdp", []byte("not even sdp")); status != http.StatusTooManyRequests {
		t.Errorf("offer past the cap: got %d %s, want 429 before the body is read", status, body)
	}
}
