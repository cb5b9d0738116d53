package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pion/webrtc/v4"

	"liveroom/media/mediatest"
)

// unconnectedViewers is the server's series of unconnected WHEP sessions.
const unconnectedViewers = `liveroom_media_sessions{kind="viewer",state="unconnected"}`

// whepfloodResult is what the whepflood workload reports.
type whepfloodResult struct {
	Offers            int            `json:"offers"`
	FloodSeconds      float64        `json:"flood_seconds"`
	Statuses          map[string]int `json:"statuses"`
	Refused           int            `json:"refused"`
	NoRetryAfter      int            `json:"refusals_without_retry_after"`
	Errors            int            `json:"transport_errors"`
	RSSBeforeMB       float64        `json:"server_rss_before_mb"`
	RSSPeakMB         float64        `json:"server_rss_peak_mb"`
	RSSGrowthMB       float64        `json:"server_rss_growth_mb"`
	GoroutinesBefore  float64        `json:"server_goroutines_before"`
	GoroutinesPeak    float64        `json:"server_goroutines_peak"`
	UnconnectedPeak   float64        `json:"server_unconnected_sessions_peak"`
	TTFKQuiet         []float64      `json:"ttfk_without_flood_ms"`
	TTFKFlood         []float64      `json:"ttfk_during_flood_ms"`
	TTFKQuietP50ms    float64        `json:"ttfk_without_flood_p50_ms"`
	TTFKFloodP50ms    float64        `json:"ttfk_during_flood_p50_ms"`
	ViewerRefusals    int            `json:"viewer_refusals"`
	ServerRefusalsAll float64        `json:"server_refusals_total"`
}

