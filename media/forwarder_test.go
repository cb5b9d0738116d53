package media

import (
	"bytes"
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/prometheus/client_golang/prometheus"
)

// Unit tests of the fan-out core without PeerConnections: the seam is
// webrtc.TrackLocalWriter, faked with a function field. The real thing is
// covered end to end in the package's external tests.

func bareSFU(t testing.TB, queue int) *SFU {
	t.Helper()
	m, err := newMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{ViewerQueue: queue}
	cfg.setTuningDefaults()
	s := &SFU{
		cfg: cfg, log: slog.New(slog.DiscardHandler), metrics: m, codecs: newCodecTable(),
		pool: newPacketPool(), events: newLiveEvents(nil), rooms: map[string]*room{},
	}
	t.Cleanup(func() {
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		s.wg.Wait()
	})
	return s
}

type fakeSource struct {
	host      string
	keyframes atomic.Int64
}

func (f *fakeSource) hostID() string   { return f.host }
func (f *fakeSource) requestKeyframe() { f.keyframes.Add(1) }
func (f *fakeSource) stop()            {}

// funcWriter is a webrtc.TrackLocalWriter.
type funcWriter func(h *rtp.Header, payload []byte)

func (w funcWriter) WriteRTP(h *rtp.Header, payload []byte) (int, error) {
	w(h, payload)
	return len(payload), nil
}
func (w funcWriter) Write(b []byte) (int, error) { return len(b), nil }

type sent struct {
	seq, pt uint16
	ts      uint32
	ssrc    uint32
	payload []byte
}

// recorder collects what a fake viewer's writer sends.
type recorder struct {
	mu   sync.Mutex
	got  []sent
	gate chan struct{} // if non-nil, each write waits for a token
}

func (r *recorder) write(h *rtp.Header, payload []byte) {
	if r.gate != nil {
		<-r.gate
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, sent{seq: h.SequenceNumber, pt: uint16(h.PayloadType), ts: h.Timestamp, ssrc: h.SSRC,
		payload: append([]byte(nil), payload...)})
}

func (r *recorder) snapshot() []sent {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]sent(nil), r.got...)
}

func (r *recorder) waitLen(t testing.TB, n int) []sent {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := r.snapshot()
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("writer sent %d packets, want %d", len(got), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// fakeViewer joins r as a connected viewer whose tracks write to w, bound to
// every codec with the SFU's own payload types.
func fakeViewer(t testing.TB, r *room, w funcWriter) *viewer {
	t.Helper()
	s := r.sfu
	v := &viewer{
		peer:  &peer{s: s, r: r, id: newID(), log: s.log, done: make(chan struct{})},
		queue: newSendQueue(s.cfg.ViewerQueue),
		rtx:   newRTXBudget(),
	}
	v.needKey.Store(true)
	v.ready.Store(true)
	v.cur.Store(curJoining)
	v.tw.epoch = time.Now()
	v.ctl = layerControl{bwe: newBWE(&v.tw), sel: newSelector(0, v.tw.epoch), pref: QualityAuto}
	for k := range numKinds {
		dt := newDownTrack(kindToRTP(k), s.codecs, "test")
		b := &binding{ssrc: 1000 + uint32(k), w: w, twccID: 3} // stamped like a browser viewer's
		for i := range b.pt {
			b.pt[i] = -1
			if i < len(s.codecs) && s.codecs[i].kind == kindToRTP(k) {
				b.pt[i] = int16(s.codecs[i].params.PayloadType)
			}
		}
		dt.b.Store(b)
		v.tracks[k] = dt
	}
	r.mu.Lock()
	r.sessions[v.id] = v
	next := append(append([]*viewer(nil), *r.viewers.Load()...), v)
	r.viewers.Store(&next)
	r.mu.Unlock()
	if !s.spawn(v.writeLoop) {
		t.Fatal("sfu closed")
	}
	t.Cleanup(func() { close(v.done) })
	return v
}

func h264Packet(seq uint16, ts uint32, payload []byte) *rtp.Packet {
	return &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 102, SequenceNumber: seq, Timestamp: ts, SSRC: 42, Marker: true}, Payload: payload}
}

// feed makes src the room's source and returns its video ingest.
func feed(t testing.TB, r *room, src source) *ingest {
	t.Helper()
	r.mu.Lock()
	r.src = src
	r.mu.Unlock()
	in := r.attach(src, kindVideo, 0)
	if in == nil {
		t.Fatal("attach failed")
	}
	return in
}

