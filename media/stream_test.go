package media

import (
	"context"
	"encoding/hex"
	"errors"
	"testing"
	"time"
)

// readAU reads one access unit or fails the test after a while.
func readAU(t testing.TB, rd *Reader) (*AccessUnit, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	au, err := rd.Read(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		t.Fatal("no access unit within 3s")
	}
	return au, err
}

func openReader(t testing.TB, r *room, opts ReaderOptions) *Reader {
	t.Helper()
	rd, err := r.openReader(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rd.Close)
	return rd
}

// readerRoom is a bare room fed by a fake source, with one reader.
func readerRoom(t testing.TB, name string) (*room, *fakeSource, *ingest, *Reader) {
	t.Helper()
	r := newRoom(bareSFU(t, 64), name)
	src := &fakeSource{host: "h"}
	in := feed(t, r, src)
	return r, src, in, openReader(t, r, ReaderOptions{})
}

// TestReaderGetsAccessUnits: FU-A fragments and a STAP-A become one H264
// unit each; a keyframe carries SPS/PPS and its parameters.
func TestReaderGetsAccessUnits(t *testing.T) {
	_, _, in, rd := readerRoom(t, "au")
	// A keyframe: STAP-A with SPS and PPS, then an IDR in two FU-A
	// fragments; then an inter-frame as a single NAL unit.
	writeKeyframe(in, 10, 9000)
	in.writeRTP(h264Packet(13, 12000, []byte{0x41, 7, 8}))
	au, err := readAU(t, rd)
	if err != nil {
		t.Fatal(err)
	}
	if !au.Video || au.Codec != "H264" || !au.Key || len(au.NALUs) != 3 {
		t.Fatalf("first unit: video %v codec %q key %v nalus %d, want an H264 keyframe of 3 NAL units", au.Video, au.Codec, au.Key, len(au.NALUs))
	}
	for i, want := range [][]byte{stapSPSPPS[3:6], stapSPSPPS[8:], {0x65, 1, 2, 3, 4, 5, 6}} {
		if string(au.NALUs[i]) != string(want) {
			t.Errorf("NAL unit %d: got % x, want % x", i, au.NALUs[i], want)
		}
	}
	if au.Params == nil || !au.ParamsChanged || string(au.Params.SPS) != string(stapSPSPPS[3:6]) {
		t.Errorf("params %+v changed %v, want the SPS/PPS and a change", au.Params, au.ParamsChanged)
	}
	au2, err := readAU(t, rd)
	if err != nil {
		t.Fatal(err)
	}
	if au2.Key || len(au2.NALUs) != 1 || au2.NALUs[0][0] != 0x41 {
		t.Fatalf("second unit: key %v nalus %x", au2.Key, au2.NALUs)
	}
	if d := au2.PTS - au.PTS; d != 3000*time.Second/90000 {
		t.Errorf("PTS step %v, want %v (3000 ticks at 90 kHz)", d, 3000*time.Second/90000)
	}
}

// writeKeyframe writes SPS+PPS (STAP-A) and an IDR in two FU-A fragments.
func writeKeyframe(in *ingest, seq uint16, ts uint32) {
	stap := h264Packet(seq, ts, stapSPSPPS)
	stap.Marker = false
	fu1 := h264Packet(seq+1, ts, []byte{0x7c, 0x85, 1, 2, 3})
	fu1.Marker = false
	in.writeRTP(stap)
	in.writeRTP(fu1)
	in.writeRTP(h264Packet(seq+2, ts, []byte{0x7c, 0x45, 4, 5, 6}))
}

// stap builds a STAP-A of the given NAL units.
func stap(nalus ...[]byte) []byte {
	b := []byte{0x78}
	for _, n := range nalus {
		b = append(b, byte(len(n)>>8), byte(len(n)))
		b = append(b, n...)
	}
	return b
}

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestReaderParamsChanged: a keyframe with a new SPS (another resolution)
// is flagged; one with the same parameters is not.
func TestReaderParamsChanged(t *testing.T) {
	_, _, in, rd := readerRoom(t, "params")
	// x264 baseline SPS for 320x240 and 640x360, and their PPS.
	sps240 := mustHex(t, "6742c00bd90141fb0110000003001000000300a0f142a480")
	sps360 := mustHex(t, "6742c016d900a02ff970110000030001000003000a0f162e48")
	pps := mustHex(t, "68cb83cb20")
	seq, ts := uint16(100), uint32(0)
	key := func(sps []byte) {
		in.writeRTP(h264Packet(seq, ts, stap(sps, pps, []byte{0x65, 0x88, 0x84})))
		seq, ts = seq+1, ts+3000
	}
	key(sps240)
	key(sps240)
	key(sps360)
	for i, want := range []struct {
		changed bool
		w, h    int
	}{{true, 320, 240}, {false, 320, 240}, {true, 640, 360}} {
		au, err := readAU(t, rd)
		if err != nil {
			t.Fatal(err)
		}
		if !au.Key || au.Params == nil {
			t.Fatalf("unit %d: key %v params %v, want a keyframe with parameters", i, au.Key, au.Params)
		}
		if au.ParamsChanged != want.changed || au.Params.Width != want.w || au.Params.Height != want.h {
			t.Errorf("unit %d: changed %v %dx%d, want %v %dx%d", i, au.ParamsChanged, au.Params.Width, au.Params.Height, want.changed, want.w, want.h)
		}
	}
}

