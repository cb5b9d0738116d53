package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bluenviron/gohlslib/v2/pkg/playlist"

	"liveroom/media/mediatest"
)

// hlsResult is what the hls workload reports.
type hlsResult struct {
	Players          int     `json:"players"`
	Started          int     `json:"started"`
	Failed           int     `json:"failed"`
	FirstPlaylistP50 float64 `json:"first_playlist_p50_ms"` // first index.m3u8 request to its answer (muxer start from the GOP cache)
	FirstPlaylistMax float64 `json:"first_playlist_max_ms"`
	Parts            int64   `json:"parts_fetched"`
	PartBytes        int64   `json:"part_bytes"`
	Requests         int64   `json:"requests"`
	Errors           int64   `json:"request_errors"`
	// PartReady: the wall time of a part's end on the room clock (the
	// segment's PROGRAM-DATE-TIME plus the parts before it, which the
	// server stamps from each access unit's PTS) to the blocking playlist
	// answer that lists it: how long after its last access unit entered
	// the seam a part is downloadable. Same-host clocks only.
	PartReadyP50     float64 `json:"part_ready_p50_ms"`
	PartReadyP95     float64 `json:"part_ready_p95_ms"`
	PartReadyMax     float64 `json:"part_ready_max_ms"`
	SteadySeconds    float64 `json:"steady_seconds"`
	ServerCPUSeconds float64 `json:"server_cpu_seconds"`
	ServerCPUPct     float64 `json:"server_cpu_pct_of_core"`
	RecvKbps         float64 `json:"received_kbps_per_player"`
}

// hlsCmd runs N LL-HLS players against a room: each fetches the playlists,
// then, like hls.js in low-latency mode, asks for the next part with a
// blocking playlist request (_HLS_msn/_HLS_part) and downloads it, for video
// and audio. It reports the server's CPU over the steady window (from
// /metrics) and how soon parts become downloadable.
func hlsCmd(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("hls", flag.ContinueOnError)
	base := fs.String("url", "http://127.0.0.1:8080", "server base URL")
	roomID := fs.String("room", "demo", "room id")
	token := fs.String("token", "", "viewer token (private rooms)")
	n := fs.Int("n", 1, "players; 0 = none (the publisher's own cost, for comparison)")
	steady := fs.Duration("duration", 20*time.Second, "how long to measure once every player has started")
	publishKey := fs.String("publish", "", "stream key or host token: also publish the clip to the room")
	clipDir := fs.String("clip", "", "directory with clip.h264, clip.ivf and clip.ogg for --publish (default: media/testdata)")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *n < 0 || *n > 5000 {
		return errors.New("--n must be 0..5000")
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
		time.Sleep(3 * time.Second) // live in the store, a GOP in the cache
	}

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4 * (*n + 1)}, Timeout: 15 * time.Second}
	st := &hlsStats{}
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	started := make(chan time.Duration, *n)
	for range *n {
		p := &hlsPlayer{c: client, base: *base + "/hls/" + *roomID + "/", token: *token, st: st}
		wg.Go(func() { p.run(pctx, started) })
	}
	var firsts []time.Duration
	res := hlsResult{Players: *n}
	for range *n {
		select {
		case d := <-started:
			if d < 0 {
				res.Failed++
			} else {
				firsts = append(firsts, d)
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	res.Started = len(firsts)
	sort.Slice(firsts, func(i, j int) bool { return firsts[i] < firsts[j] })
	if len(firsts) > 0 {
		res.FirstPlaylistP50, res.FirstPlaylistMax = ms(percentile(firsts, 50)), ms(firsts[len(firsts)-1])
	}
	time.Sleep(2 * time.Second) // players settle on the live edge
	st.reset()
	m1, err := scrapeMetrics(ctx, *base)
	if err != nil {
		return err
	}
	t1 := time.Now()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(*steady):
	}
	m2, err := scrapeMetrics(ctx, *base)
	if err != nil {
		return err
	}
	el := time.Since(t1)
	cancel()
	wg.Wait()

	res.SteadySeconds = el.Seconds()
	res.ServerCPUSeconds = m2.get("process_cpu_seconds_total") - m1.get("process_cpu_seconds_total")
	res.ServerCPUPct = 100 * res.ServerCPUSeconds / el.Seconds()
	res.Parts, res.PartBytes, res.Requests, res.Errors = st.parts.Load(), st.bytes.Load(), st.requests.Load(), st.errors.Load()
	if *n > 0 {
		res.RecvKbps = float64(res.PartBytes) * 8 / 1000 / el.Seconds() / float64(*n)
	}
	ready := st.readySorted()
	if len(ready) > 0 {
		res.PartReadyP50, res.PartReadyP95, res.PartReadyMax = ms(percentile(ready, 50)), ms(percentile(ready, 95)), ms(ready[len(ready)-1])
	}
	if *asJSON {
		return printJSON(out, res)
	}
	printTable(out, [][2]string{
		{"players started / failed", fmt.Sprintf("%d / %d", res.Started, res.Failed)},
		{"first playlist p50 / max", fmt.Sprintf("%.0f / %.0f ms", res.FirstPlaylistP50, res.FirstPlaylistMax)},
		{"parts fetched, kbit/s per player", fmt.Sprintf("%d, %.0f", res.Parts, res.RecvKbps)},
		{"requests / errors", fmt.Sprintf("%d / %d", res.Requests, res.Errors)},
		{"part ready p50 / p95 / max", fmt.Sprintf("%.0f / %.0f / %.0f ms", res.PartReadyP50, res.PartReadyP95, res.PartReadyMax)},
		{"server CPU", fmt.Sprintf("%.2f s in %.1f s = %.1f%% of a core", res.ServerCPUSeconds, res.SteadySeconds, res.ServerCPUPct)},
	})
	return nil
}

// hlsStats are shared by the players.
type hlsStats struct {
	parts, bytes, requests, errors atomic.Int64

	mu    sync.Mutex
	ready []time.Duration
}

func (s *hlsStats) reset() {
	s.parts.Store(0)
	s.bytes.Store(0)
	s.requests.Store(0)
	s.errors.Store(0)
	s.mu.Lock()
	s.ready = s.ready[:0]
	s.mu.Unlock()
}

func (s *hlsStats) addReady(d time.Duration) {
	s.mu.Lock()
	if len(s.ready) < 1<<20 {
		s.ready = append(s.ready, d)
	}
	s.mu.Unlock()
}

func (s *hlsStats) readySorted() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := append([]time.Duration(nil), s.ready...)
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// hlsPlayer is one LL-HLS client.
type hlsPlayer struct {
	c     *http.Client
	base  string
	token string
	st    *hlsStats
}

func (p *hlsPlayer) get(ctx context.Context, rel string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.base+rel, nil)
	if err != nil {
		return nil, err
	}
	if p.token != "" {
		req.Header.Set("Authorization", "Bearer "+p.token)
	}
	p.st.requests.Add(1)
	res, err := p.c.Do(req)
	if err != nil {
		if ctx.Err() == nil {
			p.st.errors.Add(1)
		}
		return nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, 64<<20))
	if err == nil && res.StatusCode != http.StatusOK {
		err = fmt.Errorf("GET %s: %d %s", rel, res.StatusCode, b)
	}
	if err != nil && ctx.Err() == nil {
		p.st.errors.Add(1)
	}
	return b, err
}