func TestForwarderRewritesAcrossSources(t *testing.T) {
	s := bareSFU(t, 64)
	r := newRoom(s, "t")
	rec := &recorder{}
	fakeViewer(t, r, rec.write)

	a := &fakeSource{host: "h"}
	inA := feed(t, r, a)
	inA.writeRTP(h264Packet(99, 500, singleP)) // before any keyframe: gated
	for i := range 10 {
		p := singleP
		if i == 0 {
			p = stapSPSPPS
		}
		inA.writeRTP(h264Packet(uint16(65530+i), uint32(1000+3000*i), p)) // wraps
	}
	if a.keyframes.Load() == 0 {
		t.Errorf("no keyframe request while the first source had not sent one")
	}
	first := rec.waitLen(t, 10)

	time.Sleep(50 * time.Millisecond) // a measurable gap for the timestamp to span
	b := &fakeSource{host: "h"}
	inB := feed(t, r, b)
	inA.writeRTP(h264Packet(4, 31000, singleP))      // old source still draining: stale
	inB.writeRTP(h264Packet(20000, 777, singleP))    // new source, not a keyframe yet: gated
	inB.writeRTP(h264Packet(20001, 1777, singleIDR)) // switch point
	inB.writeRTP(h264Packet(20000, 777, singleP))    // reordered from before the switch: stale
	for i := range 5 {
		inB.writeRTP(h264Packet(uint16(20002+i), uint32(4777+3000*i), singleP))
	}
	got := rec.waitLen(t, 16)
	if len(got) != 16 {
		t.Fatalf("sent %d packets, want 16", len(got))
	}
	for i := 1; i < len(got); i++ {
		if d := got[i].seq - got[i-1].seq; d != 1 {
			t.Errorf("packet %d: seq %d after %d, want +1", i, got[i].seq, got[i-1].seq)
		}
		if got[i].ssrc != got[0].ssrc {
			t.Errorf("packet %d: ssrc %d, want %d", i, got[i].ssrc, got[0].ssrc)
		}
		if int32(got[i].ts-got[i-1].ts) <= 0 {
			t.Errorf("packet %d: ts %d after %d, want later", i, got[i].ts, got[i-1].ts)
		}
	}
	if got[0].seq != 65530 || got[0].ts != 1000 {
		t.Errorf("first source: seq %d ts %d, want the publisher's own 65530 1000", got[0].seq, got[0].ts)
	}
	// 50 ms at 90 kHz is 4500 ticks; allow generous scheduling slack above.
	if gap := got[10].ts - first[9].ts; gap < 4500 || gap > 90000 {
		t.Errorf("timestamp step across the switch: %d ticks, want wall-clock elapsed (>= 4500)", gap)
	}
	if got[10].pt != 102 {
		t.Errorf("payload type %d, want 102", got[10].pt)
	}
	if b.keyframes.Load() == 0 {
		t.Errorf("no keyframe request to the new source")
	}
}

func TestSlowViewerSkipsToKeyframe(t *testing.T) {
	const queue = 8
	s := bareSFU(t, queue)
	r := newRoom(s, "t")
	fast := &recorder{}
	slow := &recorder{gate: make(chan struct{})}
	fakeViewer(t, r, fast.write)
	slowV := fakeViewer(t, r, slow.write)
	src := &fakeSource{host: "h"}
	in := feed(t, r, src)

	seq := uint16(0)
	send := func(payload []byte) {
		in.writeRTP(h264Packet(seq, uint32(seq)*3000, payload))
		seq++
		fast.waitLen(t, int(seq)) // pace the stream to the fast viewer
	}
	send(stapSPSPPS)
	for range 40 {
		send(singleP)
	}
	// The slow writer holds one packet and its queue is full: it must now be
	// skipping to a keyframe, and have asked for one.
	if !slowV.needKey.Load() {
		t.Fatalf("slow viewer not waiting for a keyframe after its queue filled")
	}
	requests := src.keyframes.Load()
	close(slow.gate) // it catches up
	for range 5 {
		send(singleP) // still skipped: no keyframe yet
	}
	keySeq := seq
	send(singleIDR)
	for range 5 {
		send(singleP)
	}

	if got := fast.waitLen(t, int(seq)); len(got) != int(seq) {
		t.Errorf("fast viewer: got %d packets, want all %d", len(got), seq)
	}
	got := slow.waitLen(t, 1+queue+6)
	if len(got) != 1+queue+6 {
		t.Fatalf("slow viewer: got %d packets, want %d (held + queued + keyframe onwards)", len(got), 1+queue+6)
	}
	for i := range 1 + queue {
		if got[i].seq != uint16(i) {
			t.Errorf("slow viewer packet %d: seq %d, want %d", i, got[i].seq, i)
		}
	}
	// It resumes at the keyframe, numbered on from what it got (the
	// writer closes the skipped gap: nothing for the viewer to NACK).
	if k := got[1+queue]; k.seq != uint16(1+queue) || !bytes.Equal(k.payload, singleIDR) {
		t.Errorf("slow viewer resumed with seq %d payload %x, want the keyframe (sent as %d) numbered %d", k.seq, k.payload, keySeq, 1+queue)
	}
	if requests == 0 {
		t.Errorf("no keyframe request after the slow viewer dropped")
	}
}

