package roomtest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"liveroom/room"
)

// TestBus is the conformance suite every room.Bus implementation passes
// (memory and Redis). newCluster returns fresh buses keeping history
// events per room; two buses from the same call must act as two nodes of
// one cluster.
func TestBus(t *testing.T, history int, newCluster func(t *testing.T) (room.Bus, room.Bus)) {
	ctx := context.Background()
	ev := func(kind string, i int) room.Event {
		return room.MustEvent(kind, map[string]any{"i": i})
	}

	t.Run("seq and ts, no gaps, delivered in order to every node", func(t *testing.T) {
		a, b := newCluster(t)
		var mu sync.Mutex
		got := map[string][]uint64{}
		for name, bus := range map[string]room.Bus{"a": a, "b": b} {
			cancel, err := bus.Subscribe(ctx, "r1", func(d room.Delivery) {
				mu.Lock()
				got[name] = append(got[name], d.Event.Seq)
				mu.Unlock()
			})
			if err != nil {
				t.Fatal(err)
			}
			defer cancel()
		}
		for i := range 10 {
			pub := a
			if i%2 == 1 {
				pub = b
			}
			out, err := pub.Publish(ctx, "r1", ev("x", i))
			if err != nil {
				t.Fatal(err)
			}
			if out.Seq != uint64(i+1) || out.TS == 0 {
				t.Fatalf("publish %d: got seq %d ts %d, want seq %d", i, out.Seq, out.TS, i+1)
			}
		}
		waitUntil(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(got["a"]) == 10 && len(got["b"]) == 10 })
		for name, seqs := range got {
			for i, s := range seqs {
				if s != uint64(i+1) {
					t.Fatalf("node %s delivery %d: got seq %d, want %d", name, i, s, i+1)
				}
			}
		}
	})

	t.Run("rooms are independent", func(t *testing.T) {
		a, _ := newCluster(t)
		x, _ := a.Publish(ctx, "ra", ev("x", 0))
		y, _ := a.Publish(ctx, "rb", ev("x", 0))
		if x.Seq != 1 || y.Seq != 1 {
			t.Fatalf("first seqs: got %d and %d, want 1 and 1", x.Seq, y.Seq)
		}
	})

	t.Run("since: history, transient events, gaps", func(t *testing.T) {
		a, b := newCluster(t)
		for i := range history + 5 {
			if _, err := a.Publish(ctx, "r", ev("x", i)); err != nil {
				t.Fatal(err)
			}
			tr := ev("viewers", i)
			tr.Transient = true
			if _, err := a.Publish(ctx, "r", tr); err != nil {
				t.Fatal(err)
			}
		}
		last := uint64(2 * (history + 5))
		pos, err := b.Position(ctx, "r")
		if err != nil || pos.Seq != last || pos.Epoch == "" {
			t.Fatalf("position: got %+v %v, want seq %d and an epoch", pos, err, last)
		}
		evs, p2, complete, err := b.Since(ctx, "r", last-4)
		if err != nil || !complete || p2 != pos {
			t.Fatalf("since recent: complete %v pos %+v err %v", complete, p2, err)
		}
		if len(evs) != 2 || evs[0].Seq != last-3 || evs[1].Seq != last-1 {
			t.Fatalf("since recent: got %v, want the 2 non-transient events", seqsOf(evs))
		}
		if _, _, complete, _ := b.Since(ctx, "r", 1); complete {
			t.Fatalf("since an evicted seq: got complete, want a gap")
		}
		if _, _, complete, _ := b.Since(ctx, "r", last+1); complete {
			t.Fatalf("since a seq ahead of the room: got complete")
		}
		if evs, _, complete, _ := b.Since(ctx, "r", last); !complete || len(evs) != 0 {
			t.Fatalf("since the last seq: got %d events complete=%v", len(evs), complete)
		}
	})

	t.Run("targeted sends reach every node, without seq", func(t *testing.T) {
		a, b := newCluster(t)
		var mu sync.Mutex
		var got []room.Delivery
		cancel, err := b.Subscribe(ctx, "r", func(d room.Delivery) { mu.Lock(); got = append(got, d); mu.Unlock() })
		if err != nil {
			t.Fatal(err)
		}
		if err := a.Send(ctx, "r", room.Delivery{Event: ev("cart", 1), UserID: "u1", Close: "banned"}); err != nil {
			t.Fatal(err)
		}
		waitUntil(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(got) == 1 })
		if d := got[0]; d.UserID != "u1" || d.Close != "banned" || d.Event.Seq != 0 || d.Event.Type != "cart" {
			t.Fatalf("delivery: got %+v", d)
		}
		cancel()
		_ = a.Send(ctx, "r", room.Delivery{Event: ev("cart", 2)})
		if _, err := a.Publish(ctx, "r", ev("x", 3)); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		defer mu.Unlock()
		if len(got) != 1 {
			t.Fatalf("after cancel: got %d deliveries, want 1", len(got))
		}
	})

	t.Run("targeted sends reach the sender's own subscribers once", func(t *testing.T) {
		a, _ := newCluster(t)
		var mu sync.Mutex
		var targeted, events int
		cancel, err := a.Subscribe(ctx, "own", func(d room.Delivery) {
			mu.Lock()
			defer mu.Unlock()
			if d.Event.Seq == 0 {
				targeted++
			} else {
				events++
			}
		})
		if err != nil {
			t.Fatal(err)
		}
		defer cancel()
		if err := a.Send(ctx, "own", room.Delivery{Event: ev("cart", 1), UserID: "u1"}); err != nil {
			t.Fatal(err)
		}
		// A room event published after it arrives after it: by then a
		// second copy of the targeted one would have arrived too.
		if _, err := a.Publish(ctx, "own", ev("x", 2)); err != nil {
			t.Fatal(err)
		}
		waitUntil(t, func() bool { mu.Lock(); defer mu.Unlock(); return events == 1 })
		time.Sleep(50 * time.Millisecond)
		mu.Lock()
		defer mu.Unlock()
		if targeted != 1 {
			t.Fatalf("targeted deliveries: got %d, want 1", targeted)
		}
	})

	t.Run("presence sums nodes; counters add", func(t *testing.T) {
		a, b := newCluster(t)
		if n, _ := a.Presence(ctx, "r", "node-a", 3); n != 3 {
			t.Fatalf("presence a: got %d, want 3", n)
		}
		if n, _ := b.Presence(ctx, "r", "node-b", 4); n != 7 {
			t.Fatalf("presence a+b: got %d, want 7", n)
		}
		if n, _ := a.Presence(ctx, "r", "node-a", 0); n != 4 {
			t.Fatalf("presence after a leaves: got %d, want 4", n)
		}
		for i, want := range []int64{5, 12, 12} {
			d := []int64{5, 7, 0}[i]
			if got, err := []room.Bus{a, b, a}[i].Add(ctx, "r", "likes", d); err != nil || got != want {
				t.Fatalf("add %d: got %d %v, want %d", d, got, err, want)
			}
		}
	})
}

func seqsOf(evs []room.Event) string {
	s := ""
	for _, e := range evs {
		s += fmt.Sprint(e.Seq, " ")
	}
	return s
}

func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(Wait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %s", Wait)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