// TestReaderStartsFromGOPCache: a reader attached mid-GOP starts at once at
// the cached keyframe, with what followed it, and opening it asks the
// source for nothing.
func TestReaderStartsFromGOPCache(t *testing.T) {
	s := bareSFU(t, 64)
	r := newRoom(s, "gop")
	src := &fakeSource{host: "h"}
	in := feed(t, r, src)
	first := openReader(t, r, ReaderOptions{})
	writeKeyframe(in, 10, 9000)
	for i := range 3 {
		in.writeRTP(h264Packet(uint16(13+i), uint32(12000+3000*i), []byte{0x41, byte(i)}))
	}
	for range 4 { // the first reader saw them: the stream has them
		if _, err := readAU(t, first); err != nil {
			t.Fatal(err)
		}
	}
	asked := src.keyframes.Load()
	late := openReader(t, r, ReaderOptions{})
	au, err := readAU(t, late)
	if err != nil {
		t.Fatal(err)
	}
	if !au.Key || au.Params == nil || len(au.NALUs) != 3 {
		t.Fatalf("late reader's first unit: key %v params %v nalus %d, want the cached keyframe", au.Key, au.Params, len(au.NALUs))
	}
	for i := range 3 {
		au, err := readAU(t, late)
		if err != nil {
			t.Fatal(err)
		}
		if au.Key || au.NALUs[0][1] != byte(i) {
			t.Fatalf("cached unit %d: key %v % x", i, au.Key, au.NALUs[0])
		}
	}
	if got := src.keyframes.Load(); got != asked {
		t.Errorf("opening a reader with a cached GOP sent %d keyframe requests, want 0", got-asked)
	}
	// Without a cache (a new stream), opening asks at once.
	first.Close()
	late.Close()
	r.video.kf.reset()
	asked = src.keyframes.Load()
	openReader(t, r, ReaderOptions{})
	if src.keyframes.Load() == asked {
		t.Error("a reader with nothing to start from did not ask for a keyframe")
	}
}

// TestSlowReaderDropsToKeyframe: a reader that does not read fills its
// queue and drops; a viewer and a second reader get everything; the slow
// reader's video resumes at the next keyframe, never mid-GOP.
func TestSlowReaderDropsToKeyframe(t *testing.T) {
	s := bareSFU(t, 1024)
	r := newRoom(s, "slow")
	rec := &recorder{}
	fakeViewer(t, r, rec.write)
	in := feed(t, r, &fakeSource{host: "h"})
	slow := openReader(t, r, ReaderOptions{Queue: 4})
	fast := openReader(t, r, ReaderOptions{})
	writeKeyframe(in, 10, 0)
	seq, ts := uint16(13), uint32(0)
	for range 20 {
		ts += 3000
		in.writeRTP(h264Packet(seq, ts, []byte{0x41, byte(seq)}))
		seq++
	}
	for i := range 21 {
		au, err := readAU(t, fast)
		if err != nil {
			t.Fatal(err)
		}
		if (i == 0) != au.Key {
			t.Fatalf("fast reader unit %d: key %v", i, au.Key)
		}
	}
	rec.waitLen(t, 23)
	deadline := time.Now().Add(3 * time.Second)
	for slow.Dropped() != 17 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if got := slow.Dropped(); got != 17 {
		t.Fatalf("slow reader dropped %d units, want 17 (21 sent, queue 4)", got)
	}
	for i := range 4 { // what fitted: the keyframe and 3 inter-frames
		au, err := readAU(t, slow)
		if err != nil {
			t.Fatal(err)
		}
		if (i == 0) != au.Key {
			t.Fatalf("slow reader unit %d: key %v", i, au.Key)
		}
	}
	in.writeRTP(h264Packet(seq, ts+3000, []byte{0x41, 0xee})) // still mid-GOP: skipped
	writeKeyframe(in, seq+1, ts+6000)
	au, err := readAU(t, slow)
	if err != nil {
		t.Fatal(err)
	}
	if !au.Key {
		t.Fatalf("after dropping, the slow reader got a non-keyframe (% x)", au.NALUs[0])
	}
}

