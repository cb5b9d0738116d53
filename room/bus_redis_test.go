package room_test

import (
	"context"
	"sync"
	"time"

	"testing"

	"liveroom/room"
	"liveroom/room/roomtest"
)

func TestRedisBus(t *testing.T) {
	const history = 8
	srv := roomtest.StartRedis(t)
	roomtest.TestBus(t, history, func(t *testing.T) (room.Bus, room.Bus) {
		prefix := roomtest.Prefix()
		var buses [2]room.Bus
		for i := range buses {
			b := room.NewRedisBus(srv.Client(t), room.RedisBusConfig{Prefix: prefix, History: history})
			t.Cleanup(func() { b.Close() })
			buses[i] = b
		}
		return buses[0], buses[1]
	})
}

// A pub/sub connection cut (or Redis restarted) loses messages on the
// wire; the subscriber still delivers every kept event, once, in order.
func TestRedisBusRecoversLostMessages(t *testing.T) {
	srv := roomtest.StartRedis(t)
	ctx := context.Background()
	prefix := roomtest.Prefix()
	cfg := room.RedisBusConfig{Prefix: prefix, History: 1000, CheckEvery: 50 * time.Millisecond}
	a := room.NewRedisBus(srv.Client(t), cfg)
	b := room.NewRedisBus(srv.Client(t), cfg)
	defer a.Close()
	defer b.Close()

	var mu sync.Mutex
	var got []uint64
	var epochs []string
	cancel, err := b.Subscribe(ctx, "r", func(d room.Delivery) {
		mu.Lock()
		got = append(got, d.Event.Seq)
		mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	defer cancel()
	publish := func(n int) {
		for i := range n {
			if _, err := a.Publish(ctx, "r", room.MustEvent("x", map[string]any{"i": i})); err != nil {
				t.Fatal(err)
			}
		}
	}
	publish(20)
	if err := srv.Client(t).ClientKillByFilter(ctx, "TYPE", "pubsub").Err(); err != nil {
		t.Fatal(err)
	}
	publish(30)
	want := func(n int) {
		t.Helper()
		deadline := time.Now().Add(roomtest.Wait)
		for {
			mu.Lock()
			ok := len(got) >= n
			snapshot := append([]uint64(nil), got...)
			mu.Unlock()
			if ok {
				for i, s := range snapshot {
					if s != uint64(i+1) {
						t.Fatalf("delivery %d: got seq %d, want %d (%v)", i, s, i+1, snapshot)
					}
				}
				if len(snapshot) != n {
					t.Fatalf("got %d deliveries, want %d", len(snapshot), n)
				}
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("got %d deliveries, want %d", len(snapshot), n)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	want(50)
	pos, _ := a.Position(ctx, "r")
	epochs = append(epochs, pos.Epoch)

	// Redis restarts empty: the room starts a new epoch at seq 1, and the
	// subscriber follows it.
	srv.Stop()
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	got = nil
	mu.Unlock()
	deadline := time.Now().Add(roomtest.Wait)
	for {
		if _, err := a.Publish(ctx, "r", room.MustEvent("x", nil)); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("publish after restart keeps failing")
		}
		time.Sleep(20 * time.Millisecond)
	}
	publish(4)
	want(5)
	pos, _ = a.Position(ctx, "r")
	if pos.Epoch == epochs[0] || pos.Seq != 5 {
		t.Fatalf("after restart: got %+v, want seq 5 in a new epoch (old %s)", pos, epochs[0])
	}
}

func TestRedisBusPresenceExpires(t *testing.T) {
	srv := roomtest.StartRedis(t)
	ctx := context.Background()
	b := room.NewRedisBus(srv.Client(t), room.RedisBusConfig{Prefix: roomtest.Prefix(), PresenceTTL: 300 * time.Millisecond})
	if n, _ := b.Presence(ctx, "r", "dead", 5); n != 5 {
		t.Fatalf("presence: got %d, want 5", n)
	}
	time.Sleep(400 * time.Millisecond)
	if n, err := b.Presence(ctx, "r", "live", 2); err != nil || n != 2 {
		t.Fatalf("after the dead node's report expired: got %d %v, want 2", n, err)
	}
}