func TestNACKRetransmitsFromHistory(t *testing.T) {
	s := bareSFU(t, 64)
	r := newRoom(s, "t")
	rec := &recorder{}
	v := fakeViewer(t, r, rec.write)
	in := feed(t, r, &fakeSource{host: "h"})
	in.writeRTP(h264Packet(100, 0, stapSPSPPS))
	for i := 1; i < 10; i++ {
		in.writeRTP(h264Packet(uint16(100+i), uint32(i*3000), []byte{0x41, byte(i)}))
	}
	rec.waitLen(t, 10)

	// 103 and 105 are in the history; 60000 never was; 99 predates the
	// viewer's starting keyframe.
	v.nack(r.video, &rtcp.TransportLayerNack{Nacks: []rtcp.NackPair{
		{PacketID: 103, LostPackets: 0b10}, {PacketID: 60000}, {PacketID: 99},
	}})
	got := rec.waitLen(t, 12)
	if len(got) != 12 {
		t.Fatalf("got %d packets, want 12", len(got))
	}
	for i, want := range []uint16{103, 105} {
		re := got[10+i]
		if re.seq != want || len(re.payload) != 2 || re.payload[1] != byte(want-100) {
			t.Errorf("retransmission %d: seq %d payload %x, want seq %d payload 41%02x", i, re.seq, re.payload, want, want-100)
		}
	}
}

// BenchmarkFanout100 measures the per-packet cost of forwarding one video
// packet to 100 viewers: the rewrite, the copy into a shared buffer, the
// enqueue per viewer and the viewers' writer goroutines (with a no-op
// writer in place of SRTP), without and with one tap next to them, and with
// one access-unit Reader (the room's stream assembling H264 units on its
// own goroutine: an RTSP reader, a recorder). allocs/op must be 0 without a
// reader; with one it is the stream's per-unit allocation, shared by all
// readers.
func BenchmarkFanout100(b *testing.B) {
	for _, taps := range []int{0, 1} {
		b.Run(map[int]string{0: "no-tap", 1: "one-tap"}[taps], func(b *testing.B) { benchFanout(b, taps, false) })
	}
	b.Run("one-reader", func(b *testing.B) { benchFanout(b, 0, true) })
}

func benchFanout(b *testing.B, taps int, reader bool) {
	s := bareSFU(b, 1024)
	r := newRoom(s, "bench")
	var written atomic.Int64
	w := funcWriter(func(*rtp.Header, []byte) { written.Add(1) })
	viewers := make([]*viewer, 100)
	for i := range viewers {
		viewers[i] = fakeViewer(b, r, w)
	}
	in := feed(b, r, &fakeSource{host: "h"})
	var tapped atomic.Int64
	var tapList []*tap
	for range taps {
		tapList = append(tapList, fakeTap(b, r, func(*packet) bool { tapped.Add(1); return true }))
	}
	var units atomic.Int64
	if reader {
		rd, err := r.openReader(ReaderOptions{Queue: 1 << 16})
		if err != nil {
			b.Fatal(err)
		}
		defer rd.Close()
		tapList = append(tapList, r.stream.t)
		go func() {
			for {
				if _, err := rd.Read(context.Background()); err != nil {
					return
				}
				units.Add(1)
			}
		}()
	}
	payload := make([]byte, 1100)
	payload[0] = 0x41
	p := h264Packet(0, 0, stapSPSPPS)
	in.writeRTP(p)
	p.Payload = payload

	b.ReportAllocs()
	i := 0
	var producer time.Duration
	for b.Loop() {
		i++
		p.SequenceNumber++
		// Frames of 9 packets (a 2 Mbit/s stream at 30 fps), one timestamp
		// and one marker each.
		p.Marker = i%9 == 0
		if p.Marker {
			p.Timestamp += 3000
		}
		if reader {
			// A keyframe every 60 frames (2 s), so the stream's reader
			// has somewhere to start: IDR slices after the first STAP-A's
			// SPS/PPS.
			payload[0] = 0x41
			if (i-1)/9%60 == 0 {
				payload[0] = 0x65
			}
			p.Timestamp = uint32((i-1)/9*3000 + 3000) // one per frame of 9

		}
		start := time.Now()
		in.writeRTP(p)
		producer += time.Since(start)
		if i%256 == 0 {
			// Let the writers catch up so the benchmark measures forwarding,
			// not dropping.
			for _, v := range viewers {
				for len(v.queue.pkts) > 0 {
					v.queue.kick() // the frame may not have ended
					time.Sleep(10 * time.Microsecond)
				}
			}
			for _, t := range tapList {
				for len(t.q) > 0 {
					time.Sleep(10 * time.Microsecond)
				}
			}
		}
	}
	var drops uint64
	for _, v := range viewers {
		drops += v.dropped.Load()
	}
	b.ReportMetric(float64(drops)/float64(b.N), "drops/op")
	b.ReportMetric(float64(written.Load())/float64(b.N), "writes/op")
	if taps > 0 {
		b.ReportMetric(float64(tapped.Load())/float64(b.N), "tapped/op")
	}
	if reader {
		b.ReportMetric(float64(units.Load())/float64(b.N), "units/op") // a unit is a 9-packet frame
	}
	// Time on the publisher's goroutine alone (rewrite, copy, 100 enqueues).
	b.ReportMetric(float64(producer.Nanoseconds())/float64(b.N), "publisher-ns/op")
}

