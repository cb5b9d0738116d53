package media

import (
	"testing"
	"time"
)

// TestCatchUpWindow: the keyframe and catchUpWindow bytes go before any
// feedback; bytes reported received reopen the window and widen it while
// the path adds no queue; a queue, loss, congestion or a full window with
// nothing reported for catchUpStall stop the catch-up; a viewer without
// transport-wide feedback has no window.
func TestCatchUpWindow(t *testing.T) {
	now := time.Now()
	const key, size = 5000, 1200
	fill := func(v *viewer, w *window, seq uint16) (uint16, int) {
		sent := 0
		for w.open(size) {
			v.tw.sent(seq, 0, size)
			w.sent(seq, size)
			seq++
			sent += size
		}
		return seq, sent
	}

	v := &viewer{}
	v.tw.epoch = now
	w := newWindow(true, key, now)
	seq, sent := fill(v, &w, 100)
	if sent <= key+catchUpWindow-size || sent > key+catchUpWindow {
		t.Fatalf("sent %d bytes before any feedback, want the keyframe (%d) and at most %d more", sent, key, catchUpWindow)
	}
	if why := w.check(v, now.Add(catchUpStall/2), 1<<20); why != "" || w.open(size) {
		t.Fatalf("nothing reported yet: stop %q, open %v; want to wait, shut", why, w.open(size))
	}
	for s := uint16(100); s < seq; s++ {
		v.tw.received(s)
	}
	if why := w.check(v, now.Add(catchUpStall*3/4), 1<<20); why != "" {
		t.Fatalf("all reported received: stop %q", why)
	}
	if w.inflight != 0 || w.limit != key+catchUpWindow+sent {
		t.Fatalf("after %d bytes reported with no queue: in flight %d, limit %d; want 0, %d", sent, w.inflight, w.limit, key+catchUpWindow+sent)
	}
	seq, sent = fill(v, &w, seq)
	v.ctl.last = bweSample{queueMs: catchUpGrowQueue + 10}
	for s := seq - uint16(sent/size); s < seq; s++ {
		v.tw.received(s)
	}
	limit := w.limit
	if why := w.check(v, now.Add(catchUpStall), 1<<20); why != "" || w.limit != limit {
		t.Fatalf("reported with a %v ms queue: stop %q, limit %d -> %d; want no stop, no growth", catchUpGrowQueue+10, why, limit, w.limit)
	}
	// A short queue that grows: no growth either.
	seq, sent = fill(v, &w, seq)
	v.ctl.last = bweSample{queueMs: 1}
	w.check(v, now.Add(catchUpStall), 1<<20)
	v.ctl.last = bweSample{queueMs: 1 + catchUpGrowTrend + 1}
	for s := seq - uint16(sent/size); s < seq; s++ {
		v.tw.received(s)
	}
	limit = w.limit
	if why := w.check(v, now.Add(catchUpStall), 1<<20); why != "" || w.limit != limit || w.inflight != 0 {
		t.Fatalf("reported with a growing queue: stop %q, limit %d -> %d, in flight %d; want no stop, no growth, 0", why, limit, w.limit, w.inflight)
	}

	for _, c := range []struct {
		smp  bweSample
		left int // bytes of the cached GOP still to send
		want string
	}{
		{bweSample{queueMs: catchUpMaxQueue + 1}, 1 << 20, "queue"},
		{bweSample{loss: catchUpMaxLoss + 0.01}, 1 << 20, "loss"},
		{bweSample{congested: true}, 1 << 20, "congested"},
		{bweSample{queueMs: catchUpMaxQueue - 1, loss: catchUpMaxLoss - 0.01}, 1 << 20, ""},
		// Little left: finishing costs less than a freeze until a keyframe.
		{bweSample{queueMs: catchUpMaxQueue + 1, congested: true}, catchUpWindow, ""},
	} {
		v.ctl.last = c.smp
		if got := w.check(v, now.Add(catchUpStall), c.left); got != c.want {
			t.Errorf("sample %+v, %d bytes left: stop %q, want %q", c.smp, c.left, got, c.want)
		}
	}

	v2 := &viewer{}
	v2.tw.epoch = now
	w2 := newWindow(true, key, now)
	fill(v2, &w2, 7)
	if why := w2.check(v2, now.Add(catchUpStall-time.Millisecond), 1<<20); why != "" {
		t.Fatalf("full window, nothing reported for less than %v: stop %q", catchUpStall, why)
	}
	if why := w2.check(v2, now.Add(catchUpStall+time.Millisecond), 1<<20); why != "no feedback" {
		t.Fatalf("full window, nothing reported for %v: stop %q, want \"no feedback\"", catchUpStall, why)
	}

	w3 := newWindow(false, key, now)
	for range 1000 {
		if !w3.open(size) {
			t.Fatal("a viewer without transport-wide feedback was held by a window")
		}
		w3.sent(0, size)
	}
}
