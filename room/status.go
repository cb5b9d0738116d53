package room

import (
	"context"
	"fmt"
)

// StreamStatus is the one rule for a room's status when its stream starts
// or stops: a stream starting makes the room live; one stopping takes a
// live room back to scheduled, and leaves a scheduled or ended room as it
// is. Every writer of a stream's status goes through it (the lifecycle,
// its sweep of rooms whose origin died, Hub.SetLive).
func StreamStatus(cur Status, live bool) Status {
	switch {
	case live:
		return StatusLive
	case cur == StatusLive:
		return StatusScheduled
	}
	return cur
}

// RequestStatus checks a status a client asks for (the admin API): a room
// may be scheduled or ended by hand, but only its stream makes it live.
func RequestStatus(s Status) error {
	if s == StatusLive {
		return &ValidationError{"status", "a room becomes live when its host publishes"}
	}
	return nil
}

// storeStreamStatus applies StreamStatus to the stored room. hold, if set,
// is asked inside the store's compare-and-set and may keep the status as
// it is (another node became the origin meanwhile). changed reports
// whether the stored status changed.
func storeStreamStatus(ctx context.Context, rooms Store, roomID string, live bool, hold func() bool) (changed bool, err error) {
	_, err = rooms.Update(ctx, roomID, func(r *Room) error {
		next := StreamStatus(r.Status, live)
		if hold != nil && hold() {
			next = r.Status
		}
		changed = next != r.Status
		r.Status = next
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("room status: %w", err)
	}
	return changed, nil
}
