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
// origin and holds a lease in Redis (room.Origins). A node whose viewers
// watch a room it has no host for is an edge: it pulls the room from the
// origin once (media.SFU.Pull, signalled over HTTP with a cluster token)
// and drops the pull when its last viewer leaves. The newest host wins: a
// host that reconnects to another node moves the lease there, the old
// origin drops its stale host, and every edge (the old origin included,
// if it has viewers) follows.
const (
	originTTL     = 6 * time.Second
	originRenew   = 2 * time.Second
	edgeTick      = 500 * time.Millisecond
	sourcesTick   = 3 * time.Second
	signalTimeout = 10 * time.Second
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
	// notify announces a room going offline to its clients (the room hub),
	// for a room whose origin vanished without saying so.
	notify func(ctx context.Context, roomID string, live bool)

	mu     sync.Mutex
	hosted map[string]bool      // rooms this node holds the origin lease of
	pulls  map[string]*edgePull // rooms this node pulls from their origin
	busy   map[string]bool      // rooms with a pull being set up
	failed map[string]string    // room -> origin whose last pull attempt failed (logged once)

	orphans map[string]bool // live rooms seen without an origin once (run's goroutine only)
}

type edgePull struct {
	origin   string
	edge     *media.Edge
	location string // absolute URL of the session on the origin
}

func newMediaCluster(self string, secret []byte, sfu *media.SFU, origins room.Origins, nodes room.Registry, rooms room.Store, log *slog.Logger) *mediaCluster {
	return &mediaCluster{
		self: self, secret: secret, sfu: sfu, origins: origins, nodes: nodes, rooms: rooms,
		client: &http.Client{Timeout: signalTimeout},
		log:    log.With("component", "edge"),
		wake:   make(chan string, 256), sources: make(chan struct{}, 1),
		hosted: map[string]bool{}, pulls: map[string]*edgePull{}, busy: map[string]bool{}, failed: map[string]string{},
		orphans: map[string]bool{},
	}
}

// watched is web.Deps.OnWatch: a viewer joined; pull at once if needed.
func (m *mediaCluster) watched(roomID string) {
	select {
	case m.wake <- roomID:
	default: // the next tick sees it
	}
}

// sourceChanged is web.Deps.OnSource: a room's RTSP source was set,
// changed or removed through this node's admin API.
func (m *mediaCluster) sourceChanged(string) {
	select {
	case m.sources <- struct{}{}:
	default:
	}
}

// live is called by the lifecycle before it stores a room's status. A host
// of this node went live: claim the room. A host went away: release the
// room, and report false if another node holds it (the host moved there),
// in which case the room is still live and nothing must be announced.
func (m *mediaCluster) live(ctx context.Context, roomID string, live bool) bool {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if live {
		m.setHosted(roomID, true)
		if err := m.origins.Claim(ctx, roomID, m.self, originTTL); err != nil {
			m.log.Warn("claim origin", "room", roomID, "err", err) // the renew loop retries
		}
		return true
	}
	if _, ok := m.sfu.Pulling()[roomID]; ok {
		// The room's RTSP source went down and this node keeps retrying
		// it: it stays the one node that pulls the source.
		ours, err := m.origins.Renew(ctx, roomID, m.self, originTTL)
		if err != nil || ours {
			return true
		}
	}
	m.setHosted(roomID, false)
	ours, err := m.origins.Release(ctx, roomID, m.self)
	if err != nil {
		m.log.Warn("release origin", "room", roomID, "err", err)
		return true
	}
	if !ours {
		m.log.Info("host left; the room is live on another node", "room", roomID)
	}
	return ours
}

func (m *mediaCluster) setHosted(roomID string, on bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if on {
		m.hosted[roomID] = true
	} else {
		delete(m.hosted, roomID)
	}
}

