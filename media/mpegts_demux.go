package media

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/opus"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mpegts"
)

// ErrUnplayable is wrapped when an ingest carries nothing a browser can
// play (HEVC, B-frames, no H264): the host is told why.
var ErrUnplayable = errors.New("unplayable stream")

// tsSink is what an MPEG-TS demuxer feeds: the access-unit source of a
// room (ingest_au.go). Times are PTS on the stream's own clock, from 0 at
// the first timestamp seen.
type tsSink interface {
	WriteH264(au [][]byte, pts time.Duration) error
	// WriteAAC gets the track's AudioSpecificConfig with every access unit.
	WriteAAC(asc []byte, au []byte, pts time.Duration) error
	WriteOpus(pkt []byte, pts time.Duration) error
}

// tsDemuxer reads MPEG-TS (as SRT carries it) into a tsSink: the first
// H264 track and the first AAC or Opus track; anything else is dropped
// with a notice.
type tsDemuxer struct {
	sink   tsSink
	notice func(string)
	// first is called once with the first byte read (latency measurement).
	first func()
}

// ticksToDuration converts 90 kHz ticks without overflowing.
func ticksToDuration(t int64) time.Duration {
	return time.Duration(t/90000)*time.Second + time.Duration(t%90000)*time.Second/90000
}

// run demuxes until r ends or fails, or the stream turns out unplayable.
func (d *tsDemuxer) run(r io.Reader) error {
	tr := &mpegts.Reader{R: r}
	if err := tr.Initialize(); err != nil {
		return fmt.Errorf("mpeg-ts: %w", err)
	}
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
			unplayable = append(unplayable, fmt.Sprintf("%T", c))
		}
	}
	if video == nil {
		if len(unplayable) > 0 {
			return fmt.Errorf("%w: no H264 video (found %v); browsers need H264 (HEVC is not played)", ErrUnplayable, unplayable)
		}
		return fmt.Errorf("%w: no H264 video track", ErrUnplayable)
	}
	if len(unplayable) > 0 {
		d.notice(fmt.Sprintf("SRT: tracks browsers cannot play are dropped: %v", unplayable))
	}
	if audio == nil {
		d.notice("SRT: no AAC or Opus audio track; viewers get video only")
	}

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

	var bframes error
	tr.OnDataH264(video, func(pts, dts int64, au [][]byte) error {
		if pts != dts {
			// Reordered frames: WebRTC viewers would see them out of order.
			bframes = fmt.Errorf("%w: H264 with B-frames; turn B-frames off in the encoder (x264: -bf 0)", ErrUnplayable)
			return bframes
		}
		return d.sink.WriteH264(au, rel(pts))
	})
	if audio != nil {
		switch c := audio.Codec.(type) {
		case *mpegts.CodecMPEG4Audio:
			asc, err := c.Config.Marshal()
			if err != nil {
				return fmt.Errorf("mpeg-ts: aac config: %w", err)
			}
			sr := int64(c.Config.SampleRate)
			tr.OnDataMPEG4Audio(audio, func(pts int64, aus [][]byte) error {
				start := rel(pts)
				for i, au := range aus {
					// Each AAC frame is 1024 samples.
					at := start
					if sr > 0 {
						at += time.Duration(int64(i)*1024) * time.Second / time.Duration(sr)
					}
					if err := d.sink.WriteAAC(asc, au, at); err != nil {
						return err
					}
				}
				return nil
			})
		case *mpegts.CodecOpus:
			tr.OnDataOpus(audio, func(pts int64, pkts [][]byte) error {
				at := rel(pts)
				for _, p := range pkts {
					if err := d.sink.WriteOpus(p, at); err != nil {
						return err
					}
					at += opus.PacketDuration(p)
				}
				return nil
			})
		}
	}
	tr.OnDecodeError(func(error) {}) // lost or garbled packets: the next keyframe recovers
	for {
		if err := tr.Read(); err != nil {
			if bframes != nil {
				return bframes
			}
			return err
		}
	}
}
