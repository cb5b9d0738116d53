package media

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"
)

// The published media seam (docs/architecture.md, "Media seam"): readers
// that are not WebRTC viewers get a room's stream as access units on the
// room clock. One stream per room while it has readers; it is fed by a tap
// on the room's forwarders and assembles access units on its own goroutine,
// once for all readers.

// AccessUnit is one decodable unit of a room's stream. It is shared by every
// reader of the room: treat it, and everything it points to, as read-only.
type AccessUnit struct {
	Video bool
	Codec string // "H264", "VP8", "Opus", "PCMU", "PCMA"
	// PTS is the presentation time on the room clock; per kind it never
	// decreases, across host reconnects and codec switches.
	PTS time.Duration
	// Key: video a decoder can start from (H264: an IDR with SPS and PPS in
	// front; VP8: a keyframe). Always false for audio.
	Key bool
	// NALUs are an H264 frame's NAL units, without start codes or AUDs.
	NALUs [][]byte
	// Frame is a VP8 frame or one audio frame (what one RTP packet carried).
	Frame []byte
	// Params are the video parameters in force, on every keyframe.
	Params *Params
	// ParamsChanged: Params differ from the previous keyframe's (a new SPS
	// or PPS, a new resolution, another codec).
	ParamsChanged bool

	codec uint8 // index into codecTable
	size  int   // payload bytes, for the GOP cache's bound
}

// Params describe a video stream's decoding parameters.
type Params struct {
	Codec    string
	SPS, PPS []byte // H264 only
	Width    int    // 0 if unknown
	Height   int
}

// ReaderOptions configure a Reader. The zero value is the default layer with
// the default queue.
type ReaderOptions struct {
	// Layer names the simulcast layer to read; "" (the only one today)
	// follows the highest layer being sent (reader_layer.go).
	Layer string
	// Queue bounds the access units waiting for Read (default 256, about
	// three seconds of 30 fps video with audio); a full queue drops, and
	// video then resumes at the next keyframe.
	Queue int
}

// Errors a Reader returns.
var (
	// ErrOffline is returned by Read once each time the room's source goes
	// away; the reader stays open and continues with the next source.
	ErrOffline = errors.New("media: room offline")
	// ErrNewSource is returned by Read, once, when the host's next source
	// replaced the previous one without the room going offline in between
	// (a reconnect before the old session timed out). It is an ErrOffline
	// for readers that do not tell them apart; the units that follow are
	// the new source's, video from its first keyframe, on the same clock.
	ErrNewSource = fmt.Errorf("%w: the host's next source took over", ErrOffline)
	// ErrNoLayer: the room has no layer of that name.
	ErrNoLayer = errors.New("media: no such layer")
)

// Defaults of the seam.
const (
	DefaultReaderQueue = 256
	// gopCacheBytes bounds the GOP cache per room: a 2 s GOP at 8 Mbit/s.
	gopCacheBytes = 8 << 20
)

// stream is one room's access-unit producer.
type stream struct {
	r   *room
	t   *tap
	asm assembler   // the run goroutine's only
	fs  followState // the run goroutine's only (reader_layer.go)

	mu      sync.Mutex
	readers []*Reader
	gop     gopCache
	closed  bool
}

// OpenReader attaches a reader to roomID's stream. The room need not be live:
// the reader gets access units whenever a source publishes, and the room is
// kept (with its clock) while it has readers. Close the reader when done.
func (s *SFU) OpenReader(roomID string, opts ReaderOptions) (*Reader, error) {
	if opts.Layer != "" {
		return nil, fmt.Errorf("%w: %q (the room has one layer)", ErrNoLayer, opts.Layer)
	}
	if opts.Queue > 1<<16 {
		return nil, fmt.Errorf("media: reader queue %d, at most %d", opts.Queue, 1<<16)
	}
	r, release, err := s.acquire(roomID)
	if err != nil {
		return nil, err
	}
	defer release()
	return r.openReader(opts)
}

