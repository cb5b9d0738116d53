package media

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/bluenviron/gortsplib/v4/pkg/format/rtph264"
	"github.com/bluenviron/gortsplib/v4/pkg/format/rtpvp8"
	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
)

// rtspSource is an RTSP publisher (ANNOUNCE/RECORD) or a pulled RTSP source:
// one more implementation of source, and a session so that the room keeps
// it, closes it on shutdown and takes the room offline when it ends.
type rtspSource struct {
	id    string
	host  string
	label string // "publish" or "pull": metrics and logs
	s     *SFU
	r     *room
	log   *slog.Logger
	close func() // ends the RTSP session or client; must not block on the packet path
	once  sync.Once

	read     atomic.Pointer[rtspReadStream] // tee for RTSP readers; nil = none
	refused  atomic.Bool
	notice   func(msg string)
	finished atomic.Bool
	aac      atomic.Pointer[AACTranscoder] // the audio track's, closed when the source ends
}

var (
	_ source  = (*rtspSource)(nil)
	_ session = (*rtspSource)(nil)
)

func newRTSPSource(s *SFU, r *room, host, label string, closeFn func(), notice func(string)) *rtspSource {
	id := newID()
	return &rtspSource{
		id: id, host: host, label: label, s: s, r: r, close: closeFn, notice: notice,
		log: s.log.With("room", r.id, "session", id, "rtsp", label, "host", host),
	}
}

func (src *rtspSource) hostID() string { return src.host }

// requestKeyframe: RTSP has no way to ask an encoder for a keyframe; viewers
// wait for the next one (the encoder's GOP, e.g. -g 30 = one second).
func (src *rtspSource) requestKeyframe() {}

func (src *rtspSource) stop() { src.closePC() }

func (src *rtspSource) sessionID() string { return src.id }

func (src *rtspSource) patch(context.Context, string) (string, error) {
	return "", fmt.Errorf("%w: an RTSP session has no ICE to patch", ErrBadFragment)
}

func (src *rtspSource) etag() string { return "" }

func (src *rtspSource) closePC() { src.once.Do(src.close) }

// ended runs once when the RTSP session is gone: the room drops the source
// and RTSP readers are disconnected.
func (src *rtspSource) ended(reason string) {
	if src.finished.Swap(true) {
		return
	}
	src.r.closeSession(src, reason)
	if tr := src.aac.Swap(nil); tr != nil {
		_ = tr.Close()
	}
	if rs := src.read.Swap(nil); rs != nil {
		src.s.closeReadStream(src.r.id, rs)
	}
	src.s.rtspMetrics().sessions.WithLabelValues(src.label).Dec()
}

// refuse stops a source whose stream turned out unplayable mid-stream. It is
// called on the packet path, so the close happens on another goroutine.
func (src *rtspSource) refuse(msg string) {
	if src.refused.Swap(true) {
		return
	}
	src.log.Error("rtsp stream refused", "reason", msg)
	src.s.rtspMetrics().errors.WithLabelValues("unplayable").Inc()
	if src.notice != nil {
		src.notice(msg)
	}
	src.s.spawn(func() { src.r.closeSession(src, "refused: "+msg) })
}

// rtspTrack turns one RTSP media's packets into what the room's forwarder
// takes, once per room: H264 re-packetized, VP8 re-fragmented to the WebRTC
// payload size, audio passed through.
type rtspTrack struct {
	src   *rtspSource
	kind  kind
	in    *ingest
	count func() // packets-in counter

	h264    *h264Packer
	h264dec *rtph264.Decoder
	aac     *rtspAAC
	vp8dec  *rtpvp8.Decoder
	vp8pay  codecs.VP8Payloader

	pending   bool // an access unit is buffered in the decoder
	pendingTS uint32

	haveIn bool
	lastIn uint16 // last input sequence number, to carry losses over
	seq    uint16
	out    rtp.Packet

	readMedia *description.Media
	readPT    uint8

	// ntp, if set, is the NTP time of an input packet from the sender's
	// reports; the first one known is handed to the room clock.
	ntp      func(*rtp.Packet) (time.Time, bool)
	reported bool
}

