package main

import (
	"context"
	"time"

	"liveroom/room"
)

// The origin side of media across nodes (see edges.go): leases for rooms
// whose host is here, and which node pulls each room's RTSP source.

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
// room. It returns false when the event must not change the room's status:
// a host that left a room now live on another node (the host moved), or a
// live event that is stale (the host is already gone again).
func (m *mediaCluster) live(ctx context.Context, roomID string, live bool) bool {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if live {
		if !m.sfu.Hosting(roomID) {
			return false // its offline event follows
		}
		m.setHosted(roomID, claiming)
		if err := m.origins.Claim(ctx, roomID, m.self, originTTL); err != nil {
			m.log.Warn("claim origin", "room", roomID, "err", err) // the renew loop retries
			return true
		}
		m.promote(roomID)
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
	m.setHosted(roomID, 0)
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

// liveElsewhere reports whether another node holds roomID's lease now.
func (m *mediaCluster) liveElsewhere(ctx context.Context, roomID string) bool {
	holder, err := m.origins.Get(ctx, roomID)
	return err == nil && holder != "" && holder != m.self
}

// setHosted records this node's part in roomID's lease (0: none).
func (m *mediaCluster) setHosted(roomID string, st leaseState) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if st == 0 {
		delete(m.hosted, roomID)
	} else {
		m.hosted[roomID] = st
	}
}

// promote marks a claim that went through, unless the host left meanwhile.
func (m *mediaCluster) promote(roomID string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.hosted[roomID] == claiming {
		m.hosted[roomID] = held
	}
}

func (m *mediaCluster) renewLoop(ctx context.Context) {
	t := time.NewTicker(originRenew)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			m.renew(ctx)
		}
	}
}

// renew extends this node's leases and retries claims that failed. A lease
// another node took means the host moved there: the stale host here is
// dropped and its viewers follow the room to the new origin. A lease that
// lapsed (Redis was away longer than its lifetime) is claimed again, and
// the room said live again in case another node took it offline meanwhile.
func (m *mediaCluster) renew(ctx context.Context) {
	m.mu.Lock()
	rooms := make(map[string]leaseState, len(m.hosted))
	for id, st := range m.hosted {
		rooms[id] = st
	}
	m.mu.Unlock()
	for id, st := range rooms {
		rctx, cancel := context.WithTimeout(ctx, time.Second)
		err := m.renewOne(rctx, id, st)
		cancel()
		if err != nil && ctx.Err() == nil {
			m.log.Warn("renew origin", "room", id, "err", err)
		}
	}
}

func (m *mediaCluster) renewOne(ctx context.Context, id string, st leaseState) error {
	if st == claiming {
		if err := m.origins.Claim(ctx, id, m.self, originTTL); err != nil {
			return err
		}
		m.promote(id)
		return nil
	}
	ok, err := m.origins.Renew(ctx, id, m.self, originTTL)
	if err != nil || ok {
		return err
	}
	holder, err := m.origins.Get(ctx, id)
	switch {
	case err != nil:
		return err
	case holder == m.self: // claimed again meanwhile
		return nil
	case holder == "":
		m.mu.Lock()
		still := m.hosted[id] == held
		m.mu.Unlock()
		if !still {
			return nil // released meanwhile
		}
		if err := m.origins.Claim(ctx, id, m.self, originTTL); err != nil {
			return err
		}
		m.log.Warn("origin lease had lapsed; claimed again", "room", id)
		if m.notify != nil && m.sfu.Hosting(id) {
			m.notify(ctx, id, true)
		}
		return nil
	}
	m.setHosted(id, 0)
	m.sfu.DropHost(id, "the host moved to node "+holder)
	m.watched(id) // its viewers here pull from the new origin now
	return nil
}

func (m *mediaCluster) sourcesLoop(ctx context.Context) {
	t := time.NewTicker(sourcesTick)
	defer t.Stop()
	m.followSources(ctx)
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-m.sources:
		}
		m.followSources(ctx)
	}
}

// followSources makes sure exactly one node pulls each room's RTSP source
// (a room without an origin is claimed, first node wins, and pulled; a
// pull whose room no longer names that source stops), closes this node's
// media of rooms deleted elsewhere, and takes offline rooms whose origin
// died without saying so.
func (m *mediaCluster) followSources(ctx context.Context) {
	lctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	mine := m.mediaRooms() // before the list: a room created after it is not "deleted"
	list, err := m.rooms.List(lctx)
	if err != nil {
		return
	}
	exists := make(map[string]bool, len(list))
	for _, r := range list {
		exists[r.ID] = true
	}
	for id := range mine {
		if !exists[id] {
			m.log.Info("room deleted elsewhere: closing its media here", "room", id)
			m.dropSource(lctx, id)
			m.sfu.CloseRoom(id)
		}
	}
	pulling := m.sfu.Pulling()
	for _, r := range list {
		if r.Status == room.StatusLive {
			m.sweepLive(lctx, r.ID)
		} else {
			delete(m.orphans, r.ID)
		}
		cur, pulled := pulling[r.ID]
		switch {
		case r.Source == "":
			if pulled {
				m.dropSource(lctx, r.ID)
			}
		case pulled && cur == r.Source:
		default:
			m.mu.Lock()
			ours := m.hosted[r.ID] != 0
			m.mu.Unlock()
			if !ours {
				won, err := m.origins.ClaimFree(lctx, r.ID, m.self, originTTL)
				if err != nil || !won {
					if err == nil && pulled {
						m.sfu.StopPull(r.ID) // another node pulls the new source
					}
					continue
				}
				m.setHosted(r.ID, held)
			}
			if err := m.sfu.StartPull(r.ID, r.Source); err != nil {
				m.log.Warn("rtsp pull", "room", r.ID, "err", err)
				m.dropSource(lctx, r.ID)
			}
		}
	}
	for id := range m.orphans {
		if !exists[id] {
			delete(m.orphans, id)
		}
	}
}

// mediaRooms are the rooms this node has media state for.
func (m *mediaCluster) mediaRooms() map[string]bool {
	out := map[string]bool{}
	for _, id := range m.sfu.Watched() {
		out[id] = true
	}
	for id := range m.sfu.Pulling() {
		out[id] = true
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for id := range m.hosted {
		out[id] = true
	}
	return out
}

// dropSource stops this node's pull of a room's source and gives up its
// lease (a pull that never went live raises no offline event to do it).
func (m *mediaCluster) dropSource(ctx context.Context, roomID string) {
	m.sfu.StopPull(roomID)
	m.mu.Lock()
	_, ours := m.hosted[roomID]
	delete(m.hosted, roomID)
	m.mu.Unlock()
	if ours {
		_, _ = m.origins.Release(ctx, roomID, m.self)
	}
}

// sweepLive takes a room offline whose origin died without saying so: its
// status says live but nobody holds its lease. The store's compare-and-set
// lets one node do it (and announce it) however many see it.
//
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
