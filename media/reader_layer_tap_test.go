package media

import "testing"

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
