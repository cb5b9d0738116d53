package media_test

import (
	"context"
	"os"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"liveroom/media/mediatest"

	"github.com/pion/webrtc/v4"
)

func TestZZProbeJoin(t *testing.T) {
	if os.Getenv("PROBE") == "" {
		t.Skip()
	}
	n, _ := strconv.Atoi(os.Getenv("PROBE"))
	ctx := testCtx(t, 60*time.Second)
	s := newSFU(t)
	c, err := mediatest.LoadClip("/tmp/clip2m")
	if err != nil {
		t.Fatal(err)
	}
	pub, err := mediatest.NewPublisher(ctx, publishVia(s.SFU, "r", "h", nil), mediatest.PublisherOptions{Clip: c})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	pub.WaitConnected(ctx)
	time.Sleep(2 * time.Second)
	api, _ := mediatest.NewAPI()
	keys := []string{"post", "answer", "ice-connected", "pc-connected", "first-pkt", "keyframe"}
	all := map[string][]time.Duration{}
	var amu sync.Mutex
	start := time.Now()
	plis0 := pub.PLIs()
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			var mu sync.Mutex
			ev := map[string]time.Time{}
			mark := func(k string) {
				mu.Lock()
				if _, ok := ev[k]; !ok {
					ev[k] = time.Now()
				}
				mu.Unlock()
			}
			sig := subscribeVia(s.SFU, "r", nil)
			v, err := mediatest.NewViewer(ctx, func(ctx context.Context, offer string) (string, error) {
				mark("post")
				a, err := sig(ctx, offer)
				mark("answer")
				return a, err
			}, mediatest.ViewerOptions{API: api})
			if err != nil {
				t.Error(err)
				return
			}
			defer v.Close()
			v.PC.OnICEConnectionStateChange(func(st webrtc.ICEConnectionState) { mark("ice-" + st.String()) })
			v.PC.OnConnectionStateChange(func(st webrtc.PeerConnectionState) { mark("pc-" + st.String()) })
			st, _ := v.WaitFor(ctx, func(s mediatest.ViewerStats) bool { return !s.FirstKeyframeAt.IsZero() })
			ev["first-pkt"] = st.FirstPacketAt
			ev["keyframe"] = st.FirstKeyframeAt
			amu.Lock()
			for k, tm := range ev {
				all[k] = append(all[k], tm.Sub(start))
			}
			amu.Unlock()
		})
	}
	wg.Wait()
	for _, k := range keys {
		d := all[k]
		sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
		if len(d) == 0 {
			continue
		}
		t.Logf("%-14s min %6.1f p50 %6.1f p95 %6.1f max %6.1f", k, ms(d[0]), ms(d[len(d)/2]), ms(d[len(d)*95/100]), ms(d[len(d)-1]))
	}
	t.Logf("plis at publisher: %d", pub.PLIs()-plis0)
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }

func TestZZProbeSteady(t *testing.T) {
	if os.Getenv("STEADY") == "" {
		t.Skip()
	}
	n, _ := strconv.Atoi(os.Getenv("STEADY"))
	ctx := testCtx(t, 120*time.Second)
	s := newSFU(t)
	c, err := mediatest.LoadClip("/tmp/clip2m")
	if err != nil {
		t.Fatal(err)
	}
	pub, err := mediatest.NewPublisher(ctx, publishVia(s.SFU, "r", "h", nil), mediatest.PublisherOptions{Clip: c})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	pub.WaitConnected(ctx)
	api, _ := mediatest.NewAPI()
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			v, err := mediatest.NewViewer(ctx, subscribeVia(s.SFU, "r", nil), mediatest.ViewerOptions{API: api})
			if err != nil {
				t.Error(err)
				return
			}
			t.Cleanup(func() { v.Close() })
		})
	}
	wg.Wait()
	time.Sleep(12 * time.Second)
}
