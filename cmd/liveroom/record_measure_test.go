package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"liveroom/media/mediatest"
)

// TestRecordMeasure (a measurement, run by hand): the server's CPU while a
// 2 Mbit/s 720p30 H264 + Opus show is published, with recording off and on,
// interleaved, and the recording's bytes per hour. docs/benchmarks.md:
//
//	RECORD_MEASURE_SECONDS=30 go test ./cmd/liveroom -run TestRecordMeasure -count=1 -v | grep MEASURE
func TestRecordMeasure(t *testing.T) {
	secs, _ := strconv.Atoi(os.Getenv("RECORD_MEASURE_SECONDS"))
	if secs <= 0 {
		t.Skip("a measurement: set RECORD_MEASURE_SECONDS")
	}
	needTool(t, "ffmpeg")
	clipDir := t.TempDir()
	if out, err := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30",
		"-t", "20", "-c:v", "libx264", "-profile:v", "baseline", "-b:v", "2M", "-maxrate", "2M", "-bufsize", "1M",
		"-g", "60", "-bf", "0", "-f", "h264", filepath.Join(clipDir, "clip.h264")).CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg clip: %v %s", err, out)
	}
	for _, f := range []string{"clip.ivf", "clip.ogg"} {
		b, err := os.ReadFile(filepath.Join(mediatest.TestdataDir(), f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(clipDir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	clip, err := mediatest.LoadClip(clipDir)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := recordServer(t, t.TempDir(), "")
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(4*secs+60)*time.Second)
	defer cancel()

	run := func(roomID string, record bool) (server, ffmpeg float64, sh showJSON) {
		if status, b := adminDo(t, "POST", p.Base+"/api/v1/rooms", map[string]any{"id": roomID, "title": roomID, "record": record}); status != 201 {
			t.Fatalf("create room: %d %s", status, b)
		}
		tok := mintToken(t, p.Base, "host-"+roomID, "host", roomID)
		pub, err := mediatest.NewPublisher(ctx, mediatest.WHIP(p.Base+"/whip/"+roomID, tok).Signal, mediatest.PublisherOptions{Clip: clip})
		if err != nil {
			t.Fatal(err)
		}
		if err := pub.WaitConnected(ctx); err != nil {
			t.Fatal(err)
		}
		time.Sleep(3 * time.Second) // warm up: the show and its transcoder started
		s0, f0 := cpuOf(p.PID()), childCPU(p.PID())
		time.Sleep(time.Duration(secs) * time.Second)
		s1, f1 := cpuOf(p.PID()), childCPU(p.PID())
		_ = pub.Close()
		if status, b := adminDo(t, "PATCH", p.Base+"/api/v1/rooms/"+roomID, map[string]any{"status": "ended"}); status != 200 {
			t.Fatalf("end: %d %s", status, b)
		}
		if record {
			sh = waitShow(t, p.Base, roomID, 20*time.Second, func(s showJSON) bool { return s.Ended })
		}
		return (s1 - s0) / float64(secs) * 100, (f1 - f0) / float64(secs) * 100, sh
	}
	for i := range 2 {
		base, _, _ := run("base"+strconv.Itoa(i), false)
		rec, ff, sh := run("rec"+strconv.Itoa(i), true)
		perHour := float64(sh.Bytes) / sh.DurationS * 3600
		t.Logf("MEASURE round %d: server CPU without recording %.1f %% of a core, with recording %.1f %% (+%.1f), its ffmpeg (Opus->AAC) %.1f %%; show %.0f s, %d bytes = %.0f MB/hour",
			i, base, rec, rec-base, ff, sh.DurationS, sh.Bytes, perHour/1e6)
	}
	p.Stop(t, 10*time.Second)
}

// cpuOf is a process's user+system CPU seconds.
func cpuOf(pid int) float64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	u, _ := strconv.ParseFloat(f[11], 64)
	k, _ := strconv.ParseFloat(f[12], 64)
	return (u + k) / 100 // USER_HZ
}

// childCPU is the CPU seconds of pid's running children (the ffmpeg
// transcoders).
func childCPU(pid int) float64 {
	var sum float64
	tasks, _ := filepath.Glob("/proc/" + strconv.Itoa(pid) + "/task/*/children")
	for _, tf := range tasks {
		b, _ := os.ReadFile(tf)
		for _, c := range strings.Fields(string(b)) {
			if n, err := strconv.Atoi(c); err == nil {
				sum += cpuOf(n)
			}
		}
	}
	return sum
}