// A viewer's NACK for a packet older than the history but in the cached GOP
// (a fast start sends the whole GOP) is answered from the GOP. One for a
// video packet nobody has any more asks the source for a keyframe at once:
// the frames after it cannot be decoded until one, and a browser would wait
// seconds before asking.
func TestNACKBeyondHistory(t *testing.T) {
	s := bareSFU(t, 64)
	s.cfg.NACKHistory = 16
	r := newRoom(s, "t")
	rec := &recorder{}
	v := fakeViewer(t, r, rec.write)
	src := &fakeSource{host: "h"}
	in := feed(t, r, src)
	in.writeRTP(h264Packet(100, 0, stapSPSPPS))
	for i := 1; i < 40; i++ {
		in.writeRTP(h264Packet(uint16(100+i), uint32(i*3000), []byte{0x41, byte(i)}))
	}
	rec.waitLen(t, 40)
	if r.video.hist.get(103) != nil {
		t.Fatal("packet 103 is still in a 16-packet history: the test proves nothing")
	}

	r.video.kf.reset() // the viewer's opening request does not throttle the one below
	asked := src.keyframes.Load()
	v.nack(r.video, &rtcp.TransportLayerNack{Nacks: []rtcp.NackPair{{PacketID: 103}}})
	got := rec.waitLen(t, 41)
	if len(got) != 41 || got[40].seq != 103 || got[40].payload[1] != 3 {
		t.Fatalf("after a NACK for 103 (in the GOP, not the history): %d packets, want the 41st to be 103", len(got))
	}
	if n := src.keyframes.Load() - asked; n != 0 {
		t.Errorf("%d keyframe requests for a NACK that was answered, want 0", n)
	}

	// A packet not forwarded yet (lost upstream, and perhaps still being
	// repaired by the SFU's own NACKs) is no reason for a keyframe.
	in.writeRTP(h264Packet(140, 40*3000, stapSPSPPS)) // a new GOP
	in.writeRTP(h264Packet(142, 42*3000, []byte{0x41, 42}))
	rec.waitLen(t, 43)
	r.video.kf.reset()
	v.nack(r.video, &rtcp.TransportLayerNack{Nacks: []rtcp.NackPair{{PacketID: 141}}})
	if n := src.keyframes.Load() - asked; n != 0 {
		t.Errorf("%d keyframe requests for a NACK of a packet lost upstream, want 0", n)
	}

	// The old GOP's packets are gone from both once the history moved on.
	for i := 43; i < 60; i++ {
		in.writeRTP(h264Packet(uint16(100+i), uint32(i*3000), []byte{0x41, byte(i)}))
	}
	rec.waitLen(t, 60)
	v.nack(r.video, &rtcp.TransportLayerNack{Nacks: []rtcp.NackPair{{PacketID: 120}}})
	deadline := time.Now().Add(3 * time.Second)
	for src.keyframes.Load() == asked && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if n := src.keyframes.Load() - asked; n != 1 {
		t.Errorf("%d keyframe requests after a NACK for a packet gone from history and GOP, want 1", n)
	}
	// Anything resent was queued before the next live packet.
	in.writeRTP(h264Packet(160, 60*3000, []byte{0x41, 60}))
	if got := rec.waitLen(t, 61); got[60].seq != 160 {
		t.Errorf("after the NACK for a packet that is gone the viewer got seq %d, want the live 160 (nothing resent)", got[60].seq)
	}
}
