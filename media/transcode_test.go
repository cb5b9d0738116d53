package media_test

import (
	"encoding/binary"
	"errors"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"liveroom/media"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4/pkg/media/oggwriter"
)

func needTranscoder(t *testing.T) {
	t.Helper()
	needFFmpeg(t)
	if err := media.TranscoderAvailable(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
}

// aacTone makes seconds of a 440 Hz sine as AAC-LC: its AudioSpecificConfig
// and raw access units.
func aacTone(t *testing.T, rate int, seconds float64) ([]byte, [][]byte) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "tone.aac")
	out, err := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-f", "lavfi",
		"-i", "sine=frequency=440:sample_rate="+strconv.Itoa(rate)+":duration="+strconv.FormatFloat(seconds, 'f', -1, 64),
		"-c:a", "aac", "-b:a", "96k", "-f", "adts", path).CombinedOutput()
	if err != nil {
		t.Fatalf("ffmpeg aac: %v: %s", err, out)
	}
	buf, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var pkts mpeg4audio.ADTSPackets
	if err := pkts.Unmarshal(buf); err != nil {
		t.Fatalf("adts: %v", err)
	}
	asc, err := (&mpeg4audio.AudioSpecificConfig{Type: pkts[0].Type, SampleRate: pkts[0].SampleRate, ChannelConfig: pkts[0].ChannelConfig}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	aus := make([][]byte, len(pkts))
	for i, p := range pkts {
		aus[i] = p.AU
	}
	return asc, aus
}

type opusOut struct {
	mu   sync.Mutex
	pkts [][]byte
	pts  []time.Duration
	at   []time.Time
}

func (o *opusOut) add(pkt []byte, pts time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.pkts = append(o.pkts, append([]byte(nil), pkt...))
	o.pts = append(o.pts, pts)
	o.at = append(o.at, time.Now())
}

func (o *opusOut) len() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.pkts)
}

// dominantHz decodes Opus packets (20 ms each) with ffmpeg and returns the
// tone's frequency by counting zero crossings, and the signal's RMS.
func dominantHz(t *testing.T, pkts [][]byte) (hz, rms float64) {
	t.Helper()
	dir := t.TempDir()
	ogg := filepath.Join(dir, "out.ogg")
	w, err := oggwriter.New(ogg, 48000, 2)
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range pkts {
		if err := w.WriteRTP(&rtp.Packet{Header: rtp.Header{SequenceNumber: uint16(i), Timestamp: uint32(i * 960)}, Payload: p}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return decodeTone(t, ogg)
}

// decodeTone decodes any audio file to mono 48 kHz and measures it.
func decodeTone(t *testing.T, path string) (hz, rms float64) {
	t.Helper()
	raw, err := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-i", path,
		"-ac", "1", "-ar", "48000", "-f", "s16le", "-").Output()
	if err != nil {
		t.Fatalf("decode %s: %v", path, err)
	}
	s := make([]float64, len(raw)/2)
	for i := range s {
		s[i] = float64(int16(binary.LittleEndian.Uint16(raw[2*i:])))
	}
	// Skip the first 100 ms (codec start-up).
	if len(s) > 4800 {
		s = s[4800:]
	}
	if len(s) < 4800 {
		t.Fatalf("decoded %d samples, want at least 100 ms", len(s))
	}
	crossings, sum := 0, 0.0
	for i := 1; i < len(s); i++ {
		if (s[i-1] < 0) != (s[i] < 0) {
			crossings++
		}
		sum += s[i] * s[i]
	}
	secs := float64(len(s)) / 48000
	return float64(crossings) / 2 / secs, math.Sqrt(sum / float64(len(s)))
}

// TestTranscodeAACTone: a 440 Hz AAC tone comes out as 440 Hz Opus in
// 20 ms packets, with PTS that increase and map onto the input's, across a
// jump in the input timeline; Close reaps ffmpeg.
func TestTranscodeAACTone(t *testing.T) {
	needTranscoder(t)
	for _, rate := range []int{44100, 48000} {
		t.Run(strconv.Itoa(rate), func(t *testing.T) {
			asc, aus := aacTone(t, rate, 3)
			var out opusOut
			tr, err := media.NewAACTranscoder(asc, out.add)
			if err != nil {
				t.Fatal(err)
			}
			pid := tr.Pid()
			base := 7 * time.Second
			jumpAt, jump := len(aus)/2, 10*time.Second
			ptsOf := func(i int) time.Duration {
				d := base + time.Duration(i)*1024*time.Second/time.Duration(rate)
				if i >= jumpAt {
					d += jump
				}
				return d
			}
			for i, au := range aus {
				if err := tr.Write(au, ptsOf(i)); err != nil {
					t.Fatal(err)
				}
				time.Sleep(5 * time.Millisecond) // ~4x real time: no queue drops
			}
			deadline := time.Now().Add(10 * time.Second)
			want := int(float64(len(aus)*1024)/float64(rate)/0.02) - 5
			for out.len() < want && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
			if err := tr.Close(); err != nil {
				t.Fatalf("close: %v", err)
			}
			if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("ffmpeg pid %d still exists after Close (zombie or running): %v", pid, err)
			}
			if err := tr.Write(aus[0], 0); !errors.Is(err, media.ErrTranscoderClosed) {
				t.Errorf("Write after Close = %v, want ErrTranscoderClosed", err)
			}
			if got := out.len(); got < want {
				t.Fatalf("got %d Opus packets, want at least %d", got, want)
			}
			if d := tr.Dropped(); d != 0 {
				t.Errorf("dropped %d access units at 4x real time", d)
			}

			hz, rms := dominantHz(t, out.pkts)
			t.Logf("%d AUs in, %d Opus packets out, %.1f Hz, rms %.0f, first pts %v (input %v)", len(aus), len(out.pkts), hz, rms, out.pts[0], base)
			if math.Abs(hz-440) > 10 {
				t.Errorf("decoded tone %.1f Hz, want 440", hz)
			}
			if rms < 1000 {
				t.Errorf("decoded RMS %.0f: silence, want a tone", rms)
			}

			// 20 ms apart and increasing, except across the jump.
			jumped := 0
			for i := 1; i < len(out.pts); i++ {
				d := out.pts[i] - out.pts[i-1]
				switch {
				case d > jump/2:
					jumped++
				case d < 19*time.Millisecond || d > 21*time.Millisecond:
					t.Errorf("pts[%d]-pts[%d] = %v, want 20ms", i, i-1, d)
				}
			}
			if jumped != 1 {
				t.Errorf("saw %d jumps in output PTS, want 1", jumped)
			}
			// The first packet starts at the first input sample minus the
			// encoder's pre-skip (6.5 ms for libopus); the last is within
			// the input's span.
			if d := base - out.pts[0]; d < 0 || d > 20*time.Millisecond {
				t.Errorf("first pts %v, want just before the first input pts %v", out.pts[0], base)
			}
			last, end := out.pts[len(out.pts)-1], ptsOf(len(aus)-1)+1024*time.Second/time.Duration(rate)
			if last > end || last < end-200*time.Millisecond {
				t.Errorf("last pts %v, want within 200ms before the input end %v", last, end)
			}
			// Every packet after the jump maps into the second half.
			for i, p := range out.pts {
				if p > ptsOf(jumpAt)-time.Millisecond && p < ptsOf(jumpAt) {
					t.Errorf("pts[%d] = %v lands between the halves", i, p)
				}
			}
		})
	}
}

