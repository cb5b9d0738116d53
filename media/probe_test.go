package media

import (
	"testing"
	"time"
)

// A probe ramps ×probeGrowth from what is sent towards the goal, one step per
// covered span, and passes only once its last step (at the goal) got
// through; a queue or missing packets end it at once.
func TestProbeSteps(t *testing.T) {
	t0 := time.Unix(1000, 0)
	through := func(bps int64, span time.Duration) probeSample {
		return probeSample{packets: 100, sendSpan: span, sendBps: bps, recvBps: bps}
	}
	t.Run("passes after ramping to the goal", func(t *testing.T) {
		var p probe
		p.start(t0, 0, 2_300_000, 600_000, 5, 0)
		var rates []int64
		at := t0
		for i := 0; i < 10 && p.active; i++ {
			rates = append(rates, p.rate)
			at = at.Add(probeLastStep)
			if v := p.step(at, through(p.rate, probeLastStep)); v == probePassed {
				break
			}
		}
		var want []int64
		for r := int64(600_000); r < 2_300_000; {
			r = min(int64(float64(r)*probeGrowth), 2_300_000)
			want = append(want, r)
		}
		if len(rates) != len(want) {
			t.Fatalf("steps %v, want %v", rates, want)
		}
		for i := range want {
			if rates[i] != want[i] {
				t.Fatalf("steps %v, want %v", rates, want)
			}
		}
		if p.active || p.result != 2_300_000 {
			t.Fatalf("active %v result %d, want done at 2300000", p.active, p.result)
		}
	})
	t.Run("fine steps near the last probe's failing rate", func(t *testing.T) {
		var p probe
		p.start(t0, 0, 2_300_000, 600_000, 0, 1_100_000)
		var rates []int64
		for p.rate < p.goal {
			rates = append(rates, p.rate)
			p.next(t0)
		}
		// 780k, then 935k (0.85 × the ceiling, not 1014k), then ×1.1.
		if len(rates) < 3 || rates[0] != 780_000 || rates[1] != 935_000 || rates[2] != int64(935_000*probeFine) {
			t.Fatalf("steps %v, want 780000, 935000, then ×%v", rates, probeFine)
		}
	})
	t.Run("a paused viewer starts from an eighth of the goal", func(t *testing.T) {
		var p probe
		p.start(t0, 2, 600_000, 40_000, 0, 0)
		if want := int64(75_000 * probeGrowth); p.rate != want || p.videoBps() != want {
			t.Fatalf("first step %d (video %d), want %d", p.rate, p.videoBps(), want)
		}
	})
	cases := []struct {
		name string
		ps   probeSample
		want probeVerdict
	}{
		{"not covered yet", probeSample{packets: 10, sendSpan: 50 * time.Millisecond, sendBps: 900_000, recvBps: 900_000}, probeGoing},
		{"queue builds", probeSample{packets: 10, sendSpan: 50 * time.Millisecond, queueMs: 35}, probeFailed}, // twice in a row
		{"queue within the start's", probeSample{packets: 10, sendSpan: 50 * time.Millisecond, queueMs: 25}, probeGoing},
		{"packets missing", probeSample{packets: 30, missed: 5, sendSpan: 50 * time.Millisecond}, probeFailed},
		{"arrives slower than sent", probeSample{packets: 60, sendSpan: probeStep, sendBps: 780_000, recvBps: 600_000}, probeFailed},
		{"padding did not go out", probeSample{packets: 60, sendSpan: probeStep, sendBps: 500_000, recvBps: 500_000}, probeFailed},
		{"step passes", probeSample{packets: 60, sendSpan: probeStep, sendBps: 780_000, recvBps: 760_000}, probeGoing},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var p probe
			p.start(t0, 0, 2_300_000, 600_000, 10, 0)
			if c.want == probeFailed && c.ps.queueMs > 0 {
				if got := p.step(t0.Add(50*time.Millisecond), c.ps); got != probeGoing {
					t.Fatalf("one feedback with a queue: got verdict %d, want going on", got)
				}
			}
			if got := p.step(t0.Add(100*time.Millisecond), c.ps); got != c.want {
				t.Fatalf("got verdict %d, want %d", got, c.want)
			}
			if want := int64(780_000 * probeGrowth); c.name == "step passes" && p.rate != want {
				t.Fatalf("next step %d, want %d", p.rate, want)
			}
		})
	}
	t.Run("no feedback ends it", func(t *testing.T) {
		var p probe
		p.start(t0, 0, 2_300_000, 600_000, 0, 0)
		if got := p.step(t0.Add(probeStep+probeNoFeedback+time.Millisecond), probeSample{}); got != probeFailed {
			t.Fatalf("got %d, want failed", got)
		}
	})
	t.Run("padding is capped", func(t *testing.T) {
		var p probe
		p.start(t0, 0, 20_000_000, 600_000, 0, 0)
		for p.rate < p.goal {
			p.next(t0)
		}
		if got := p.videoBps(); got != 600_000+maxProbePadBps {
			t.Fatalf("video rate %d, want the layer's plus the padding cap %d", got, 600_000+maxProbePadBps)
		}
	})
}

