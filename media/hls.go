package media

import (
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"sync"
	"time"
)

// LL-HLS output for viewers without WebRTC (docs/hls.md). One muxer per room,
// started by the first request for the room's playlist and fed by a reader
// of the media seam (OpenReader: access units on the room clock, starting
// from the GOP cache), so it is off the WebRTC viewers' hot path. It stops
// when nobody has asked for anything for HLSConfig.Idle, when the source
// goes away or changes parameters (the next request starts a fresh one), and
// with the SFU.

// HLSConfig bounds what HLS viewers can make a node hold.
type HLSConfig struct {
	// MaxRooms bounds the rooms muxed at once on this node (default 64).
	MaxRooms int
	// MaxRequestsPerRoom and MaxRequests bound the HLS requests in flight
	// per room and per node (defaults 1024 and 8192). An LL-HLS player holds
	// about one blocking playlist request and one part request at a time,
	// so these are roughly "HLS viewers" times two.
	MaxRequestsPerRoom int
	MaxRequests        int
	// SegmentMaxBytes bounds one segment in the muxer's memory (default
	// 8 MiB); the muxer keeps 7 segments and the one being written, so a
	// room holds at most 8 times this.
	SegmentMaxBytes uint64
	// Idle stops a room's muxer after this long without a request
	// (default 20 s).
	Idle time.Duration
	// StartTimeout is how long the first request waits for a keyframe and
	// the first part (default 8 s).
	StartTimeout time.Duration
	// PartDuration and SegmentDuration are the LL-HLS targets (defaults
	// 200 ms and 1 s; a segment also waits for a keyframe).
	PartDuration    time.Duration
	SegmentDuration time.Duration
	// AAC, when set, turns rooms' Opus into AAC through the node's shared
	// Opus -> AAC streams (one ffmpeg per room, shared with the recorder).
	// Nil, or a room whose stream cannot start (no ffmpeg), passes Opus
	// through: hls.js plays it, Safari's native player does not.
	AAC *AACStreams
}

// Defaults of the HLS output.
const (
	defaultHLSMaxRooms        = 64
	defaultHLSRequestsPerRoom = 1024
	defaultHLSRequests        = 8192
	defaultHLSSegmentBytes    = 8 << 20
	defaultHLSIdle            = 20 * time.Second
	defaultHLSStart           = 8 * time.Second
)

func (c *HLSConfig) setDefaults() {
	if c.MaxRooms <= 0 {
		c.MaxRooms = defaultHLSMaxRooms
	}
	if c.MaxRequestsPerRoom <= 0 {
		c.MaxRequestsPerRoom = defaultHLSRequestsPerRoom
	}
	if c.MaxRequests <= 0 {
		c.MaxRequests = defaultHLSRequests
	}
	if c.SegmentMaxBytes == 0 {
		c.SegmentMaxBytes = defaultHLSSegmentBytes
	}
	if c.Idle <= 0 {
		c.Idle = defaultHLSIdle
	}
	if c.StartTimeout <= 0 {
		c.StartTimeout = defaultHLSStart
	}
	if c.PartDuration <= 0 {
		c.PartDuration = 200 * time.Millisecond
	}
	if c.SegmentDuration <= 0 {
		c.SegmentDuration = time.Second
	}
}

// Errors of the HLS output; Serve answers them itself, HLSStatus maps them.
var (
	// ErrHLSBusy: a cap on HLS rooms or requests is reached.
	ErrHLSBusy = errors.New("media: hls capacity reached")
	// ErrHLSUnavailable: the room sends nothing HLS can carry yet (offline,
	// no keyframe in time, or a codec HLS does not take, e.g. VP8).
	ErrHLSUnavailable = errors.New("media: hls stream unavailable")
)

// hlsFileName is what a path's last element may be: the names gohlslib
// gives its playlists, init files, segments and parts. Anything else (a
// traversal, an unknown extension) is 404 before reaching the muxer.
var hlsFileName = regexp.MustCompile(`^[A-Za-z0-9_]{1,96}\.(m3u8|mp4)$`)

// HLS serves every room's LL-HLS output on this node. Build it with
// SFU.NewHLS; it ends with the SFU.
type HLS struct {
	sfu *SFU
	cfg HLSConfig
	// audio turns the room's audio into what HLS carries: AAC from
	// cfg.AAC, or Opus as it is (hls_audio.go).
	audio audioForHLS

	mu       sync.Mutex
	outs     map[string]*hlsOut
	inflight int
}

// NewHLS builds the HLS output of s.
func (s *SFU) NewHLS(cfg HLSConfig) *HLS {
	cfg.setDefaults()
	var audio audioForHLS = opusForHLS{}
	if cfg.AAC != nil {
		audio = aacForHLS{streams: cfg.AAC, log: s.log.With("component", "hls")}
	}
	return &HLS{sfu: s, cfg: cfg, audio: audio, outs: map[string]*hlsOut{}}
}

