package media

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4/pkg/media/oggwriter"
)

// Opus → AAC for outputs whose players need AAC (HLS: Safari's native
// player, the recorder): the mirror of AACTranscoder, one ffmpeg child per
// stream, Ogg/Opus in on stdin, ADTS out on stdout. Output AAC access units
// carry the room-clock PTS of the Opus audio they hold.

// AACConfig is what OpusTranscoder produces: AAC-LC, 48 kHz, stereo, 1024
// samples per access unit.
var AACConfig = mpeg4audio.AudioSpecificConfig{Type: mpeg4audio.ObjectTypeAACLC, SampleRate: 48000, ChannelCount: 2}

const (
	opusPreSkip  = 3840 // what pion's Ogg writer puts in OpusHead; ffmpeg drops it
	aacPriming   = 1024 // ffmpeg's AAC encoder delay, written as the first frame
	aacFrameSize = 1024
)

// OpusTranscoder turns one stream's Opus packets into AAC access units. Write
// never blocks (a bounded queue drops and counts); out runs on the
// transcoder's goroutine; Close kills and reaps ffmpeg.
type OpusTranscoder struct {
	out func(aac []byte, pts time.Duration)

	transcodeChild // ffmpeg, the input queue and the 48 kHz PTS map (transcode_child.go)
}

var opusTranscoderCheck = sync.OnceValue(func() error {
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		return errors.New("ffmpeg not found on PATH (AAC output needs it: apt-get install ffmpeg)")
	}
	return nil
})

// OpusTranscoderAvailable reports whether Opus can be transcoded to AAC
// (ffmpeg's native AAC encoder is always built in).
func OpusTranscoderAvailable() error { return opusTranscoderCheck() }

// NewOpusTranscoder starts ffmpeg. out receives each AAC access unit (raw,
// no ADTS header; valid only during the call) with its PTS.
func NewOpusTranscoder(out func(aac []byte, pts time.Duration)) (*OpusTranscoder, error) {
	if err := OpusTranscoderAvailable(); err != nil {
		return nil, err
	}
	t := &OpusTranscoder{
		out: out, transcodeChild: newTranscodeChild(),
	}
	if err := t.start([]string{"-hide_banner", "-loglevel", "error",
		"-probesize", "4096", "-analyzeduration", "0", "-f", "ogg", "-i", "pipe:0",
		"-vn", "-c:a", "aac", "-b:a", "128k", "-ar", "48000", "-ac", "2",
		"-flush_packets", "1", "-f", "adts", "pipe:1"}, t.feed, t.read); err != nil {
		return nil, err
	}
	return t, nil
}

// feed writes queued packets into an Ogg stream on ffmpeg's stdin.
func (t *OpusTranscoder) feed() {
	w := bufio.NewWriterSize(t.stdin, 4096)
	ogg, err := oggwriter.NewWith(w, 48000, 2)
	if err != nil {
		t.drain()
		return
	}
	var off int64
	var ts uint32
	for u := range t.queue {
		n := opusSamples(u.au)
		if n == 0 {
			t.dropped.Add(1)
			continue
		}
		t.mark(off, u.pts)
		off += int64(n)
		ts += uint32(n)
		werr := ogg.WriteRTP(&rtp.Packet{Header: rtp.Header{Timestamp: ts}, Payload: u.au})
		if werr == nil {
			werr = w.Flush()
		}
		if werr != nil {
			t.drain()
			return
		}
	}
	_ = t.stdin.Close()
}

