package room

import "context"

// Bus carries each room's events between the nodes that have clients in it,
// and keeps the little shared state fan-out needs: the room's event order
// (seq), a bounded history for resume, presence counts and counters.
//
// One node uses the memory implementation; a cluster uses Redis. Both must
// pass the same conformance suite (bus_test.go). cmd chooses one and hands
// it to NewHub; nothing else knows which it is.
type Bus interface {
	// Publish gives ev the room's next seq and the server ts, keeps it in
	// the room's history (unless Transient) and delivers it to every
	// subscribed node. It returns the stamped event. Seqs have no gaps.
	Publish(ctx context.Context, roomID string, ev Event) (Event, error)

	// Send delivers a targeted event (no seq, not kept) to every subscribed
	// node, each of which hands it to its matching connections.
	Send(ctx context.Context, roomID string, d Delivery) error

	// Subscribe makes h receive the room's deliveries on this node until
	// the returned cancel is called. For one room h is called from one
	// goroutine at a time, room events in seq order; h must not block and
	// must not call back into the bus.
	Subscribe(ctx context.Context, roomID string, h func(Delivery)) (cancel func(), err error)

	// Since returns the retained non-transient events with seq > after,
	// oldest first, and the room's position. complete is false when events
	// after `after` have already left the history (or after is ahead of the
	// room, e.g. from a previous epoch): then the caller needs a snapshot.
	Since(ctx context.Context, roomID string, after uint64) (events []Event, pos Position, complete bool, err error)

	// Position returns the room's last seq and epoch.
	Position(ctx context.Context, roomID string) (Position, error)

	// Presence records that node has conns local connections in the room
	// and returns the room's total over the nodes seen recently.
	Presence(ctx context.Context, roomID, node string, conns int) (int, error)

	// Add adds delta to the room's named counter (e.g. "likes") and returns
	// the new value; delta 0 reads it.
	Add(ctx context.Context, roomID, counter string, delta int64) (int64, error)
}

// Position is where a room's event stream stands. Epoch changes when the
// stream restarts from seq 0 (a new memory bus, a flushed Redis), so a
// client's after_seq from an older epoch is never trusted.
type Position struct {
	Seq   uint64 `json:"seq"`
	Epoch string `json:"epoch"`
}

// Delivery is what a node receives from the bus for one room.
type Delivery struct {
	Event Event // a room event (Seq > 0) or a targeted one

	// Targeting for events without seq: only connections of UserID (if set)
	// whose role is at least MinRole. Room events go to everyone.
	UserID  string
	MinRole Role
	// Close, if set, is an error code: after the event, the matching
	// connections are closed with the close code for it (e.g. "banned").
	Close string
}
