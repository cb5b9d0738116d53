package media_test

import (
	"encoding/binary"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"liveroom/media"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
)

// burstAAC is AAC-LC at rate: silence, then a 440 Hz sine from onset on.
func burstAAC(t *testing.T, rate int, onset, seconds float64) (asc []byte, aus [][]byte, pcm []float64) {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "burst.aac")
	expr := "aevalsrc=if(gte(t\\," + strconv.FormatFloat(onset, 'f', -1, 64) + ")\\,0.5*sin(2*PI*440*t)\\,0):s=" + strconv.Itoa(rate) +
		":d=" + strconv.FormatFloat(seconds, 'f', -1, 64)
	if out, err := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", expr,
		"-c:a", "aac", "-b:a", "96k", "-f", "adts", path).CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg burst: %v: %s", err, out)
	}
	buf, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var pkts mpeg4audio.ADTSPackets
	if err := pkts.Unmarshal(buf); err != nil {
		t.Fatal(err)
	}
	asc, err = (&mpeg4audio.AudioSpecificConfig{Type: pkts[0].Type, SampleRate: pkts[0].SampleRate, ChannelConfig: pkts[0].ChannelConfig}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pkts {
		aus = append(aus, p.AU)
	}
	// What the AAC itself decodes to, priming included: the reference for
	// where the burst is in the access units' timeline.
	return asc, aus, decodePCM(t, path, "-f aac", rate)
}

// decodePCM decodes a file to mono float samples at rate, every sample kept.
func decodePCM(t *testing.T, path, format string, rate int) []float64 {
	t.Helper()
	args := []string{"-hide_banner", "-loglevel", "error"}
	if format != "" {
		args = append(args, format[:2], format[3:])
	}
	args = append(args, "-i", path, "-ac", "1", "-ar", strconv.Itoa(rate), "-f", "s16le", "-")
	raw, err := exec.Command("ffmpeg", args...).Output()
	if err != nil {
		t.Fatalf("decode %s: %v", path, err)
	}
	s := make([]float64, len(raw)/2)
	for i := range s {
		s[i] = float64(int16(binary.LittleEndian.Uint16(raw[2*i:])))
	}
	return s
}

// onsetAt is the first sample whose level reaches a quarter of the peak.
func onsetAt(s []float64) int {
	peak := 0.0
	for _, v := range s {
		peak = max(peak, math.Abs(v))
	}
	for i, v := range s {
		if math.Abs(v) >= peak/4 {
			return i
		}
	}
	return -1
}

func cpuTicks(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return utime + stime
}

// TestTranscodeMeasure feeds AAC in real time and reports, for
// docs/benchmarks.md: ffmpeg's CPU (from /proc/<pid>/stat), the added
// latency (access unit written → the Opus packet ending with its audio out)
// and the audio offset the transcoder adds once PTS are mapped (where the
// burst's onset is in the decoded Opus, by its packet PTS, against where it
// is in the decoded AAC, by the access units' PTS). Only the offset is
// asserted (within 2 ms: a correctness bound, not a speed one).
func TestTranscodeMeasure(t *testing.T) {
	needTranscoder(t)
	secs := 6.0
	if v := os.Getenv("TRANSCODE_MEASURE_SECONDS"); v != "" {
		secs, _ = strconv.ParseFloat(v, 64)
	}
	const rate, onset = 48000, 2.0
	asc, aus, ref := burstAAC(t, rate, onset, secs)
	frame := time.Duration(1024) * time.Second / rate

	type arrival struct {
		pts time.Duration
		at  time.Time
	}
	var (
		mu    sync.Mutex
		pkts  [][]byte
		times []arrival
	)
	tr, err := media.NewAACTranscoder(asc, func(opus []byte, pts time.Duration) {
		mu.Lock()
		defer mu.Unlock()
		pkts = append(pkts, append([]byte(nil), opus...))
		times = append(times, arrival{pts, time.Now()})
	})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	pid := tr.Pid()

	base := 3 * time.Second // arbitrary input PTS origin
	written := make([]time.Time, len(aus))
	start := time.Now()
	var ticks0 int64
	for i, au := range aus {
		time.Sleep(time.Until(start.Add(time.Duration(i) * frame)))
		if i == 1 {
			ticks0 = cpuTicks(t, pid) // after start-up
		}
		written[i] = time.Now()
		if err := tr.Write(au, base+time.Duration(i)*frame); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(200 * time.Millisecond)
	ticks := cpuTicks(t, pid) - ticks0
	wall := time.Since(written[1])
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
	cpu := float64(ticks) / 100 / wall.Seconds() * 100 // USER_HZ is 100 on Linux

	mu.Lock()
	defer mu.Unlock()
	var lat, steady []time.Duration
	first := times[0].at.Sub(written[0])
	for _, a := range times {
		// The packet's last sample is in access unit i; it was written then.
		i := int((a.pts + 20*time.Millisecond - time.Nanosecond - base) / frame)
		if i >= 0 && i < len(written) {
			lat = append(lat, a.at.Sub(written[i]))
			if a.pts >= base+time.Second { // after ffmpeg's start-up
				steady = append(steady, a.at.Sub(written[i]))
			}
		}
	}
	slices.Sort(lat)
	slices.Sort(steady)
	if len(steady) < 10 {
		t.Fatalf("only %d packets timed", len(lat))
	}

	ogg := filepath.Join(t.TempDir(), "out.ogg")
	if err := media.WriteOggOpus(ogg, 2, pkts); err != nil {
		t.Fatal(err)
	}
	out := decodePCM(t, ogg, "", 48000)
	inOnset := base + time.Duration(onsetAt(ref))*time.Second/rate
	outOnset := times[0].pts + time.Duration(onsetAt(out))*time.Second/48000
	offset := outOnset - inOnset

	t.Logf("MEASURE AAC→Opus, %.0f s real time, %d AUs in, %d packets out, %d dropped", secs, len(aus), len(pkts), tr.Dropped())
	t.Logf("MEASURE ffmpeg CPU: %.2f%% of a core (%d ticks over %v)", cpu, ticks, wall.Round(time.Millisecond))
	r := func(d time.Duration) time.Duration { return d.Round(10 * time.Microsecond) }
	t.Logf("MEASURE added latency, AU written → Opus packet out, all (n=%d): p50 %v, p99 %v, max %v (the first packets wait for ffmpeg to start)",
		len(lat), r(lat[len(lat)/2]), r(lat[len(lat)*99/100]), r(lat[len(lat)-1]))
	t.Logf("MEASURE first AU written → first Opus packet out (ffmpeg start-up): %v", r(first))
	t.Logf("MEASURE added latency after the first second (n=%d): p50 %v, p99 %v, max %v",
		len(steady), r(steady[len(steady)/2]), r(steady[len(steady)*99/100]), r(steady[len(steady)-1]))
	t.Logf("MEASURE audio offset after PTS mapping: %v (burst at %v in the AAC's timeline, %v in the Opus packets')", offset, inOnset, outOnset)
	if offset < -2*time.Millisecond || offset > 2*time.Millisecond {
		t.Errorf("transcoder shifts audio by %v, want within 2ms", offset)
	}
}
