package media

import (
	"time"

	"github.com/bluenviron/gohlslib/v2"
	"github.com/bluenviron/gohlslib/v2/pkg/codecs"
)

// audioForHLS is the seam between a room's audio on the media seam and the
// audio its HLS output carries. With the node's AACStreams, Opus becomes
// AAC (aacForHLS, hls_audio_aac.go: every HLS player plays it, Safari's
// native one included), transcoded once per room and shared with the
// recorder. Without a transcoder (no ffmpeg) Opus passes through (Opus in
// fMP4, which hls.js plays through MSE in Chromium and Firefox only).
type audioForHLS interface {
	// open returns the track for roomID whose audio is codec ("Opus",
	// "PCMU", "PCMA"), or nil for audio HLS does not carry (the output is
	// then video only). wall maps a room-clock PTS to its wall-clock time.
	open(roomID, codec string, wall func(time.Duration) time.Time) audioTrack
}

// audioTrack is one HLS output's audio. write is called on the output's
// goroutine only, with the room's audio units in PTS order; close when the
// output ends.
type audioTrack interface {
	track() *gohlslib.Track
	// codec names what the track carries ("Opus", "AAC"), for the log.
	codec() string
	write(m *gohlslib.Muxer, au *AccessUnit, ntp time.Time) error
	close()
}

// opusForHLS carries Opus as it is and drops G.711.
type opusForHLS struct{}

func (opusForHLS) open(_, codec string, _ func(time.Duration) time.Time) audioTrack {
	if codec != "Opus" {
		return nil
	}
	return &opusTrack{t: &gohlslib.Track{Codec: &codecs.Opus{ChannelCount: 2}, ClockRate: 48000}}
}

type opusTrack struct{ t *gohlslib.Track }

func (o *opusTrack) track() *gohlslib.Track { return o.t }
func (o *opusTrack) codec() string          { return "Opus" }

func (o *opusTrack) write(m *gohlslib.Muxer, au *AccessUnit, ntp time.Time) error {
	if au.Codec != "Opus" || len(au.Frame) == 0 {
		return nil // a codec switch mid-output: not carried
	}
	return m.WriteOpus(o.t, ntp, durationTo(au.PTS, 48000), [][]byte{au.Frame})
}

func (o *opusTrack) close() {}

// durationTo converts a room-clock PTS to ticks of rate (90 kHz, 48 kHz).
// Microsecond resolution keeps hours of PTS far from overflow.
func durationTo(d time.Duration, rate int64) int64 {
	return d.Microseconds() * rate / 1e6
}
