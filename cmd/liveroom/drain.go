package main

import (
	"context"
	"log/slog"
	"time"

	"liveroom/media"
	"liveroom/room"
	"liveroom/web"
)

// drain takes the node out of a cluster without freezing its viewers (on
// SIGTERM): /readyz fails and new offers are refused at once; after wait (the
// balancer's detection time) every room with a WebRTC session here hears a
// `node.draining` event (on whichever node its pages' WebSockets are: a page
// whose video is here moves it, make before break) and every WebSocket here
// is closed with 1012; then it waits, at most timeout, for the WebRTC
// sessions to leave. ctx ends the drain early.
func drain(ctx context.Context, d *web.Drain, hub *room.Hub, sfu *media.SFU, node string, wait, timeout time.Duration, log *slog.Logger) {
	start := time.Now()
	d.Start()
	log.Info("draining: not ready, refusing new sessions", "wait", wait, "timeout", timeout)
	if !sleepCtx(ctx, wait) {
		return
	}
	ev := room.MustEvent("node.draining", map[string]string{"node": node})
	ev.Transient = true
	for _, id := range sfu.RoomsServed() {
		if _, err := hub.Publish(ctx, id, ev); err != nil {
			log.Warn("drain: tell the room", "room", id, "err", err)
		}
	}
	told := hub.Drain()
	deadline := time.Now().Add(timeout)
	for sfu.Sessions() > 0 && time.Now().Before(deadline) {
		if !sleepCtx(ctx, 100*time.Millisecond) {
			return
		}
	}
	log.Info("drained", "websockets_told", told, "sessions_left", sfu.Sessions(), "took", time.Since(start).Round(time.Millisecond))
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
