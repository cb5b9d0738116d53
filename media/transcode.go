package media

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
)

// AAC → Opus for sources browsers cannot hear (RTMP, SRT, RTSP cameras):
// one ffmpeg child per stream, ADTS in on stdin, Ogg/Opus out on stdout.
// ffmpeg is a runtime dependency; TranscoderAvailable says whether it is
// usable. A child process isolates a decoder fed with hostile input from the
// server and costs about 1–2 % of a core per stream (docs/benchmarks.md).

// Queue bounds: Write never blocks. A stalled ffmpeg fills the queue and
// further access units are dropped and counted.
const (
	transcodeQueue     = 50 // access units, ~1 s of AAC at 48 kHz
	transcodeStderrCap = 4096
	transcodeMapCap    = 512 // input AUs remembered for PTS mapping
)

// ErrTranscoderClosed is returned by Write after Close or after ffmpeg died.
var ErrTranscoderClosed = errors.New("transcoder closed")

// transcoderCheck runs the ffmpeg probe once per process; its result never
// changes afterwards (ffmpeg is not installed while the server runs).
var transcoderCheck = sync.OnceValue(probeTranscoder)

// TranscoderAvailable reports whether AAC can be transcoded to Opus: nil
// when ffmpeg with the libopus encoder is on PATH, else what is missing.
// The check runs once; later calls return the cached result.
func TranscoderAvailable() error { return transcoderCheck() }

