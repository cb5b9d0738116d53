package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

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

type floodStats struct {
	frames, connects, refused atomic.Int64

	mu     sync.Mutex
	closes map[string]int
}

// flood is one hostile client: connect, write resume and cart.add without
// reading until the server cuts it off, learn how it was closed, repeat.
func flood(ctx context.Context, f *wsFlags, token string, i int, sku string, rate float64, st *floodStats) {
	var pace *time.Ticker
	if rate > 0 {
		pace = time.NewTicker(time.Duration(float64(time.Second) / rate))
		defer pace.Stop()
	}
	d := &websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	if isLoopback(f.baseURL) {
		nd := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 1, byte(i%250)+2)}}
		d.NetDialContext = nd.DialContext
	}
	resume := []byte(`{"type":"resume","after_seq":0,"ref":"r"}`)
	for n := 0; ctx.Err() == nil; {
		st.connects.Add(1)
		ws, _, err := d.DialContext(ctx, f.wsURL(token), nil)
		if err != nil {
			st.refused.Add(1)
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
			continue
		}
		stop := context.AfterFunc(ctx, func() { ws.Close() })
		for ctx.Err() == nil {
			if pace != nil {
				select {
				case <-ctx.Done():
				case <-pace.C:
				}
			}
			frame := resume
			if n%2 == 1 {
				frame = fmt.Appendf(nil, `{"type":"cart.add","sku":%q,"qty":1,"key":"f%d-%d","ref":"a"}`, sku, i, n)
			}
			n++
			_ = ws.SetWriteDeadline(time.Now().Add(2 * time.Second))
			if err := ws.WriteMessage(websocket.TextMessage, frame); err != nil {
				break
			}
			st.frames.Add(1)
		}
		stop()
		code := "none"
		if ctx.Err() == nil {
			// Read what the server sent, up to its close frame.
			_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
			for {
				if _, _, err := ws.ReadMessage(); err != nil {
					var ce *websocket.CloseError
					if errors.As(err, &ce) {
						code = strconv.Itoa(ce.Code)
					}
					break
				}
			}
		} else {
			code = "open at the end"
		}
		ws.Close()
		st.mu.Lock()
		st.closes[code]++
		st.mu.Unlock()
	}
}

// floodProbe is a normal client measuring the round trip of a request.
type floodProbe struct {
	ws   *websocket.Conn
	mu   sync.Mutex
	sent map[string]time.Time
	got  chan time.Duration
	lost atomic.Int64
	seq  int
}

func dialProbe(ctx context.Context, f *wsFlags, token string) (*floodProbe, error) {
	d := &websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	if isLoopback(f.baseURL) {
		nd := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 2, 1)}}
		d.NetDialContext = nd.DialContext
	}
	ws, _, err := d.DialContext(ctx, f.wsURL(token), nil)
	if err != nil {
		return nil, err
	}
	p := &floodProbe{ws: ws, sent: map[string]time.Time{}, got: make(chan time.Duration, 4096)}
	go func() {
		for {
			_, b, err := ws.ReadMessage()
			if err != nil {
				close(p.got)
				return
			}
			var ev struct {
				Ref string `json:"ref"`
			}
			if json.Unmarshal(b, &ev) != nil || ev.Ref == "" {
				continue
			}
			p.mu.Lock()
			t0, ok := p.sent[ev.Ref]
			delete(p.sent, ev.Ref)
			p.mu.Unlock()
			if ok {
				p.got <- time.Since(t0)
			}
		}
	}()
	return p, nil
}

func (p *floodProbe) close() { p.ws.Close() }

// run sends a request (a frame of an unknown type: the hub answers it
// with an error carrying its ref, through the same queue as everything
// else) rate times a second for d, and returns the round trips, sorted.
func (p *floodProbe) run(ctx context.Context, d time.Duration, rate float64) []time.Duration {
	var lat []time.Duration
	tick := time.NewTicker(time.Duration(float64(time.Second) / rate))
	defer tick.Stop()
	end := time.After(d)
	for {
		select {
		case <-ctx.Done():
			return p.finish(lat)
		case <-end:
			return p.finish(lat)
		case l, ok := <-p.got:
			if !ok {
				return p.finish(lat)
			}
			lat = append(lat, l)
		case <-tick.C:
			p.mu.Lock()
			p.seq++
			ref := "p" + strconv.Itoa(p.seq)
			p.sent[ref] = time.Now()
			// Forget probes unanswered for a second: lost.
			for r, t := range p.sent {
				if time.Since(t) > time.Second {
					delete(p.sent, r)
					p.lost.Add(1)
				}
			}
			p.mu.Unlock()
			_ = p.ws.SetWriteDeadline(time.Now().Add(time.Second))
			_ = p.ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"wsflood.probe","ref":"`+ref+`"}`))
		}
	}
}

func (p *floodProbe) finish(lat []time.Duration) []time.Duration {
	// Collect what is already here.
	for {
		select {
		case l, ok := <-p.got:
			if ok {
				lat = append(lat, l)
				continue
			}
		default:
		}
		break
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	return lat
}

// seedHistory posts n chat messages, 5 per user (the chat burst), from
// loopback addresses of their own when the server is local.
func seedHistory(ctx context.Context, f *wsFlags, m *minter, n int) error {
	text := strings.Repeat("x", 450)
	d := &websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	for u := 0; u*5 < n; u++ {
		tok, err := m.token(ctx, fmt.Sprintf("wsflood-seed-%d", u), room.RoleViewer)
		if err != nil {
			return err
		}
		if isLoopback(f.baseURL) {
			nd := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 3, byte(u%250)+1)}}
			d.NetDialContext = nd.DialContext
		}
		ws, _, err := d.DialContext(ctx, f.wsURL(tok), nil)
		if err != nil {
			return err
		}
		for j := 0; j < 5 && u*5+j < n; j++ {
			if err := ws.WriteMessage(websocket.TextMessage, fmt.Appendf(nil, `{"type":"chat.send","text":"%d %s"}`, u*5+j, text)); err != nil {
				ws.Close()
				return err
			}
		}
		// Wait until our last message is back: the room has it.
		want := fmt.Sprintf(`"%d %s"`, min(n, u*5+5)-1, text)
		_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
		for {
			_, b, err := ws.ReadMessage()
			if err != nil {
				ws.Close()
				return err
			}
			if bytes.Contains(b, []byte(want)) {
				break
			}
		}
		ws.Close()
	}
	return nil
}

// putFloodProduct makes sure the flooders' product exists (stock 1000).
func putFloodProduct(ctx context.Context, f *wsFlags, sku string) error {
	body := []byte(`{"title":"Flood tee","price_cents":100,"currency":"EUR","stock":1000}`)
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, f.baseURL+"/api/v1/rooms/"+f.room+"/products/"+sku, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+f.adminKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("put product: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<12))
		return fmt.Errorf("put product: %s: %s", resp.Status, b)
	}
	return nil
}

// isLoopback reports whether base names a 127.0.0.0/8 host (so the
// clients can stand for distinct addresses).
func isLoopback(base string) bool {
	u, err := url.Parse(base)
	if err != nil {
		return false
	}
	ip := net.ParseIP(u.Hostname())
	return ip != nil && ip.IsLoopback() && ip.To4() != nil
}
