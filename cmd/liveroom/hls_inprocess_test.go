package main

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"liveroom/room/roomtest"
)

// The host publishes to a; an HLS player asks b, where the room has no
// host: b pulls the room from a (as for a WHEP viewer) and serves the
// playlists from its own muxer.
func TestInProcessHLSOnEdge(t *testing.T) {
	inProcessTest(t, "hlsedge", 60*time.Second, func(t *testing.T, ctx context.Context, nodes []*inNode, _ *roomtest.RedisServer) {
		a, b := nodes[0].p, nodes[1].p
		publishTo(t, ctx, a, "hlsedge", mintToken(t, a.Base, "host", "host", "hlsedge"))
		var body string
		for {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, b.Base+"/hls/hlsedge/index.m3u8", nil)
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatalf("GET index.m3u8 on b: %v", err)
			}
			raw, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				body = string(raw)
				break
			}
			if ctx.Err() != nil {
				t.Fatalf("index.m3u8 on b: %d %s", res.StatusCode, raw)
			}
			time.Sleep(200 * time.Millisecond) // not live in the store yet (503), or no keyframe from the pull in time
		}
		if !strings.HasPrefix(body, "#EXTM3U") || !strings.Contains(body, "avc1") {
			t.Fatalf("b's playlist:\n%s", body)
		}
		if got := metric(t, b, "liveroom_media_edge_pulls_started_total"); got != 1 {
			t.Errorf("b started %v pulls for its HLS player, want 1", got)
		}
		if got := metric(t, a, "liveroom_media_edge_sessions"); got != 1 {
			t.Errorf("a serves %v edge sessions, want 1", got)
		}
	}, "a", "b")
}