// With transport-wide feedback, a viewer never switches up without a probe
// that passed: a failed probe keeps the layer and doubles the wait; a
// paused viewer is probed at the lowest layer's rate before resuming.
func TestSelectorProbes(t *testing.T) {
	three := []layerInfo{{slot: 0, bps: 2_000_000}, {slot: 1, bps: 500_000}, {slot: 2, bps: 150_000}}
	one := []layerInfo{{slot: 0, bps: 500_000}}
	t0 := time.Unix(1000, 0)
	ok := bweSample{est: 3e6, recvBps: 550_000} // an estimate that "fits": still a probe first
	pass := func(s *selector) bweSample {
		return bweSample{est: 600_000, recvBps: 550_000, probe: probeSample{packets: 100, sendSpan: probeLastStep,
			sendBps: s.pr.rate, recvBps: s.pr.rate}}
	}
	queued := bweSample{est: 600_000, recvBps: 550_000, probe: probeSample{packets: 10, queueMs: 60}}

	s := newSelector(1, t0)
	s.canProbe = true
	at := t0.Add(500 * time.Millisecond)
	if got := s.next(at, three, ok); got != 1 || s.pr.active {
		t.Fatalf("within the first wait: slot %d probing %v, want 1 and no probe", got, s.pr.active)
	}
	at = t0.Add(probeFirst + 100*time.Millisecond)
	if got := s.next(at, three, ok); got != 1 || !s.pr.active || s.pr.to != 0 {
		t.Fatalf("after the wait: slot %d probe %+v, want slot 1 probing slot 0", got, s.pr)
	}
	if s.pr.videoBps() <= 0 {
		t.Fatalf("a probe step without padding: %+v", s.pr)
	}
	// It fails at the first sign of a queue (held over two feedbacks):
	// same layer, the wait doubles.
	at = at.Add(100 * time.Millisecond)
	s.next(at, three, queued)
	at = at.Add(100 * time.Millisecond)
	if got := s.next(at, three, queued); got != 1 || s.pr.active || s.probeWait != 2*probeFirst {
		t.Fatalf("failed probe: slot %d active %v wait %v, want 1, false, %v", got, s.pr.active, s.probeWait, 2*probeFirst)
	}
	if got := s.next(at.Add(probeFirst), three, ok); got != 1 || s.pr.active {
		t.Fatalf("probe again before the doubled wait")
	}
	at = at.Add(2*probeFirst + 10*time.Millisecond)
	if got := s.next(at, three, ok); got != 1 || !s.pr.active {
		t.Fatalf("after the doubled wait: slot %d, probing %v", got, s.pr.active)
	}
	// Every step passes: up at the last one, not before.
	for i := 0; i < 40 && s.slot == 1; i++ {
		at = at.Add(probeLastStep)
		last := s.pr.last
		got := s.next(at, three, pass(&s))
		if got == 0 && !last {
			t.Fatalf("switched up before the last step")
		}
	}
	if s.slot != 0 || !s.trial || s.probes != [3]int{2, 1, 1} {
		t.Fatalf("after a passed probe: slot %d trial %v probes %v, want 0, on trial, [2 1 1]", s.slot, s.trial, s.probes)
	}
	// Congestion during a probe fails it; down-switches stay immediate.
	s = newSelector(2, t0)
	s.canProbe = true
	s.next(t0.Add(probeFirst+time.Millisecond), three, ok)
	if !s.pr.active {
		t.Fatal("no probe from q")
	}
	if got := s.next(t0.Add(probeFirst+200*time.Millisecond), three, bweSample{est: 100_000, congested: true}); got != 2 || s.pr.active {
		t.Fatalf("congested during a probe: slot %d active %v", got, s.pr.active)
	}
	// Paused: the probe is at the lowest layer's rate; resume when it passes.
	s = newSelector(slotPaused, t0)
	s.canProbe = true
	s.next(t0.Add(probeFirst+time.Millisecond), one, bweSample{recvBps: 40_000})
	if !s.pr.active || s.pr.to != 0 || s.pr.goal != int64(500_000*headroom) || s.slot != slotPaused {
		t.Fatalf("paused: probe %+v slot %d, want a probe of slot 0 at %v, still paused", s.pr, s.slot, 500_000*headroom)
	}
	at = t0.Add(probeFirst)
	for i := 0; i < 10 && s.slot == slotPaused; i++ {
		at = at.Add(probeLastStep)
		s.next(at, one, pass(&s))
	}
	if s.slot != 0 {
		t.Fatalf("paused viewer not resumed after a passed probe: slot %d", s.slot)
	}
}

