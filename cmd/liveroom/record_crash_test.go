package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"liveroom/media/mediatest"
)

// TestRecordSurvivesKill9: the server is killed with SIGKILL mid-show;
// after a restart the show is listed as ended and its playlist plays (every
// segment it names is complete) up to the last segment written.
func TestRecordSurvivesKill9(t *testing.T) {
	needTool(t, "ffmpeg")
	needTool(t, "ffprobe")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dir := t.TempDir()
	p, cfgPath := recordServer(t, dir, "")
	if status, b := adminDo(t, "POST", p.Base+"/api/v1/rooms", map[string]any{"id": "crash", "title": "Crash", "record": true}); status != 201 {
		t.Fatalf("create room: %d %s", status, b)
	}
	tok := mintToken(t, p.Base, "host", "host", "crash")
	publishFor(t, ctx, p, "crash", tok)
	waitShow(t, p.Base, "crash", 20*time.Second, func(s showJSON) bool { return s.DurationS >= 4 })
	time.Sleep(300 * time.Millisecond) // somewhere inside the next segment
	p.Kill()

	p2 := startServer(t, filepath.Join(dir, "data"), "--config", cfgPath)
	sh := waitShow(t, p2.Base, "crash", 10*time.Second, func(s showJSON) bool { return s.Ended })
	t.Logf("after restart: %+v", sh)
	if sh.Stopped != "server_restart" || sh.DurationS < 4 {
		t.Errorf("show %+v, want ended by the restart with at least 4 s", sh)
	}
	cmd := exec.Command("ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", p2.Base+sh.Playlist)
	out, err := cmd.CombinedOutput()
	if err != nil || strings.Contains(string(out), "rror") {
		t.Fatalf("ffprobe after kill -9: %v %s", err, out)
	}
	pr := probe(t, p2.Base+sh.Playlist)
	if len(pr.video) < 100 || pr.codecs["video"] != "h264" {
		t.Errorf("after kill -9: %d video packets, codecs %v", len(pr.video), pr.codecs)
	}
	// No temporary file is named by the playlist; stray ones may remain.
	pl, _ := os.ReadFile(filepath.Join(dir, "data", "recordings", "crash", sh.ID, "index.m3u8"))
	if !strings.Contains(string(pl), "#EXT-X-ENDLIST") || strings.Contains(string(pl), ".tmp") {
		t.Errorf("playlist after recovery:\n%s", pl)
	}
	p2.Stop(t, 5*time.Second)
}

// TestRecordDiskFull: recordings on a tiny tmpfs fill it; the recording
// stops, the host is told (record.stopped, reason disk_full), the live goes
// on for a WebRTC viewer, and what was written still plays.
func TestRecordDiskFull(t *testing.T) {
	needTool(t, "ffmpeg")
	needTool(t, "ffprobe")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dir := t.TempDir()
	rec := filepath.Join(dir, "rec")
	if err := os.MkdirAll(rec, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=600k", "tmpfs", rec).CombinedOutput(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("mount tmpfs: %v %s", err, out)
		}
		t.Skipf("mount tmpfs (needs root): %v %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", "-l", rec).Run() })
	p, _ := recordServer(t, dir, "  dir: "+rec+"\n")
	if status, b := adminDo(t, "POST", p.Base+"/api/v1/rooms", map[string]any{"id": "full", "title": "Full", "record": true}); status != 201 {
		t.Fatalf("create room: %d %s", status, b)
	}
	tok := mintToken(t, p.Base, "host", "host", "full")
	host := dialWS(t, p.Base, "full", tok)
	if host.await("welcome", 5*time.Second) == nil {
		t.Fatal("host: no welcome")
	}
	pub := publishFor(t, ctx, p, "full", tok)
	stopped := host.await("record.stopped", 30*time.Second)
	if stopped == nil || stopped["reason"] != "disk_full" {
		t.Fatalf("record.stopped = %v, want reason disk_full", stopped)
	}
	// The live goes on.
	v, _ := watchOn(t, ctx, p, "full")
	waitVideo(t, ctx, v, "video after the disk filled", func(st mediatest.ViewerStats) bool { return st.Video.Packets > 100 })

	sh := waitShow(t, p.Base, "full", 10*time.Second, func(s showJSON) bool { return s.Ended })
	t.Logf("show on a full disk: %+v", sh)
	if sh.Stopped != "disk_full" {
		t.Errorf("stopped %q, want disk_full", sh.Stopped)
	}
	if sh.DurationS > 0 {
		pr := probe(t, p.Base+sh.Playlist)
		if len(pr.video) == 0 {
			t.Errorf("what was written does not play: %+v", pr)
		}
	}
	if strings.Contains(p.Log(), "panic") {
		t.Errorf("server log has a panic")
	}
	_ = v.Close()
	_ = pub.Close()
	p.Stop(t, 5*time.Second)
}
