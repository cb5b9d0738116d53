package record

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"

	"liveroom/media"
)

func needFFmpeg(t *testing.T) {
	t.Helper()
	for _, tool := range []string{"ffmpeg", "ffprobe"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s not found", tool)
			}
			t.Skipf("%s not found", tool)
		}
	}
}

// encode makes seconds of w×h H264 at 30 fps (a keyframe a second) and
// returns its access units as the media seam hands them over.
func encode(t *testing.T, w, h, seconds int) []*media.AccessUnit {
	t.Helper()
	out, err := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-f", "lavfi",
		"-i", "testsrc2=size="+itoa(w)+"x"+itoa(h)+":rate=30", "-t", itoa(seconds),
		"-c:v", "libx264", "-profile:v", "baseline", "-g", "30", "-bf", "0", "-x264-params", "aud=1",
		"-f", "h264", "pipe:1").Output()
	if err != nil {
		t.Fatalf("ffmpeg: %v", err)
	}
	nalus := splitAnnexB(out)
	var aus []*media.AccessUnit
	var sps, pps []byte
	var cur [][]byte
	flush := func() {
		if len(cur) == 0 {
			return
		}
		key := h264.IsRandomAccess(cur)
		au := &media.AccessUnit{Video: true, Codec: "H264", Key: key, NALUs: cur, PTS: time.Duration(len(aus)) * time.Second / 30}
		if key {
			au.Params = &media.Params{Codec: "H264", SPS: sps, PPS: pps, Width: w, Height: h}
		}
		aus = append(aus, au)
		cur = nil
	}
	for _, n := range nalus {
		switch h264.NALUType(n[0] & 0x1f) {
		case h264.NALUTypeAccessUnitDelimiter:
			flush()
			continue
		case h264.NALUTypeSPS:
			sps = bytes.Clone(n)
		case h264.NALUTypePPS:
			pps = bytes.Clone(n)
		}
		cur = append(cur, n)
	}
	flush()
	return aus
}

func itoa(n int) string { return strconv.Itoa(n) }

// splitAnnexB cuts an Annex-B stream at its start codes.
func splitAnnexB(b []byte) [][]byte {
	var out [][]byte
	start := -1
	for i := 0; i+2 < len(b); i++ {
		if b[i] == 0 && b[i+1] == 0 && b[i+2] == 1 {
			if start >= 0 {
				out = append(out, bytes.TrimRight(b[start:i], "\x00"))
			}
			start = i + 3
			i += 2
		}
	}
	if start >= 0 && start < len(b) {
		out = append(out, b[start:])
	}
	return out
}

// TestSegmenterParameterChange: a new SPS (another resolution) in the
// middle of a show starts a new init segment behind EXT-X-DISCONTINUITY;
// each init with its segments decodes at its own resolution, and the
// show's timeline goes on without a gap.
func TestSegmenterParameterChange(t *testing.T) {
	needFFmpeg(t)
	dir := t.TempDir()
	sg := newSegmenter(dir, time.Second, false)
	first := encode(t, 320, 180, 3)
	second := encode(t, 640, 360, 3)
	var pts time.Duration
	for i, au := range append(first, second...) {
		if i == len(first) {
			au.ParamsChanged = true
		}
		pts = time.Duration(i) * time.Second / 30
		if err := sg.videoAU(au, pts); err != nil {
			t.Fatal(err)
		}
		if err := sg.maybeFlush(pts); err != nil {
			t.Fatal(err)
		}
	}
	if err := sg.finish(); err != nil {
		t.Fatal(err)
	}
	pl, err := os.ReadFile(filepath.Join(dir, playlistName))
	if err != nil {
		t.Fatal(err)
	}
	text := string(pl)
	if strings.Count(text, "#EXT-X-DISCONTINUITY") != 1 || strings.Count(text, "#EXT-X-MAP") != 2 || !strings.Contains(text, "#EXT-X-ENDLIST") {
		t.Fatalf("playlist:\n%s\nwant one discontinuity, two maps, an end", text)
	}
	entries, ended := parsePlaylist(text)
	if !ended || len(entries) < 6 {
		t.Fatalf("parsed %d entries (ended %v)", len(entries), ended)
	}
	var total time.Duration
	for _, e := range entries {
		total += e.dur
	}
	if d := total - 6*time.Second; d < -100*time.Millisecond || d > 100*time.Millisecond {
		t.Errorf("playlist lasts %v, want 6 s", total)
	}
	for n, want := range map[int]string{1: "320x180", 2: "640x360"} {
		var file []byte
		b, _ := os.ReadFile(filepath.Join(dir, initName(n)))
		file = append(file, b...)
		for _, e := range entries {
			if e.init == n {
				b, _ := os.ReadFile(filepath.Join(dir, e.name))
				file = append(file, b...)
			}
		}
		path := filepath.Join(dir, "part"+itoa(n)+".mp4")
		if err := os.WriteFile(path, file, 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command("ffprobe", "-v", "error", "-count_frames", "-show_entries", "stream=width,height,nb_read_frames", "-of", "csv=p=0:s=x", path).CombinedOutput()
		if err != nil {
			t.Fatalf("ffprobe init %d: %v %s", n, err, out)
		}
		got := strings.TrimSpace(string(out))
		if !strings.HasPrefix(got, want+"x") || !strings.HasSuffix(got, "x90") {
			t.Errorf("init %d with its segments: %q, want %s and 90 frames", n, got, want)
		}
	}
}
