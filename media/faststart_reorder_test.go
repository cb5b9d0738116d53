package media

import (
	"testing"
	"time"

	"github.com/pion/rtp"
)

// A cached GOP holds its packets in forwarding order: a retransmission that
// reached this node late (an edge's pull, a publisher's NACKed packet) sits
// after packets numbered above it. The fast start's timestamp compression
// must follow each packet's own timestamp, not its place: by place, the late
// packet and every one after it took a neighbour's timestamp, frames were
// split across two timestamps, and Chrome, with no packet missing and so
// nothing to NACK, never completed another frame until it asked for a
// keyframe seconds later (TestBrowserClusterEdge's late viewer: 1,211
// packets received, 1 frame).
func TestFastStartCompressionWithALatePacket(t *testing.T) {
	s := bareSFU(t, 64)
	r := newRoom(s, "late")
	in := feed(t, r, &fakeSource{host: "h"})
	frag := func(seq uint16, ts uint32, marker bool) *rtp.Packet {
		p := h264Packet(seq, ts, []byte{0x41, byte(seq)})
		p.Marker = marker
		return p
	}
	writeKeyframe(in, 10, 0) // 10, 11, 12 at ts 0
	in.writeRTP(frag(13, 3000, false))
	in.writeRTP(frag(15, 6000, false)) // 14, the frame's last, comes late
	in.writeRTP(frag(16, 6000, true))
	in.writeRTP(frag(14, 3000, true))
	in.writeRTP(frag(17, 9000, true))

	v := fakeViewer(t, r, func(*rtp.Header, []byte) {})
	f := r.video
	f.mu.Lock()
	cu := newCatchUp(f, v.tracks[kindVideo], time.Now())
	f.mu.Unlock()
	if cu == nil {
		t.Fatal("no catch-up from the cached GOP")
	}
	defer func() {
		for _, pk := range cu.backlog {
			pk.release()
		}
	}()
	order := make([]uint16, 0, len(cu.backlog))
	out := map[uint32]uint32{} // original timestamp -> compressed
	for _, pk := range cu.backlog {
		order = append(order, pk.seq)
		d, ok := cu.shift(pk)
		if !ok {
			t.Fatalf("cached packet %d not compressed", pk.seq)
		}
		got := pk.ts + d
		if want, seen := out[pk.ts]; seen && want != got {
			t.Fatalf("backlog %v: packet %d of the frame at %d compressed to %d, its frame's other packets to %d", order, pk.seq, pk.ts, got, want)
		}
		out[pk.ts] = got
	}
	t.Logf("backlog %v, timestamps %v", order, out)
	if out[9000] != 9000 || !(out[0] < out[3000] && out[3000] < out[6000] && out[6000] < out[9000]) {
		t.Errorf("compressed timestamps %v: want them in order, the newest frame unchanged", out)
	}
}
