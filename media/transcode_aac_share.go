package media

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
)

// AACStreams shares one AACReader — one reader of the seam and one ffmpeg
// Opus → AAC — per room among the outputs that need AAC (the recorder, the
// HLS muxer): Opus → AAC once per room. Build one per SFU in cmd and hand it
// to each such output.
type AACStreams struct {
	open func(roomID string, opts ReaderOptions) (*Reader, error)

	mu    sync.Mutex
	rooms map[string]*aacShare
}

// NewAACStreams shares AAC readers of open's rooms (SFU.OpenReader).
func NewAACStreams(open func(roomID string, opts ReaderOptions) (*Reader, error)) *AACStreams {
	return &AACStreams{open: open, rooms: map[string]*aacShare{}}
}

// aacShare is one room's shared AACReader and its subscribers.
type aacShare struct {
	streams *AACStreams
	room    string
	src     *AACReader
	cancel  context.CancelFunc
	done    chan struct{}

	mu   sync.Mutex
	subs []*AACSub
}

// AACSub is one output's view of a room's shared AAC stream: the same
// contract as AACReader (Read, RequestKeyframe, Close). A subscriber that
// joins a running stream starts at the next keyframe (one is requested); one
// that falls behind drops, and its video resumes at the next keyframe.
type AACSub struct {
	streams *AACStreams
	room    string
	share   *aacShare
	out     chan readResult
	needKey bool // the pump goroutine's
	dropped atomic.Uint64
	once    sync.Once
}

// Open subscribes to roomID's AAC stream, starting it if it has none.
func (a *AACStreams) Open(roomID string) (*AACSub, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	sh := a.rooms[roomID]
	fresh := sh == nil
	if fresh {
		rd, err := a.open(roomID, ReaderOptions{Queue: 1024})
		if err != nil {
			return nil, err
		}
		src, err := NewAACReader(rd)
		if err != nil {
			rd.Close()
			return nil, err
		}
		ctx, cancel := context.WithCancel(context.Background())
		sh = &aacShare{streams: a, room: roomID, src: src, cancel: cancel, done: make(chan struct{})}
		a.rooms[roomID] = sh
		go sh.pump(ctx)
	}
	sub := &AACSub{streams: a, room: roomID, share: sh, out: make(chan readResult, aacReaderQueue), needKey: true}
	sh.mu.Lock()
	sh.subs = append(sh.subs, sub)
	sh.mu.Unlock()
	if !fresh {
		sh.src.RequestKeyframe() // the first subscriber got the GOP cache; later ones ask
	}
	return sub, nil
}

// Rooms is how many rooms have a shared stream (one ffmpeg each).
func (a *AACStreams) Rooms() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.rooms)
}

// pump fans the shared reader out until it ends or the last subscriber goes.
func (sh *aacShare) pump(ctx context.Context) {
	defer close(sh.done)
	for {
		au, err := sh.src.Read(ctx)
		if ctx.Err() != nil {
			return
		}
		sh.mu.Lock()
		subs := sh.subs
		sh.mu.Unlock()
		key := false
		for _, s := range subs {
			key = s.offer(readResult{au: au, err: err}) || key
		}
		if key {
			sh.src.RequestKeyframe()
		}
		if err != nil && !errors.Is(err, ErrOffline) {
			// The room is gone: later subscribers get a stream of their own.
			a := sh.streams
			a.mu.Lock()
			if a.rooms[sh.room] == sh {
				delete(a.rooms, sh.room)
			}
			a.mu.Unlock()
			return
		}
	}
}

// offer queues r for s without blocking; it reports whether s now waits
// for a keyframe it should ask for.
func (s *AACSub) offer(r readResult) (wantKey bool) {
	switch {
	case r.err != nil:
		if errors.Is(r.err, ErrOffline) {
			s.needKey = true
		}
		// An error must arrive (a show learns its host left from it): make
		// room for it at the cost of the oldest unit.
		for {
			select {
			case s.out <- r:
				return false
			default:
			}
			select {
			case <-s.out:
				s.dropped.Add(1)
			default:
			}
		}
	case r.au.Video && s.needKey && !r.au.Key:
		s.dropped.Add(1)
		return false
	}
	select {
	case s.out <- r:
		if r.au.Video {
			s.needKey = false
		}
		return false
	default:
		s.dropped.Add(1)
		if r.au.Video {
			s.needKey = true
			return true
		}
		return false
	}
}

// Read returns the next access unit (audio as AAC), ErrOffline once each
// time the source goes away, or the error that ended the stream.
func (s *AACSub) Read(ctx context.Context) (*AccessUnit, error) {
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case r := <-s.out:
		return r.au, r.err
	}
}

// RequestKeyframe asks the room's source for a keyframe (throttled).
func (s *AACSub) RequestKeyframe() { s.share.src.RequestKeyframe() }

// Dropped counts units this subscriber lost.
func (s *AACSub) Dropped() uint64 { return s.dropped.Load() }

// Close unsubscribes; the last subscriber stops the room's stream and its
// ffmpeg.
func (s *AACSub) Close() {
	s.once.Do(func() {
		a, sh := s.streams, s.share
		a.mu.Lock()
		sh.mu.Lock()
		for i, x := range sh.subs {
			if x == s {
				sh.subs = append(sh.subs[:i:i], sh.subs[i+1:]...)
				break
			}
		}
		last := len(sh.subs) == 0
		sh.mu.Unlock()
		if last && a.rooms[s.room] == sh {
			delete(a.rooms, s.room)
		}
		a.mu.Unlock()
		if last {
			sh.cancel()
			<-sh.done
			sh.src.Close()
		}
	})
}
