package media

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/bluenviron/gohlslib/v2"
	"github.com/bluenviron/gohlslib/v2/pkg/codecs"
)

// hlsAudioWait bounds how long the start waits for the first audio unit
// after the keyframe when the room sends audio (the GOP cache usually holds
// some already).
const hlsAudioWait = 300 * time.Millisecond

// start reads up to the first H264 keyframe (the GOP cache's, at once when
// the room is live), picks the tracks and starts the muxer. It returns the
// units read past the keyframe, which the caller writes first.
func (o *hlsOut) start(ctx context.Context) ([]*AccessUnit, error) {
	ctx, cancel := context.WithTimeout(ctx, o.h.cfg.StartTimeout)
	defer cancel()
	var key *AccessUnit
	for key == nil {
		au, err := o.rd.Read(ctx)
		switch {
		case errors.Is(err, context.DeadlineExceeded):
			return nil, fmt.Errorf("%w: no keyframe from the room within %v (is it live?)", ErrHLSUnavailable, o.h.cfg.StartTimeout)
		case errors.Is(err, ErrNewSource):
			continue // wait for the next source's keyframe
		case errors.Is(err, ErrOffline):
			return nil, fmt.Errorf("%w: the room went offline", ErrHLSUnavailable)
		case err != nil:
			return nil, fmt.Errorf("%w: %w", ErrHLSUnavailable, err)
		}
		if !au.Video || !au.Key {
			continue
		}
		if au.Codec != "H264" || au.Params == nil {
			return nil, fmt.Errorf("%w: the room sends %s video; HLS here carries H264 only", ErrHLSUnavailable, au.Codec)
		}
		key = au
	}
	first := []*AccessUnit{key}

	// Audio: what the room's source sends, confirmed by a unit; a source
	// that just connected may not have its audio track yet, so wait a
	// little for one either way.
	audioCodec := o.roomAudio()
	{
		actx, acancel := context.WithTimeout(ctx, hlsAudioWait)
		for {
			au, err := o.rd.Read(actx)
			if err != nil {
				break
			}
			first = append(first, au)
			if !au.Video {
				audioCodec = au.Codec
				break
			}
		}
		acancel()
	}
	o.video = &gohlslib.Track{Codec: &codecs.H264{SPS: key.Params.SPS, PPS: key.Params.PPS}, ClockRate: 90000}
	tracks := []*gohlslib.Track{o.video}
	if audioCodec != "" {
		if o.muxAudio = o.h.audio.open(o.roomID, audioCodec, o.clock().wall); o.muxAudio != nil {
			tracks = append(tracks, o.muxAudio.track())
		}
	}
	m := &gohlslib.Muxer{
		Tracks:             tracks,
		Variant:            gohlslib.MuxerVariantLowLatency,
		SegmentCount:       7,
		SegmentMinDuration: o.h.cfg.SegmentDuration,
		PartMinDuration:    o.h.cfg.PartDuration,
		SegmentMaxSize:     o.h.cfg.SegmentMaxBytes,
		OnEncodeError:      o.encodeError,
	}
	if err := m.Start(); err != nil {
		if o.muxAudio != nil {
			o.muxAudio.close()
		}
		return nil, fmt.Errorf("start hls muxer: %w", err)
	}
	o.mux = m
	return first, nil
}

// roomAudio names the audio codec the room's source sends, "" for none.
func (o *hlsOut) roomAudio() string {
	r := o.rd.st.r
	c, ok := r.currentCodecs()
	if !ok || c[kindAudio] < 0 {
		return ""
	}
	return famName(r.sfu.codecs[c[kindAudio]].fam)
}

// write hands one unit to the muxer, on the output's goroutine.
func (o *hlsOut) write(au *AccessUnit) {
	ntp := o.clock().wall(au.PTS)
	var err error
	if au.Video {
		nalus := au.NALUs
		for _, n := range nalus {
			if len(n) == 0 { // gohlslib reads each NALU's first byte
				return
			}
		}
		err = o.mux.WriteH264(o.video, ntp, durationTo(au.PTS, 90000), nalus)
	} else if o.muxAudio != nil {
		err = o.muxAudio.write(o.mux, au, ntp)
	}
	if err != nil {
		o.encodeError(err)
	}
}

// encodeError logs the first of the muxer's encode errors (bad input from a
// publisher: never one line per packet).
func (o *hlsOut) encodeError(err error) {
	if o.writeErrs.Add(1) == 1 {
		o.log.Warn("hls encode error (further ones not logged)", "err", err)
	}
}

// closeAudio ends the audio track, if any.
func (o *hlsOut) closeAudio() {
	if o.muxAudio != nil {
		o.muxAudio.close()
	}
}
