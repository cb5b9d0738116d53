package room

import (
	"context"
	"time"
)

// Origin leases: the node a room's host publishes to (WHIP, RTSP ingest,
// or the one node that pulls the room's RTSP source) is the room's origin
// and holds its lease in Origins; other nodes pull the room from it. The
// newest host wins: a host that reconnects to another node moves the lease
// there, and the old origin drops its stale host at its next renewal.

type leaseState int

const (
	claiming leaseState = iota + 1 // a host is live here; the claim has not gone through yet
	held
)

// lease claims or releases roomID's lease for a live event of this node's
// media. It returns false when the event must not change the room's
// status: a live event that is stale (the host is already gone again, its
// offline event follows), or a host that left a room now live on another
// node (the host moved).
func (l *Lifecycle) lease(ctx context.Context, roomID string, live bool) bool {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if live {
		if !l.media.Hosting(roomID) {
			return false
		}
		l.setHosted(roomID, claiming)
		if err := l.origins.Claim(ctx, roomID, l.node, l.ttl); err != nil {
			l.log.Warn("claim origin", "room", roomID, "err", err) // the renew loop retries
			return true
		}
		l.promote(roomID)
		return true
	}
	if _, ok := l.media.Pulling()[roomID]; ok {
		// The room's RTSP source went down and this node keeps retrying
		// it: it stays the one node that pulls the source.
		ours, err := l.origins.Renew(ctx, roomID, l.node, l.ttl)
		if err != nil || ours {
			return true
		}
	}
	l.setHosted(roomID, 0)
	ours, err := l.origins.Release(ctx, roomID, l.node)
	if err != nil {
		l.log.Warn("release origin", "room", roomID, "err", err)
		return true
	}
	if !ours {
		l.log.Info("host left; the room is live on another node", "room", roomID)
	}
	return ours
}

// setHosted records this node's part in roomID's lease (0: none).
func (l *Lifecycle) setHosted(roomID string, st leaseState) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if st == 0 {
		delete(l.hosted, roomID)
	} else {
		l.hosted[roomID] = st
	}
}

// hosting reports this node's part in roomID's lease.
func (l *Lifecycle) hosting(roomID string) leaseState {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.hosted[roomID]
}

// promote marks a claim that went through, unless the host left meanwhile.
func (l *Lifecycle) promote(roomID string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.hosted[roomID] == claiming {
		l.hosted[roomID] = held
	}
}

func (l *Lifecycle) renewLoop(ctx context.Context) {
	t := time.NewTicker(l.ttl / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			l.renew(ctx)
		}
	}
}

// renew extends this node's leases and retries claims that failed.
func (l *Lifecycle) renew(ctx context.Context) {
	l.mu.Lock()
	rooms := make(map[string]leaseState, len(l.hosted))
	for id, st := range l.hosted {
		rooms[id] = st
	}
	l.mu.Unlock()
	for id, st := range rooms {
		rctx, cancel := context.WithTimeout(ctx, time.Second)
		err := l.renewOne(rctx, id, st)
		cancel()
		if err != nil && ctx.Err() == nil {
			l.log.Warn("renew origin", "room", id, "err", err)
		}
	}
}

// renewOne: a lease another node took means the host moved there: the
// stale host here is dropped and its viewers follow the room to the new
// origin. A lease that lapsed (the store was away longer than its
// lifetime) is claimed again, and the room said live again in case
// another node took it offline meanwhile.
func (l *Lifecycle) renewOne(ctx context.Context, id string, st leaseState) error {
	if st == claiming {
		if err := l.origins.Claim(ctx, id, l.node, l.ttl); err != nil {
			return err
		}
		l.promote(id)
		return nil
	}
	ok, err := l.origins.Renew(ctx, id, l.node, l.ttl)
	if err != nil || ok {
		return err
	}
	holder, err := l.origins.Get(ctx, id)
	switch {
	case err != nil:
		return err
	case holder == l.node: // claimed again meanwhile
		return nil
	case holder == "":
		if l.hosting(id) != held {
			return nil // released meanwhile
		}
		if err := l.origins.Claim(ctx, id, l.node, l.ttl); err != nil {
			return err
		}
		l.log.Warn("origin lease had lapsed; claimed again", "room", id)
		if l.media.Hosting(id) {
			if _, err := storeStreamStatus(ctx, l.rooms, id, true, nil); err != nil {
				return err
			}
			l.tell(ctx, id, true)
		}
		return nil
	}
	l.setHosted(id, 0)
	l.media.DropHost(id, "the host moved to node "+holder)
	if l.moved != nil {
		l.moved(id) // its viewers here pull from the new origin now
	}
	return nil
}

// leave releases this node's leases (shutdown).
func (l *Lifecycle) leave() {
	l.mu.Lock()
	hosted := l.hosted
	l.hosted = map[string]leaseState{}
	l.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	for id := range hosted {
		_, _ = l.origins.Release(ctx, id, l.node)
	}
}