func probeTranscoder() error {
	path, err := exec.LookPath("ffmpeg")
	if err != nil {
		return errors.New("ffmpeg not found on PATH (AAC audio needs it: apt-get install ffmpeg)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, path, "-hide_banner", "-encoders").Output()
	if err != nil {
		return fmt.Errorf("ffmpeg -encoders: %w", err)
	}
	if !bytes.Contains(out, []byte(" libopus ")) {
		return errors.New("ffmpeg has no libopus encoder (AAC audio needs an ffmpeg built with --enable-libopus)")
	}
	return nil
}

// AACTranscoder turns one stream's AAC access units into Opus packets
// (48 kHz, 20 ms) through an ffmpeg child process. Output PTS are the input
// PTS of the audio each packet carries, so ffmpeg's delay is latency, not
// lip-sync offset. The owner calls Close when the stream ends; if the server
// dies instead, ffmpeg sees its stdin close and exits on its own.
type AACTranscoder struct {
	out  func(opus []byte, pts time.Duration)
	rate int // AAC core sample rate: 1024 samples per access unit
	adts mpeg4audio.ADTSPacket

	transcodeChild // ffmpeg, the input queue and the PTS map (transcode_child.go)

	written atomic.Uint64
}

// NewAACTranscoder starts ffmpeg for a stream whose MPEG-4
// AudioSpecificConfig is asc. out receives each Opus packet with its PTS,
// on the transcoder's own goroutine; opus is only valid during the call.
func NewAACTranscoder(asc []byte, out func(opus []byte, pts time.Duration)) (*AACTranscoder, error) {
	if err := TranscoderAvailable(); err != nil {
		return nil, err
	}
	var conf mpeg4audio.AudioSpecificConfig
	if err := conf.Unmarshal(asc); err != nil {
		return nil, fmt.Errorf("aac config: %w", err)
	}
	typ := conf.Type
	if typ < 1 || typ > 4 { // HE-AAC: ADTS carries the core (LC) config, SBR is implicit
		typ = mpeg4audio.ObjectTypeAACLC
	}
	channels := "2"
	if conf.ChannelConfig == 1 {
		channels = "1"
	}
	t := &AACTranscoder{
		out:            out,
		rate:           conf.SampleRate,
		adts:           mpeg4audio.ADTSPacket{Type: typ, SampleRate: conf.SampleRate, ChannelConfig: conf.ChannelConfig},
		transcodeChild: newTranscodeChild(),
	}
	if _, err := (mpeg4audio.ADTSPackets{&t.adts}).Marshal(); err != nil {
		return nil, fmt.Errorf("aac config: %w", err)
	}
	// No "-fflags nobuffer": it discards the packets read while probing
	// the input, an unknown number of leading frames, which would shift
	// every output PTS (measured: 1-2 AAC frames, 21-43 ms). A 32-byte
	// probe costs one frame of start-up delay once, not per packet.
	if err := t.start([]string{"-hide_banner", "-loglevel", "error",
		"-flags", "low_delay", "-probesize", "32", "-analyzeduration", "0",
		"-f", "aac", "-i", "pipe:0",
		"-vn", "-c:a", "libopus", "-ar", "48000", "-ac", channels, "-b:a", "64k",
		"-application", "lowdelay", "-frame_duration", "20", "-vbr", "on",
		"-flush_packets", "1", "-page_duration", "1", "-f", "ogg", "pipe:1"}, t.feed, t.read); err != nil {
		return nil, err
	}
	return t, nil
}

// Pid is the ffmpeg process id (for measurements and tests).
func (t *AACTranscoder) Pid() int { return t.cmd.Process.Pid }

// feed writes queued units to ffmpeg as ADTS frames and records where each
// lands in ffmpeg's sample timeline.
func (t *AACTranscoder) feed() {
	var off int64
	for u := range t.queue {
		h := t.adts
		h.AU = u.au
		frame, err := mpeg4audio.ADTSPackets{&h}.Marshal()
		if err != nil || len(frame) > 8191 { // 13-bit ADTS frame length
			t.dropped.Add(1)
			continue
		}
		t.mark(off, u.pts)
		off += 1024
		if _, err := t.stdin.Write(frame); err != nil {
			t.drain() // ffmpeg is gone
			return
		}
		t.written.Add(1)
	}
	_ = t.stdin.Close()
}

// read parses ffmpeg's Ogg/Opus output until it ends, then reaps ffmpeg.
func (t *AACTranscoder) read(stdout io.Reader) {
	defer close(t.done)
	o := newOggReader(stdout)
	var (
		packets int
		preskip int
		samples int64 // 48 kHz samples output so far
		rerr    error
	)
	for rerr == nil {
		rerr = o.nextPage(func(pkt []byte, _ int64, _ bool) {
			packets++
			switch {
			case packets == 1: // OpusHead
				if len(pkt) >= 12 && string(pkt[:8]) == "OpusHead" {
					preskip = int(pkt[10]) | int(pkt[11])<<8
				}
				return
			case packets == 2: // OpusTags
				return
			}
			// The browser plays the pre-skip samples too, so packet audio
			// starts preskip samples before the input's first sample.
			start := samples - int64(preskip)
			samples += int64(opusSamples(pkt))
			if pts, ok := t.ptsAt(start); ok {
				t.out(pkt, pts)
			}
		})
	}
	werr := t.cmd.Wait()
	t.mu.Lock()
	closed := t.closed
	t.mu.Unlock()
	if !closed {
		switch {
		case werr != nil:
			t.err = fmt.Errorf("ffmpeg: %w: %s", werr, t.stderr.String())
		case !errors.Is(rerr, io.EOF):
			t.err = fmt.Errorf("ffmpeg output: %w", rerr)
		default:
			t.err = errors.New("ffmpeg exited")
		}
	}
}

// ptsAt maps a 48 kHz output sample position onto the input PTS of the
// access unit holding it. Marks before the one found are dropped: output
// only moves forward.
func (t *AACTranscoder) ptsAt(out48 int64) (time.Duration, bool) {
	in := out48 * int64(t.rate) / 48000
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.mapping) == 0 {
		return 0, false
	}
	i := 0
	for i+1 < len(t.mapping) && t.mapping[i+1].off <= in {
		i++
	}
	m := t.mapping[i]
	t.mapping = t.mapping[i:]
	return m.pts + time.Duration((in-m.off)*int64(time.Second)/int64(t.rate)), true
}

// tailBuffer keeps the last max bytes written: ffmpeg's stderr for errors.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (w *tailBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.b = append(w.b, p...)
	if over := len(w.b) - w.max; over > 0 {
		w.b = append(w.b[:0], w.b[over:]...)
	}
	return len(p), nil
}

func (w *tailBuffer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return strconv.Quote(string(bytes.TrimSpace(w.b)))
}
