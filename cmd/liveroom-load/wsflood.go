package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"sync"
	"time"

	"liveroom/room"
)

// wsfloodResult is what the wsflood workload reports.
type wsfloodResult struct {
	Flooders        int            `json:"flooders"`
	FloodSeconds    float64        `json:"flood_seconds"`
	FramesSent      int64          `json:"flood_frames_sent"`
	FloodConnects   int64          `json:"flood_connects"`
	FloodRefused    int64          `json:"flood_connects_refused"` // dial or handshake failed, or refused at once
	FloodCloses     map[string]int `json:"flood_closes"`           // close code -> count ("none": no close frame)
	RSSBeforeMB     float64        `json:"server_rss_before_mb"`
	RSSPeakMB       float64        `json:"server_rss_peak_mb"`
	RSSAfterMB      float64        `json:"server_rss_after_mb"`
	RSSGrowthMB     float64        `json:"server_rss_growth_mb"` // peak − before
	GoroutinesPre   float64        `json:"server_goroutines_before"`
	GoroutinesPeak  float64        `json:"server_goroutines_peak"`
	GoroutinesAfter float64        `json:"server_goroutines_after"`
	ServerDrops     float64        `json:"server_drops"`
	ServerCores     float64        `json:"server_cpu_cores_flood"` // server CPU during the flood
	QuietCores      float64        `json:"server_cpu_cores_quiet"` // and during the quiet probe
	QuietSamples    int            `json:"probe_quiet_samples"`
	QuietP50ms      float64        `json:"probe_quiet_p50_ms"`
	QuietP99ms      float64        `json:"probe_quiet_p99_ms"`
	FloodSamples    int            `json:"probe_flood_samples"`
	FloodP50ms      float64        `json:"probe_flood_p50_ms"`
	FloodP99ms      float64        `json:"probe_flood_p99_ms"`
	ProbeLost       int64          `json:"probe_lost"` // probes without an answer within a second
}

