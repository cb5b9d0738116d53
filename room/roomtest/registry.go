package roomtest

import (
	"context"
	"testing"
	"time"

	"liveroom/room"
)

// TestRegistry is the conformance suite of room.Registry; newRegistry
// returns two handles on one registry (two nodes).
func TestRegistry(t *testing.T, newRegistry func(t *testing.T) (room.Registry, room.Registry)) {
	ctx := context.Background()
	a, b := newRegistry(t)
	if err := a.Heartbeat(ctx, room.NodeInfo{ID: "n1", HTTPURL: "http://127.0.0.1:1", Conns: 3}, time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := b.Heartbeat(ctx, room.NodeInfo{ID: "n2", HTTPURL: "http://127.0.0.1:2"}, 300*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	nodes, err := b.Nodes(ctx)
	if err != nil || len(nodes) != 2 || nodes[0].ID != "n1" || nodes[0].Conns != 3 || nodes[0].HTTPURL != "http://127.0.0.1:1" || nodes[0].Seen == 0 {
		t.Fatalf("nodes: got %+v %v, want n1 (3 conns, seen) and n2", nodes, err)
	}
	// n2 stops beating: it is gone after its TTL.
	waitUntil(t, func() bool { n, _ := a.Nodes(ctx); return len(n) == 1 && n[0].ID == "n1" })
	if err := a.Leave(ctx, "n1"); err != nil {
		t.Fatal(err)
	}
	if n, _ := b.Nodes(ctx); len(n) != 0 {
		t.Fatalf("after leave: got %+v", n)
	}
}