// run keeps leases, pulls and RTSP sources until ctx ends, then releases
// this node's leases and ends its pulls.
func (m *mediaCluster) run(ctx context.Context) {
	renew := time.NewTicker(originRenew)
	defer renew.Stop()
	tick := time.NewTicker(edgeTick)
	defer tick.Stop()
	sources := time.NewTicker(sourcesTick)
	defer sources.Stop()
	m.followSources(ctx)
	for {
		select {
		case <-ctx.Done():
			m.leave()
			return
		case <-renew.C:
			m.renew(ctx)
		case roomID := <-m.wake:
			m.reconcile(ctx, roomID, true) // a viewer just joined
		case <-tick.C:
			m.reconcileAll(ctx)
		case <-sources.C:
			m.followSources(ctx)
		case <-m.sources:
			m.followSources(ctx)
		}
	}
}

// renew extends this node's leases. A lease another node took means the
// host moved there: the stale host here is dropped and its viewers follow
// the room to the new origin. A lease that vanished (expired while Redis
// was away) is claimed again.
func (m *mediaCluster) renew(ctx context.Context) {
	m.mu.Lock()
	rooms := make([]string, 0, len(m.hosted))
	for id := range m.hosted {
		rooms = append(rooms, id)
	}
	m.mu.Unlock()
	for _, id := range rooms {
		rctx, cancel := context.WithTimeout(ctx, time.Second)
		ok, err := m.origins.Renew(rctx, id, m.self, originTTL)
		if err == nil && !ok {
			var holder string
			if holder, err = m.origins.Get(rctx, id); err == nil && holder == "" {
				err = m.origins.Claim(rctx, id, m.self, originTTL)
			} else if err == nil {
				m.setHosted(id, false)
				m.sfu.DropHost(id, "the host moved to node "+holder)
				m.watched(id) // its viewers here pull from the new origin now
			}
		}
		cancel()
		if err != nil && ctx.Err() == nil {
			m.log.Warn("renew origin", "room", id, "err", err)
		}
	}
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
		p = nil
	}
	if !watched || m.busy[roomID] {
		if !watched && p != nil {
			delete(m.pulls, roomID)
			m.mu.Unlock()
			m.endPull(roomID, p, "no viewers left")
			return
		}
		m.mu.Unlock()
		return
	}
	m.mu.Unlock()

	rctx, cancel := context.WithTimeout(ctx, time.Second)
	origin, err := m.origins.Get(rctx, roomID)
	cancel()
	if err != nil || origin == "" || origin == m.self || (p != nil && p.origin == origin) {
		// Redis away, nobody live, or already pulling from the origin:
		// keep what runs (a pull survives its origin's host reconnecting).
		return
	}
	m.mu.Lock()
	if m.busy[roomID] {
		m.mu.Unlock()
		return
	}
	m.busy[roomID] = true
	m.mu.Unlock()
	go m.startPull(ctx, roomID, origin)
}

func (m *mediaCluster) startPull(ctx context.Context, roomID, origin string) {
	defer func() {
		m.mu.Lock()
		delete(m.busy, roomID)
		m.mu.Unlock()
	}()
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
	if err != nil {
		if m.failed[roomID] != origin && !errors.Is(err, media.ErrPublisherConflict) {
			m.log.Warn("edge pull failed", "room", roomID, "origin", origin, "err", err)
		}
		m.failed[roomID] = origin
		return
	}
	delete(m.failed, roomID)
	old := m.pulls[roomID]
	m.pulls[roomID] = p
	m.log.Info("pulling room from its origin", "room", roomID, "origin", origin)
	if old != nil {
		go m.endPull(roomID, old, "origin moved to "+origin)
	}
}

// endPull closes a pull here and, best effort, its session on the origin
// (which also ends by itself when the connection closes).
func (m *mediaCluster) endPull(roomID string, p *edgePull, why string) {
	p.edge.Close()
	m.log.Info("edge pull ended", "room", roomID, "origin", p.origin, "reason", why)
	if p.location == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, p.location, nil)
	if err != nil {
		return
	}
	if resp, err := m.client.Do(req); err == nil {
		resp.Body.Close()
	}
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

