package main

import (
	"liveroom/cmd/internal/proctest"
	"net/http"
	"strings"
	"testing"
	"time"
)

// startServer runs the real binary on free loopback ports (see proctest);
// secrets come from the arguments or data_dir, never the caller's env.
func startServer(t *testing.T, dataDir string, extra ...string) *proctest.Server {
	t.Helper()
	// Media on loopback only: a candidate on another test's veth (media,
	// web/e2e make them) vanishes with that test, and the stream with it.
	return proctest.Start(t, proctest.Options{DataDir: dataDir, Args: extra,
		Env: []string{"LIVEROOM_JWT_SECRET=", "LIVEROOM_ADMIN_KEY=", "LIVEROOM_REDIS_URL=", "LIVEROOM_WEBRTC_LISTEN_IP=127.0.0.1"}})
}

func freePort(t *testing.T, network string) int {
	if network == "udp" {
		return proctest.FreeUDPTCP(t)
	}
	return proctest.FreeTCP(t)
}

func TestServeDevPrintsURLsAndStopsOnSIGTERM(t *testing.T) {
	dir := t.TempDir()
	p := startServer(t, dir, "--dev")
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(p.Stdout(), "moderator:") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	out := p.Stdout()
	for _, want := range []string{"/studio/demo#token=", "/r/demo", "/mod/demo#token=", "/whip/demo", "sk_", "rtsp://host:sk_", "rtmp://", "/live\n", "srt://", "?streamid=publish:demo:sk_"} {
		if !strings.Contains(out, want) {
			t.Fatalf("dev output lacks %q:\n%s", want, out)
		}
	}
	// The printed studio page and room exist.
	for _, path := range []string{"/studio/demo", "/r/demo", "/api/v1/rooms/demo"} {
		resp, err := http.Get(p.Base + path)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("GET %s: %v %v", path, err, resp)
		}
		resp.Body.Close()
	}
	p.Stop(t, 5*time.Second)

	// The demo room and secrets survive a restart.
	p2 := startServer(t, dir)
	resp, err := http.Get(p2.Base + "/api/v1/rooms/demo")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("after restart: %v %v", err, resp)
	}
	resp.Body.Close()
	p2.Stop(t, 5*time.Second)
}
