package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"liveroom/media"
	"liveroom/room"
)

// Media across nodes. The node a room's host publishes to (WHIP, RTSP
// ingest, or the one node that pulls the room's RTSP source) is the room's
// origin and holds a lease in Redis (room.Origins; origins.go). A node whose
// viewers watch a room it has no host for is an edge: it pulls the room
// from the origin once (media.SFU.Pull, signalled over HTTP with a cluster
// token) and drops the pull when its last viewer leaves. The newest host
// wins: a host that reconnects to another node moves the lease there, the
// old origin drops its stale host, and every edge (the old origin
// included, if it has viewers) follows.
const (
	originTTL     = 6 * time.Second
	originRenew   = 2 * time.Second
	edgeTick      = 500 * time.Millisecond
	sourcesTick   = 3 * time.Second
	signalTimeout = 10 * time.Second
	retryMin      = time.Second // a failed pull from one origin is retried after this,
	retryMax      = 15 * time.Second
)

type mediaCluster struct {
	self    string
	secret  []byte
	sfu     *media.SFU
	origins room.Origins
	nodes   room.Registry
	rooms   room.Store
	client  *http.Client
	log     *slog.Logger
	wake    chan string
	sources chan struct{} // capacity 1: look at the rooms' sources now
	// notify tells a room's clients its stream went live or offline (the
	// room hub, which also stores the status), for changes no host's
	// live hook reports: an origin that died, a lease that lapsed.
	notify func(ctx context.Context, roomID string, live bool)
	wg     sync.WaitGroup // pull set-ups and tear-downs in flight

	mu     sync.Mutex
	hosted map[string]leaseState // rooms this node is (or is becoming) the origin of
	pulls  map[string]*edgePull  // rooms this node pulls from their origin
	busy   map[string]bool       // rooms with a pull being set up
	retry  map[string]retryState // rooms whose last pull attempt failed

	orphans map[string]bool // live rooms seen without an origin once (sources goroutine only)
}

type leaseState int

const (
	claiming leaseState = iota + 1 // a host is live here; the claim has not gone through yet
	held
)

type edgePull struct {
	origin   string
	edge     *media.Edge
	location string // absolute URL of the session on the origin
}

type retryState struct {
	origin string
	at     time.Time
	delay  time.Duration
}

func newMediaCluster(self string, secret []byte, sfu *media.SFU, origins room.Origins, nodes room.Registry, rooms room.Store, log *slog.Logger) *mediaCluster {
	return &mediaCluster{
		self: self, secret: secret, sfu: sfu, origins: origins, nodes: nodes, rooms: rooms,
		client:  &http.Client{Timeout: signalTimeout},
		log:     log.With("component", "edge"),
		wake:    make(chan string, 256),
		sources: make(chan struct{}, 1),
		hosted:  map[string]leaseState{}, pulls: map[string]*edgePull{}, busy: map[string]bool{},
		retry: map[string]retryState{}, orphans: map[string]bool{},
	}
}

// watched is web.Deps.OnWatch: a viewer joined; pull at once if needed.
func (m *mediaCluster) watched(roomID string) {
	select {
	case m.wake <- roomID:
	default: // the next tick sees it
	}
}

// run keeps leases, pulls and RTSP sources until ctx ends, then releases
// this node's leases and ends its pulls. Leases are renewed on their own
// goroutine, so that nothing slow elsewhere lets them lapse.
func (m *mediaCluster) run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Go(func() { m.renewLoop(ctx) })
	wg.Go(func() { m.sourcesLoop(ctx) })
	tick := time.NewTicker(edgeTick)
	defer tick.Stop()
	for ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case roomID := <-m.wake:
			m.reconcile(ctx, roomID, true) // a viewer just joined
		case <-tick.C:
			m.reconcileAll(ctx)
		}
	}
	wg.Wait()
	m.leave()
}

func (m *mediaCluster) reconcileAll(ctx context.Context) {
	rooms := map[string]bool{}
	for _, id := range m.sfu.Watched() {
		rooms[id] = true
	}
	m.mu.Lock()
	for id := range m.pulls {
		if !rooms[id] {
			rooms[id] = false // pulled, no longer watched: the pull ends
		}
	}
	for id := range m.retry {
		if !rooms[id] {
			delete(m.retry, id)
		}
	}
	m.mu.Unlock()
	for id, watched := range rooms {
		m.reconcile(ctx, id, watched)
	}
}

