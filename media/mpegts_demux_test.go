package media

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// countSink counts what a tsDemuxer delivers.
type countSink struct {
	h264, aac, opus int
	sps             bool
	lastVideo       time.Duration
	backwards       int
}

func (c *countSink) WriteH264(au [][]byte, pts time.Duration) error {
	c.h264++
	for _, n := range au {
		if len(n) > 0 && n[0]&0x1f == naluSPS {
			c.sps = true
		}
	}
	if pts < c.lastVideo {
		c.backwards++
	}
	c.lastVideo = pts
	return nil
}
func (c *countSink) WriteAAC(au [][]byte, _ time.Duration) { c.aac += len(au) }
func (c *countSink) WriteOpus([]byte, time.Duration)       { c.opus++ }

// TestSRTDemuxFFmpeg: ffmpeg's MPEG-TS (H264 + AAC) demuxes into access
// units with SPS, presentation times in order and the AAC config.
func TestSRTDemuxFFmpeg(t *testing.T) {
	bin, err := exec.LookPath("ffmpeg")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("ffmpeg not installed")
		}
		t.Skip("ffmpeg not installed")
	}
	out := filepath.Join(t.TempDir(), "a.ts")
	cmd := exec.Command(bin, "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc=size=160x120:rate=30",
		"-f", "lavfi", "-i", "sine", "-t", "2", "-c:v", "libx264", "-profile:v", "baseline", "-pix_fmt", "yuv420p",
		"-bf", "0", "-g", "30", "-c:a", "aac", "-f", "mpegts", out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, b)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	d, err := openTS(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if len(d.aac) < 2 || aacSampleRate(d.aac) == 0 {
		t.Errorf("AudioSpecificConfig %x, want one with a sample rate", d.aac)
	}
	var c countSink
	_ = d.run(&c) // ends with EOF
	if c.h264 < 55 || !c.sps || c.aac < 80 || c.backwards != 0 {
		t.Errorf("got %d H264 AUs (SPS %v, %d backwards), %d AAC units; want ~60 with SPS in order, ~90", c.h264, c.sps, c.backwards, c.aac)
	}
}

// FuzzTSDemux: whatever arrives over SRT, the demuxer returns an error or
// delivers; it never panics. Seeds (ffmpeg's H264+AAC, truncated,
// corrupted) live in testdata/fuzz/FuzzTSDemux.
func FuzzTSDemux(f *testing.F) {
	f.Add([]byte{0x47, 0x40, 0x00, 0x10, 0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := openTS(bytes.NewReader(b))
		if err != nil {
			return
		}
		var c countSink
		if err := d.run(&c); err == nil {
			t.Fatal("run ended without an error")
		} else if errors.Is(err, ErrUnplayable) {
			t.Fatalf("sink never refuses, got %v", err)
		}
	})
}