// openReader adds a reader, starting the room's stream if it has none.
func (r *room) openReader(opts ReaderOptions) (*Reader, error) {
	if opts.Queue <= 0 {
		opts.Queue = DefaultReaderQueue
	}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil, errRoomGone(r.id)
	}
	st := r.stream
	if st == nil {
		st = &stream{r: r, t: newTap(), gop: gopCache{max: gopCacheBytes}, fs: followState{upSlot: -1}}
		st.t.tick, st.t.tickEvery = st.lookAtLayers, readerCheck
		st.asm.init(r.sfu.codecs)
		if !r.sfu.spawn(st.run) {
			r.mu.Unlock()
			return nil, ErrClosed
		}
		r.stream = st
		next := append(slices.Clone(*r.taps.Load()), st.t)
		r.taps.Store(&next)
	}
	r.mu.Unlock()

	rd := newReader(st, opts.Queue)
	st.mu.Lock()
	if st.closed {
		st.mu.Unlock()
		return nil, errRoomGone(r.id)
	}
	start := st.gop.start()
	rd.preload(start)
	st.readers = append(st.readers, rd)
	st.mu.Unlock()
	if len(start) == 0 {
		// Nothing to start from: ask for a keyframe now rather than at the
		// source's next GOP (the tap asks too when it starts).
		r.readerLayer().requestKeyframe()
	}
	return rd, nil
}

// remove detaches rd; the last reader ends the stream and releases the room.
func (st *stream) remove(rd *Reader) {
	st.mu.Lock()
	// Copy on write: publish ranges over a snapshot without the lock.
	st.readers = slices.DeleteFunc(slices.Clone(st.readers), func(x *Reader) bool { return x == rd })
	last := len(st.readers) == 0 && !st.closed
	if last {
		st.closed = true
	}
	st.mu.Unlock()
	if !last {
		return
	}
	r := st.r
	r.mu.Lock()
	if r.stream == st {
		r.stream = nil
	}
	r.mu.Unlock()
	r.removeTap(st.t)
	st.t.close()
	r.sfu.reap(r)
}

// shutdown ends the stream with the room: readers get ErrRoomNotFound.
// Called with r.mu held.
func (st *stream) shutdownLocked() {
	st.mu.Lock()
	st.closed = true
	readers := st.readers
	st.readers = nil
	st.gop.reset()
	st.mu.Unlock()
	for _, rd := range readers {
		rd.end(errRoomGone(st.r.id))
	}
	st.t.close()
}

// run assembles access units from the tap until the stream ends.
func (st *stream) run() { st.t.run(st.r.sfu.stop, st.deliver, st.sourceGone) }

// deliver takes one packet from the tap.
func (st *stream) deliver(pk *packet) bool {
	if pk.kind == kindVideo && !st.follow(pk, time.Now()) {
		return true // another layer's
	}
	if au := st.asm.push(pk); au != nil {
		st.publish(au)
	} else if st.asm.wantsKey() && st.r.readerLayer().askKeyframe() {
		st.asm.asked()
	}
	return true
}

// publish hands au to the GOP cache and every reader; never blocks.
func (st *stream) publish(au *AccessUnit) {
	st.mu.Lock()
	st.gop.add(au)
	readers := st.readers
	st.mu.Unlock()
	key := false
	for _, rd := range readers {
		if rd.push(au) {
			key = true
		}
	}
	if key {
		st.r.readerLayer().requestKeyframe() // throttled
	}
}

// sourceGone: the source went away (offline), or the host's next source
// replaced it. Cached units belong to it; readers are told, and the stream
// goes on for the next source.
func (st *stream) sourceGone(offline bool) bool {
	st.asm.reset()
	st.fs.newSource()
	st.mu.Lock()
	st.gop.reset()
	readers := st.readers
	st.mu.Unlock()
	mark := newSourceMark
	if offline {
		mark = offlineMark
	}
	for _, rd := range readers {
		rd.pushMark(mark)
	}
	return true
}
