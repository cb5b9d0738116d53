package room

import (
	"context"
	"time"
)

// Origins is the cluster's directory of room origins: the node a room's
// host publishes to, which edge nodes pull the room's media from. An entry
// is a lease the origin renews while its host is on; a node that dies stops
// renewing and its entries expire.
type Origins interface {
	// Claim makes node the room's origin, replacing any other: the host
	// publishing now wins over one that published elsewhere before (a
	// host that reconnected to another node).
	Claim(ctx context.Context, roomID, node string, ttl time.Duration) error
	// ClaimFree makes node the origin only if the room has none (an RTSP
	// source that any node could pull, but only one should).
	ClaimFree(ctx context.Context, roomID, node string, ttl time.Duration) (bool, error)
	// Renew extends node's lease; false if another node holds the room now
	// (or nobody does).
	Renew(ctx context.Context, roomID, node string, ttl time.Duration) (bool, error)
	// Release ends node's lease; false if another node holds the room.
	Release(ctx context.Context, roomID, node string) (bool, error)
	// Get returns the room's origin node, "" for none.
	Get(ctx context.Context, roomID string) (string, error)
}
