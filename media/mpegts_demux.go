package media

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/opus"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mpegts"
)

// tsSink is what an MPEG-TS demuxer feeds: the access-unit source of a
// room (ingest_au.go). Times are PTS on the stream's own clock, from 0 at
// the first timestamp seen.
type tsSink interface {
	WriteH264(au [][]byte, pts time.Duration) error
	WriteAAC(au [][]byte, pts time.Duration)
	WriteOpus(pkt []byte, pts time.Duration)
}

var _ tsSink = (*AUSource)(nil)

// tsDemuxer reads MPEG-TS (as SRT carries it) into a tsSink: the first
// H264 track and the first AAC or Opus track; anything else is dropped
// with a notice.
type tsDemuxer struct {
	tr           *mpegts.Reader
	video, audio *mpegts.Track
	// aac is the AudioSpecificConfig when the audio is AAC.
	aac []byte
	// notices are for the host: tracks dropped, no audio.
	notices []string
	// onVideo, if set, sees each H264 access unit's PTS as it is demuxed.
	onVideo func(pts time.Duration)
}

// ticksToDuration converts 90 kHz ticks without overflowing.
func ticksToDuration(t int64) time.Duration {
	return time.Duration(t/90000)*time.Second + time.Duration(t%90000)*time.Second/90000
}

// openTS reads r up to the program map and picks the tracks; an error
// wrapping ErrUnplayable is meant for the host.
func openTS(r io.Reader) (*tsDemuxer, error) {
	tr := &mpegts.Reader{R: r}
	if err := tr.Initialize(); err != nil {
		return nil, fmt.Errorf("mpeg-ts: %w", err)
	}
	d := &tsDemuxer{tr: tr}
	var video, audio *mpegts.Track
	var unplayable []string
	for _, t := range tr.Tracks() {
		switch c := t.Codec.(type) {
		case *mpegts.CodecH264:
			if video == nil {
				video = t
			}
		case *mpegts.CodecMPEG4Audio, *mpegts.CodecOpus:
			if audio == nil {
				audio = t
			}
		default:
			unplayable = append(unplayable, tsCodecName(c))
		}
	}
	if video == nil {
		if len(unplayable) > 0 {
			return nil, fmt.Errorf("%w: no H264 video (found %s); browsers play H264 (HEVC is not played)", ErrUnplayable, strings.Join(unplayable, ", "))
		}
		return nil, fmt.Errorf("%w: no H264 video track", ErrUnplayable)
	}
	if len(unplayable) > 0 {
		d.notices = append(d.notices, fmt.Sprintf("tracks browsers cannot play are dropped: %s", strings.Join(unplayable, ", ")))
	}
	if audio == nil {
		d.notices = append(d.notices, "no AAC or Opus audio track; viewers get video only")
	}
	if audio != nil {
		if c, ok := audio.Codec.(*mpegts.CodecMPEG4Audio); ok {
			asc, err := c.Config.Marshal()
			if err != nil {
				return nil, fmt.Errorf("mpeg-ts: aac config: %w", err)
			}
			d.aac = asc
		}
	}
	d.video, d.audio = video, audio
	return d, nil
}

// run demuxes into sink until the stream ends or fails, or turns out
// unplayable (an error wrapping ErrUnplayable).
func (d *tsDemuxer) run(sink tsSink) error {
	tr, video, audio := d.tr, d.video, d.audio

	// One time base for all tracks so that audio stays in sync with video.
	var td mpegts.TimeDecoder
	var base int64
	haveBase := false
	rel := func(pts int64) time.Duration {
		t := td.Decode(pts)
		if !haveBase {
			base, haveBase = t, true
		}
		return ticksToDuration(t - base)
	}

	// B-frames are refused by the sink, from the SPS and slice types: a
	// DTS behind the PTS alone does not prove reordering (some encoders
	// offset it anyway).
	tr.OnDataH264(video, func(pts, _ int64, au [][]byte) error {
		at := rel(pts)
		if d.onVideo != nil {
			d.onVideo(at)
		}
		return sink.WriteH264(au, at)
	})
	if audio != nil {
		switch audio.Codec.(type) {
		case *mpegts.CodecMPEG4Audio:
			tr.OnDataMPEG4Audio(audio, func(pts int64, aus [][]byte) error {
				sink.WriteAAC(aus, rel(pts)) // consecutive units are 1024 samples apart
				return nil
			})
		case *mpegts.CodecOpus:
			tr.OnDataOpus(audio, func(pts int64, pkts [][]byte) error {
				at := rel(pts)
				for _, p := range pkts {
					sink.WriteOpus(p, at)
					at += opus.PacketDuration(p)
				}
				return nil
			})
		}
	}
	tr.OnDecodeError(func(error) {}) // lost or garbled packets: the next keyframe recovers
	for {
		if err := tr.Read(); err != nil {
			return err
		}
	}
}

// tsCodecName names a codec for the host.
func tsCodecName(c mpegts.Codec) string {
	switch c.(type) {
	case *mpegts.CodecH265:
		return "HEVC"
	case *mpegts.CodecMPEG1Audio:
		return "MP3"
	case *mpegts.CodecAC3:
		return "AC-3"
	case *mpegts.CodecMPEG4Video:
		return "MPEG-4 video"
	case *mpegts.CodecMPEG1Video:
		return "MPEG-1/2 video"
	}
	return strings.TrimPrefix(fmt.Sprintf("%T", c), "*codecs.")
}
