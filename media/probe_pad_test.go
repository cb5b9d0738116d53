package media

import (
	"bytes"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
)

// A probe's padding goes out on the viewer's video stream between frames:
// numbered in sequence with the media around it (which moves up by as many
// numbers), with the last frame's timestamp, stamped with the
// transport-wide sequence and logged for the estimator. A NACK of a media
// packet sent before the padding retransmits it under its own number; a
// NACK of a padding packet sends padding with that number again.
func TestProbePaddingNumbering(t *testing.T) {
	s := bareSFU(t, 256)
	r := newRoom(s, "t")
	type out struct {
		seq     uint16
		ts      uint32
		padding bool
		marker  bool
		tseq    uint16
		payload []byte
	}
	var mu sync.Mutex
	var got []out
	v := fakeViewer(t, r, func(h *rtp.Header, payload []byte) {
		o := out{seq: h.SequenceNumber, ts: h.Timestamp, padding: h.Padding && h.PaddingSize == paddingSize && len(payload) == 0,
			marker: h.Marker, payload: append([]byte(nil), payload...)}
		if e := h.GetExtension(3); len(e) == 2 {
			o.tseq = uint16(e[0])<<8 | uint16(e[1])
		}
		mu.Lock()
		got = append(got, o)
		mu.Unlock()
	})
	snapshot := func() []out {
		mu.Lock()
		defer mu.Unlock()
		return append([]out(nil), got...)
	}
	waitFor := func(what string, cond func([]out) bool) []out {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); ; {
			g := snapshot()
			if cond(g) {
				return g
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within 5 s; sent %+v", what, g)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	countPad := func(g []out) (n int) {
		for _, o := range g {
			if o.padding {
				n++
			}
		}
		return n
	}
	in := feed(t, r, &fakeSource{host: "h"})
	in.writeRTP(h264Packet(100, 1000, stapSPSPPS))
	in.writeRTP(h264Packet(101, 4000, singleP))
	waitFor("the first frames", func(g []out) bool { return len(g) == 2 })

	v.pad.set(2_000_000, time.Now().Add(time.Hour))
	v.queue.kick()
	g := waitFor("padding", func(g []out) bool { return countPad(g) >= 20 })
	v.pad.set(0, time.Time{})
	time.Sleep(30 * time.Millisecond) // the writer sees the stop
	n := len(snapshot())
	in.writeRTP(h264Packet(102, 7000, singleP))
	in.writeRTP(h264Packet(103, 10000, singleP))
	g = waitFor("media after the padding", func(g []out) bool { return len(g) >= n+2 })
	for i := 1; i < len(g); i++ {
		if g[i].seq != g[i-1].seq+1 {
			t.Fatalf("packet %d: seq %d after %d, want +1", i, g[i].seq, g[i-1].seq)
		}
		if g[i].tseq != g[i-1].tseq+1 {
			t.Fatalf("packet %d: transport seq %d after %d, want +1", i, g[i].tseq, g[i-1].tseq)
		}
		if g[i].padding && (!g[i-1].marker && !g[i-1].padding || g[i].ts != g[i-1].ts || g[i].marker) {
			t.Fatalf("packet %d: padding %+v after %+v, want it after a frame's last packet, with its timestamp", i, g[i], g[i-1])
		}
	}
	for _, o := range g {
		if _, size, ok := v.tw.lookup(o.tseq); !ok || o.padding && size < paddingSize {
			t.Fatalf("transport seq %d (padding %v) logged %v with %d bytes", o.tseq, o.padding, ok, size)
		}
	}
	if countPad(g[len(g)-2:]) != 0 || g[len(g)-1].ts != 10000 {
		t.Fatalf("media after the padding: %+v", g[len(g)-2:])
	}

	// NACKs: the frame before the padding, a padding packet.
	var padSeq uint16
	for _, o := range g {
		if o.padding {
			padSeq = o.seq
			break
		}
	}
	before := g[1]
	v.nack(r.forwarders[kindVideo], &rtcp.TransportLayerNack{Nacks: []rtcp.NackPair{{PacketID: before.seq}, {PacketID: padSeq}}})
	g2 := waitFor("the retransmissions", func(g2 []out) bool { return len(g2) >= len(g)+2 })
	time.Sleep(30 * time.Millisecond)
	if g2 = snapshot(); len(g2) != len(g)+2 {
		t.Fatalf("%d packets sent for two NACKs, want 2", len(g2)-len(g))
	}
	var media, pad bool
	for _, rt := range g2[len(g):] {
		switch {
		case rt.padding && rt.seq == padSeq:
			pad = true // padding again: the receiver's gap closes
		case !rt.padding && rt.seq == before.seq && rt.ts == before.ts && bytes.Equal(rt.payload, before.payload):
			media = true
		default:
			t.Fatalf("retransmitted %+v; want the packet first sent as %+v and padding %d", rt, before, padSeq)
		}
	}
	if !media || !pad {
		t.Fatalf("retransmitted %+v: media %v, padding %v", g2[len(g):], media, pad)
	}
}

// outSegs maps the viewer's numbers back through switches and padding.
func TestOutSegs(t *testing.T) {
	var s outSegs
	s.begin(1, 1000, 0, 0)  // layer 1: 1000.. -> 1000..
	s.begin(1, 1010, 5, 5)  // padding 1010..1014, then 1010.. -> 1015..
	s.begin(0, 500, 525, 0) // a switch to layer 0 at 500 -> 1025..
	s.begin(0, 510, 526, 1) // padding after 509: 1035, then extended
	s.extend(528, 2)        // 1035..1037 padding, 510.. -> 1038..
	cases := []struct {
		out  uint16
		slot uint8
		src  uint16
		ok   bool
	}{
		{1000, 1, 1000, true}, {1009, 1, 1009, true}, {1010, 0, 0, false}, {1014, 0, 0, false},
		{1015, 1, 1010, true}, {1024, 1, 1019, true}, {1025, 0, 500, true}, {1034, 0, 509, true},
		{1035, 0, 0, false}, {1037, 0, 0, false}, {1038, 0, 510, true}, {999, 0, 0, false},
	}
	for _, c := range cases {
		slot, src, ok, pad := s.source(c.out)
		if ok != c.ok || ok && (slot != c.slot || src != c.src) {
			t.Errorf("source(%d) = %d, %d, %v; want %d, %d, %v", c.out, slot, src, ok, c.slot, c.src, c.ok)
		}
		if wantPad := !c.ok && c.out != 999; pad != wantPad {
			t.Errorf("source(%d): padding %v, want %v", c.out, pad, wantPad)
		}
		if !c.ok {
			continue
		}
		if out, ok := s.outFor(c.slot, c.src); !ok || out != c.out {
			t.Errorf("outFor(%d, %d) = %d, %v; want %d", c.slot, c.src, out, ok, c.out)
		}
	}
}
