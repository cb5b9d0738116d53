package media

import (
	"testing"
	"time"

	"github.com/pion/rtcp"
)

func TestRTXBudget(t *testing.T) {
	b := newRTXBudget()
	b.setRate(800_000) // 100,000 bytes a second
	t0 := time.Unix(1000, 0)
	n := 0
	for b.take(t0, 1000) {
		n++
	}
	if n != 100 {
		t.Fatalf("a full budget took %d packets of 1000 bytes, want 100 (one second of 800 kbit/s)", n)
	}
	if b.take(t0.Add(5*time.Millisecond), 1000) {
		t.Error("5 ms refills 500 bytes: a 1000-byte packet must not fit")
	}
	if !b.take(t0.Add(20*time.Millisecond), 1000) {
		t.Error("20 ms refill 2,000 bytes: a 1000-byte packet must fit")
	}
	// Refill stops at one second's worth.
	n = 0
	for b.take(t0.Add(time.Hour), 1000) {
		n++
	}
	if n != 100 {
		t.Errorf("after an hour idle: %d packets, want the 100 of one window", n)
	}
	// The floor: an estimate near zero still lets audio recover.
	b.setRate(10_000)
	n = 0
	for b.take(t0.Add(3*time.Hour), 100) {
		n++
	}
	if n != rtxMinRate/8/100 {
		t.Errorf("at the floor: %d packets of 100 bytes, want %d", n, rtxMinRate/8/100)
	}
	var edge *rtxBudget
	if !edge.take(t0, 1<<20) {
		t.Error("an edge pull (no budget) was refused")
	}
}

// TestNACKStormCapped: a viewer asking for the whole history again and again
// gets at most its budget's worth of retransmissions (one second of its
// estimate), and more only as the budget refills.
func TestNACKStormCapped(t *testing.T) {
	s := bareSFU(t, 8192)
	r := newRoom(s, "t")
	rec := &recorder{}
	v := fakeViewer(t, r, rec.write)
	v.rtx.setRate(400_000) // 50,000 bytes a second
	in := feed(t, r, &fakeSource{host: "h"})
	in.writeRTP(h264Packet(100, 0, stapSPSPPS))
	body := make([]byte, 1000)
	body[0] = 0x41
	for i := 1; i < 100; i++ {
		in.writeRTP(h264Packet(uint16(100+i), uint32(i*3000), body))
	}
	rec.waitLen(t, 100)

	storm := func() {
		for range 20 {
			var pairs []rtcp.NackPair
			for seq := 101; seq < 200; seq += 17 {
				pairs = append(pairs, rtcp.NackPair{PacketID: uint16(seq), LostPackets: 0xffff})
			}
			v.nack(r.video, &rtcp.TransportLayerNack{Nacks: pairs})
		}
	}
	settle := func() int {
		time.Sleep(100 * time.Millisecond) // the writer drains what was queued
		return len(rec.snapshot()) - 100
	}
	storm()
	first := settle()
	// 20 rounds of 99 asked: without a cap ~1,980 retransmissions.
	if first < 40 || first > 60 {
		t.Fatalf("first storm: %d retransmissions of 1000-byte packets, want ~50 (50,000 bytes of budget)", first)
	}
	time.Sleep(200 * time.Millisecond)
	storm()
	second := settle() - first
	// ≥ 300 ms refilled ≥ 15,000 bytes; at most the window refills.
	if second < 10 || second > 55 {
		t.Errorf("second storm after ~300 ms: %d more retransmissions, want what ~300 ms refilled (15+), at most a window (50)", second)
	}
	t.Logf("retransmitted %d, then %d", first, second)
}