// run plays until ctx ends; it sends its time to the first playlist (or -1)
// on started once.
func (p *hlsPlayer) run(ctx context.Context, started chan<- time.Duration) {
	t0 := time.Now()
	body, err := p.get(ctx, "index.m3u8")
	var mv *playlist.Multivariant
	if err == nil {
		pl, perr := playlist.Unmarshal(body)
		mv, _ = pl.(*playlist.Multivariant)
		if perr != nil || mv == nil || len(mv.Variants) == 0 {
			err = fmt.Errorf("not a multivariant playlist: %v", perr)
		}
	}
	if err != nil {
		started <- -1
		return
	}
	started <- time.Since(t0)
	uris := []string{mv.Variants[0].URI}
	for _, r := range mv.Renditions {
		if r.URI != nil {
			uris = append(uris, *r.URI)
		}
	}
	var wg sync.WaitGroup
	for i, u := range uris {
		wg.Go(func() { p.follow(ctx, u, i == 0) })
	}
	wg.Wait()
}

// follow reads one media playlist at its live edge: a blocking request for
// the next part, then the part. measure: record part-ready times (video).
func (p *hlsPlayer) follow(ctx context.Context, uri string, measure bool) {
	path, query, _ := strings.Cut(uri, "?")
	sep := "?"
	if query != "" {
		path += "?" + query
		sep = "&"
	}
	var msn, part int
	have := false
	for ctx.Err() == nil {
		rel := path
		if have {
			rel += fmt.Sprintf("%s_HLS_msn=%d&_HLS_part=%d", sep, msn, part)
		}
		body, err := p.get(ctx, rel)
		at := time.Now()
		if err != nil {
			if ctx.Err() == nil {
				time.Sleep(500 * time.Millisecond)
				have = false
			}
			continue
		}
		pl, err := playlist.Unmarshal(body)
		m, _ := pl.(*playlist.Media)
		if err != nil || m == nil || len(m.Segments) == 0 {
			time.Sleep(200 * time.Millisecond)
			have = false
			continue
		}
		// The part in progress's segment is MediaSequence+len(Segments);
		// its parts so far are m.Parts.
		cur := m.MediaSequence + len(m.Segments)
		newest := ""
		if len(m.Parts) > 0 {
			newest = m.Parts[len(m.Parts)-1].URI
			msn, part = cur, len(m.Parts)
		} else {
			last := m.Segments[len(m.Segments)-1]
			if len(last.Parts) > 0 {
				newest = last.Parts[len(last.Parts)-1].URI
			}
			msn, part = cur, 0
		}
		if measure && have {
			if end, ok := partEnd(m); ok {
				p.st.addReady(at.Sub(end))
			}
		}
		have = true
		if newest == "" {
			continue
		}
		b, err := p.get(ctx, strings.SplitN(newest, "?", 2)[0]+tokenQuery(newest))
		if err == nil {
			p.st.parts.Add(1)
			p.st.bytes.Add(int64(len(b)))
		}
	}
}

// tokenQuery keeps a URI's query (a signed token) when fetching it.
func tokenQuery(uri string) string {
	if _, q, ok := strings.Cut(uri, "?"); ok {
		v, _ := url.ParseQuery(q)
		return "?" + v.Encode()
	}
	return ""
}

// partEnd is the room-clock wall time at the end of the newest part: the
// last complete segment's PROGRAM-DATE-TIME plus its duration plus the
// in-progress segment's parts.
func partEnd(m *playlist.Media) (time.Time, bool) {
	last := m.Segments[len(m.Segments)-1]
	if last.DateTime == nil {
		return time.Time{}, false
	}
	end := last.DateTime.Add(last.Duration)
	for _, pt := range m.Parts {
		end = end.Add(pt.Duration)
	}
	if len(m.Parts) == 0 {
		return time.Time{}, false
	}
	return end, true
}
