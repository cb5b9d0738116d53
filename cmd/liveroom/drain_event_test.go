package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"liveroom/cmd/internal/proctest"
	"liveroom/media/mediatest"
	"liveroom/room/roomtest"
)

// The event node.draining matters to a page whose room WebSocket is on
// another node than its video: that page's socket stays open, so the event
// is all it hears. Two real nodes share one redis-server; the host
// publishes to a; a viewer watches on b (b pulls from a) and holds its room
// WebSocket on a. b is sent SIGTERM. The viewer's socket on a must hear
// node.draining {node: b} while b still serves its video; the viewer then
// moves its video to a (make before break), and b, which waited for that,
// exits with no session left. A room with no media on b hears nothing.
func TestDrainEventReachesViewerOnOtherNode(t *testing.T) {
	const roomID, quiet = "drainev", "drainq"
	redis := roomtest.StartRedis(t)
	t.Setenv("LIVEROOM_MAX_CONNS_PER_IP", "0")
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "cluster.yaml")
	// drain_timeout well past the test's moves: b exits when the viewer
	// leaves, not when the timeout runs out.
	cfgText := fmt.Sprintf("auth:\n  jwt_secret: %s\n  admin_key: %s\nhttp:\n  drain_wait: 1s\n  drain_timeout: 60s\n", crashSecret, crashAdminKey)
	if err := os.WriteFile(cfgPath, []byte(cfgText), 0o600); err != nil {
		t.Fatal(err)
	}
	var nodes []*proctest.Server
	for _, id := range []string{"a", "b"} {
		nodes = append(nodes, startServer(t, filepath.Join(dir, id), "--config", cfgPath, "--redis", redis.URL(), "--node-id", id))
	}
	a, b := nodes[0], nodes[1]
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("node a log tail:\n%s\nnode b log tail:\n%s", logTail(a.Log(), 30), logTail(b.Log(), 30))
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	for _, id := range []string{roomID, quiet} {
		if status, body := adminDo(t, "POST", a.Base+"/api/v1/rooms", map[string]any{"id": id, "title": id}); status != 201 {
			t.Fatalf("create room %s: %d %s", id, status, body)
		}
	}

	publishTo(t, ctx, a, roomID, mintToken(t, a.Base, "host", "host", roomID))
	ws := dialWS(t, a.Base, roomID, mintToken(t, a.Base, "viewer-1", "viewer", roomID))
	if ws.await("welcome", 5*time.Second) == nil {
		t.Fatal("no welcome on a")
	}
	bystander := dialWS(t, a.Base, quiet, mintToken(t, a.Base, "viewer-2", "viewer", quiet))
	if bystander.await("welcome", 5*time.Second) == nil {
		t.Fatal("no welcome in the quiet room")
	}
	onB, sigB := watchOn(t, ctx, b, roomID)
	waitVideo(t, ctx, onB, "video on b", func(st mediatest.ViewerStats) bool {
		return !st.FirstKeyframeAt.IsZero() && st.Video.Packets > 60
	})

	if err := syscall.Kill(b.PID(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	termAt := time.Now()
	ev := ws.await("node.draining", 15*time.Second)
	heardAt := time.Now()
	if ev == nil {
		t.Fatal("the viewer's WebSocket on a heard no node.draining")
	}
	select {
	case <-b.Done():
		t.Fatal("b had exited when its drain was announced")
	default:
	}
	if ev["node"] != "b" {
		t.Errorf("node.draining names %v, want b", ev["node"])
	}
	t.Logf("node.draining heard on a %v after SIGTERM to b", heardAt.Sub(termAt).Round(time.Millisecond))

	// b still serves the session the event asks the viewer to move.
	before := onB.Stats()
	waitVideo(t, ctx, onB, "video on b after node.draining", func(st mediatest.ViewerStats) bool {
		return st.Video.Packets > before.Video.Packets+60
	})
	// Make before break: the new session plays, then the old one is closed.
	onA, _ := watchOn(t, ctx, a, roomID)
	waitVideo(t, ctx, onA, "video on a", func(st mediatest.ViewerStats) bool {
		return !st.FirstKeyframeAt.IsZero() && st.Video.Packets > 60
	})
	if err := sigB.Delete(ctx); err != nil {
		t.Errorf("WHEP DELETE on draining b: %v (a session's DELETE must still work)", err)
	}
	_ = onB.Close()
	select {
	case <-b.Done():
	case <-ctx.Done():
		t.Fatal("b did not exit once its last session left")
	}
	if !strings.Contains(b.Log(), "sessions_left=0") {
		t.Errorf("b's drain did not end with no session left:\n%s", logTail(b.Log(), 10))
	}
	if m := bystander.next(200*time.Millisecond, "node.draining"); m != nil {
		t.Errorf("a room with no session on b heard %v", m)
	}
}
