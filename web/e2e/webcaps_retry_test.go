package e2e

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"liveroom/media/mediatest"
)

// TestBrowserRetriesRefusedOffer: the node holds one unconnected WHEP
// session per address (webrtc.limits.unconnected_per_address: 1) and a
// client that never connects holds it. The viewer page's offer is refused
// 429 + Retry-After; the test then frees the place (DELETE of the stale
// session); the page tries again by itself, no sooner than Retry-After,
// and plays.
func TestBrowserRetriesRefusedOffer(t *testing.T) {
	chromium, node := browserTools(t)
	artifacts := artifactsDir(t)
	cfg := filepath.Join(t.TempDir(), "caps.yaml")
	if err := os.WriteFile(cfg, []byte("webrtc:\n  limits:\n    unconnected_per_address: 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := startNode(t, artifacts, nodeOptions{name: "webcaps-retry", jwtSecret: randomString(t), adminKey: randomString(t),
		args: []string{"--config", cfg}})
	var created struct {
		StreamKey string `json:"stream_key"`
	}
	s.admin(t, "/api/v1/rooms", map[string]any{"id": room, "title": "Caps"}, http.StatusCreated, &created)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	clip, err := mediatest.LoadClip("")
	if err != nil {
		t.Fatal(err)
	}
	pub, err := mediatest.NewPublisher(ctx, mediatest.WHIP(s.base+"/whip/"+room, created.StreamKey).Signal, mediatest.PublisherOptions{Clip: clip})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	if err := pub.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}

	// The stale session that holds 127.0.0.1's one place.
	stale := mediatest.WHEP(s.base+"/whep/"+room, "")
	if _, err := stale.Signal(ctx, staleOffer(t)); err != nil {
		t.Fatalf("stale offer: %v", err)
	}
	// Free it once the page has been refused.
	freed := make(chan time.Time, 1)
	go func() {
		defer close(freed)
		for ctx.Err() == nil {
			if s.metric(t, "liveroom_media_admissions_refused_total") >= 1 {
				if err := stale.Delete(ctx); err != nil {
					t.Errorf("delete the stale session: %v", err)
				}
				freed <- time.Now()
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()

	var res struct {
		OK      bool     `json:"ok"`
		Step    string   `json:"step"`
		Error   string   `json:"error"`
		Logs    []string `json:"logs"`
		Message string   `json:"message"`
		WHEP    []struct {
			PostedAt   int64  `json:"postedAt"`
			AnsweredAt int64  `json:"answeredAt"`
			Status     int    `json:"status"`
			RetryAfter string `json:"retryAfter"`
		} `json:"whep"`
	}
	runScript(t, node, chromium, &res, "webcaps_retry.mjs", "--base", s.base, "--room", room)
	for _, l := range res.Logs {
		t.Log("browser: " + l)
	}
	if !res.OK {
		t.Fatalf("browser run failed in step %q: %s", res.Step, res.Error)
	}
	var seen []string
	for _, w := range res.WHEP {
		seen = append(seen, http.StatusText(w.Status))
	}
	t.Logf("the page's WHEP offers: %s", strings.Join(seen, ", "))
	if len(res.WHEP) < 2 || res.WHEP[0].Status != http.StatusTooManyRequests || res.WHEP[0].RetryAfter != "2" || res.WHEP[len(res.WHEP)-1].Status != http.StatusCreated {
		t.Fatalf("WHEP offers %+v; want a 429 with Retry-After 2 first and a 201 last", res.WHEP)
	}
	if wait := time.Duration(res.WHEP[1].PostedAt-res.WHEP[0].AnsweredAt) * time.Millisecond; wait < 2*time.Second {
		t.Errorf("the page retried %v after the 429, want no sooner than Retry-After (2 s)", wait)
	} else {
		t.Logf("the page retried %v after the 429 (Retry-After 2 s, jitter up to as long again)", wait)
	}
	if _, ok := <-freed; !ok {
		t.Error("the stale session was never freed")
	}
}

// staleOffer is a valid WHEP offer from a client that never connects.
func staleOffer(t *testing.T) string {
	t.Helper()
	api, err := mediatest.NewAPI()
	if err != nil {
		t.Fatal(err)
	}
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	for _, k := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio} {
		if _, err := pc.AddTransceiverFromKind(k, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
			t.Fatal(err)
		}
	}
	o, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(o); err != nil {
		t.Fatal(err)
	}
	<-gathered
	return pc.LocalDescription().SDP
}
