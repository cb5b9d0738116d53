package media

import (
	"errors"
	"fmt"
	"time"

	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/bluenviron/gortsplib/v4/pkg/format/rtpfragmented"
	"github.com/bluenviron/gortsplib/v4/pkg/format/rtpmpeg4audio"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
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

// classifyLATM: AAC in LATM (RFC 6416 MP4A-LATM, some cameras; ffmpeg
// -rtpflags latm) is transcoded like MPEG4-GENERIC AAC when the SDP carries
// its config; a config sent only in-band (cpresent=1) is not read.
func classifyLATM(f *format.MPEG4AudioLATM, codecs codecTable, missing error) (kind, int, string) {
	if missing != nil {
		return kindAudio, -1, fmt.Sprintf("%s; this server cannot transcode it: %v", msgAAC, missing)
	}
	if _, err := latmASC(f); err != nil {
		return kindAudio, -1, err.Error()
	}
	return found(kindAudio, codecs.match(webrtc.MimeTypeOpus, ""), "Opus (transcoded from AAC in LATM)")
}

// latmASC is the AudioSpecificConfig of a LATM track's first layer (all
// layers agree: gortsplib checks when it reads the SDP).
func latmASC(f *format.MPEG4AudioLATM) ([]byte, error) {
	c := f.StreamMuxConfig
	if f.CPresent || c == nil || len(c.Programs) == 0 || len(c.Programs[0].Layers) == 0 || c.Programs[0].Layers[0].AudioSpecificConfig == nil {
		return nil, errors.New("AAC in LATM without its config in the SDP (cpresent=1) cannot be transcoded; send the config in the SDP (cpresent=0) or use MPEG4-GENERIC")
	}
	asc, err := c.Programs[0].Layers[0].AudioSpecificConfig.Marshal()
	if err != nil {
		return nil, fmt.Errorf("AAC config in LATM cannot be transcoded: %w", err)
	}
	return asc, nil
}

// rtspAAC is an RTSP AAC track's path to viewers: depacketized, transcoded
// to Opus, and stamped at 48 kHz on the input's own timeline, so the
// transcoder's delay does not shift audio against video.
type rtspAAC struct {
	decode func(*rtp.Packet) ([][]byte, error) // access units of a packet
	tr     *AACTranscoder
	clock  int64

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
	return startRTSPAAC(t, &rtspAAC{decode: dec.Decode, clock: int64(f.ClockRate())}, asc)
}

// newRTSPLATM is newRTSPAAC for AAC in LATM: each packet's
// AudioMuxElements, read with the SDP's StreamMuxConfig, carry the access
// units (one per subframe, of the first program and layer).
func newRTSPLATM(t *rtspTrack, f *format.MPEG4AudioLATM) (*rtspAAC, error) {
	if t.in == nil {
		return nil, nil
	}
	asc, err := latmASC(f)
	if err != nil {
		return nil, err
	}
	dec, err := f.CreateDecoder()
	if err != nil {
		return nil, err
	}
	smc := f.StreamMuxConfig
	decode := func(p *rtp.Packet) ([][]byte, error) {
		el, err := dec.Decode(p)
		if err != nil {
			return nil, err
		}
		e := mpeg4audio.AudioMuxElement{StreamMuxConfig: smc}
		if err := e.Unmarshal(el); err != nil {
			return nil, err
		}
		aus := make([][]byte, 0, len(e.Payloads))
		for _, sub := range e.Payloads {
			if len(sub) > 0 && len(sub[0]) > 0 && len(sub[0][0]) > 0 {
				aus = append(aus, sub[0][0])
			}
		}
		return aus, nil
	}
	return startRTSPAAC(t, &rtspAAC{decode: decode, clock: int64(f.ClockRate())}, asc)
}

// startRTSPAAC starts a's transcoder from the track's AudioSpecificConfig.
func startRTSPAAC(t *rtspTrack, a *rtspAAC, asc []byte) (*rtspAAC, error) {
	var err error
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
	aus, err := a.decode(p)
	if err != nil {
		if !errors.Is(err, rtpmpeg4audio.ErrMorePacketsNeeded) && !errors.Is(err, rtpfragmented.ErrMorePacketsNeeded) {
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