// TestReaderPTSAcrossSources: the host leaves and comes back (ErrOffline in
// between) and then a source with another codec takes over: PTS keeps
// increasing, by about the wall time of the pause, and the new codec's
// keyframe says its parameters changed.
func TestReaderPTSAcrossSources(t *testing.T) {
	r, src, in, rd := readerRoom(t, "clock")
	writeKeyframe(in, 10, 1_000_000)
	in.writeRTP(h264Packet(13, 1_003_000, []byte{0x41, 1}))
	var last time.Duration
	for range 2 {
		au, err := readAU(t, rd)
		if err != nil {
			t.Fatal(err)
		}
		last = au.PTS
	}
	r.mu.Lock()
	r.dropSourceLocked(src)
	r.mu.Unlock()
	if _, err := readAU(t, rd); !errors.Is(err, ErrOffline) {
		t.Fatalf("after the source left: %v, want ErrOffline", err)
	}
	const pause = 300 * time.Millisecond
	time.Sleep(pause)
	// The same host again, with unrelated numbering.
	in = feed(t, r, &fakeSource{host: "h"})
	writeKeyframe(in, 5000, 77)
	au, err := readAU(t, rd)
	if err != nil {
		t.Fatal(err)
	}
	// The new source is anchored at its arrival; the last unit's PTS was up
	// to a frame (33 ms) ahead of its own arrival.
	if gap := au.PTS - last; gap < pause-100*time.Millisecond || gap > pause+2*time.Second {
		t.Errorf("PTS gap across the reconnect %v, want about %v", gap, pause)
	}
	if au.ParamsChanged {
		t.Error("same SPS after a reconnect reported as a change")
	}
	last = au.PTS
	// The host's next source replaces this one without the room going
	// offline, and switches it to VP8: the reader is told of the
	// switch-over after the old source's last unit and before the new one's
	// first, which is queued at once.
	in.writeRTP(h264Packet(5003, 3077, []byte{0x41, 2}))
	vp8 := &fakeSource{host: "h"}
	if _, err := r.setSource(vp8); err != nil {
		t.Fatal(err)
	}
	vin := r.attach(vp8, kindVideo, r.sfu.codecs.match("video/VP8", ""))
	if vin == nil {
		t.Fatal("attach VP8")
	}
	// VP8 keyframe: descriptor (S=1), frame tag (key), start code, 160x120.
	vin.writeRTP(h264Packet(1, 500, []byte{0x10, 0x50, 0x01, 0x00, 0x9d, 0x01, 0x2a, 160, 0, 120, 0, 1, 2}))
	if au, err := readAU(t, rd); err != nil || au.Codec != "H264" || au.Key {
		t.Fatalf("the old source's last frame: %+v %v", au, err)
	}
	if _, err := readAU(t, rd); err != ErrNewSource {
		t.Fatalf("at the switch-over: %v, want ErrNewSource", err)
	}
	au, err = readAU(t, rd)
	if err != nil {
		t.Fatal(err)
	}
	if au.Codec != "VP8" || !au.Key || !au.ParamsChanged || au.Params.Width != 160 || au.Params.Height != 120 {
		t.Fatalf("after the switch: %s key %v changed %v params %+v, want a VP8 160x120 keyframe flagged as a change", au.Codec, au.Key, au.ParamsChanged, au.Params)
	}
	if au.PTS <= last {
		t.Errorf("PTS went from %v to %v at the codec switch", last, au.PTS)
	}
}

