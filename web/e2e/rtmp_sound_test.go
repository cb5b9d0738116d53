package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os/exec"
	"testing"
	"time"
)

// TestBrowserRTMPSound: ffmpeg pushes H264 (baseline, no B-frames) and a
// 440 Hz AAC sine over RTMP with the room's stream key (the OBS "Custom"
// form) to the real binary; the viewer page plays the room in headless
// Chromium and an AnalyserNode on the video element's stream hears the tone
// (AAC transcoded to Opus by the server).
func TestBrowserRTMPSound(t *testing.T) {
	chromium, node := browserTools(t)
	ffmpeg, err := exec.LookPath("ffmpeg")
	if err != nil {
		missing(t, "ffmpeg not found on PATH (the RTMP publisher and the server's AAC transcoder)")
	}
	artifacts := artifactsDir(t)
	rtmpAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t, false))
	srv := startNode(t, artifacts, nodeOptions{name: "rtmp-sound", jwtSecret: randomString(t), adminKey: randomString(t),
		args: []string{"--rtmp", rtmpAddr, "--srt", ""}})
	var created struct {
		StreamKey string `json:"stream_key"`
	}
	srv.admin(t, "/api/v1/rooms", map[string]any{"id": room, "title": "RTMP sound room"}, http.StatusCreated, &created)
	if created.StreamKey == "" {
		t.Fatalf("room created without a stream_key")
	}
	viewer := mint(t, srv, "buyer-1", "Ana", "viewer")

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	ff := exec.CommandContext(ctx, ffmpeg, "-hide_banner", "-loglevel", "error", "-re",
		"-f", "lavfi", "-i", "testsrc=size=320x240:rate=30", "-f", "lavfi", "-i", "sine=frequency=440",
		"-c:v", "libx264", "-profile:v", "baseline", "-pix_fmt", "yuv420p", "-bf", "0", "-g", "30",
		"-c:a", "aac", "-f", "flv", "rtmp://"+rtmpAddr+"/live/"+created.StreamKey)
	var ffErr tail
	ff.Stderr = &ffErr
	ff.WaitDelay = 5 * time.Second
	if err := ff.Start(); err != nil {
		t.Fatalf("start ffmpeg: %v", err)
	}
	t.Cleanup(func() {
		_ = ff.Process.Kill()
		_ = ff.Wait()
		if t.Failed() {
			t.Logf("ffmpeg output:\n%s", ffErr.String())
		}
	})

	var res struct {
		OK      bool     `json:"ok"`
		Step    string   `json:"step"`
		Error   string   `json:"error"`
		Logs    []string `json:"logs"`
		PeakHz  float64  `json:"peakHz"`
		PeakDB  float64  `json:"peakDb"`
		RMS     float64  `json:"rms"`
		HeardMs int      `json:"heardMs"`
	}
	ok := runScript(t, node, chromium, &res, "rtmp_sound.mjs", "--base", srv.base, "--room", room, "--token", viewer, "--out", artifacts)
	for _, l := range res.Logs {
		t.Log("browser: " + l)
	}
	if !res.OK || !ok {
		t.Fatalf("browser run failed in step %q: %s", res.Step, res.Error)
	}
	t.Logf("page's analyser: peak %.1f Hz at %.1f dB, rms %.4f, %d ms after playing", res.PeakHz, res.PeakDB, res.RMS, res.HeardMs)
	if res.PeakHz < 400 || res.PeakHz > 480 {
		t.Errorf("the page hears a peak at %.1f Hz, want about 440 (400..480)", res.PeakHz)
	}
	if res.RMS < 0.01 {
		t.Errorf("the page's audio RMS %.4f: silence, want the tone", res.RMS)
	}
}
