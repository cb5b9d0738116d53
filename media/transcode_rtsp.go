package media

import (
	"errors"
	"fmt"
	"time"

	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/bluenviron/gortsplib/v4/pkg/format/rtpmpeg4audio"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// classifyAAC: AAC (IP cameras) reaches viewers as Opus through the
// transcoder when this server has one; otherwise the track is dropped and
// the host is told why (missing is TranscoderAvailable's answer).
func classifyAAC(f *format.MPEG4Audio, codecs codecTable, missing error) (kind, int, string) {
	if missing != nil {
		return kindAudio, -1, fmt.Sprintf("%s; this server cannot transcode it: %v", msgAAC, missing)
	}
	if f.Config == nil {
		return kindAudio, -1, "AAC without a config in the SDP cannot be transcoded"
	}
	if _, err := f.Config.Marshal(); err != nil {
		return kindAudio, -1, "AAC config cannot be transcoded: " + err.Error()
	}
	return found(kindAudio, codecs.match(webrtc.MimeTypeOpus, ""), "Opus (transcoded from AAC)")
}

// rtspAAC is an RTSP AAC track's path to viewers: depacketized, transcoded
// to Opus, and stamped at 48 kHz on the input's own timeline, so the
// transcoder's delay does not shift audio against video.
type rtspAAC struct {
	dec   *rtpmpeg4audio.Decoder
	tr    *AACTranscoder
	clock int64

	have   bool
	last   uint32
	ticks  int64 // input RTP ticks since the first packet, unwrapped
	failed bool
}

// newRTSPAAC starts the track's transcoder; nil when the track is not
// attached to the room (its packets are dropped anyway).
func newRTSPAAC(t *rtspTrack, f *format.MPEG4Audio) (*rtspAAC, error) {
	if t.in == nil {
		return nil, nil
	}
	dec, err := f.CreateDecoder()
	if err != nil {
		return nil, err
	}
	asc, err := f.Config.Marshal()
	if err != nil {
		return nil, err
	}
	a := &rtspAAC{dec: dec, clock: int64(f.ClockRate())}
	a.tr, err = NewAACTranscoder(asc, func(opus []byte, pts time.Duration) {
		t.emit(opus, false, opusTS(pts))
	})
	if err != nil {
		return nil, fmt.Errorf("aac transcoder: %w", err)
	}
	t.src.aac.Store(a.tr)
	if t.src.finished.Load() { // the session ended while starting
		if tr := t.src.aac.Swap(nil); tr != nil {
			_ = tr.Close()
		}
	}
	return a, nil
}

// opusTS is the 48 kHz RTP timestamp of pts on the input's timeline.
func opusTS(pts time.Duration) uint32 { return uint32(int64(pts) * 48000 / int64(time.Second)) }

// onPacket runs on gortsplib's packet goroutine; Opus leaves from the
// transcoder's goroutine, the only one that emits on this track.
func (a *rtspAAC) onPacket(t *rtspTrack, p *rtp.Packet) {
	if !a.have {
		a.have, a.last = true, p.Timestamp
	}
	a.ticks += int64(int32(p.Timestamp - a.last))
	a.last = p.Timestamp
	pts := time.Duration(a.ticks * int64(time.Second) / a.clock)
	if !t.reported && t.ntp != nil {
		if at, ok := t.ntp(p); ok {
			t.reported = true
			t.in.senderReport(at, opusTS(pts))
		}
	}
	aus, err := a.dec.Decode(p)
	if err != nil {
		if !errors.Is(err, rtpmpeg4audio.ErrMorePacketsNeeded) {
			t.src.s.rtspMetrics().errors.WithLabelValues("decode").Inc()
		}
		return
	}
	for i, au := range aus {
		err := a.tr.Write(au, pts+time.Duration(int64(i)*1024*int64(time.Second)/a.clock))
		if err != nil && !a.failed {
			// Video goes on; the host learns why the sound stopped.
			a.failed = true
			t.src.log.Error("aac transcoder failed", "err", err)
			t.src.s.rtspMetrics().errors.WithLabelValues("transcode").Inc()
			if t.src.notice != nil {
				t.src.notice("audio: the AAC transcoder stopped; viewers get no sound: " + err.Error())
			}
		}
	}
}