// followSources makes sure exactly one node pulls each room's RTSP source:
// a room without an origin is claimed (first node wins) and pulled; a pull
// whose room no longer names that source stops.
func (m *mediaCluster) followSources(ctx context.Context) {
	lctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	list, err := m.rooms.List(lctx)
	if err != nil {
		return
	}
	m.closeDeleted(list)
	pulling := m.sfu.Pulling()
	for _, r := range list {
		if r.Status == room.StatusLive {
			m.sweepLive(lctx, r.ID)
		} else {
			delete(m.orphans, r.ID)
		}
		cur, pulled := pulling[r.ID]
		delete(pulling, r.ID)
		if r.Source == "" || (pulled && cur == r.Source) {
			if r.Source == "" && pulled {
				m.sfu.StopPull(r.ID)
			}
			continue
		}
		m.mu.Lock()
		mine := m.hosted[r.ID]
		m.mu.Unlock()
		if !mine {
			won, err := m.origins.ClaimFree(lctx, r.ID, m.self, originTTL)
			if err != nil || !won {
				if err == nil && pulled {
					m.sfu.StopPull(r.ID) // another node pulls the new source
				}
				continue
			}
			m.setHosted(r.ID, true)
		}
		if err := m.sfu.StartPull(r.ID, r.Source); err != nil {
			m.log.Warn("rtsp pull", "room", r.ID, "err", err)
		}
	}
	for id := range pulling { // the room was deleted
		m.sfu.StopPull(id)
	}
}

// closeDeleted ends this node's media sessions of rooms that were deleted
// through another node (which closed its own at once).
func (m *mediaCluster) closeDeleted(list []room.Room) {
	exists := make(map[string]bool, len(list))
	for _, r := range list {
		exists[r.ID] = true
	}
	gone := map[string]bool{}
	for _, id := range m.sfu.Watched() {
		gone[id] = !exists[id]
	}
	m.mu.Lock()
	for id := range m.hosted {
		gone[id] = !exists[id]
	}
	m.mu.Unlock()
	for id, g := range gone {
		if g {
			m.log.Info("room deleted elsewhere: closing its media here", "room", id)
			m.sfu.StopPull(id)
			m.sfu.CloseRoom(id)
		}
	}
}

// sweepLive takes a room offline whose origin died without saying so: its
// status says live but nobody holds its lease. The store's compare-and-set
// lets one node do it (and announce it) however many see it.
// A room is only swept when seen that way twice in a row, sourcesTick
// apart: a host going live claims the lease before the status says live,
// and one going away takes the status back right after its lease.
func (m *mediaCluster) sweepLive(ctx context.Context, roomID string) {
	if origin, err := m.origins.Get(ctx, roomID); err != nil || origin != "" {
		delete(m.orphans, roomID)
		return
	}
	if !m.orphans[roomID] {
		m.orphans[roomID] = true
		return
	}
	delete(m.orphans, roomID)
	changed := false
	_, err := m.rooms.Update(ctx, roomID, func(r *room.Room) error {
		changed = r.Status == room.StatusLive
		if changed {
			r.Status = room.StatusScheduled
		}
		return nil
	})
	if err != nil || !changed {
		return
	}
	m.log.Info("room offline: its origin node is gone", "room", roomID)
	if m.notify != nil {
		m.notify(ctx, roomID, false)
	}
}

// leave releases this node's leases and ends its pulls (shutdown).
func (m *mediaCluster) leave() {
	m.mu.Lock()
	hosted, pulls := m.hosted, m.pulls
	m.hosted, m.pulls = map[string]bool{}, map[string]*edgePull{}
	m.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	for id := range hosted {
		_, _ = m.origins.Release(ctx, id, m.self)
	}
	for id, p := range pulls {
		m.endPull(id, p, "shutdown")
	}
}

func isDone(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}