// TestOpenReaderLayer: only the default layer exists today.
func TestOpenReaderLayer(t *testing.T) {
	s := bareSFU(t, 64)
	r := newRoom(s, "layer")
	s.rooms["layer"] = r
	if _, err := s.OpenReader("layer", ReaderOptions{Layer: "h"}); !errors.Is(err, ErrNoLayer) {
		t.Fatalf("layer h: %v, want ErrNoLayer", err)
	}
	rd, err := s.OpenReader("layer", ReaderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rd.Close()
	if _, ok := s.lookup("layer"); ok {
		t.Error("room kept after its only reader closed")
	}
}

// FuzzAssembler: publisher payloads are untrusted; assembling them into
// access units must never panic, whatever the packetization claims, and a
// unit never exceeds its bound.
func FuzzAssembler(f *testing.F) {
	f.Add([]byte{0x78, 0x00, 0x03, 0x67, 0x42, 0xc0, 0x00, 0x02, 0x68, 0xce}, uint8(0), true)
	f.Add([]byte{0x7c, 0x85, 0x88, 0x84}, uint8(0), false)
	f.Add([]byte{0x7c, 0x45, 0x88}, uint8(0), true)
	f.Add([]byte{0x10, 0x50, 0x01, 0x00, 0x9d, 0x01, 0x2a, 160, 0, 120, 0}, uint8(1), true)
	f.Add([]byte{0x78, 0xff, 0xff}, uint8(0), true)
	table := newCodecTable()
	vp8 := uint8(table.match("video/VP8", ""))
	f.Fuzz(func(t *testing.T, payload []byte, codec uint8, marker bool) {
		var a assembler
		a.init(table)
		c := uint8(0)
		if codec%2 == 1 {
			c = vp8
		}
		fam := table[c].fam
		for i := range 3 { // the same payload as start, middle and end
			pk := &packet{kind: kindVideo, codec: c, seq: uint16(i), ts: 9000, marker: marker || i == 2}
			pk.n = copy(pk.buf[:], payload)
			pk.keyframe = isKeyframeStart(fam, pk.payload())
			if au := a.push(pk); au != nil && au.size > maxAUBytes {
				t.Fatalf("unit of %d bytes", au.size)
			}
		}
	})
}

// TestReaderLossAsksForKeyframe: a packet lost before the readers (a
// sequence gap) leaves their video waiting for a keyframe; the stream asks
// the source for one at once rather than waiting out the source's GOP,
// which can be seconds (a whole recording or HLS segment frozen).
func TestReaderLossAsksForKeyframe(t *testing.T) {
	r, src, in, rd := readerRoom(t, "loss")
	writeKeyframe(in, 10, 0)
	in.writeRTP(h264Packet(13, 3000, []byte{0x41, 1}))
	for i := range 2 {
		if _, err := readAU(t, rd); err != nil {
			t.Fatalf("unit %d: %v", i, err)
		}
	}
	r.video.kf.reset() // the reader's opening request does not throttle this one
	asked := src.keyframes.Load()
	in.writeRTP(h264Packet(15, 6000, []byte{0x41, 2})) // 14 is lost
	in.writeRTP(h264Packet(16, 9000, []byte{0x41, 3}))
	deadline := time.Now().Add(3 * time.Second)
	for src.keyframes.Load() == asked && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if got := src.keyframes.Load() - asked; got != 1 {
		t.Fatalf("after a lost packet: %d keyframe requests, want 1 (a request, throttled)", got)
	}
	writeKeyframe(in, 17, 12000)
	au, err := readAU(t, rd)
	if err != nil {
		t.Fatal(err)
	}
	if !au.Key {
		t.Fatalf("after the loss the reader got a non-keyframe (% x)", au.NALUs[0])
	}
}

// A keyframe the readers wait for that arrives broken (a fragment lost in
// its middle) is asked for again: the request that began the wait was
// answered by it, and the source's own next keyframe can be a GOP away.
func TestReaderBrokenKeyframeAsksAgain(t *testing.T) {
	r, src, in, rd := readerRoom(t, "brokenkey")
	writeKeyframe(in, 10, 0)
	if _, err := readAU(t, rd); err != nil {
		t.Fatal(err)
	}
	waitAsked := func(what string, asked int64) {
		t.Helper()
		deadline := time.Now().Add(3 * time.Second)
		for src.keyframes.Load() == asked && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		if got := src.keyframes.Load() - asked; got != 1 {
			t.Fatalf("%s: %d keyframe requests, want 1", what, got)
		}
	}
	r.video.kf.reset()
	asked := src.keyframes.Load()
	in.writeRTP(h264Packet(14, 3000, []byte{0x41, 2})) // 13 is lost
	waitAsked("after a lost packet", asked)

	// The broken keyframe comes right after the request (within the
	// throttle's minKeyframeGap): the stream asks again at the packets
	// that follow, until the throttle lets the request through.
	asked = src.keyframes.Load()
	stap := h264Packet(15, 6000, stapSPSPPS)
	stap.Marker = false
	in.writeRTP(stap)
	// 16, the IDR's first fragment, is lost
	in.writeRTP(h264Packet(17, 6000, []byte{0x7c, 0x45, 4, 5, 6}))
	seq := uint16(18)
	for deadline := time.Now().Add(2 * time.Second); src.keyframes.Load() == asked && time.Now().Before(deadline); seq++ {
		time.Sleep(10 * time.Millisecond)
		in.writeRTP(h264Packet(seq, 9000+3000*uint32(seq-18), []byte{0x41, 3}))
	}
	waitAsked("after the awaited keyframe arrived broken", asked)

	writeKeyframe(in, seq, 9000+3000*uint32(seq-18))
	au, err := readAU(t, rd)
	if err != nil {
		t.Fatal(err)
	}
	if !au.Key || au.PTS == 0 {
		t.Fatalf("after the broken keyframe the reader got key %v at %v, want the next keyframe", au.Key, au.PTS)
	}
}