// The estimator's cluster measures a probe step's own packets: the rate
// they were sent and arrived at, and the queueing they met.
func TestProbeCluster(t *testing.T) {
	const pktSize = 1000
	const gap = 4000 // µs: 2 Mbit/s sent
	cases := []struct {
		name       string
		drain      int64 // µs per packet at the bottleneck (0 = none)
		sendMin    int64
		recvMin    int64
		recvMax    int64
		queueMinMs float64
		queueMaxMs float64
	}{
		{"the link carries it", 0, 1_900_000, 1_900_000, 2_100_000, 0, 2},
		{"a 1 Mbit/s bottleneck", 8000, 1_900_000, 900_000, 1_100_000, 30, 1000},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			log := &twccLog{epoch: time.Unix(0, 0)}
			e := newBWE(log)
			now := time.Unix(100, 0)
			// 1 s before the step at 2 Mbit/s through whatever is there,
			// unqueued (the minimum delay), then the step.
			seq := 0
			arrive := int64(0)
			var smp bweSample
			for f := range 15 {
				if f == 10 {
					e.startCluster(log.epoch.Add(time.Duration(int64(seq)*gap) * time.Microsecond))
				}
				first := seq
				var sent, arr []int64
				for range 25 {
					s := int64(seq) * gap
					log.sent(uint16(seq), log.now(log.epoch.Add(time.Duration(s)*time.Microsecond)), pktSize)
					a := s + 20_000
					if f >= 10 && c.drain > 0 {
						arrive = max(arrive+c.drain, a)
						a = arrive
					} else {
						arrive = a
					}
					sent, arr = append(sent, s), append(arr, a)
					seq++
				}
				fb := feedbackFor(uint16(first), 25, func(i int) int64 { return sent[i] }, func(i int) int64 { return arr[i] - sent[i] },
					func(int) bool { return false })
				now = now.Add(100 * time.Millisecond)
				smp, _ = e.feedback(now, twccWalk(fb))
			}
			p := smp.probe
			if p.packets != 125 || p.sendSpan < 490*time.Millisecond {
				t.Fatalf("cluster saw %d packets over %v, want 125 over ~500 ms", p.packets, p.sendSpan)
			}
			if p.sendBps < c.sendMin || p.recvBps < c.recvMin || p.recvBps > c.recvMax {
				t.Fatalf("sent %d arrived %d bit/s, want ≥ %d and %d..%d", p.sendBps, p.recvBps, c.sendMin, c.recvMin, c.recvMax)
			}
			if p.queueMs < c.queueMinMs || p.queueMs > c.queueMaxMs {
				t.Fatalf("queueing %.1f ms, want %.0f..%.0f", p.queueMs, c.queueMinMs, c.queueMaxMs)
			}
			e.probed(p.recvBps, false)
			if e.clOn || e.est > float64(p.recvBps) {
				t.Fatalf("after a failed probe: cluster on %v, estimate %.0f above what got through (%d)", e.clOn, e.est, p.recvBps)
			}
		})
	}
}