// read splits ffmpeg's ADTS output into access units until it ends.
func (t *OpusTranscoder) read(stdout io.Reader) {
	defer close(t.done)
	r := bufio.NewReaderSize(stdout, 16384)
	var hdr [7]byte
	buf := make([]byte, 8192)
	var frames int64
	var rerr error
	for {
		if _, rerr = io.ReadFull(r, hdr[:]); rerr != nil {
			break
		}
		if hdr[0] != 0xff || hdr[1]&0xf0 != 0xf0 {
			rerr = errors.New("adts: lost sync")
			break
		}
		n := int(hdr[3]&0x03)<<11 | int(hdr[4])<<3 | int(hdr[5])>>5
		hlen := 7
		if hdr[1]&0x01 == 0 {
			hlen = 9 // CRC present
		}
		if n < hlen || n > len(buf) {
			rerr = errors.New("adts: bad frame length")
			break
		}
		if _, rerr = io.ReadFull(r, buf[:n-7]); rerr != nil {
			break
		}
		// Frame i holds decoded samples from (i-1)*1024 (the first is the
		// encoder's priming); decoded sample 0 is input sample preSkip.
		in := frames*aacFrameSize - aacPriming + opusPreSkip
		frames++
		if pts, ok := t.ptsAt(in); ok {
			t.out(buf[hlen-7:n-7], pts)
		}
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

// ptsAt maps an input sample offset (48 kHz) onto the PTS of the packet
// holding it; earlier marks are dropped, output only moves forward.
func (t *OpusTranscoder) ptsAt(in int64) (time.Duration, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.mapping) == 0 || in < t.mapping[0].off {
		return 0, false
	}
	i := 0
	for i+1 < len(t.mapping) && t.mapping[i+1].off <= in {
		i++
	}
	m := t.mapping[i]
	t.mapping = t.mapping[i:]
	return m.pts + time.Duration((in-m.off)*int64(time.Second)/48000), true
}

// AACReader is a Reader whose audio arrives as AAC (Codec "AAC", Frame the
// raw access unit, 1024 samples at AACConfig's rate): Opus is transcoded,
// video passes through. Audio comes out later than the video of the same
// PTS (ffmpeg's delay, about 50–100 ms): a muxer orders by PTS.
type AACReader struct {
	rd     *Reader
	tr     *OpusTranscoder
	out    chan readResult
	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once

	dropped atomic.Uint64
}

type readResult struct {
	au  *AccessUnit
	err error
}

// aacReaderQueue bounds what waits for Read: video and AAC together.
const aacReaderQueue = 512

// NewAACReader wraps rd (which it now owns: Close closes it). Without ffmpeg
// it fails; the caller may then read rd without audio.
func NewAACReader(rd *Reader) (*AACReader, error) {
	a := &AACReader{rd: rd, out: make(chan readResult, aacReaderQueue), done: make(chan struct{})}
	tr, err := NewOpusTranscoder(func(aac []byte, pts time.Duration) {
		a.put(readResult{au: &AccessUnit{Codec: "AAC", PTS: pts, Frame: append([]byte(nil), aac...)}})
	})
	if err != nil {
		return nil, err
	}
	a.tr = tr
	ctx, cancel := context.WithCancel(context.Background())
	a.cancel = cancel
	go a.pump(ctx)
	return a, nil
}

// put never blocks: a full queue drops (the reader's owner is too slow).
func (a *AACReader) put(r readResult) {
	select {
	case a.out <- r:
	default:
		if r.err != nil {
			// An error must arrive: make room for it.
			select {
			case <-a.out:
			default:
			}
			select {
			case a.out <- r:
			default:
			}
			return
		}
		a.dropped.Add(1)
	}
}

func (a *AACReader) pump(ctx context.Context) {
	defer close(a.done)
	for {
		au, err := a.rd.Read(ctx)
		switch {
		case errors.Is(err, ErrOffline):
			a.put(readResult{err: err})
			continue
		case err != nil:
			if ctx.Err() == nil {
				a.put(readResult{err: err})
			}
			return
		}
		if !au.Video && au.Codec == "Opus" {
			if werr := a.tr.Write(au.Frame, au.PTS); werr != nil && ctx.Err() == nil {
				a.put(readResult{err: werr})
				return
			}
			continue
		}
		a.put(readResult{au: au})
	}
}

// Read returns the next access unit (audio as AAC), ErrOffline once each
// time the source goes away, or the error that ended the reader.
func (a *AACReader) Read(ctx context.Context) (*AccessUnit, error) {
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case r := <-a.out:
		return r.au, r.err
	}
}

// Dropped counts units lost by the reader, its queue and the transcoder.
func (a *AACReader) Dropped() uint64 {
	return a.dropped.Load() + a.rd.Dropped() + a.tr.Dropped()
}

// Close stops the pump and the transcoder and closes the underlying reader.
func (a *AACReader) Close() {
	a.once.Do(func() {
		a.cancel()
		<-a.done
		_ = a.tr.Close()
		a.rd.Close()
	})
}
