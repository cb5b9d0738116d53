package media

import (
	"testing"
	"time"
)

// TestPacketGOP: the cache starts at a keyframe, extends with what follows,
// drops a GOP that outgrows its cap (until the next keyframe) and refuses a
// stale one.
func TestPacketGOP(t *testing.T) {
	pool := newPacketPool()
	mk := func(key bool, n int) *packet {
		pk := getPacket(pool)
		pk.kind, pk.keyframe, pk.n = kindVideo, key, n
		return pk
	}
	all := func(*packet) bool { return true }
	now := time.Now()
	var g packetGOP
	g.add(mk(false, 1000), now) // before any keyframe: not kept
	if pkts, _, _ := g.snapshot(now, all); pkts != nil {
		t.Fatalf("got %d packets before a keyframe, want none", len(pkts))
	}
	g.add(mk(true, 1000), now)
	g.add(mk(false, 1000), now.Add(10*time.Millisecond))
	pkts, bytes, age := g.snapshot(now.Add(20*time.Millisecond), all)
	if len(pkts) != 2 || bytes != 2000 || age != 20*time.Millisecond || !pkts[0].keyframe {
		t.Fatalf("got %d packets, %d bytes, age %v; want 2 from the keyframe, 2000, 20ms", len(pkts), bytes, age)
	}
	for _, pk := range pkts {
		pk.release()
	}
	if pkts, _, _ := g.snapshot(now.Add(fastStartMaxAge+20*time.Millisecond), all); pkts != nil {
		t.Errorf("a GOP whose source stopped %v ago was offered; want none", fastStartMaxAge)
	}
	for range fastStartMaxBytes / 1000 {
		g.add(mk(false, 1000), now)
	}
	if pkts, _, _ := g.snapshot(now, all); pkts != nil {
		t.Errorf("a GOP over %d bytes was offered (%d packets); want none until the next keyframe", fastStartMaxBytes, len(pkts))
	}
	g.add(mk(false, 1000), now)
	if pkts, _, _ := g.snapshot(now, all); pkts != nil {
		t.Errorf("inter-frames after an oversized GOP started a new one")
	}
	g.add(mk(true, 1), now)
	for range fastStartMaxPackets {
		g.add(mk(false, 1), now)
	}
	if pkts, _, _ := g.snapshot(now, all); pkts != nil {
		t.Errorf("a GOP of over %d packets was offered (%d)", fastStartMaxPackets, len(pkts))
	}
	g.add(mk(true, 1000), now)
	if pkts, _, _ := g.snapshot(now, func(*packet) bool { return false }); pkts != nil {
		t.Errorf("a GOP the viewer cannot decode was offered")
	}
	if pkts, _, _ := g.snapshot(now, all); len(pkts) != 1 {
		t.Errorf("after the next keyframe: %d packets, want 1", len(pkts))
	}
}
