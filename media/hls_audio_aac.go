package media

import (
	"errors"
	"log/slog"
	"time"

	"github.com/bluenviron/gohlslib/v2"
	"github.com/bluenviron/gohlslib/v2/pkg/codecs"
)

// aacForHLS carries a room's Opus as AAC, taken from the room's shared
// Opus -> AAC stream (AACStreams: one ffmpeg per room, shared with the
// recorder). A room whose stream cannot start (ffmpeg missing or failing)
// falls back to Opus pass-through, as does anything that is not Opus.
type aacForHLS struct {
	streams *AACStreams
	log     *slog.Logger
}

func (a aacForHLS) open(roomID, codec string, wall func(time.Duration) time.Time) audioTrack {
	if codec != "Opus" {
		return opusForHLS{}.open(roomID, codec, wall)
	}
	sub, err := a.streams.Open(roomID)
	if err != nil {
		a.log.Warn("hls: no AAC for this room, Opus passes through (native HLS players may not play it)",
			"room", roomID, "err", err)
		return opusForHLS{}.open(roomID, codec, wall)
	}
	return &aacTrack{
		t:    &gohlslib.Track{Codec: &codecs.MPEG4Audio{Config: AACConfig}, ClockRate: AACConfig.SampleRate},
		sub:  sub,
		wall: wall,
		last: -1,
		log:  a.log.With("room", roomID),
	}
}

// aacTrack is one HLS output's subscription to its room's AAC. The output's
// goroutine pulls the AAC units that are ready each time the room's own
// (Opus) audio unit comes by, so the muxer is only ever written from that
// goroutine (gohlslib's Write* are not safe for concurrent use) and no
// goroutine of its own is needed. AAC trails its Opus by ffmpeg's delay
// (~50-100 ms); each unit goes in at its room-clock PTS, so fMP4's
// per-track decode times keep it aligned with the video.
type aacTrack struct {
	t    *gohlslib.Track
	sub  *AACSub
	wall func(time.Duration) time.Time
	last time.Duration // PTS of the last AAC unit written; -1 before any
	log  *slog.Logger
	done bool // the shared stream ended: no more AAC for this output
}

func (a *aacTrack) track() *gohlslib.Track { return a.t }
func (a *aacTrack) codec() string          { return "AAC" }

// write ignores the Opus unit (its AAC comes from the shared stream) and
// writes the AAC units ready now.
func (a *aacTrack) write(m *gohlslib.Muxer, _ *AccessUnit, _ time.Time) error {
	var first error
	for !a.done {
		r, ok := a.sub.poll()
		au, err := r.au, r.err
		switch {
		case !ok:
			return first
		case errors.Is(err, ErrOffline):
			continue // the output's own reader sees it too and ends the output
		case err != nil:
			a.done = true
			a.log.Warn("hls: the room's AAC stream ended; the output goes on without audio", "err", err)
			return first
		case au.Video || au.Codec != "AAC" || len(au.Frame) == 0 || au.PTS <= a.last:
			continue // video comes from the output's own reader
		}
		a.last = au.PTS
		if err := m.WriteMPEG4Audio(a.t, a.wall(au.PTS), durationTo(au.PTS, int64(AACConfig.SampleRate)), [][]byte{au.Frame}); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// close unsubscribes; the last subscriber of the room stops its ffmpeg.
func (a *aacTrack) close() { a.sub.Close() }

// poll returns the next queued result without waiting; ok is false when
// none is queued.
func (s *AACSub) poll() (readResult, bool) {
	select {
	case r := <-s.out:
		return r, true
	default:
		return readResult{}, false
	}
}