// whepfloodCmd sends many WHEP offers that never connect from one source
// address, as fast as --rate allows, and measures what it costs the server
// (RSS, goroutines, unconnected sessions) and whether a viewer from another
// address still gets its first keyframe as fast as without the flood.
func whepfloodCmd(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("whepflood", flag.ContinueOnError)
	base := fs.String("url", "http://127.0.0.1:8080", "server base URL")
	roomID := fs.String("room", "demo", "room id")
	n := fs.Int("n", 2000, "offers to send")
	inflight := fs.Int("inflight", 50, "offers in flight at once")
	rate := fs.Float64("rate", 500, "offers per second; 0 = as fast as answered")
	from := fs.String("from", "127.0.0.7", "source address of the flood")
	viewerFrom := fs.String("viewer-from", "127.0.0.9", "source address of the measured viewer")
	samples := fs.Int("samples", 5, "viewer joins measured without the flood, before it")
	publishKey := fs.String("publish", "", "stream key or host token: publish the clip to the room first (needed for keyframes unless someone publishes)")
	clipDir := fs.String("clip", "", "clip directory for --publish (default: media/testdata)")
	pid := fs.Int("pid", 0, "server process id: RSS from /proc/<pid>/status (VmRSS); 0 = process_resident_memory_bytes from /metrics")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *n < 1 || *inflight < 1 {
		return errors.New("--n and --inflight must be at least 1")
	}
	*base = strings.TrimRight(*base, "/")
	if *publishKey != "" {
		clip, err := mediatest.LoadClip(*clipDir)
		if err != nil {
			return err
		}
		pub, err := mediatest.NewPublisher(ctx, mediatest.WHIP(*base+"/whip/"+*roomID, *publishKey).Signal, mediatest.PublisherOptions{Clip: clip})
		if err != nil {
			return fmt.Errorf("publish: %w", err)
		}
		defer pub.Close()
		if err := pub.WaitConnected(ctx); err != nil {
			return fmt.Errorf("publish: %w", err)
		}
		time.Sleep(time.Second)
	}
	offer, err := neverConnectingOffer(ctx)
	if err != nil {
		return err
	}
	watch := &floodViewer{base: *base, room: *roomID, client: clientFrom(*viewerFrom)}
	res := whepfloodResult{Offers: *n, Statuses: map[string]int{}}

	// Without the flood: the yardstick, in the same run.
	for range *samples {
		d, err := watch.join(ctx)
		if err != nil {
			return fmt.Errorf("viewer without the flood: %w", err)
		}
		res.TTFKQuiet = append(res.TTFKQuiet, ms(d))
	}
	rss := rssReader(*base, *pid)
	m0, err := scrapeMetrics(ctx, *base)
	if err != nil {
		return err
	}
	res.GoroutinesBefore = m0.get("go_goroutines")
	if res.RSSBeforeMB, err = rss(ctx); err != nil {
		return err
	}
	refused0 := m0.get("liveroom_media_admissions_refused_total")

	// The flood, watched by a sampler and a viewer joining again and again.
	fctx, stopFlood := context.WithCancel(ctx)
	defer stopFlood()
	var wg sync.WaitGroup
	var peakMu sync.Mutex
	wg.Go(func() {
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-fctx.Done():
				return
			case <-t.C:
			}
			m, err := scrapeMetrics(fctx, *base)
			r, rerr := rss(fctx)
			peakMu.Lock()
			if err == nil {
				res.GoroutinesPeak = max(res.GoroutinesPeak, m.get("go_goroutines"))
				res.UnconnectedPeak = max(res.UnconnectedPeak, m.get(unconnectedViewers), m.get("liveroom_media_sessions_unconnected_peak"))
			}
			if rerr == nil {
				res.RSSPeakMB = max(res.RSSPeakMB, r)
			}
			peakMu.Unlock()
		}
	})
	floodDone := make(chan struct{})
	wg.Go(func() {
		for {
			select {
			case <-floodDone:
				return
			default:
			}
			d, err := watch.join(fctx)
			if err != nil {
				if fctx.Err() == nil {
					fmt.Fprintf(os.Stderr, "viewer during the flood: %v\n", err)
				}
				return
			}
			peakMu.Lock()
			res.TTFKFlood = append(res.TTFKFlood, ms(d))
			peakMu.Unlock()
		}
	})
	start := time.Now()
	fl := &flooder{base: *base, room: *roomID, offer: offer, client: clientFrom(*from)}
	fl.run(ctx, *n, *inflight, *rate)
	res.FloodSeconds = time.Since(start).Seconds()
	close(floodDone)
	// Let the last join in flight finish, and one more sample be taken.
	time.Sleep(300 * time.Millisecond)
	stopFlood()
	wg.Wait()
	watch.client.CloseIdleConnections()

	for code, c := range fl.statuses {
		res.Statuses[strconv.Itoa(code)] = c
		if code == http.StatusTooManyRequests || code == http.StatusServiceUnavailable {
			res.Refused += c
		}
	}
	res.NoRetryAfter, res.Errors = fl.noRetry, fl.errors
	res.ViewerRefusals = watch.refusals
	res.RSSGrowthMB = max(0, res.RSSPeakMB-res.RSSBeforeMB)
	if m1, err := scrapeMetrics(ctx, *base); err == nil {
		res.ServerRefusalsAll = m1.get("liveroom_media_admissions_refused_total") - refused0
	}
	res.TTFKQuietP50ms = medianMs(res.TTFKQuiet)
	res.TTFKFloodP50ms = medianMs(res.TTFKFlood)
	if *asJSON {
		return printJSON(out, res)
	}
	fmt.Fprintf(out, "whepflood: %d offers from %s to %s in %.1fs\n", *n, *from, *roomID, res.FloodSeconds)
	printTable(out, [][2]string{
		{"answers by status", fmt.Sprint(res.Statuses)},
		{"refused (429/503)", fmt.Sprintf("%d (%d without Retry-After)", res.Refused, res.NoRetryAfter)},
		{"server RSS", fmt.Sprintf("%.1f MB before, %.1f MB peak, growth %.1f MB", res.RSSBeforeMB, res.RSSPeakMB, res.RSSGrowthMB)},
		{"server goroutines", fmt.Sprintf("%.0f before, %.0f peak", res.GoroutinesBefore, res.GoroutinesPeak)},
		{"unconnected sessions", fmt.Sprintf("%.0f peak", res.UnconnectedPeak)},
		{"viewer TTFK without flood", fmt.Sprintf("p50 %.0f ms of %v", res.TTFKQuietP50ms, res.TTFKQuiet)},
		{"viewer TTFK during flood", fmt.Sprintf("p50 %.0f ms of %v", res.TTFKFloodP50ms, res.TTFKFlood)},
		{"viewer refusals", strconv.Itoa(res.ViewerRefusals)},
	})
	return nil
}

// clientFrom is an HTTP client whose connections come from ip.
func clientFrom(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	return &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{DialContext: d.DialContext, MaxIdleConnsPerHost: 256}}
}

