package media

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// AUSource is a publisher that delivers access units with presentation
// times instead of RTP (RTMP, SRT/MPEG-TS): one more implementation of
// source, and a session so that the room keeps it, closes it on shutdown
// and takes the room offline when it ends. H264 is re-packetized once per
// room like RTSP's (h264Packer: payloads ≤ 1200, SPS/PPS before every IDR,
// B-frames refused); Opus passes through; AAC goes through the AAC→Opus
// transcoder when the server has one, else it is dropped with a notice.
//
// WriteH264 and WriteAAC/WriteOpus may be called from different
// goroutines, each kind from one goroutine at a time.
type AUSource struct {
	id    string
	host  string
	s     *SFU
	r     *room
	opt   AUSourceOptions
	log   *slog.Logger
	start time.Time // wall time of PTS 0: the source clock for sender reports
	once  sync.Once

	refused  atomic.Bool
	finished atomic.Bool

	vmu   sync.Mutex
	video auTrack
	h264  h264Packer

	amu   sync.Mutex
	audio auTrack

	aacMu     sync.Mutex
	aac       aacOut
	aacFailed bool
}

// AUSourceOptions describe one access-unit publisher.
type AUSourceOptions struct {
	// Protocol names the ingest in logs ("rtmp", "srt").
	Protocol string
	// Remote is the client's address, for logs.
	Remote string
	// Close ends the client's connection: called once when the source is
	// replaced by the same host, refused, closed, or the SFU shuts down. It
	// must not block.
	Close func()
	// Notice, if set, receives messages meant for the host (studio). It
	// must not block.
	Notice func(msg string)
	// AAC is the MPEG-4 AudioSpecificConfig when the audio is AAC.
	AAC []byte
}

// auTrack is one kind's ingest and RTP state.
type auTrack struct {
	in       *ingest
	rate     uint32
	seq      uint16
	reported bool
	out      rtp.Packet
}

var (
	_ source  = (*AUSource)(nil)
	_ session = (*AUSource)(nil)
)

// ErrUnplayable wraps a refusal whose message is meant for the host: the
// stream cannot be played by browsers (B-frames, a codec they lack).
var ErrUnplayable = errors.New("unplayable stream")

// Messages the host sees for access-unit ingests.
const (
	msgAUNoTranscoder = "AAC audio cannot be played by browsers and this server cannot convert it to Opus (%v); video flows without sound. Send Opus audio, or ask the operator to install ffmpeg with libopus"
)

// StartAUSource makes an access-unit publisher hostID the source of roomID:
// the same host's previous source is replaced (and closed), another host's
// is a conflict (ErrPublisherConflict). The room goes live at once.
func (s *SFU) StartAUSource(roomID, hostID string, opt AUSourceOptions) (*AUSource, error) {
	r, release, err := s.acquire(roomID)
	if err != nil {
		return nil, err
	}
	defer release()
	if opt.Protocol == "" {
		opt.Protocol = "ingest"
	}
	id := newID()
	src := &AUSource{
		id: id, host: hostID, s: s, r: r, opt: opt, start: time.Now(),
		log: s.log.With("room", roomID, "session", id, "ingest", opt.Protocol, "host", hostID, "remote", opt.Remote),
	}
	seq := uint16(time.Now().UnixNano())
	src.video = auTrack{rate: 90000, seq: seq}
	src.audio = auTrack{rate: 48000, seq: seq ^ 0x5555}
	old, err := r.setSource(src)
	if err != nil {
		return nil, err
	}
	if old != nil {
		src.log.Info("host reconnected, replacing publisher")
		old.stop()
	}
	r.sourceConnected(src)
	src.log.Info("publisher live")
	return src, nil
}

// ID is the source's session ID (logs).
func (src *AUSource) ID() string { return src.id }

func (src *AUSource) hostID() string { return src.host }

// requestKeyframe: RTMP and SRT cannot ask the encoder for a keyframe;
// viewers start at the next one (the encoder's GOP).
func (src *AUSource) requestKeyframe() {}

func (src *AUSource) stop() { src.closePC() }

func (src *AUSource) sessionID() string { return src.id }

func (src *AUSource) patch(context.Context, string) (string, error) {
	return "", fmt.Errorf("%w: an %s session has no ICE to patch", ErrBadFragment, src.opt.Protocol)
}

func (src *AUSource) etag() string { return "" }

// closePC ends the client's connection and the transcoder; idempotent.
func (src *AUSource) closePC() {
	src.once.Do(func() {
		if src.opt.Close != nil {
			src.opt.Close()
		}
		src.aacMu.Lock()
		t := src.aac
		src.aac, src.aacFailed = nil, true
		src.aacMu.Unlock()
		if t != nil {
			_ = t.Close()
		}
	})
}

// Close ends the source (the client went away): the room goes offline
// unless the same host has replaced it meanwhile. Idempotent.
func (src *AUSource) Close(reason string) {
	if src.finished.Swap(true) {
		return
	}
	src.r.closeSession(src, src.opt.Protocol+": "+reason)
}

func (src *AUSource) notice(msg string) {
	if src.opt.Notice != nil {
		src.opt.Notice(msg)
	}
}

// refuse stops a source whose stream turned out unplayable; the returned
// error wraps ErrUnplayable and carries the host's message.
func (src *AUSource) refuse(msg string) error {
	if !src.refused.Swap(true) {
		src.log.Error("stream refused", "reason", msg)
		src.notice(msg)
		src.s.spawn(func() { src.r.closeSession(src, "refused: "+msg) })
	}
	return fmt.Errorf("%w: %s", ErrUnplayable, msg)
}

