package media

import (
	"context"
	"sync"
	"sync/atomic"
)

// Reader is one consumer of a room's access units (see OpenReader). Read is
// meant for one goroutine; Close may be called from any.
type Reader struct {
	st   *stream
	max  int
	wake chan struct{} // capacity 1: something was queued or the reader ended

	mu      sync.Mutex
	q       []*AccessUnit // FIFO; offlineMark and newSourceMark stand for their errors
	head    int
	needKey bool  // video waits for a keyframe (start without cache, after a drop)
	lagging bool  // needKey because of a drop: skipped video counts as dropped
	err     error // set once the reader ended
	dropped atomic.Uint64
	once    sync.Once
}

// offlineMark and newSourceMark are queued in order with the access units
// so a reader learns that the source went away (ErrOffline) or was
// replaced (ErrNewSource) after the units that came before.
var offlineMark, newSourceMark = &AccessUnit{}, &AccessUnit{}

func newReader(st *stream, max int) *Reader {
	return &Reader{st: st, max: max, wake: make(chan struct{}, 1), needKey: true}
}

// preload queues the GOP cache's units: the reader starts at their keyframe.
func (rd *Reader) preload(aus []*AccessUnit) {
	if len(aus) > rd.max {
		aus = aus[len(aus)-rd.max:] // a cache deeper than the queue: keep audio going, video waits
	}
	for _, au := range aus {
		rd.pushLocked(au)
	}
}

// push offers au from the stream goroutine, never blocking; it reports
// whether the reader now waits for a keyframe it should ask for.
func (rd *Reader) push(au *AccessUnit) (wantKey bool) {
	rd.mu.Lock()
	wantKey = rd.pushLocked(au)
	rd.mu.Unlock()
	rd.signal()
	return wantKey
}

func (rd *Reader) pushLocked(au *AccessUnit) (wantKey bool) {
	if rd.err != nil {
		return false
	}
	if au.Video && rd.needKey {
		if !au.Key {
			if rd.lagging {
				rd.dropped.Add(1)
			}
			return false
		}
		rd.needKey, rd.lagging = false, false
	}
	if len(rd.q)-rd.head >= rd.max {
		rd.dropped.Add(1)
		if au.Video {
			// The next frames reference this one: skip to a keyframe.
			rd.needKey, rd.lagging = true, true
			return true
		}
		return false
	}
	if rd.head > 0 && len(rd.q) == cap(rd.q) {
		n := copy(rd.q, rd.q[rd.head:])
		clear(rd.q[n:])
		rd.q, rd.head = rd.q[:n], 0
	}
	rd.q = append(rd.q, au)
	return false
}

// pushMark queues offlineMark or newSourceMark behind what is queued;
// video then starts again at the next source's keyframe.
func (rd *Reader) pushMark(mark *AccessUnit) {
	rd.mu.Lock()
	if rd.err == nil {
		rd.q = append(rd.q, mark)
		rd.needKey = true
	}
	rd.mu.Unlock()
	rd.signal()
}

// end makes Read return err from now on; a reader that ended is not owed
// its backlog.
func (rd *Reader) end(err error) {
	rd.mu.Lock()
	if rd.err == nil {
		rd.err = err
		clear(rd.q)
		rd.q, rd.head = nil, 0
	}
	rd.mu.Unlock()
	rd.signal()
}

func (rd *Reader) signal() {
	select {
	case rd.wake <- struct{}{}:
	default:
	}
}

// Read returns the next access unit, waiting for one until ctx is done. It
// returns ErrOffline once each time the room's source goes away (keep
// reading: the next source continues on the same clock), ErrNewSource when
// the host's next source replaced it, an error wrapping
// ErrRoomNotFound once the room is closed, and ErrClosed after Close.
func (rd *Reader) Read(ctx context.Context) (*AccessUnit, error) {
	for {
		rd.mu.Lock()
		if rd.err != nil {
			err := rd.err
			rd.mu.Unlock()
			return nil, err
		}
		if rd.head < len(rd.q) {
			au := rd.q[rd.head]
			rd.q[rd.head] = nil
			rd.head++
			if rd.head == len(rd.q) {
				rd.q, rd.head = rd.q[:0], 0
			}
			rd.mu.Unlock()
			switch au {
			case offlineMark:
				return nil, ErrOffline
			case newSourceMark:
				return nil, ErrNewSource
			}
			return au, nil
		}
		rd.mu.Unlock()
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-rd.wake:
		}
	}
}

// Dropped is how many access units the reader lost because it fell behind
// (those that did not fit, and the video skipped until the next keyframe).
func (rd *Reader) Dropped() uint64 { return rd.dropped.Load() }

// Close detaches the reader; the last one ends the room's stream.
func (rd *Reader) Close() {
	rd.once.Do(func() {
		rd.end(ErrClosed)
		rd.st.remove(rd)
	})
}
