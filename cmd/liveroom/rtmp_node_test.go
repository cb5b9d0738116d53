package main

import (
	"context"
	"encoding/json"
	"net"
	"net/http/httptest"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// A node takes RTMP as OBS sends it ("Custom": server rtmp://HOST/live,
// stream key = the room's key), finds the room by its key through the
// store and room.Access, and goes live; a wrong key is refused.
func TestNodeRTMPStreamKey(t *testing.T) {
	ffmpeg, err := exec.LookPath("ffmpeg")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("ffmpeg not installed")
		}
		t.Skip("ffmpeg not installed")
	}
	n, err := buildNode(testConfig(t), prometheus.NewRegistry(), quietLog())
	if err != nil {
		t.Fatal(err)
	}
	n.start()
	srv := httptest.NewServer(n.web)
	defer func() {
		srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		n.stop(ctx)
	}()
	if n.rtmpAddr == nil {
		t.Fatal("no RTMP listener")
	}
	if status, b := adminDo(t, "POST", srv.URL+"/api/v1/rooms", map[string]any{"id": "obs", "title": "OBS"}); status != 201 {
		t.Fatalf("create room: %d %s", status, b)
	}
	rm, err := n.rooms.Get(context.Background(), "obs")
	if err != nil {
		t.Fatal(err)
	}
	// The server the studio shows for OBS "Custom".
	_, b := adminDo(t, "GET", srv.URL+"/api/v1/rooms/obs", nil)
	var got struct {
		Ingest struct{ RTMP, SRT string } `json:"ingest"`
	}
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if want := "rtmp://127.0.0.1:" + strconv.Itoa(n.rtmpAddr.(*net.TCPAddr).Port) + "/live"; got.Ingest.RTMP != want {
		t.Fatalf("ingest.rtmp %q, want %q (%s)", got.Ingest.RTMP, want, b)
	}
	// The SRT caller URL carries the room and its key in the stream id.
	if want := "srt://127.0.0.1:" + strconv.Itoa(n.srtAddr.(*net.UDPAddr).Port) + "?streamid=publish:obs:" + rm.StreamKey; got.Ingest.SRT != want {
		t.Fatalf("ingest.srt %q, want %q (%s)", got.Ingest.SRT, want, b)
	}
	push := func(key string, seconds string) *exec.Cmd {
		cmd := exec.Command(ffmpeg, "-hide_banner", "-nostdin", "-re", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=30",
			"-f", "lavfi", "-i", "sine=frequency=440", "-t", seconds, "-c:v", "libx264", "-profile:v", "baseline", "-pix_fmt", "yuv420p",
			"-bf", "0", "-g", "30", "-c:a", "aac", "-f", "flv", got.Ingest.RTMP+"/"+key)
		return cmd
	}

	out, err := push("sk_not_the_key", "5").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "no room for this stream key") {
		t.Errorf("wrong key: err %v, output:\n%s", err, out)
	}

	ok := push(rm.StreamKey, "20")
	if err := ok.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ok.Process.Kill(); _ = ok.Wait() }()
	deadline := time.Now().Add(15 * time.Second)
	for !n.sfu.Live("obs") {
		if time.Now().After(deadline) {
			t.Fatal("room not live over RTMP with its stream key")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