// TestTranscodeCloseKills: Close ends ffmpeg while it is fed nothing, and a
// dead ffmpeg makes Write fail with its stderr instead of blocking.
func TestTranscodeCloseKills(t *testing.T) {
	needTranscoder(t)
	asc, aus := aacTone(t, 48000, 1)

	tr, err := media.NewAACTranscoder(asc, func([]byte, time.Duration) {})
	if err != nil {
		t.Fatal(err)
	}
	pid := tr.Pid()
	if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); err != nil {
		t.Fatalf("ffmpeg not running: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- tr.Close() }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close blocked")
	}
	if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("ffmpeg pid %d still exists after Close: %v", pid, err)
	}

	// ffmpeg killed from outside: Write reports it and never blocks.
	tr2, err := media.NewAACTranscoder(asc, func([]byte, time.Duration) {})
	if err != nil {
		t.Fatal(err)
	}
	defer tr2.Close()
	p, err := os.FindProcess(tr2.Pid())
	if err != nil {
		t.Fatal(err)
	}
	_ = p.Kill()
	deadline := time.Now().Add(5 * time.Second)
	var werr error
	for i := 0; werr == nil && time.Now().Before(deadline); i++ {
		werr = tr2.Write(aus[i%len(aus)], time.Duration(i)*20*time.Millisecond)
		time.Sleep(time.Millisecond)
	}
	if !errors.Is(werr, media.ErrTranscoderClosed) || !strings.Contains(werr.Error(), "ffmpeg") {
		t.Fatalf("Write after ffmpeg died = %v, want ErrTranscoderClosed naming ffmpeg", werr)
	}
}

// TestTranscodeStalledNeverBlocks: a stopped ffmpeg (SIGSTOP) fills the
// pipe and the queue; Write keeps returning at once and counts the drops,
// and Close still ends it.
func TestTranscodeStalledNeverBlocks(t *testing.T) {
	needTranscoder(t)
	asc, aus := aacTone(t, 48000, 1)
	tr, err := media.NewAACTranscoder(asc, func([]byte, time.Duration) {})
	if err != nil {
		t.Fatal(err)
	}
	pid := tr.Pid()
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		// ~200 s of audio, far more than the pipe and the queue hold.
		for i := range 10000 {
			if err := tr.Write(aus[i%len(aus)], time.Duration(i)*21*time.Millisecond); err != nil {
				t.Errorf("Write %d: %v", i, err)
				return
			}
		}
	}()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("Write blocked on a stalled ffmpeg")
	}
	if d := tr.Dropped(); d == 0 {
		t.Errorf("dropped %d access units with ffmpeg stopped, want some", d)
	}
	closed := make(chan struct{})
	go func() { _ = tr.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Close blocked on a stalled ffmpeg")
	}
	if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("ffmpeg pid %d still exists after Close: %v", pid, err)
	}
}

// TestTranscodeBadConfig: a config ADTS cannot carry is refused up front.
func TestTranscodeBadConfig(t *testing.T) {
	needTranscoder(t)
	for _, asc := range [][]byte{nil, {0xff}, {0x12}} {
		if tr, err := media.NewAACTranscoder(asc, func([]byte, time.Duration) {}); err == nil {
			tr.Close()
			t.Errorf("NewAACTranscoder(%x) = nil error, want one", asc)
		}
	}
}
