package room_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"liveroom/room"
	"liveroom/room/roomtest"
)

// ObserveRoom sees the room events another node publishes (two hubs, each
// with its own bus on one redis-server, as two nodes), with no WebSocket of
// the room open on the observing node; never a targeted event; nothing after
// cancel.
func TestObserveRoomSeesOtherNodes(t *testing.T) {
	srv := roomtest.StartRedis(t)
	cfg := room.RedisBusConfig{Prefix: roomtest.Prefix(), History: 100}
	busA, busB := room.NewRedisBus(srv.Client(t), cfg), room.NewRedisBus(srv.Client(t), cfg)
	t.Cleanup(func() { _ = busA.Close(); _ = busB.Close() })
	a := roomtest.New(t, roomtest.Options{Bus: busA})
	b := roomtest.New(t, roomtest.Options{Bus: busB})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	var mu sync.Mutex
	var got []string
	stop, err := a.Hub.ObserveRoom(ctx, "demo", func(ev room.Event) {
		mu.Lock()
		got = append(got, ev.Type)
		mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	seen := func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), got...)
	}
	if err := b.Hub.SendRole(ctx, "demo", room.RoleHost, room.MustEvent("record.stopped", map[string]any{"reason": "x"})); err != nil {
		t.Fatal(err)
	}
	for _, kind := range []string{"product.pinned", "chat.message", "product.updated"} {
		if _, err := b.Hub.Publish(ctx, "demo", room.MustEvent(kind, map[string]any{"n": 1})); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := b.Hub.Publish(ctx, "other", room.MustEvent("product.pinned", map[string]any{"n": 2})); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "three events observed on a", func() bool { return len(seen()) >= 3 })
	stop()
	if _, err := b.Hub.Publish(ctx, "demo", room.MustEvent("product.unpinned", map[string]any{"n": 3})); err != nil {
		t.Fatal(err)
	}
	// The publish after cancel must not arrive: a marker published on the
	// same room through a fresh observer shows delivery has passed it.
	marker := make(chan struct{}, 1)
	stop2, err := a.Hub.ObserveRoom(ctx, "demo", func(ev room.Event) {
		if ev.Type == "test.marker" {
			marker <- struct{}{}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer stop2()
	if _, err := b.Hub.Publish(ctx, "demo", room.MustEvent("test.marker", nil)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-marker:
	case <-ctx.Done():
		t.Fatal("marker not delivered")
	}
	want := []string{"product.pinned", "chat.message", "product.updated"}
	if g := seen(); len(g) != len(want) || g[0] != want[0] || g[1] != want[1] || g[2] != want[2] {
		t.Errorf("observed %v, want %v (no targeted event, no other room, nothing after cancel)", g, want)
	}
}
