package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"liveroom/cmd/internal/proctest"
)

// TestViewersWorkloadRTSP is the smoke of --rtsp-publish: ffmpeg publishes a
// fixed-GOP test pattern over RTSP (a source that cannot be asked for
// keyframes) and three viewers get a keyframe with SPS/PPS; the report
// splits the wait into connecting and waiting for the keyframe.
func TestViewersWorkloadRTSP(t *testing.T) {
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("ffmpeg not installed")
		}
		t.Skip("ffmpeg not installed")
	}
	s := proctest.Start(t, proctest.Options{DataDir: t.TempDir(), Env: []string{"LIVEROOM_ADMIN_KEY=" + testAdminKey,
		"LIVEROOM_JWT_SECRET=load-test-jwt-secret-0123456789", "LIVEROOM_MAX_CONNS_PER_IP=0", "LIVEROOM_REDIS_URL="}})
	streamKey := createRoom(t, s.Base, "rtspsmoke")

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var out bytes.Buffer
	err := viewersCmd(ctx, []string{"--url", s.Base, "--room", "rtspsmoke", "--n", "3", "--duration", "1s", "--json",
		"--rtsp-publish", streamKey, "--rtsp-url", "rtsp://" + s.RTSPAddr, "--rtsp-gop", "1s", "--rtsp-kbps", "400"}, &out)
	if err != nil {
		t.Fatalf("viewers: %v\n%s", err, out.String())
	}
	js := out.String()[strings.Index(out.String(), "{"):]
	var res viewersResult
	if err := json.Unmarshal([]byte(js), &res); err != nil {
		t.Fatalf("report is not JSON: %v\n%s", err, out.String())
	}
	if res.Joined != 3 || res.KeyframeWithSPS != 3 || res.FirstPacketP95ms <= 0 || res.KeyframeP95ms < res.PacketToKeyP95ms {
		t.Fatalf("got %+v; want 3 joined with SPS/PPS keyframes and the wait split in two", res)
	}
}
