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
// balancer's detection time) every WebSocket is closed with 1012, which tells
// the pages to move their video too, make before break; then it waits, at
// most timeout, for the WebRTC sessions to leave. ctx ends the drain early.
func drain(ctx context.Context, d *web.Drain, hub *room.Hub, sfu *media.SFU, wait, timeout time.Duration, log *slog.Logger) {
	start := time.Now()
	d.Start()
	log.Info("draining: not ready, refusing new sessions", "wait", wait, "timeout", timeout)
	if !sleepCtx(ctx, wait) {
		return
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