// neverConnectingOffer is a valid WHEP offer whose PeerConnection is closed
// once written: the server answers it and waits for ICE in vain.
func neverConnectingOffer(ctx context.Context) (string, error) {
	api, err := mediatest.NewAPI()
	if err != nil {
		return "", err
	}
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return "", err
	}
	defer pc.Close()
	for _, k := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio} {
		if _, err := pc.AddTransceiverFromKind(k, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
			return "", err
		}
	}
	o, err := pc.CreateOffer(nil)
	if err != nil {
		return "", err
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(o); err != nil {
		return "", err
	}
	select {
	case <-gathered:
	case <-ctx.Done():
		return "", ctx.Err()
	}
	return pc.LocalDescription().SDP, nil
}

// flooder posts the same offer many times and counts the answers.
type flooder struct {
	base, room, offer string
	client            *http.Client

	mu       sync.Mutex
	statuses map[int]int
	noRetry  int
	errors   int
}

func (f *flooder) run(ctx context.Context, n, inflight int, rate float64) {
	f.statuses = map[int]int{}
	sem := make(chan struct{}, inflight)
	var wg sync.WaitGroup
	var tick *time.Ticker
	if rate > 0 {
		tick = time.NewTicker(time.Duration(float64(time.Second) / rate))
		defer tick.Stop()
	}
	for range n {
		if tick != nil {
			select {
			case <-tick.C:
			case <-ctx.Done():
			}
		}
		if ctx.Err() != nil {
			break
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			f.post(ctx)
		})
	}
	wg.Wait()
	f.client.CloseIdleConnections()
}

func (f *flooder) post(ctx context.Context) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, f.base+"/whep/"+f.room, strings.NewReader(f.offer))
	if err != nil {
		return
	}
	req.Header.Set("Content-Type", "application/sdp")
	resp, err := f.client.Do(req)
	f.mu.Lock()
	defer f.mu.Unlock()
	if err != nil {
		f.errors++
		return
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	f.statuses[resp.StatusCode]++
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
		if ra, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || ra < 1 {
			f.noRetry++
		}
	}
}

// floodViewer joins the room from its own address and measures the time
// from its offer to the first complete keyframe; refusals are retried
// after Retry-After, as the viewer page does, and counted.
type floodViewer struct {
	base, room string
	client     *http.Client
	refusals   int
}

func (v *floodViewer) join(ctx context.Context) (time.Duration, error) {
	for {
		sig := mediatest.WHEP(v.base+"/whep/"+v.room, "")
		sig.Client = v.client
		jctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		vw, err := mediatest.NewViewer(jctx, sig.Signal, mediatest.ViewerOptions{})
		var se *mediatest.StatusError
		if errors.As(err, &se) && (se.Code == http.StatusTooManyRequests || se.Code == http.StatusServiceUnavailable) {
			cancel()
			v.refusals++
			time.Sleep(time.Second)
			continue
		}
		if err != nil {
			cancel()
			return 0, err
		}
		st, err := vw.WaitFor(jctx, func(s mediatest.ViewerStats) bool { return !s.FirstKeyframeAt.IsZero() })
		_ = vw.Close()
		_ = sig.Delete(ctx)
		cancel()
		if err != nil {
			return 0, fmt.Errorf("no keyframe: %w", err)
		}
		// Joins are spaced so that each one's keyframe request is its
		// own, not throttled behind the previous join's (pli_interval).
		time.Sleep(joinGap)
		return st.FirstKeyframeAt.Sub(st.Start), nil
	}
}

// joinGap spaces the measured viewer's joins.
const joinGap = 300 * time.Millisecond

// rssReader reads the server's resident memory in MB: from /proc/<pid> when
// the process is local and known, else from its /metrics.
func rssReader(base string, pid int) func(context.Context) (float64, error) {
	if pid > 0 {
		return func(context.Context) (float64, error) { return procRSS(pid) }
	}
	return func(ctx context.Context) (float64, error) {
		m, err := scrapeMetrics(ctx, base)
		if err != nil {
			return 0, err
		}
		return m.get("process_resident_memory_bytes") / (1 << 20), nil
	}
}

// procRSS is VmRSS of /proc/<pid>/status, in MB.
func procRSS(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, err := strconv.ParseFloat(f[1], 64)
			return kb / 1024, err
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
}

func medianMs(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	return s[len(s)/2]
}