// Refuse refuses the stream with msg, a message for the host (notice), and
// returns the error to report to the client. For what the caller finds
// unplayable itself (e.g. HEVC announced in the stream's metadata).
func (src *AUSource) Refuse(msg string) error { return src.refuse(msg) }

// SetH264Params records the stream's SPS and PPS from out-of-band
// configuration (an RTMP AVC sequence header), so that they go before
// every IDR even when the encoder does not repeat them in-band.
func (src *AUSource) SetH264Params(sps, pps []byte) {
	src.vmu.Lock()
	defer src.vmu.Unlock()
	src.h264.setParams(sps, pps)
}

// SetAAC sets the AudioSpecificConfig for AAC that arrives after the
// source started (RTMP sends it in its first audio message). It has no
// effect once AAC flows.
func (src *AUSource) SetAAC(asc []byte) {
	src.aacMu.Lock()
	defer src.aacMu.Unlock()
	if src.aac == nil {
		src.opt.AAC = bytes.Clone(asc)
	}
}

// ptsTicks converts a PTS to RTP ticks at rate (wrapping like RTP does).
func ptsTicks(pts time.Duration, rate uint32) uint32 {
	return uint32(int64(pts) / int64(time.Microsecond) * int64(rate) / 1e6)
}

// WriteH264 forwards one access unit (NAL units without start codes) with
// its presentation time. An error wrapping ErrUnplayable means the stream
// was refused (B-frames); the connection is being closed.
func (src *AUSource) WriteH264(au [][]byte, pts time.Duration) error {
	src.vmu.Lock()
	defer src.vmu.Unlock()
	if src.refused.Load() {
		return fmt.Errorf("%w: %s", ErrUnplayable, msgBFrames)
	}
	t := &src.video
	if t.in == nil {
		for _, n := range au {
			if len(n) > 0 && n[0]&0x1f == naluSPS {
				src.h264.noteSPS(n)
			}
		}
		if src.h264.bframes {
			return src.refuse(msgBFrames)
		}
		fmtp := "packetization-mode=1;profile-level-id=42e01f"
		if len(src.h264.sps) >= 4 {
			fmtp = "packetization-mode=1;profile-level-id=" + hex.EncodeToString(src.h264.sps[1:4])
		}
		codec := src.s.codecs.match(webrtc.MimeTypeH264, fmtp)
		if codec < 0 {
			return src.refuse("this H264 profile is not enabled for WebRTC viewers on this server")
		}
		if t.in = src.r.attach(src, kindVideo, codec); t.in == nil {
			return nil // replaced meanwhile
		}
	}
	ts := ptsTicks(pts, t.rate)
	src.report(t, ts, pts)
	src.h264.pack(au, func(payload []byte, marker bool) { t.emit(payload, marker, ts) })
	if src.h264.bframes {
		return src.refuse(msgBFrames)
	}
	return nil
}

// WriteOpus forwards one Opus packet (48 kHz clock) with its presentation
// time.
func (src *AUSource) WriteOpus(pkt []byte, pts time.Duration) {
	src.amu.Lock()
	defer src.amu.Unlock()
	if src.refused.Load() || len(pkt) == 0 {
		return
	}
	t := &src.audio
	if t.in == nil {
		codec := src.s.codecs.match(webrtc.MimeTypeOpus, "")
		if codec < 0 {
			return
		}
		if t.in = src.r.attach(src, kindAudio, codec); t.in == nil {
			return
		}
	}
	ts := ptsTicks(pts, t.rate)
	src.report(t, ts, pts)
	t.emit(pkt, true, ts)
}

// WriteAAC feeds AAC access units (raw, no ADTS header) to the transcoder;
// without one the audio is dropped and the host told once.
func (src *AUSource) WriteAAC(au [][]byte, pts time.Duration) {
	src.aacMu.Lock()
	defer src.aacMu.Unlock()
	if src.aacFailed || src.refused.Load() {
		return
	}
	if src.aac == nil {
		t, err := newAACOut(src.opt.AAC, src.WriteOpus)
		if err != nil {
			src.aacFailed = true
			src.log.Warn("aac audio dropped", "err", err)
			src.notice(fmt.Sprintf(msgAUNoTranscoder, err))
			return
		}
		src.aac = t
	}
	// Consecutive units in one call are 1024 samples apart.
	step := time.Duration(0)
	if rate := aacSampleRate(src.opt.AAC); rate > 0 {
		step = 1024 * time.Second / time.Duration(rate)
	}
	for i, u := range au {
		if err := src.aac.Write(u, pts+time.Duration(i)*step); err != nil {
			src.aacFailed = true
			src.log.Warn("aac transcoder failed; audio dropped", "err", err)
			src.notice(fmt.Sprintf(msgAUNoTranscoder, err))
			return
		}
	}
}

// aacSampleRate reads the sampling frequency from an AudioSpecificConfig;
// 0 if unknown.
func aacSampleRate(asc []byte) int {
	if len(asc) < 2 {
		return 0
	}
	rates := [...]int{96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350}
	idx := int(asc[0]&0x07)<<1 | int(asc[1]>>7)
	if idx < len(rates) {
		return rates[idx]
	}
	return 0
}

// report hands the first PTS of a kind to the room clock, relating this
// source's kinds to each other (lip sync). Called under the kind's lock.
func (src *AUSource) report(t *auTrack, ts uint32, pts time.Duration) {
	if !t.reported {
		t.reported = true
		t.in.senderReport(src.start.Add(pts), ts)
	}
}

func (t *auTrack) emit(payload []byte, marker bool, ts uint32) {
	t.out.Header = rtp.Header{Version: 2, Marker: marker, SequenceNumber: t.seq, Timestamp: ts}
	t.out.Payload = payload
	t.seq++
	t.in.writeRTP(&t.out)
}