// wsfloodCmd measures what a hostile WebSocket client costs the server: N
// signed-in clients send `resume` and `cart.add` back to back as fast as
// they can and never read (reconnecting whenever the server cuts them
// off), while a normal client from another address measures its request
// round trip (a frame and its answer). The same probe runs first without
// the flood, in the same run, for comparison. The server's RSS and
// goroutines come from its /metrics, sampled every 250 ms.
func wsfloodCmd(ctx context.Context, args []string, out io.Writer) error {
	var f wsFlags
	fs := flag.NewFlagSet("wsflood", flag.ContinueOnError)
	fs.StringVar(&f.baseURL, "url", "http://127.0.0.1:8080", "server base URL (its /metrics is scraped too)")
	fs.StringVar(&f.room, "room", "demo", "room id")
	fs.StringVar(&f.secret, "token-secret", "", "JWT secret: mint tokens locally")
	fs.StringVar(&f.adminKey, "admin-key", "", "admin key: mint tokens through POST /api/v1/tokens")
	fs.BoolVar(&f.json, "json", false, "print JSON")
	f.connectRate = 1000
	flooders := fs.Int("flooders", 4, "hostile clients (each its own user and, on loopback, its own 127.0.0.x)")
	duration := fs.Duration("duration", 10*time.Second, "flood time")
	quiet := fs.Duration("quiet", 5*time.Second, "probe time without the flood, before it")
	probeRate := fs.Float64("probe-rate", 10, "probe requests per second (under hub.frame_rate)")
	sku := fs.String("sku", "flood-tee", "product the flooders cart.add (created with --admin-key if missing)")
	frameRate := fs.Float64("frame-rate", 0, "frames per second per flooder (0: as fast as it can); under hub.frame_rate "+
		"the frame limit never cuts it off and the other caps must")
	history := fs.Int("history", 0, "chat messages of 450 bytes to seed the room with first (5 per seeding user), "+
		"so that each resume replays a big welcome")
	if err := fs.Parse(args); err != nil {
		return err
	}
	f.clients = *flooders + 1
	if err := f.check(); err != nil {
		return err
	}
	if *flooders < 1 || *duration <= 0 || *quiet <= 0 || *probeRate <= 0 || *probeRate > 100 {
		return errors.New("--flooders ≥ 1, --duration and --quiet positive, --probe-rate 0..100")
	}
	m, err := newMinter(&f)
	if err != nil {
		return err
	}
	if f.adminKey != "" {
		if err := putFloodProduct(ctx, &f, *sku); err != nil {
			return err
		}
	}
	if *history > 0 {
		if err := seedHistory(ctx, &f, m, *history); err != nil {
			return fmt.Errorf("seed history: %w", err)
		}
	}
	res := wsfloodResult{Flooders: *flooders, FloodCloses: map[string]int{}}
	before, err := scrapeServer(ctx, f.baseURL)
	if err != nil {
		return err
	}
	res.RSSBeforeMB, res.GoroutinesPre = before.RSS/(1<<20), before.Goroutines

	tok, err := m.token(ctx, "wsflood-probe", room.RoleViewer)
	if err != nil {
		return err
	}
	probe, err := dialProbe(ctx, &f, tok)
	if err != nil {
		return fmt.Errorf("probe: %w", err)
	}
	defer probe.close()

	quietStart := time.Now()
	quietLat := probe.run(ctx, *quiet, *probeRate)
	mid, err := scrapeServer(ctx, f.baseURL)
	if err != nil {
		return err
	}
	res.QuietCores = (mid.CPUSeconds - before.CPUSeconds) / time.Since(quietStart).Seconds()

	// The flood, with the probe running and the server sampled.
	fctx, stop := context.WithTimeout(ctx, *duration)
	defer stop()
	var wg sync.WaitGroup
	var fl floodStats
	fl.closes = map[string]int{}
	for i := range *flooders {
		tok, err := m.token(ctx, fmt.Sprintf("wsflood-%d", i), room.RoleViewer)
		if err != nil {
			return err
		}
		wg.Go(func() { flood(fctx, &f, tok, i, *sku, *frameRate, &fl) })
	}
	var peak serverStats
	var sampler sync.WaitGroup
	sampler.Go(func() {
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			if s, err := scrapeServer(ctx, f.baseURL); err == nil {
				peak.RSS = max(peak.RSS, s.RSS)
				peak.Goroutines = max(peak.Goroutines, s.Goroutines)
			}
			select {
			case <-fctx.Done():
				return
			case <-t.C:
			}
		}
	})
	start := time.Now()
	floodLat := probe.run(fctx, *duration, *probeRate)
	wg.Wait()
	sampler.Wait()
	res.FloodSeconds = time.Since(start).Seconds()
	if s, err := scrapeServer(ctx, f.baseURL); err == nil {
		res.ServerCores = (s.CPUSeconds - mid.CPUSeconds) / res.FloodSeconds
	}

	time.Sleep(time.Second) // let the server tear the last flooders down
	after, err := scrapeServer(ctx, f.baseURL)
	if err != nil {
		return err
	}
	res.RSSPeakMB, res.GoroutinesPeak = peak.RSS/(1<<20), peak.Goroutines
	res.RSSAfterMB, res.GoroutinesAfter = after.RSS/(1<<20), after.Goroutines
	res.RSSGrowthMB = res.RSSPeakMB - res.RSSBeforeMB
	res.ServerDrops = after.Drops - before.Drops
	res.FramesSent, res.FloodConnects, res.FloodRefused = fl.frames.Load(), fl.connects.Load(), fl.refused.Load()
	fl.mu.Lock()
	for k, v := range fl.closes {
		res.FloodCloses[k] = v
	}
	fl.mu.Unlock()
	res.QuietSamples, res.QuietP50ms, res.QuietP99ms = len(quietLat), ms(percentile(quietLat, 50)), ms(percentile(quietLat, 99))
	res.FloodSamples, res.FloodP50ms, res.FloodP99ms = len(floodLat), ms(percentile(floodLat, 50)), ms(percentile(floodLat, 99))
	res.ProbeLost = probe.lost.Load()

	if f.json {
		return printJSON(out, res)
	}
	codes := make([]string, 0, len(res.FloodCloses))
	for k := range res.FloodCloses {
		codes = append(codes, k)
	}
	sort.Strings(codes)
	closes := ""
	for _, k := range codes {
		closes += fmt.Sprintf("%s×%d ", k, res.FloodCloses[k])
	}
	printTable(out, [][2]string{
		{"flooders", fmt.Sprintf("%d for %.1f s: %d frames, %d connections (%d refused)", res.Flooders, res.FloodSeconds, res.FramesSent, res.FloodConnects, res.FloodRefused)},
		{"flooder closes", closes},
		{"server RSS", fmt.Sprintf("%.1f MiB before, %.1f peak (+%.1f), %.1f after", res.RSSBeforeMB, res.RSSPeakMB, res.RSSGrowthMB, res.RSSAfterMB)},
		{"server goroutines", fmt.Sprintf("%.0f before, %.0f peak, %.0f after", res.GoroutinesPre, res.GoroutinesPeak, res.GoroutinesAfter)},
		{"server drops", fmt.Sprintf("%.0f", res.ServerDrops)},
		{"server CPU", fmt.Sprintf("%.2f cores quiet, %.2f during the flood", res.QuietCores, res.ServerCores)},
		{"probe without flood", fmt.Sprintf("p50 %.2f ms, p99 %.2f ms (%d)", res.QuietP50ms, res.QuietP99ms, res.QuietSamples)},
		{"probe during flood", fmt.Sprintf("p50 %.2f ms, p99 %.2f ms (%d; %d lost)", res.FloodP50ms, res.FloodP99ms, res.FloodSamples, res.ProbeLost)},
	})
	return nil
}
