package media

import (
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtp"
)

// fakeTap puts a tap on r (made live if needed) whose packets go to deliver
// on the tap's own goroutine.
func fakeTap(t testing.TB, r *room, deliver func(*packet) bool) *tap {
	t.Helper()
	r.mu.Lock()
	r.live = true
	r.mu.Unlock()
	tp := newTap()
	if !r.addTap(tp) {
		t.Fatal("addTap refused")
	}
	if !r.sfu.spawn(func() { tp.run(nil, deliver, func(bool) bool { r.removeTap(tp); return false }) }) {
		t.Fatal("sfu closed")
	}
	t.Cleanup(tp.close)
	return tp
}

func nTaps(r *room) int { return len(*r.taps.Load()) }

// TestTapGetsRewrittenPackets: a tap sees what viewers see (kind, codec,
// rewritten seq/ts, marker, payload), starting at a keyframe, and is gone
// from the room once removed.
func TestTapGetsRewrittenPackets(t *testing.T) {
	s := bareSFU(t, 64)
	r := newRoom(s, "tap")
	rec := &recorder{}
	fakeViewer(t, r, rec.write)
	in := feed(t, r, &fakeSource{host: "h"})
	type got struct {
		k      kind
		codec  uint8
		seq    uint16
		ts     uint32
		marker bool
		first  byte
	}
	ch := make(chan got, 16)
	tp := fakeTap(t, r, func(pk *packet) bool {
		ch <- got{pk.kind, pk.codec, pk.seq, pk.ts, pk.marker, pk.payload()[0]}
		return true
	})
	in.writeRTP(h264Packet(500, 9000, []byte{0x41, 1})) // inter-frame: skipped
	in.writeRTP(h264Packet(501, 9000, stapSPSPPS))
	in.writeRTP(h264Packet(502, 12000, []byte{0x41, 2}))
	for i, want := range []byte{stapSPSPPS[0], 0x41} {
		select {
		case g := <-ch:
			if g.k != kindVideo || g.codec != 0 || g.first != want || !g.marker {
				t.Fatalf("packet %d: %+v", i, g)
			}
		case <-time.After(2 * time.Second):
			t.Fatalf("tap got %d packets, want 2", i)
		}
	}
	vs := rec.waitLen(t, 2)
	if vs[0].seq+1 != vs[1].seq {
		t.Fatalf("viewer seqs %d %d", vs[0].seq, vs[1].seq)
	}
	r.removeTap(tp)
	if nTaps(r) != 0 {
		t.Fatalf("taps after remove: %d", nTaps(r))
	}
}

// TestTapNeverBlocksFanout: a tap whose consumer is stuck fills its queue
// and drops; the viewer still gets every packet and the forwarder never
// waits. After a drop the tap resumes at a keyframe.
func TestTapNeverBlocksFanout(t *testing.T) {
	s := bareSFU(t, 4096)
	r := newRoom(s, "stuck")
	var n atomic.Int64
	fakeViewer(t, r, func(*rtp.Header, []byte) { n.Add(1) })
	src := &fakeSource{host: "h"}
	in := feed(t, r, src)
	gate := make(chan struct{})
	var delivered atomic.Int64
	tp := fakeTap(t, r, func(pk *packet) bool {
		<-gate
		delivered.Add(1)
		return true
	})
	total := tapQueue * 3
	start := time.Now()
	in.writeRTP(h264Packet(0, 0, stapSPSPPS))
	for i := 1; i < total; i++ {
		in.writeRTP(h264Packet(uint16(i), uint32(i)*3000, []byte{0x41, byte(i)}))
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("writing %d packets took %v with a stuck tap", total, d)
	}
	if tp.dropped.Load() == 0 || !tp.needKey.Load() {
		t.Fatalf("dropped %d, needKey %v; want drops and a wait for a keyframe", tp.dropped.Load(), tp.needKey.Load())
	}
	deadline := time.Now().Add(5 * time.Second)
	for n.Load() < int64(total) && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if n.Load() != int64(total) {
		t.Fatalf("viewer got %d of %d packets", n.Load(), total)
	}
	close(gate)
	for len(tp.q) > 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	before := delivered.Load()
	in.writeRTP(h264Packet(uint16(total), 0, []byte{0x41, 0})) // still waiting for a keyframe
	in.writeRTP(h264Packet(uint16(total+1), 0, stapSPSPPS))
	for delivered.Load() < before+1 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if got := delivered.Load() - before; got != 1 {
		t.Fatalf("after the drop the tap delivered %d packets, want 1 (the keyframe)", got)
	}
}