// reconcile brings one room's pull in line: none without viewers here or
// with a host here, else one from the current origin.
func (m *mediaCluster) reconcile(ctx context.Context, roomID string, watched bool) {
	m.mu.Lock()
	p := m.pulls[roomID]
	if p != nil && isDone(p.edge.Done()) {
		delete(m.pulls, roomID)
		if !p.edge.Connected() {
			m.failedLocked(roomID, p.origin, errors.New("the connection to the origin never came up"))
		}
		p = nil
	}
	if !watched && p != nil {
		delete(m.pulls, roomID)
		m.mu.Unlock()
		m.endPull(roomID, p, "no viewers left")
		return
	}
	busy := m.busy[roomID]
	m.mu.Unlock()
	if !watched || busy {
		return
	}

	rctx, cancel := context.WithTimeout(ctx, time.Second)
	origin, err := m.origins.Get(rctx, roomID)
	cancel()
	if err != nil || origin == "" || origin == m.self || (p != nil && p.origin == origin) {
		// Redis away, nobody live, or already pulling from the origin:
		// keep what runs (a pull survives its origin's host reconnecting).
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if r, ok := m.retry[roomID]; m.busy[roomID] || ok && r.origin == origin && time.Now().Before(r.at) {
		return
	}
	m.busy[roomID] = true
	m.wg.Go(func() { m.startPull(ctx, roomID, origin) })
}

func (m *mediaCluster) startPull(ctx context.Context, roomID, origin string) {
	ctx, cancel := context.WithTimeout(ctx, signalTimeout)
	defer cancel()
	p := &edgePull{origin: origin}
	base, err := m.nodeURL(ctx, origin)
	if err == nil {
		p.edge, err = m.sfu.Pull(ctx, roomID, func(ctx context.Context, offer string) (string, error) {
			answer, loc, err := m.signal(ctx, base, roomID, offer)
			p.location = loc
			return answer, err
		})
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.busy, roomID)
	if err != nil {
		if !errors.Is(err, media.ErrPublisherConflict) { // a host here came first
			m.failedLocked(roomID, origin, err)
		}
		return
	}
	delete(m.retry, roomID)
	old := m.pulls[roomID]
	m.pulls[roomID] = p
	m.log.Info("pulling room from its origin", "room", roomID, "origin", origin)
	if old != nil {
		m.wg.Go(func() { m.endPull(roomID, old, "origin moved to "+origin) })
	}
}

// failedLocked backs off further pulls of roomID from origin (1 s, doubling
// up to 15 s), logging the first failure.
func (m *mediaCluster) failedLocked(roomID, origin string, err error) {
	r := m.retry[roomID]
	if r.origin != origin {
		m.log.Warn("edge pull failed", "room", roomID, "origin", origin, "err", err)
		r = retryState{origin: origin}
	}
	r.delay = min(max(2*r.delay, retryMin), retryMax)
	r.at = time.Now().Add(r.delay)
	m.retry[roomID] = r
}

// endPull closes a pull here and, best effort, its session on the origin
// (which also ends by itself when the connection closes).
func (m *mediaCluster) endPull(roomID string, p *edgePull, why string) {
	p.edge.Close()
	m.log.Info("edge pull ended", "room", roomID, "origin", p.origin, "reason", why)
	if p.location == "" {
		return
	}
	m.wg.Go(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodDelete, p.location, nil)
		if err != nil {
			return
		}
		if resp, err := m.client.Do(req); err == nil {
			resp.Body.Close()
		}
	})
}

// signal POSTs the edge's offer to the origin's /internal/v1/edge/{room}.
func (m *mediaCluster) signal(ctx context.Context, base, roomID, offer string) (answer, location string, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/internal/v1/edge/"+url.PathEscape(roomID), strings.NewReader(offer))
	if err != nil {
		return "", "", err
	}
	req.Header.Set("Content-Type", "application/sdp")
	req.Header.Set("Authorization", "Bearer "+room.ClusterToken(m.secret, m.self, roomID, time.Now()))
	resp, err := m.client.Do(req)
	if err != nil {
		return "", "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", "", err
	}
	if resp.StatusCode != http.StatusCreated {
		return "", "", fmt.Errorf("origin answered %d: %s", resp.StatusCode, strings.TrimSpace(string(body)))
	}
	if loc := resp.Header.Get("Location"); loc != "" {
		if u, err := url.Parse(base); err == nil {
			if l, err := u.Parse(loc); err == nil {
				location = l.String()
			}
		}
	}
	return string(body), location, nil
}

func (m *mediaCluster) nodeURL(ctx context.Context, id string) (string, error) {
	nodes, err := m.nodes.Nodes(ctx)
	if err != nil {
		return "", err
	}
	for _, n := range nodes {
		if n.ID == id && n.HTTPURL != "" {
			return strings.TrimRight(n.HTTPURL, "/"), nil
		}
	}
	return "", fmt.Errorf("origin node %q is not in the registry", id)
}

// leave releases this node's leases and ends its pulls (shutdown).
func (m *mediaCluster) leave() {
	m.mu.Lock()
	hosted, pulls := m.hosted, m.pulls
	m.hosted, m.pulls = map[string]leaseState{}, map[string]*edgePull{}
	m.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	for id := range hosted {
		_, _ = m.origins.Release(ctx, id, m.self)
	}
	for id, p := range pulls {
		m.endPull(id, p, "shutdown")
	}
	m.wg.Wait()
}

func isDone(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}
