package media

import (
	"math/rand/v2"
	"testing"

	"github.com/pion/interceptor/pkg/twcc"
	"github.com/pion/rtcp"
)

type twccStatus struct {
	seq uint16
	ok  bool
	arr int64
}

// The raw walker reads what pion's own feedback builder writes exactly as
// eachTWCC reads pion's parse of it: run-length and both status-vector
// chunks, small and large (negative) deltas, losses, sequence wrap.
func TestEachTWCCRawMatchesPion(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 50 {
		rec := twcc.NewRecorder(1)
		seq := uint16(65500 + round*3)
		at := int64(1_000_000 + round*77_777)
		for i := range 40 + round*5 {
			if rng.IntN(10) < 2 { // lost
				seq++
				continue
			}
			switch {
			case i%17 == 5:
				at -= 3000 // reordered: a negative (large) delta
			case i%11 == 3:
				at += 80_000 // a large delta
			default:
				at += int64(rng.IntN(4000))
			}
			rec.Record(5, seq, at)
			seq++
		}
		for _, p := range rec.BuildFeedbackPacket() {
			fb, ok := p.(*rtcp.TransportLayerCC)
			if !ok {
				continue
			}
			raw, err := fb.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			var want, got []twccStatus
			eachTWCC(fb, func(s uint16, ok bool, a int64) { want = append(want, twccStatus{s, ok, a}) })
			if !eachTWCCRaw(raw, func(s uint16, ok bool, a int64) { got = append(got, twccStatus{s, ok, a}) }) {
				t.Fatalf("round %d: raw walker refused pion's packet", round)
			}
			if len(got) != len(want) {
				t.Fatalf("round %d: %d statuses, want %d", round, len(got), len(want))
			}
			for i := range want {
				if got[i] != want[i] {
					t.Fatalf("round %d status %d: got %+v, want %+v", round, i, got[i], want[i])
				}
			}
		}
	}
}

func TestEachTWCCRawRefusesTruncated(t *testing.T) {
	rec := twcc.NewRecorder(1)
	for i := range 30 {
		rec.Record(5, uint16(i), int64(i)*1000)
	}
	raw, err := rec.BuildFeedbackPacket()[0].Marshal()
	if err != nil {
		t.Fatal(err)
	}
	for n := range len(raw) - 4 { // padding may be cut without harm
		if n >= twccHeaderLen && n > len(raw)-8 {
			break
		}
		if eachTWCCRaw(raw[:n], func(uint16, bool, int64) {}) {
			t.Fatalf("accepted a packet cut to %d of %d bytes", n, len(raw))
		}
	}
}