// TestTapFanoutAllocs: the forwarder's hot path stays allocation-free with a
// tap next to the viewers.
func TestTapFanoutAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under the race detector")
	}
	s := bareSFU(t, 4096)
	r := newRoom(s, "allocs")
	for range 4 {
		fakeViewer(t, r, func(*rtp.Header, []byte) {})
	}
	in := feed(t, r, &fakeSource{host: "h"})
	fakeTap(t, r, func(*packet) bool { return true })
	p := h264Packet(0, 0, stapSPSPPS)
	in.writeRTP(p)
	inter := []byte{0x41, 1, 2, 3}
	// A keyframe every 60 packets: the fast-start GOP cache
	// (faststart_gop.go) holds a GOP's packets until the next keyframe
	// returns them to the pool.
	next := func() {
		p.SequenceNumber++
		p.Payload = inter
		if p.SequenceNumber%60 == 0 {
			p.Payload = stapSPSPPS
			p.Timestamp += 3000 // a new frame: a new GOP
		}
		in.writeRTP(p)
	}
	// Fill the NACK history and warm the pool; then the steady state must
	// not allocate.
	for range 2*len(r.video.hist.slots) + 100 {
		next()
	}
	time.Sleep(50 * time.Millisecond)
	allocs := testing.AllocsPerRun(200, next)
	if allocs > 0.05 { // a GC may empty the pool once
		t.Fatalf("%.2f allocs per packet with a tap, want 0", allocs)
	}
}

// TestRoomOfflineSignalsTaps: a room going offline tells its taps.
func TestRoomOfflineSignalsTaps(t *testing.T) {
	s := bareSFU(t, 64)
	r := newRoom(s, "off")
	src := &fakeSource{host: "h"}
	feed(t, r, src)
	s.metrics.publishers.Inc()
	ended := make(chan struct{})
	r.mu.Lock()
	r.live = true
	r.mu.Unlock()
	tp := newTap()
	if !r.addTap(tp) {
		t.Fatal("addTap refused")
	}
	s.spawn(func() {
		tp.run(nil, func(*packet) bool { return true }, func(offline bool) bool {
			if !offline {
				t.Error("the room went offline, the tap was told of a replaced source")
			}
			r.removeTap(tp)
			close(ended)
			return false
		})
	})
	r.mu.Lock()
	r.dropSourceLocked(src)
	r.mu.Unlock()
	select {
	case <-ended:
	case <-time.After(2 * time.Second):
		t.Fatal("tap not told the room went offline")
	}
	if nTaps(r) != 0 || r.addTap(newTap()) {
		t.Fatalf("taps %d, or an offline room accepted a tap", nTaps(r))
	}
}

// TestTapSourceGoneInOrder: the end of a source reaches the consumer after
// the packets queued before it and before those queued after it, even when
// both are queued before the consumer runs (a replacing source's keyframe
// right behind the switch-over); two ends before it ran come as one, at the
// later place, offline if either was.
func TestTapSourceGoneInOrder(t *testing.T) {
	for _, c := range []struct {
		steps []string // a number offers a packet; "replaced", "offline" end the source
		want  string
	}{
		{[]string{"1", "2", "replaced", "3"}, "1 2 replaced 3"},
		{[]string{"1", "offline", "2"}, "1 offline 2"},
		{[]string{"1", "replaced", "2", "offline", "3"}, "1 2 offline 3"},
		{[]string{"1", "offline", "2", "replaced", "3"}, "1 2 offline 3"},
	} {
		tp := newTap()
		for _, st := range c.steps {
			switch st {
			case "replaced", "offline":
				tp.sourceGone(st == "offline")
			default:
				seq, _ := strconv.Atoi(st)
				pk := &packet{kind: kindAudio, seq: uint16(seq)}
				pk.retain() // the test's reference: never pooled
				tp.offer(nil, pk)
			}
		}
		var got []string
		n := len(strings.Fields(c.want))
		tp.run(nil, func(pk *packet) bool {
			got = append(got, strconv.Itoa(int(pk.seq)))
			return len(got) < n
		}, func(offline bool) bool {
			got = append(got, map[bool]string{false: "replaced", true: "offline"}[offline])
			return len(got) < n
		})
		tp.close()
		if strings.Join(got, " ") != c.want {
			t.Errorf("%v: consumer saw %q, want %q", c.steps, strings.Join(got, " "), c.want)
		}
	}
}
