package main

import (
	"context"
	"errors"
	"log/slog"

	"liveroom/room"
)

// lifecycle turns the media layer's live/offline signals into room status
// changes (and, once wired, room events) off the media goroutines, so a slow
// disk never delays a publisher's connection.
type lifecycle struct {
	rooms  room.Store
	log    *slog.Logger
	events chan liveEvent
	// notify is called after the status is stored (the room hub's hook).
	notify func(ctx context.Context, roomID string, live bool)
	// origin, in a cluster, claims or releases the room's origin lease; it
	// returns false when a host of this node left a room that is live on
	// another node (the host moved), which then stays live.
	origin func(ctx context.Context, roomID string, live bool) bool
	// liveElsewhere, in a cluster, reports whether another node is the
	// room's origin now. It is asked inside the status update, so a host
	// going live elsewhere between this node's release and its update
	// (which claims before it stores "live") is never overwritten.
	liveElsewhere func(ctx context.Context, roomID string) bool
}

type liveEvent struct {
	room string
	live bool
}

func newLifecycle(rooms room.Store, log *slog.Logger) *lifecycle {
	return &lifecycle{rooms: rooms, log: log, events: make(chan liveEvent, 1024)}
}

// onLive is the media.Options.OnLive hook. The queue is large; if it is ever
// full the sender waits rather than losing a status change.
func (l *lifecycle) onLive(roomID string, live bool) {
	l.events <- liveEvent{roomID, live}
}

func (l *lifecycle) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case ev := <-l.events:
			l.apply(ctx, ev)
		}
	}
}

func (l *lifecycle) apply(ctx context.Context, ev liveEvent) {
	if l.origin != nil && !l.origin(ctx, ev.room, ev.live) {
		return
	}
	elsewhere := false
	_, err := l.rooms.Update(ctx, ev.room, func(r *room.Room) error {
		elsewhere = !ev.live && l.liveElsewhere != nil && l.liveElsewhere(ctx, ev.room)
		switch {
		case ev.live:
			r.Status = room.StatusLive
		case elsewhere:
		case r.Status == room.StatusLive:
			r.Status = room.StatusScheduled
		}
		return nil
	})
	if err != nil && !errors.Is(err, room.ErrNotFound) {
		l.log.Warn("room status", "room", ev.room, "live", ev.live, "err", err)
	}
	if elsewhere {
		l.log.Info("room stream moved to another node", "room", ev.room)
		return
	}
	l.log.Info("room stream", "room", ev.room, "live", ev.live)
	if l.notify != nil {
		l.notify(ctx, ev.room, ev.live)
	}
}
