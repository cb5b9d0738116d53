package room

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"
)

// Lifecycle is a node's part in its rooms' status and media origins, the
// same on one node (memory Origins) and many (Redis):
//
//   - it turns the media server's live/offline signals into room status
//     (StreamStatus) and stream.live/stream.offline events, off the media
//     goroutines, so a slow store never delays a publisher;
//   - it holds the origin lease of every room whose host publishes here
//     (lifecycle_lease.go): the newest host wins, and a node whose lease
//     another node took drops its stale host;
//   - it is the one reconciler of RTSP sources (lifecycle_sources.go):
//     exactly one node pulls each room's source, and rooms whose origin
//     died without saying so are taken offline.
type Lifecycle struct {
	node     string
	rooms    Store
	origins  Origins
	media    Media
	announce func(ctx context.Context, roomID string, live bool) error
	moved    func(roomID string)
	log      *slog.Logger
	ttl      time.Duration
	every    time.Duration

	events  chan liveEvent
	sources chan struct{} // capacity 1: look at the rooms' sources now

	mu     sync.Mutex
	hosted map[string]leaseState // rooms this node is (or is becoming) the origin of

	orphans map[string]bool // live rooms seen without an origin once (sources loop only)
}

// Media is what the lifecycle needs from this node's media server.
type Media interface {
	// Hosting reports whether a host (not a pull from another node)
	// publishes the room here.
	Hosting(roomID string) bool
	// DropHost ends the room's host here: it moved to another node.
	DropHost(roomID, reason string)
	// Pulling lists the rooms whose RTSP source this node pulls, by URL.
	Pulling() map[string]string
	StartPull(roomID, url string) error
	StopPull(roomID string)
	// Watched lists the rooms with viewers here.
	Watched() []string
	// CloseRoom ends every media session of a deleted room.
	CloseRoom(roomID string)
}

// LifecycleDeps are what a Lifecycle is built from.
type LifecycleDeps struct {
	Node    string // this node's id in Origins
	Rooms   Store
	Origins Origins
	Media   Media
	// Announce tells a room's clients its stream went live or offline
	// after the status is stored (Hub.AnnounceLive).
	Announce func(ctx context.Context, roomID string, live bool) error
	// Moved, if set, is told that a room's host moved to another node:
	// this node's viewers of it pull it from there now.
	Moved func(roomID string)
	Log   *slog.Logger
	// LeaseTTL is how long an origin lease lasts unrenewed (default 6 s;
	// renewed every third of it); SourcesEvery how often sources and
	// orphaned live rooms are looked at (default 3 s).
	LeaseTTL     time.Duration
	SourcesEvery time.Duration
}

type liveEvent struct {
	room string
	live bool
}

// NewLifecycle builds a lifecycle; Run drives it.
func NewLifecycle(d LifecycleDeps) (*Lifecycle, error) {
	if d.Node == "" || d.Rooms == nil || d.Origins == nil || d.Media == nil || d.Announce == nil {
		return nil, errors.New("lifecycle: Node, Rooms, Origins, Media and Announce are required")
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	return &Lifecycle{
		node: d.Node, rooms: d.Rooms, origins: d.Origins, media: d.Media, announce: d.Announce, moved: d.Moved,
		log: d.Log.With("component", "lifecycle"), ttl: orDefault(d.LeaseTTL, 6*time.Second), every: orDefault(d.SourcesEvery, 3*time.Second),
		events: make(chan liveEvent, 1024), sources: make(chan struct{}, 1),
		hosted: map[string]leaseState{}, orphans: map[string]bool{},
	}, nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// OnLive is the media server's live hook: a room got or lost its
// publisher here. The queue is large; if it is ever full the sender waits
// rather than losing a status change.
func (l *Lifecycle) OnLive(roomID string, live bool) {
	l.events <- liveEvent{roomID, live}
}

// SourceChanged is told that a room's RTSP source was set, changed or
// removed, or the room deleted: the sources are looked at now.
func (l *Lifecycle) SourceChanged(string) {
	select {
	case l.sources <- struct{}{}:
	default:
	}
}

// Run applies live events, keeps leases and sources until ctx ends, then
// releases this node's leases and returns ctx's error. Leases are renewed
// on their own goroutine, so that nothing slow elsewhere lets them lapse.
func (l *Lifecycle) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Go(func() { l.renewLoop(ctx) })
	wg.Go(func() { l.sourcesLoop(ctx) })
	for ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case ev := <-l.events:
			l.apply(ctx, ev)
		}
	}
	wg.Wait()
	l.leave()
	return ctx.Err()
}

// apply stores a live event's status and announces it. A host that left a
// room now live on another node (the host moved), or a live event already
// stale (the host is gone again), changes nothing.
func (l *Lifecycle) apply(ctx context.Context, ev liveEvent) {
	if !l.lease(ctx, ev.room, ev.live) {
		return
	}
	elsewhere := false
	// Asked inside the status update, so a host going live elsewhere
	// between this node's release and its update (which claims before it
	// stores "live") is never overwritten.
	hold := func() bool {
		elsewhere = !ev.live && l.liveElsewhere(ctx, ev.room)
		return elsewhere
	}
	if _, err := storeStreamStatus(ctx, l.rooms, ev.room, ev.live, hold); err != nil && !errors.Is(err, ErrNotFound) {
		l.log.Warn("room status", "room", ev.room, "live", ev.live, "err", err)
	}
	if elsewhere {
		l.log.Info("room stream moved to another node", "room", ev.room)
		return
	}
	l.log.Info("room stream", "room", ev.room, "live", ev.live)
	l.tell(ctx, ev.room, ev.live)
}

// tell announces a stored status change.
func (l *Lifecycle) tell(ctx context.Context, roomID string, live bool) {
	if err := l.announce(ctx, roomID, live); err != nil {
		l.log.Warn("room live event", "room", roomID, "err", err)
	}
}

// liveElsewhere reports whether another node holds roomID's lease now.
func (l *Lifecycle) liveElsewhere(ctx context.Context, roomID string) bool {
	holder, err := l.origins.Get(ctx, roomID)
	return err == nil && holder != "" && holder != l.node
}
