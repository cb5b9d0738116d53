package record

import (
	"context"
	"errors"
	"time"
)

// Manifest is a cluster's shared record of its shows: which node holds
// which segment, where the show's timeline ended, and its product script
// and chat (which may have been logged on several nodes). A show that a
// host continues on another node continues in its manifest: the new node
// takes the segment and init numbers and the end PTS from it, so numbering
// and timestamps stay monotonic. Implementations: manifest_redis.go.
type Manifest interface {
	// Current is the show in progress for the room incarnation scope, if
	// any: a node the host moved to continues it.
	Current(ctx context.Context, roomID, scope string) (ShowState, bool, error)
	// Save stores the show's state and appends segs (the segments written
	// since the last Save) to its list.
	Save(ctx context.Context, st ShowState, segs []SegmentRef) error
	// AppendLog appends one line of the show's script or chat log.
	AppendLog(ctx context.Context, roomID, showID, log string, line []byte) error
	// Get is a show's state and all its segments, ErrNoShow if unknown.
	Get(ctx context.Context, roomID, showID string) (ShowState, []SegmentRef, error)
	// Log is the lines of a show's script or chat log, in order.
	Log(ctx context.Context, roomID, showID, log string) ([][]byte, error)
	// List is a room's shows (unordered).
	List(ctx context.Context, roomID string) ([]ShowState, error)
	// Delete forgets a show and leaves a tombstone, so that the other
	// nodes holding its files remove them at their next sweep.
	Delete(ctx context.Context, roomID, showID string) error
	// Deleted reports which of the shows (keyed "room/show") have a
	// tombstone (kept tombstoneKeep).
	Deleted(ctx context.Context, keys []string) (map[string]bool, error)
}

// tombstoneKeep is how long a deleted show's tombstone stays: a node that
// is away longer keeps its files until its own retention sweep.
const tombstoneKeep = 30 * 24 * time.Hour

// ShowState is a show's manifest head: its meta, the node recording it now
// ("" once ended), and where the next node continues.
type ShowState struct {
	Meta
	Node   string         `json:"node"`
	SegN   int            `json:"seg_n"`   // the last segment's number
	InitN  int            `json:"init_n"`  // the last init segment's number
	EndPTS time.Duration  `json:"end_pts"` // where the written timeline ends (ns)
	Inits  map[int]string `json:"inits"`   // init number -> node holding it
}

// SegmentRef is one segment in the manifest: its node, name, init, and
// place on the show timeline.
type SegmentRef struct {
	Node  string        `json:"node"`
	Name  string        `json:"name"`
	Init  int           `json:"init"`
	Dur   time.Duration `json:"dur"`
	Start time.Duration `json:"start"`
}

// ErrMoved: the show is now recorded by another node (its host moved); the
// node that had it stops without ending it.
var ErrMoved = errors.New("show continued on another node")

func refsToEntries(segs []SegmentRef) []playlistEntry {
	out := make([]playlistEntry, 0, len(segs))
	for _, s := range segs {
		out = append(out, playlistEntry{init: s.Init, name: s.Name, dur: s.Dur, start: s.Start})
	}
	return out
}
