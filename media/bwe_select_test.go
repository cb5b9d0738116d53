package media

import (
	"testing"
	"time"
)

func TestSelector(t *testing.T) {
	three := []layerInfo{{slot: 0, bps: 2_500_000}, {slot: 1, bps: 600_000}, {slot: 2, bps: 150_000}}
	one := []layerInfo{{slot: 0, bps: 1_000_000}}
	ok := func(est int64) bweSample { return bweSample{est: est} }
	cong := func(est int64) bweSample { return bweSample{est: est, congested: true} }
	severe := func(est int64) bweSample { return bweSample{est: est, congested: true, severe: true} }
	type step struct {
		at   time.Duration // since the selector was made
		smp  bweSample
		want int
	}
	cases := []struct {
		name   string
		layers []layerInfo
		start  int
		steps  []step
	}{
		{"congested but the layer gets through: hold", three, 0, []step{
			{2 * time.Second, bweSample{est: 2e6, recvBps: 2_400_000, congested: true}, 0}}},
		{"lowest layer, severe, but it gets through: no pause", one, 0, []step{
			{2 * time.Second, bweSample{est: 2e6, recvBps: 900_000, congested: true, severe: true}, 0}}},
		{"unconstrained stays on top", three, 0, []step{{2 * time.Second, ok(5e6), 0}, {30 * time.Second, ok(5e6), 0}}},
		{"hold-down after a switch", three, 0, []step{{500 * time.Millisecond, cong(700_000), 0}}},
		{"congested: down to the highest that fits", three, 0, []step{{2 * time.Second, cong(800_000), 1}}},
		{"congested with nothing fitting: the lowest, then pause when it holds", three, 0, []step{
			{2 * time.Second, cong(100_000), 2}, {2500 * time.Millisecond, cong(100_000), 2},
			{4 * time.Second, cong(100_000), 2}, {5 * time.Second, severe(100_000), slotPaused}}},
		{"single layer: congestion alone does not pause", one, 0, []step{{2 * time.Second, cong(300_000), 0}}},
		{"single layer that does not fit pauses", one, 0, []step{{2 * time.Second, severe(300_000), slotPaused}}},
		{"paused: resume on the lowest after a stable wait", three, 0, []step{
			{2 * time.Second, cong(100_000), 2}, {4 * time.Second, severe(100_000), slotPaused},
			{5 * time.Second, ok(100_000), slotPaused}, {7500 * time.Millisecond, ok(100_000), 2}}},
		{"up by estimate when the next layer fits", three, 2, []step{{2 * time.Second, ok(800_000), 1}}},
		{"up by a timed attempt", three, 1, []step{{2 * time.Second, ok(700_000), 1}, {3500 * time.Millisecond, ok(700_000), 0}}},
		{"a failed attempt goes back and waits twice as long", three, 1, []step{
			{3500 * time.Millisecond, ok(700_000), 0},
			{5 * time.Second, cong(700_000), 1},       // within the probe window: back
			{8500 * time.Millisecond, ok(700_000), 1}, // 3.5 s later: not yet (6 s now)
			{11500 * time.Millisecond, ok(700_000), 0}}},
		{"a successful attempt stays", three, 1, []step{
			{3500 * time.Millisecond, ok(700_000), 0}, {7 * time.Second, ok(3e6), 0}, {8 * time.Second, ok(3e6), 0}}},
		{"layer gone: the best that fits", []layerInfo{{slot: 1, bps: 600_000}, {slot: 2, bps: 150_000}}, 0, []step{
			{time.Second, ok(1e6), 1}}},
		{"no layers: unchanged", nil, 0, []step{{time.Second, cong(1), 0}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t0 := time.Unix(1000, 0)
			s := newSelector(c.start, t0)
			for i, st := range c.steps {
				if got := s.next(t0.Add(st.at), c.layers, st.smp); got != st.want {
					t.Fatalf("step %d (%v, %+v): got slot %d, want %d", i, st.at, st.smp, got, st.want)
				}
			}
		})
	}
}

func TestRankRIDs(t *testing.T) {
	cases := []struct {
		in, want []string
	}{
		{[]string{"q", "h", "f"}, []string{"f", "h", "q"}},
		{[]string{"f", "h", "q"}, []string{"f", "h", "q"}},
		{[]string{"low", "high", "mid"}, []string{"high", "mid", "low"}},
		{[]string{"0", "1", "2"}, []string{"2", "1", "0"}},
		{[]string{"a", "b"}, []string{"b", "a"}}, // offer order, smallest first
		{[]string{"h"}, []string{"h"}},
	}
	for _, c := range cases {
		if got := rankRIDs(c.in); !equalStrings(got, c.want) {
			t.Errorf("rankRIDs(%v) = %v, want %v", c.in, got, c.want)
		}
	}
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestOfferLayers(t *testing.T) {
	offer := "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n" +
		"m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:0\r\na=sendonly\r\na=rtpmap:96 VP8/90000\r\n" +
		"a=rid:q send\r\na=rid:h send\r\na=rid:f send\r\na=rid:bad! send\r\na=rid:x recv\r\na=simulcast:send q;h;f\r\n"
	got := offerLayers(offer)
	want := map[string]int{"f": 0, "h": 1, "q": 2}
	if len(got) != len(want) {
		t.Fatalf("offerLayers = %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("offerLayers = %v, want %v", got, want)
		}
	}
	if got := offerLayers("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=rtpmap:96 VP8/90000\r\n"); got != nil {
		t.Fatalf("single-layer offer: %v, want nil", got)
	}
}

func TestVP8IDs(t *testing.T) {
	cases := []struct {
		name    string
		p       []byte
		id      uint16
		mask    uint16
		tl0     int // -1 none
		wantErr bool
	}{
		{"15-bit with tl0", []byte{0x90, 0xc0, 0x81, 0x23, 0x07, 0x00}, 0x0123, 0x7fff, 7, false},
		{"7-bit", []byte{0x90, 0x80, 0x12, 0x00}, 0x12, 0x7f, -1, false},
		{"no picture id", []byte{0x90, 0x40, 0x01, 0x00}, 0, 0, -1, true},
		{"no extension", []byte{0x10, 0x00, 0x00}, 0, 0, -1, true},
		{"truncated", []byte{0x90, 0x80, 0x81}, 0, 0, -1, true},
	}
	for _, c := range cases {
		pic, tl0, ok := vp8IDs(c.p)
		if ok == c.wantErr {
			t.Errorf("%s: ok = %v", c.name, ok)
			continue
		}
		if !ok {
			continue
		}
		if pic.id != c.id || pic.mask != c.mask || (c.tl0 >= 0) != tl0.ok || (tl0.ok && int(tl0.v) != c.tl0) {
			t.Errorf("%s: got id %x mask %x tl0 %+v", c.name, pic.id, pic.mask, tl0)
		}
	}
}
