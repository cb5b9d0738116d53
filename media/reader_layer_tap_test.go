package media

import (
	"testing"
	"time"
)

// In a simulcast room the tap waits for a keyframe of the layer the readers
// follow: another layer's keyframe (offered so that the stream can move to
// it) passes but does not end the wait, else the followed layer's frames
// after it would reach the assembler without their keyframe and nobody
// would ask that layer for one.
func TestTapKeyframeWaitIsTheFollowedLayers(t *testing.T) {
	s := bareSFU(t, 64)
	r := newRoom(s, "tapkey")
	tp := newTap() // waits for a keyframe, as after a drop
	offer := func(layer int, key bool) {
		f := r.layers[layer]
		pk := getPacket(f.pool)
		pk.kind, pk.layer, pk.keyframe = kindVideo, uint8(layer), key
		tp.offer(f, pk)
		pk.release()
	}
	queued := func() int { return len(tp.q) }

	offer(1, true) // the next layer's keyframe: queued, the wait goes on
	if queued() != 1 || !tp.needKey.Load() {
		t.Fatalf("after layer 1's keyframe: %d queued, waiting %v; want 1 queued and still waiting", queued(), tp.needKey.Load())
	}
	offer(0, false) // the followed layer, not a keyframe: dropped
	if queued() != 1 {
		t.Fatalf("the followed layer's inter frame was queued during the wait")
	}
	offer(0, true) // the followed layer's keyframe ends the wait
	offer(0, false)
	if queued() != 3 || tp.needKey.Load() {
		t.Fatalf("after layer 0's keyframe: %d queued, waiting %v; want 3 and not waiting", queued(), tp.needKey.Load())
	}

	// Following layer 1 now: its keyframe ends a wait, layer 0's does not.
	r.follow.layer.Store(1)
	tp.needKey.Store(true)
	offer(0, true)
	if !tp.needKey.Load() {
		t.Fatal("layer 0's keyframe ended the wait while the readers follow layer 1")
	}
	offer(1, true)
	if tp.needKey.Load() {
		t.Fatal("layer 1's keyframe did not end the wait while the readers follow it")
	}

	// The layer the readers are about to move to: its keyframe ends a wait
	// too (the stream moves at it, and needs the rest of it).
	r.follow.want.Store(2)
	tp.needKey.Store(true)
	offer(2, true)
	before := queued()
	offer(2, false)
	if tp.needKey.Load() || queued() != before+1 {
		t.Fatal("the wanted layer's keyframe did not end the wait, or the packet after it was dropped")
	}
	tp.drain()
}

// A keyframe of a layer the readers neither follow nor want yet reaches the
// taps whole, not only its first packets: the stream may decide to move to
// that layer at it, after the forwarder has gone on with its other packets.
// The layer's other frames stay out.
func TestTapGetsAnotherLayersWholeKeyframe(t *testing.T) {
	s := bareSFU(t, 64)
	r := newRoom(s, "tapwhole")
	f := r.layers[1] // the readers follow layer 0
	pk := getPacket(f.pool)
	defer pk.release()
	offered := func(ts uint32, key bool) bool {
		pk.kind, pk.layer, pk.keyframe, pk.ts = kindVideo, 1, key, ts
		f.mu.Lock()
		defer f.mu.Unlock()
		return f.offerTap(pk)
	}
	if offered(3000, false) {
		t.Fatal("an inter frame of a layer nobody follows was offered")
	}
	for i, key := range []bool{true, true, false, false} { // STAP-A, FU-A start, the rest
		if !offered(6000, key) {
			t.Fatalf("packet %d of layer 1's keyframe was not offered", i)
		}
	}
	if offered(9000, false) {
		t.Fatal("the inter frame after layer 1's keyframe was offered")
	}
	r.follow.want.Store(1)
	if !offered(12000, false) {
		t.Fatal("an inter frame of the wanted layer was not offered")
	}
}

// chooseLayer's rules, on a room whose layers' liveness and bitrates are
// set by hand (a tick at a time, as the stream's look every readerCheck).
func TestChooseLayerRules(t *testing.T) {
	type layer struct {
		sending bool
		bps     int64
	}
	setup := func(t *testing.T, cur int32) (*stream, func(now time.Time, ls ...layer) int32) {
		s := bareSFU(t, 64)
		r := newRoom(s, "choose")
		src := &fakeSource{host: "h"}
		for _, f := range r.layers[:3] {
			f.cur.Store(&ingest{f: f, src: src})
		}
		r.follow.layer.Store(cur)
		st := &stream{r: r, fs: followState{upSlot: -1}}
		tick := func(now time.Time, ls ...layer) int32 {
			for i, l := range ls {
				f := r.layers[i]
				if l.sending {
					f.rate.last.Store(now.UnixNano())
				}
				f.rate.bps.Store(l.bps)
			}
			st.chooseLayer(now)
			return r.follow.want.Load()
		}
		return st, tick
	}
	t0 := time.Now()
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	silent := layer{}

	t.Run("a followed layer that never starts, with no packet reaching the stream", func(t *testing.T) {
		// The tap drops the other layers' inter frames while it waits for
		// the followed layer's keyframe: the look at the layers alone must
		// start the grace, and end it.
		_, tick := setup(t, 0)
		if w := tick(at(0), silent, layer{true, 500_000}, layer{true, 150_000}); w != -1 {
			t.Fatalf("want %d at once: the followed layer may be only a few packets late", w)
		}
		if w := tick(at(readerStall/2), silent, layer{true, 500_000}, layer{true, 150_000}); w != -1 {
			t.Fatalf("want %d within readerStall", w)
		}
		if w := tick(at(readerStall+readerCheck), silent, layer{true, 500_000}, layer{true, 150_000}); w != 1 {
			t.Fatalf("want %d after readerStall with layer 0 silent, want 1 (the highest sent)", w)
		}
	})
	t.Run("two measured layers crossing: the hold", func(t *testing.T) {
		_, tick := setup(t, 1)
		for d := time.Duration(0); d < readerUpHold; d += readerCheck {
			if w := tick(at(d), layer{true, 600_000}, layer{true, 550_000}, layer{true, 150_000}); w != -1 {
				t.Fatalf("want %d after %v: a measured layer overtaking the followed one waits readerUpHold", w, d)
			}
		}
		if w := tick(at(readerUpHold+readerCheck), layer{true, 600_000}, layer{true, 550_000}, layer{true, 150_000}); w != 0 {
			t.Fatalf("want %d after readerUpHold, want 0", w)
		}
	})
	t.Run("a layer that has just started: at once", func(t *testing.T) {
		_, tick := setup(t, 1)
		tick(at(0), silent, layer{true, 550_000}, layer{true, 150_000})
		if w := tick(at(readerCheck), layer{true, 0}, layer{true, 550_000}, layer{true, 150_000}); w != 0 {
			t.Fatalf("want %d when the top layer starts (not measured yet), want 0 at once", w)
		}
	})
}
