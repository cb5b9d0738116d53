package media

import (
	"testing"
	"time"

	"github.com/pion/rtcp"
)

// feedbackFor builds the TWCC feedback a receiver would send for packets
// first..first+n-1 sent every gap, each arriving after delay(i), with
// lost(i) ones missing.
func feedbackFor(first uint16, n int, sentAt func(i int) int64, delay func(i int) int64, lost func(i int) bool) *rtcp.TransportLayerCC {
	fb := &rtcp.TransportLayerCC{BaseSequenceNumber: first, PacketStatusCount: uint16(n)}
	var prev int64
	ref := int64(-1)
	for i := range n {
		sym := uint16(rtcp.TypeTCCPacketNotReceived)
		if !lost(i) {
			sym = rtcp.TypeTCCPacketReceivedLargeDelta
			arr := sentAt(i) + delay(i)
			if ref < 0 {
				ref = arr / 64000
				fb.ReferenceTime = uint32(ref)
				prev = ref * 64000
			}
			fb.RecvDeltas = append(fb.RecvDeltas, &rtcp.RecvDelta{Type: sym, Delta: arr - prev})
			prev = arr
		}
		fb.PacketChunks = append(fb.PacketChunks, &rtcp.RunLengthChunk{PacketStatusSymbol: sym, RunLength: 1})
	}
	return fb
}

func TestBWE(t *testing.T) {
	const pktSize = 1000
	const gap = 4000 // µs: 1000 B every 4 ms = 2 Mbit/s
	cases := []struct {
		name      string
		delay     func(i int) int64 // µs, by packet index over the whole run
		lost      func(i int) bool
		congested bool
		severe    bool
		estMin    int64
		estMax    int64
	}{
		{"steady path", func(int) int64 { return 20_000 }, func(int) bool { return false }, false, false, 1_800_000, 3_100_000},
		{"queue building", func(i int) int64 { return 20_000 + int64(i)*400 }, func(int) bool { return false }, true, true, 1, 1_800_000},
		{"a short burst of delay", func(i int) int64 { return 20_000 + int64(max(0, i-700))*600 }, func(int) bool { return false }, false, false, 1_800_000, 3_100_000},
		{"20% loss", func(int) int64 { return 20_000 }, func(i int) bool { return i%5 == 0 }, true, true, 1, 1_800_000},
		{"1% loss is not congestion", func(int) int64 { return 20_000 }, func(i int) bool { return i%100 == 0 }, false, false, 1_500_000, 3_100_000},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			log := &twccLog{epoch: time.Unix(0, 0)}
			e := newBWE(log)
			now := time.Unix(100, 0)
			var smp bweSample
			// 3 s of feedback, every 100 ms (25 packets each).
			for f := range 30 {
				base := f * 25
				for i := range 25 {
					seq := uint16(base + i)
					log.sent(seq, log.now(log.epoch.Add(time.Duration(int64(base+i)*gap)*time.Microsecond)), pktSize)
				}
				fb := feedbackFor(uint16(base), 25,
					func(i int) int64 { return int64(base+i) * gap },
					func(i int) int64 { return c.delay(base + i) },
					func(i int) bool { return c.lost(base + i) })
				now = now.Add(100 * time.Millisecond)
				var ok bool
				if smp, ok = e.feedback(now, twccWalk(fb)); !ok {
					t.Fatalf("feedback %d not digested", f)
				}
			}
			if smp.congested != c.congested {
				t.Fatalf("congested = %v, want %v (%+v, queue %.1f ms, loss %.3f)", smp.congested, c.congested, smp, e.queueDelay, e.loss)
			}
			if smp.severe != c.severe {
				t.Fatalf("severe = %v, want %v (%+v)", smp.severe, c.severe, smp)
			}
			if smp.est < c.estMin || smp.est > c.estMax {
				t.Fatalf("estimate %d, want %d..%d (%+v)", smp.est, c.estMin, c.estMax, smp)
			}
		})
	}
}

func TestEachTWCCVectorChunk(t *testing.T) {
	fb := &rtcp.TransportLayerCC{BaseSequenceNumber: 65534, PacketStatusCount: 4, ReferenceTime: 1,
		PacketChunks: []rtcp.PacketStatusChunk{&rtcp.StatusVectorChunk{SymbolSize: rtcp.TypeTCCSymbolSizeTwoBit,
			SymbolList: []uint16{rtcp.TypeTCCPacketReceivedSmallDelta, rtcp.TypeTCCPacketNotReceived,
				rtcp.TypeTCCPacketReceivedLargeDelta, rtcp.TypeTCCPacketReceivedSmallDelta, rtcp.TypeTCCPacketNotReceived}}},
		RecvDeltas: []*rtcp.RecvDelta{{Delta: 250}, {Delta: -500}, {Delta: 1000}},
	}
	type st struct {
		seq uint16
		ok  bool
		arr int64
	}
	var got []st
	eachTWCC(fb, func(seq uint16, received bool, arr int64) { got = append(got, st{seq, received, arr}) })
	want := []st{{65534, true, 64250}, {65535, false, 0}, {0, true, 63750}, {1, true, 64750}}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
}

func twccWalk(fb *rtcp.TransportLayerCC) func(func(uint16, bool, int64)) bool {
	return func(fn func(uint16, bool, int64)) bool { eachTWCC(fb, fn); return true }
}