// Serve answers one HLS request for roomID: file is the last path element
// (index.m3u8, or a name the playlists gave). The caller has checked that the
// room exists and that the client may watch it.
func (h *HLS) Serve(w http.ResponseWriter, r *http.Request, roomID, file string) {
	if !hlsFileName.MatchString(file) {
		hlsError(w, http.StatusNotFound, "not_found", "no such HLS file")
		return
	}
	out, err := h.enter(roomID, file == "index.m3u8")
	if err != nil {
		hlsFail(w, err)
		return
	}
	defer h.leave(out)
	if err := out.waitReady(r.Context()); err != nil {
		hlsFail(w, err)
		return
	}
	nw := &notFoundWriter{ResponseWriter: w}
	out.mux.Handle(nw, r)
	if !nw.wrote {
		// A name this muxer never made (or one rotated away long ago).
		hlsError(w, http.StatusNotFound, "not_found", "no such HLS file")
	}
}

// enter finds (or, for a playlist request, starts) the room's output and
// counts the request against the caps.
func (h *HLS) enter(roomID string, start bool) (*hlsOut, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.inflight >= h.cfg.MaxRequests {
		return nil, fmt.Errorf("%w: %d HLS requests in flight on this node", ErrHLSBusy, h.inflight)
	}
	out := h.outs[roomID]
	if out == nil || out.isDone() {
		if !start {
			// Segments and parts only exist in a running muxer; a player
			// that asks for one of a stopped muxer reloads the playlist.
			return nil, fmt.Errorf("%w: no HLS stream running for this room (reload index.m3u8)", errHLSGone)
		}
		if len(h.outs) >= h.cfg.MaxRooms {
			h.sweepLocked()
			if len(h.outs) >= h.cfg.MaxRooms {
				return nil, fmt.Errorf("%w: %d rooms muxed on this node", ErrHLSBusy, len(h.outs))
			}
		}
		var err error
		if out, err = h.startLocked(roomID); err != nil {
			return nil, err
		}
	}
	if out.inflight >= h.cfg.MaxRequestsPerRoom {
		return nil, fmt.Errorf("%w: %d HLS requests in flight for this room", ErrHLSBusy, out.inflight)
	}
	out.inflight++
	h.inflight++
	out.touch()
	return out, nil
}

func (h *HLS) leave(out *hlsOut) {
	h.mu.Lock()
	out.inflight--
	h.inflight--
	h.mu.Unlock()
	out.touch()
}

// sweepLocked forgets outputs that ended.
func (h *HLS) sweepLocked() {
	for id, o := range h.outs {
		if o.isDone() {
			delete(h.outs, id)
		}
	}
}

// forget removes out from the map once it ended (its run goroutine's last step).
func (h *HLS) forget(out *hlsOut) {
	h.mu.Lock()
	if h.outs[out.roomID] == out {
		delete(h.outs, out.roomID)
	}
	h.mu.Unlock()
}

// Rooms is how many rooms are muxed on this node now.
func (h *HLS) Rooms() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.sweepLocked()
	return len(h.outs)
}

// errHLSGone: a segment or part of a muxer that is not running.
var errHLSGone = errors.New("media: hls stream not running")

// HLSStatus maps an HLS error to an HTTP status and error code.
func HLSStatus(err error) (int, string) {
	switch {
	case errors.Is(err, ErrHLSBusy):
		return http.StatusServiceUnavailable, "busy"
	case errors.Is(err, ErrHLSUnavailable):
		return http.StatusServiceUnavailable, "stream_unavailable"
	case errors.Is(err, errHLSGone):
		return http.StatusNotFound, "not_found"
	case errors.Is(err, ErrClosed):
		return http.StatusServiceUnavailable, "unavailable"
	}
	return http.StatusServiceUnavailable, "unavailable"
}

func hlsFail(w http.ResponseWriter, err error) {
	status, code := HLSStatus(err)
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "2")
	}
	hlsError(w, status, code, err.Error())
}

// hlsError writes the API's error body ({"error": {"code", "message"}}).
func hlsError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	fmt.Fprintf(w, "{\"error\":{\"code\":%q,\"message\":%q}}\n", code, msg)
}

// notFoundWriter notes whether the muxer answered at all: gohlslib writes
// nothing for a name it does not know.
type notFoundWriter struct {
	http.ResponseWriter
	wrote bool
}

func (w *notFoundWriter) WriteHeader(code int) {
	w.wrote = true
	w.ResponseWriter.WriteHeader(code)
}

func (w *notFoundWriter) Write(b []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(b)
}
