package room_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"liveroom/room"
	"liveroom/room/roomtest"
)

// copyDir replaces dst with a copy of src's files (one level of
// subdirectories: Redis keeps its AOF in appendonlydir/).
func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	if err := os.RemoveAll(dst); err != nil {
		t.Fatal(err)
	}
	if err := os.CopyFS(dst, os.DirFS(src)); err != nil {
		t.Fatal(err)
	}
}

// A Redis restart that loses a room's last events but keeps its epoch key
// (AOF everysec, a crash within the second; or a failover) must not make
// seq reuse numbers nodes have delivered: the room starts a new epoch, the
// node that delivered the lost events follows it and delivers what comes
// next, and a page resuming with the old epoch gets a fresh welcome (the
// hub compares epochs).
// The loss is real: Redis restarts from a copy of its AOF taken before
// the last events.
func TestRedisBusNewEpochAfterLossyRestart(t *testing.T) {
	srv := roomtest.StartPersistentRedis(t)
	ctx := context.Background()
	rdb := srv.Client(t)
	dirs, err := rdb.ConfigGet(ctx, "dir").Result()
	if err != nil || dirs["dir"] == "" {
		t.Fatalf("config get dir: %v %v", dirs, err)
	}
	dir, backup := dirs["dir"], filepath.Join(t.TempDir(), "aof")
	cfg := room.RedisBusConfig{Prefix: roomtest.Prefix(), History: 100, CheckEvery: 50 * time.Millisecond}
	pub := room.NewRedisBus(rdb, cfg)
	sub := room.NewRedisBus(srv.Client(t), cfg)
	defer pub.Close()
	defer sub.Close()

	var mu sync.Mutex
	var got []int // the "i" of each delivered event
	cancel, err := sub.Subscribe(ctx, "r", func(d room.Delivery) {
		var b struct{ I int }
		_ = json.Unmarshal(d.Event.Body, &b)
		mu.Lock()
		got = append(got, b.I)
		mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	defer cancel()
	next := 0
	publish := func(n int) {
		t.Helper()
		for range n {
			if _, err := pub.Publish(ctx, "r", room.MustEvent("x", map[string]any{"i": next})); err != nil {
				t.Fatal(err)
			}
			next++
		}
	}
	wantGot := func(want []int) {
		t.Helper()
		deadline := time.Now().Add(roomtest.Wait)
		for {
			mu.Lock()
			g := slices.Clone(got)
			mu.Unlock()
			if slices.Equal(g, want) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("delivered: got %v, want %v", g, want)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	restart := func(from string) {
		t.Helper()
		srv.Stop()
		if from != "" {
			copyDir(t, from, dir)
		}
		if err := srv.Start(); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(roomtest.Wait)
		for rdb.Ping(ctx).Err() != nil {
			if time.Now().After(deadline) {
				t.Fatal("redis does not answer after the restart")
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	publish(5)
	wantGot([]int{0, 1, 2, 3, 4})
	srv.Stop() // appendfsync always: the file holds all five
	copyDir(t, dir, backup)
	restart("")
	publish(3) // delivered, then lost
	wantGot([]int{0, 1, 2, 3, 4, 5, 6, 7})
	before, err := pub.Position(ctx, "r")
	if err != nil {
		t.Fatal(err)
	}

	restart(backup)
	publish(4)
	wantGot([]int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11})
	after, err := pub.Position(ctx, "r")
	if err != nil || after.Epoch == before.Epoch || after.Seq != 4 {
		t.Fatalf("position after the loss: got %+v %v, want seq 4 in an epoch other than %s", after, err, before.Epoch)
	}

	t.Run("a plain restart keeps the epoch once it is known", func(t *testing.T) {
		// A restart that lost nothing still starts a new epoch: Redis
		// cannot tell; later scripts in the same run keep it.
		restart("")
		publish(1)
		p1, err := pub.Position(ctx, "r")
		if err != nil || p1.Epoch == after.Epoch || p1.Seq != 1 {
			t.Fatalf("after a restart: got %+v %v, want seq 1 in a new epoch", p1, err)
		}
		publish(2)
		p2, err := pub.Position(ctx, "r")
		if err != nil || p2.Epoch != p1.Epoch || p2.Seq != 3 {
			t.Fatalf("same run: got %+v %v, want seq 3 in epoch %s", p2, err, p1.Epoch)
		}
		wantGot([]int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14})
	})
}

// BenchmarkRedisBusPublish is one room event through the publish script
// (which reads Redis's run_id each time) on a local redis-server.
func BenchmarkRedisBusPublish(b *testing.B) {
	srv := roomtest.StartRedis(b)
	bus := room.NewRedisBus(srv.Client(b), room.RedisBusConfig{Prefix: roomtest.Prefix(), History: 1000})
	defer bus.Close()
	ctx := context.Background()
	ev := room.MustEvent("chat.message", map[string]any{"text": "hello"})
	b.ResetTimer()
	for b.Loop() {
		if _, err := bus.Publish(ctx, "r", ev); err != nil {
			b.Fatal(err)
		}
	}
}
