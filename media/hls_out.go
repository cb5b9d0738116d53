package media

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/bluenviron/gohlslib/v2"
)

// hlsOut is one room's LL-HLS muxer and the reader that feeds it. Its run
// goroutine (spawned on the SFU, so Shutdown waits for it) owns the reader
// and the muxer; requests only call mux.Handle once ready is closed.
type hlsOut struct {
	h      *HLS
	roomID string
	rd     *Reader
	log    *slog.Logger

	ready chan struct{} // closed when mux is started, or err set
	mux   *gohlslib.Muxer
	// the muxer's tracks; muxAudio is nil for a room without audio HLS
	// can carry (G.711)
	video    *gohlslib.Track
	muxAudio audioTrack
	err      error // why the start failed; set before ready is closed
	done     atomic.Bool
	last     atomic.Int64 // unix nanos of the last request's start or end
	// inflight is guarded by h.mu.
	inflight  int
	writeErrs atomic.Int64 // encode errors, the first logged
}

// hlsQueue is the reader's queue: two seconds of 30 fps video with audio
// beyond the default, so that a muxer catching up after the GOP cache
// does not drop.
const hlsQueue = 512

// hlsStall ends a muxer whose room sent nothing for this long (a source
// frozen without going offline): blocking playlist requests then return
// instead of waiting for parts that do not come.
const hlsStall = 5 * time.Second

// startLocked opens the room's reader and starts the muxer's goroutine.
// Called with h.mu held.
func (h *HLS) startLocked(roomID string) (*hlsOut, error) {
	rd, err := h.sfu.OpenReader(roomID, ReaderOptions{Queue: hlsQueue})
	if err != nil {
		return nil, err
	}
	out := &hlsOut{h: h, roomID: roomID, rd: rd, ready: make(chan struct{}),
		log: h.sfu.log.With("room", roomID, "component", "hls")}
	out.touch()
	if !h.sfu.spawn(out.run) {
		rd.Close()
		return nil, ErrClosed
	}
	h.outs[roomID] = out
	return out, nil
}

func (o *hlsOut) touch()            { o.last.Store(time.Now().UnixNano()) }
func (o *hlsOut) isDone() bool      { return o.done.Load() }
func (o *hlsOut) idle() bool        { return time.Since(time.Unix(0, o.last.Load())) > o.h.cfg.Idle }
func (o *hlsOut) clock() *roomClock { return o.rd.st.r.clk }

// waitReady waits until the muxer runs (or failed to start).
func (o *hlsOut) waitReady(ctx context.Context) error {
	t := time.NewTimer(o.h.cfg.StartTimeout + time.Second)
	defer t.Stop()
	select {
	case <-o.ready:
		return o.err
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return fmt.Errorf("%w: the muxer did not start in time", ErrHLSUnavailable)
	}
}

// run feeds the muxer until the room goes offline, idles, stalls or the SFU
// stops.
func (o *hlsOut) run() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { // ends with run (cancel) or the SFU
		select {
		case <-o.h.sfu.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	why := o.feed(ctx)
	o.done.Store(true)
	if o.mux != nil {
		o.mux.Close() // wakes blocking playlist requests
	}
	o.closeAudio()
	o.rd.Close()
	o.h.forget(o)
	o.log.Info("hls stopped", "reason", why)
}

// feed starts the muxer from the first keyframe and writes until it ends;
// it returns why.
func (o *hlsOut) feed(ctx context.Context) string {
	first, err := o.start(ctx)
	if err != nil {
		o.err = err
		close(o.ready)
		return err.Error()
	}
	close(o.ready)
	audio := "none"
	if o.muxAudio != nil {
		audio = o.muxAudio.codec()
	}
	o.log.Info("hls started", "audio", audio)
	for _, au := range first {
		o.write(au)
	}
	for {
		if o.idle() && o.inflightNow() == 0 {
			return "idle"
		}
		rctx, cancel := context.WithTimeout(ctx, hlsStall)
		au, err := o.rd.Read(rctx)
		cancel()
		switch {
		case errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil:
			return "stalled: no media for " + hlsStall.String()
		case errors.Is(err, ErrNewSource):
			continue // the host's next source: video goes on at its keyframe
		case errors.Is(err, ErrOffline):
			return "source offline"
		case err != nil:
			return err.Error()
		}
		if au.Video && au.Codec != "H264" {
			return "video codec changed to " + au.Codec
		}
		o.write(au)
	}
}

func (o *hlsOut) inflightNow() int {
	o.h.mu.Lock()
	defer o.h.mu.Unlock()
	return o.inflight
}