func newRTSPTrack(src *rtspSource, p rtspTrackPlan, in *ingest) (*rtspTrack, error) {
	t := &rtspTrack{src: src, kind: p.kind, in: in, seq: uint16(time.Now().UnixNano())}
	c := src.s.rtspMetrics().packets.WithLabelValues(p.kind.String())
	t.count = c.Inc
	switch f := p.format.(type) {
	case *format.H264:
		dec, err := f.CreateDecoder()
		if err != nil {
			return nil, err
		}
		t.h264dec = dec
		t.h264 = &h264Packer{}
		t.h264.setParams(f.SafeParams())
	case *format.VP8:
		dec, err := f.CreateDecoder()
		if err != nil {
			return nil, err
		}
		t.vp8dec = dec
	case *format.MPEG4Audio:
		a, err := newRTSPAAC(t, f)
		if err != nil {
			return nil, err
		}
		t.aac = a
	case *format.MPEG4AudioLATM:
		a, err := newRTSPLATM(t, f)
		if err != nil {
			return nil, err
		}
		t.aac = a
	}
	return t, nil
}

// onPacket is gortsplib's callback, one goroutine per session.
func (t *rtspTrack) onPacket(p *rtp.Packet) {
	t.count()
	if trace := t.src.s.rtsp.traceFn(); trace != nil {
		trace(t.kind == kindVideo, p.Timestamp, p.Marker, time.Now())
	}
	if t.in == nil || t.src.refused.Load() {
		return
	}
	if t.aac != nil {
		t.aac.onPacket(t, p)
		return
	}
	if t.haveIn {
		// A loss upstream leaves a gap downstream too, so viewers' jitter
		// buffers see it instead of a silently broken frame.
		if gap := p.SequenceNumber - t.lastIn - 1; gap > 0 && gap < 1000 {
			t.seq += gap
			t.src.s.rtspMetrics().errors.WithLabelValues("lost").Add(float64(gap))
		}
	}
	t.haveIn, t.lastIn = true, p.SequenceNumber
	if !t.reported && t.ntp != nil {
		if at, ok := t.ntp(p); ok {
			t.reported = true
			t.in.senderReport(at, p.Timestamp)
		}
	}
	switch {
	case t.h264 != nil:
		t.onH264(p)
	case t.vp8dec != nil:
		t.onVP8(p)
	default:
		t.emit(p.Payload, p.Marker, p.Timestamp)
	}
}

func (t *rtspTrack) onH264(p *rtp.Packet) {
	au, err := t.h264dec.Decode(p)
	if errors.Is(err, rtph264.ErrMorePacketsNeeded) {
		t.pending, t.pendingTS = true, p.Timestamp
		return
	}
	if err != nil {
		t.pending = false
		if !errors.Is(err, rtph264.ErrNonStartingPacketAndNoPrevious) {
			t.src.s.rtspMetrics().errors.WithLabelValues("decode").Inc()
		}
		return
	}
	ts := p.Timestamp
	if t.pending && t.pendingTS != p.Timestamp {
		// The decoder closed the previous unit on a timestamp change (no
		// marker); this packet now starts the next one.
		ts = t.pendingTS
		t.pendingTS = p.Timestamp
	} else {
		t.pending = false
	}
	t.h264.pack(au, func(payload []byte, marker bool) { t.emit(payload, marker, ts) })
	if t.h264.bframes {
		t.src.refuse(msgBFrames)
	}
}

func (t *rtspTrack) onVP8(p *rtp.Packet) {
	frame, err := t.vp8dec.Decode(p)
	if err != nil {
		if !errors.Is(err, rtpvp8.ErrMorePacketsNeeded) && !errors.Is(err, rtpvp8.ErrNonStartingPacketAndNoPrevious) {
			t.src.s.rtspMetrics().errors.WithLabelValues("decode").Inc()
		}
		return
	}
	parts := t.vp8pay.Payload(rtspMaxPayload, frame)
	for i, part := range parts {
		t.emit(part, i == len(parts)-1, p.Timestamp)
	}
}

// emit writes one outgoing packet to the room and to RTSP readers. payload
// is only valid during the call.
func (t *rtspTrack) emit(payload []byte, marker bool, ts uint32) {
	t.out.Header = rtp.Header{Version: 2, Marker: marker, SequenceNumber: t.seq, Timestamp: ts}
	t.out.Payload = payload
	t.seq++
	t.in.writeRTP(&t.out)
	if rs := t.src.read.Load(); rs != nil && rs.readers.Load() > 0 && t.readMedia != nil {
		t.out.PayloadType = t.readPT
		rs.write(t.readMedia, &t.out)
	}
}
