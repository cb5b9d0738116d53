package media

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"
)

// Edges keeps this node's edge pulls in line with where its viewers' rooms
// are published: a room watched here whose origin is another node is
// pulled from it once, however many viewers it has here; the pull follows
// the origin when it moves and ends when the last viewer here leaves. On
// one node (every origin is this node, or none) it never pulls.
type Edges struct {
	sfu     *SFU
	self    string
	origins Origins
	signal  NodeSignal
	log     *slog.Logger
	wake    chan string
	wg      sync.WaitGroup // pull set-ups and tear-downs in flight

	mu    sync.Mutex
	pulls map[string]*edgePull  // rooms this node pulls from their origin
	busy  map[string]bool       // rooms with a pull being set up
	retry map[string]retryState // rooms whose last pull attempt failed
}

// Origins tells which node is a room's origin ("" for none); the room
// package's Origins directory implements it.
type Origins interface {
	Get(ctx context.Context, roomID string) (string, error)
}

// NodeSignal carries an edge's SDP offer for roomID to node, the room's
// origin, and returns the answer and a hangup that ends the session on the
// origin (best effort: it also ends when the connection closes).
type NodeSignal func(ctx context.Context, node, roomID, offer string) (answer string, hangup func(context.Context), err error)

const (
	edgeTick      = 500 * time.Millisecond
	signalTimeout = 10 * time.Second
	retryMin      = time.Second // a failed pull from one origin is retried after this,
	retryMax      = 15 * time.Second
)

type edgePull struct {
	origin string
	edge   *Edge
	hangup func(context.Context)
}

type retryState struct {
	origin string
	at     time.Time
	delay  time.Duration
}

// NewEdges builds the edge reconciler of node self; Run drives it.
func NewEdges(s *SFU, self string, origins Origins, signal NodeSignal) *Edges {
	return &Edges{
		sfu: s, self: self, origins: origins, signal: signal,
		log:   s.log.With("component", "edge"),
		wake:  make(chan string, 256),
		pulls: map[string]*edgePull{}, busy: map[string]bool{}, retry: map[string]retryState{},
	}
}

// Watch is told about a new viewer of roomID (or a room whose origin
// moved): the room's pull is looked at now rather than at the next tick.
func (e *Edges) Watch(roomID string) {
	select {
	case e.wake <- roomID:
	default: // the next tick sees it
	}
}

// Run keeps the pulls until ctx ends, then ends them and returns ctx's
// error.
func (e *Edges) Run(ctx context.Context) error {
	tick := time.NewTicker(edgeTick)
	defer tick.Stop()
	for ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case roomID := <-e.wake:
			e.reconcile(ctx, roomID, true)
		case <-tick.C:
			e.reconcileAll(ctx)
		}
	}
	e.mu.Lock()
	pulls := e.pulls
	e.pulls = map[string]*edgePull{}
	e.mu.Unlock()
	for id, p := range pulls {
		e.endPull(id, p, "shutdown")
	}
	e.wg.Wait()
	return ctx.Err()
}

func (e *Edges) reconcileAll(ctx context.Context) {
	rooms := map[string]bool{}
	for _, id := range e.sfu.Watched() {
		rooms[id] = true
	}
	e.mu.Lock()
	for id := range e.pulls {
		if !rooms[id] {
			rooms[id] = false // pulled, no longer watched: the pull ends
		}
	}
	for id := range e.retry {
		if !rooms[id] {
			delete(e.retry, id)
		}
	}
	e.mu.Unlock()
	for id, watched := range rooms {
		e.reconcile(ctx, id, watched)
	}
}

// reconcile brings one room's pull in line: none without viewers here or
// with a host here, else one from the current origin.
func (e *Edges) reconcile(ctx context.Context, roomID string, watched bool) {
	e.mu.Lock()
	p := e.pulls[roomID]
	if p != nil && isDone(p.edge.Done()) {
		delete(e.pulls, roomID)
		if !p.edge.Connected() {
			e.failedLocked(roomID, p.origin, errors.New("the connection to the origin never came up"))
		}
		p = nil
	}
	if !watched && p != nil {
		delete(e.pulls, roomID)
		e.mu.Unlock()
		e.endPull(roomID, p, "no viewers left")
		return
	}
	busy := e.busy[roomID]
	e.mu.Unlock()
	if !watched || busy {
		return
	}

	rctx, cancel := context.WithTimeout(ctx, time.Second)
	origin, err := e.origins.Get(rctx, roomID)
	cancel()
	if err != nil || origin == "" || origin == e.self || (p != nil && p.origin == origin) {
		// Coordination away, nobody live, or already pulling from the
		// origin: keep what runs (a pull survives its origin's host
		// reconnecting).
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if r, ok := e.retry[roomID]; e.busy[roomID] || ok && r.origin == origin && time.Now().Before(r.at) {
		return
	}
	e.busy[roomID] = true
	e.wg.Go(func() { e.startPull(ctx, roomID, origin) })
}

func (e *Edges) startPull(ctx context.Context, roomID, origin string) {
	ctx, cancel := context.WithTimeout(ctx, signalTimeout)
	defer cancel()
	p := &edgePull{origin: origin}
	edge, err := e.sfu.Pull(ctx, roomID, func(ctx context.Context, offer string) (string, error) {
		answer, hangup, err := e.signal(ctx, origin, roomID, offer)
		p.hangup = hangup
		return answer, err
	})
	p.edge = edge
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.busy, roomID)
	if err != nil {
		if !errors.Is(err, ErrPublisherConflict) { // a host here came first
			e.failedLocked(roomID, origin, err)
		}
		return
	}
	delete(e.retry, roomID)
	old := e.pulls[roomID]
	e.pulls[roomID] = p
	e.log.Info("pulling room from its origin", "room", roomID, "origin", origin)
	if old != nil {
		e.wg.Go(func() { e.endPull(roomID, old, "origin moved to "+origin) })
	}
}

// failedLocked backs off further pulls of roomID from origin (1 s, doubling
// up to 15 s), logging the first failure.
func (e *Edges) failedLocked(roomID, origin string, err error) {
	r := e.retry[roomID]
	if r.origin != origin {
		e.log.Warn("edge pull failed", "room", roomID, "origin", origin, "err", err)
		r = retryState{origin: origin}
	}
	r.delay = min(max(2*r.delay, retryMin), retryMax)
	r.at = time.Now().Add(r.delay)
	e.retry[roomID] = r
}

// endPull closes a pull here and, best effort, its session on the origin.
func (e *Edges) endPull(roomID string, p *edgePull, why string) {
	p.edge.Close()
	e.log.Info("edge pull ended", "room", roomID, "origin", p.origin, "reason", why)
	if p.hangup == nil {
		return
	}
	e.wg.Go(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		p.hangup(ctx)
	})
}

func isDone(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}
