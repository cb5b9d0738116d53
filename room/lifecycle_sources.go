package room

import (
	"context"
	"time"
)

// The RTSP source reconciler: exactly one node pulls each room's source,
// whichever claims the room's free origin lease first (on one node, that
// node), and it is then the room's origin; the others serve its viewers
// by pulling the room from it. A node that dies stops renewing its leases,
// and another takes the source over.

func (l *Lifecycle) sourcesLoop(ctx context.Context) {
	t := time.NewTicker(l.every)
	defer t.Stop()
	l.followSources(ctx)
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-l.sources:
		}
		l.followSources(ctx)
	}
}

// followSources starts and stops this node's pulls of the rooms' sources
// (a room without an origin is claimed and pulled; a pull whose room no
// longer names that source stops), closes this node's media of deleted
// rooms, and takes offline the rooms whose origin died without saying so.
func (l *Lifecycle) followSources(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	mine := l.mediaRooms() // before the list: a room created after it is not "deleted"
	list, err := l.rooms.List(ctx)
	if err != nil {
		return
	}
	exists := make(map[string]bool, len(list))
	for _, r := range list {
		exists[r.ID] = true
	}
	for id := range mine {
		if !exists[id] {
			l.log.Info("room deleted: closing its media here", "room", id)
			l.dropSource(ctx, id)
			l.media.CloseRoom(id)
		}
	}
	pulling := l.media.Pulling()
	for _, r := range list {
		if r.Status == StatusLive {
			l.sweepLive(ctx, r.ID)
		} else {
			delete(l.orphans, r.ID)
		}
		l.followSource(ctx, r, pulling)
	}
	for id := range l.orphans {
		if !exists[id] {
			delete(l.orphans, id)
		}
	}
}

// followSource brings this node's pull of one room's source in line.
func (l *Lifecycle) followSource(ctx context.Context, r Room, pulling map[string]string) {
	cur, pulled := pulling[r.ID]
	switch {
	case r.Source == "":
		if pulled {
			l.dropSource(ctx, r.ID)
		}
		return
	case pulled && cur == r.Source:
		return
	}
	if l.hosting(r.ID) == 0 {
		won, err := l.origins.ClaimFree(ctx, r.ID, l.node, l.ttl)
		if err != nil || !won {
			if err == nil && pulled {
				l.media.StopPull(r.ID) // another node pulls the new source
			}
			return
		}
		l.setHosted(r.ID, held)
	}
	if err := l.media.StartPull(r.ID, r.Source); err != nil {
		l.log.Warn("rtsp pull", "room", r.ID, "err", err)
		l.dropSource(ctx, r.ID)
	}
}

// mediaRooms are the rooms this node has media state for.
func (l *Lifecycle) mediaRooms() map[string]bool {
	out := map[string]bool{}
	for _, id := range l.media.Watched() {
		out[id] = true
	}
	for id := range l.media.Pulling() {
		out[id] = true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for id := range l.hosted {
		out[id] = true
	}
	return out
}

// dropSource stops this node's pull of a room's source and gives up its
// lease (a pull that never went live raises no offline event to do it).
func (l *Lifecycle) dropSource(ctx context.Context, roomID string) {
	l.media.StopPull(roomID)
	l.mu.Lock()
	_, ours := l.hosted[roomID]
	delete(l.hosted, roomID)
	l.mu.Unlock()
	if ours {
		_, _ = l.origins.Release(ctx, roomID, l.node)
	}
}

// sweepLive takes a room offline whose origin died without saying so: its
// status says live but nobody holds its lease. The store's compare-and-set
// lets one node do it (and announce it) however many see it. On one node,
// this is what takes offline the rooms that were live when it stopped.
//
// A room is only swept when seen that way twice in a row, SourcesEvery
// apart: a host going live claims the lease before the status says live,
// and one going away takes the status back right after its lease.
func (l *Lifecycle) sweepLive(ctx context.Context, roomID string) {
	if origin, err := l.origins.Get(ctx, roomID); err != nil || origin != "" {
		delete(l.orphans, roomID)
		return
	}
	if !l.orphans[roomID] {
		l.orphans[roomID] = true
		return
	}
	delete(l.orphans, roomID)
	changed, err := storeStreamStatus(ctx, l.rooms, roomID, false, nil)
	if err != nil || !changed {
		return
	}
	l.log.Info("room offline: its origin is gone", "room", roomID)
	l.tell(ctx, roomID, false)
}
