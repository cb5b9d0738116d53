package room

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// writers are the hub's shared write goroutines, one shard per two CPUs. A
// connection with something queued is listed on its shard, and the shard's
// goroutine writes the listed connections one after the other: everything a
// connection has queued goes out in one non-blocking write. So a fan-out to
// N connections wakes one goroutine per shard rather than N, an idle
// connection holds no write goroutine, and no goroutine is started per
// burst (a shard's goroutine stays while it has work and lingers after).
//
// Coalescing adapts to load: a connection on a quiet shard is written at
// once. After a pass the writer pauses in proportion to the connections
// the hub's writers wrote (hub.write_delay for packFullAt or more), and while a pass and its
// pause go on, events for connections already written pile up and go out
// together in the next pass: the busier the hub, the more frames share a
// syscall, and the write syscall is most of the cost of a delivery. With
// the default 40 ms, a hub writing 40 connections a pass does not pause,
// one writing 1,000 pauses 5 ms, a saturated one 40 ms.
//
// A connection whose socket does not take a whole batch leaves the shard
// for its own write pump until it has caught up (see corkConn).
type writers struct {
	once   sync.Once
	shards []*writerShard
	next   atomic.Uint32
}

type writerShard struct {
	h *Hub

	mu      sync.Mutex
	ready   []*conn
	running bool // a goroutine serves the shard
	parked  bool // and it waits for work
	wake    chan struct{}
}

// packFullAt is how many connections the hub's writers must write in a
// pass (the shard's count times the shards) to pause the whole
// hub.write_delay after it; smaller passes pause in proportion. The pause grows with the work, not with the wall time a
// busy machine stretched the pass to (that feeds back: a longer pause
// packs more, which makes the next pass longer...).
const packFullAt = 8000

// packPause is the pause after a pass that wrote n connections; pauses too
// short to pack anything are skipped.
func packPause(maxPause time.Duration, n int) time.Duration {
	d := maxPause * time.Duration(min(n, packFullAt)) / packFullAt
	if d < 200*time.Microsecond {
		return 0
	}
	return d
}

// writerShards is how many writers a hub runs on procs CPUs: half of them.
// A writer's non-blocking writes do not yield its CPU (see writeNow), so
// the other half is left to the read pumps, the fan-out and the network
// poller: a message that arrives during a pass is read at once rather than
// when a writer pauses.
func writerShards(procs int) int { return max(1, procs/2) }

// writerLinger is how long a shard's goroutine waits for work before it
// exits (the next listed connection starts one again).
const writerLinger = 5 * time.Second

// shardFor picks the shard of a new connection (round robin).
func (w *writers) shardFor(h *Hub) *writerShard {
	w.once.Do(func() {
		n := writerShards(runtime.GOMAXPROCS(0))
		w.shards = make([]*writerShard, n)
		for i := range w.shards {
			w.shards[i] = &writerShard{h: h, wake: make(chan struct{}, 1)}
		}
	})
	return w.shards[int(w.next.Add(1))%len(w.shards)]
}

// add lists c; the caller has set c.inWriter.
func (s *writerShard) add(c *conn) {
	s.mu.Lock()
	s.ready = append(s.ready, c)
	start, wake := !s.running, s.parked
	s.running, s.parked = true, false
	s.mu.Unlock()
	switch {
	case start:
		go s.run()
	case wake:
		s.wake <- struct{}{}
	}
}

func (s *writerShard) run() {
	var batch []*conn
	idle := time.NewTimer(writerLinger)
	defer idle.Stop()
	for {
		s.mu.Lock()
		if len(s.ready) == 0 {
			s.parked = true
			s.mu.Unlock()
			idle.Reset(writerLinger)
			select {
			case <-s.wake:
				continue
			case <-idle.C:
			}
			s.mu.Lock()
			if s.parked { // nobody listed a connection meanwhile
				s.running, s.parked = false, false
				s.mu.Unlock()
				return
			}
			s.mu.Unlock()
			<-s.wake // add saw parked and sends
			continue
		}
		batch, s.ready = s.ready, batch[:0]
		s.mu.Unlock()

		start := time.Now()
		frames := 0
		for i, c := range batch {
			frames += c.writeOut(start)
			batch[i] = nil
		}
		s.h.m.framesOut.Add(float64(frames))
		if d := packPause(s.h.cfg.WriteDelay, len(batch)*len(s.h.writers.shards)); d > 0 {
			time.Sleep(d)
		}
	}
}
