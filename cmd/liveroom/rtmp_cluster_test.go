package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"liveroom/media/mediatest"
)

// In a cluster the node the host's encoder reaches is the origin: ffmpeg
// pushes RTMP (H264 baseline, no B-frames, AAC) with the stream key to
// node a; a WHEP viewer on node b gets the video from a keyframe with its
// SPS/PPS and the audio as Opus, through b's pull from a. Both nodes
// share one redis-server.
func TestRTMPClusterEdge(t *testing.T) {
	ffmpeg, err := exec.LookPath("ffmpeg")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("ffmpeg not installed")
		}
		t.Skip("ffmpeg not installed")
	}
	open, _ := inProcessBackends()["redis"](t)
	nodes := startInProcess(t, open, "a", "b")
	a, b := nodes[0], nodes[1]
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if status, body := adminDo(t, "POST", a.p.Base+"/api/v1/rooms", map[string]any{"id": "shop", "title": "Shop"}); status != 201 {
		t.Fatalf("create room: %d %s", status, body)
	}
	// The host publishes where a's room view says.
	_, body := adminDo(t, "GET", a.p.Base+"/api/v1/rooms/shop", nil)
	var rm struct {
		StreamKey string `json:"stream_key"`
		Ingest    struct{ RTMP string }
	}
	if err := json.Unmarshal(body, &rm); err != nil || rm.StreamKey == "" || !strings.HasPrefix(rm.Ingest.RTMP, "rtmp://") {
		t.Fatalf("room view on a: %v %s", err, body)
	}
	push := exec.Command(ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error", "-re",
		"-f", "lavfi", "-i", "testsrc=size=320x240:rate=30", "-f", "lavfi", "-i", "sine=frequency=440",
		"-t", "60", "-c:v", "libx264", "-profile:v", "baseline", "-pix_fmt", "yuv420p", "-bf", "0", "-g", "30",
		"-c:a", "aac", "-f", "flv", rm.Ingest.RTMP+"/"+rm.StreamKey)
	var out strings.Builder
	push.Stdout, push.Stderr = &out, &out
	if err := push.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- push.Wait() }()
	defer func() { _ = push.Process.Kill(); <-exited }()
	for !a.sfu.Live("shop") {
		select {
		case err := <-exited:
			exited <- err // for the deferred wait; out is complete
			t.Fatalf("ffmpeg ended (%v) before the room went live on a:\n%s", err, out.String())
		case <-ctx.Done():
			t.Fatal("room not live on a over RTMP")
		case <-time.After(50 * time.Millisecond):
		}
	}
	if b.sfu.Live("shop") {
		t.Fatal("b says it holds the live stream; the origin is a")
	}

	v, _ := watchOn(t, ctx, b.p, "shop")
	st := waitVideo(t, ctx, v, "RTMP video and audio through the edge", func(st mediatest.ViewerStats) bool {
		return !st.FirstKeyframeAt.IsZero() && st.Video.Packets > 60 && st.Audio.Packets > 50
	})
	if !st.FirstVideoKeyframe || !st.FirstKeyframeParams {
		t.Errorf("viewer on b: first video packet keyframe %v, SPS/PPS %v; want both", st.FirstVideoKeyframe, st.FirstKeyframeParams)
	}
	audio := ""
	for _, tr := range v.PC.GetTransceivers() {
		if tr.Kind() == webrtc.RTPCodecTypeAudio && tr.Receiver() != nil && tr.Receiver().Track() != nil {
			audio = tr.Receiver().Track().Codec().MimeType
		}
	}
	if !strings.EqualFold(audio, webrtc.MimeTypeOpus) {
		t.Errorf("viewer on b hears %q, want %s (AAC transcoded on the origin)", audio, webrtc.MimeTypeOpus)
	}
	if got := metric(t, b.p, "liveroom_media_edge_pulls_started_total"); got != 1 {
		t.Errorf("b started %v pulls, want 1 (from a)", got)
	}
	if got := metric(t, a.p, "liveroom_media_edge_sessions"); got != 1 {
		t.Errorf("a serves %v edge sessions, want 1", got)
	}
	t.Logf("viewer on b: first keyframe %v after joining; %d video, %d audio packets",
		st.FirstKeyframeAt.Sub(st.Start).Round(time.Millisecond), st.Video.Packets, st.Audio.Packets)
}
