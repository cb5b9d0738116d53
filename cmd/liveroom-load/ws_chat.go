package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"liveroom/room"
)

// chatResult is what the chat workload reports.
type chatResult struct {
	Clients          int     `json:"clients"`
	Connected        int     `json:"connected"`
	Probes           int     `json:"probes"` // clients that parsed every frame (latency, delivered_pct)
	Failed           int     `json:"failed"`
	RatePerS         float64 `json:"rate_msgs_per_s"`
	Senders          int     `json:"senders"`
	Flooders         int     `json:"flooders"`
	WindowSeconds    float64 `json:"window_seconds"`
	Sent             int64   `json:"messages_sent"`
	Deliveries       int64   `json:"deliveries"`
	DeliveriesPerS   float64 `json:"deliveries_per_s"`
	DeliveredPct     float64 `json:"delivered_pct"` // of sent × receivers, for messages sent in the window
	LatencyP50ms     float64 `json:"latency_p50_ms"`
	LatencyP90ms     float64 `json:"latency_p90_ms"`
	LatencyP99ms     float64 `json:"latency_p99_ms"`
	LatencyMaxms     float64 `json:"latency_max_ms"`
	ServerCPUSeconds float64 `json:"server_cpu_seconds"`
	ServerCores      float64 `json:"server_cpu_cores"`
	CPUPer1000ms     float64 `json:"server_cpu_ms_per_1000_deliveries"`
	ServerRSSMB      float64 `json:"server_rss_mb"`
	ServerDrops      float64 `json:"server_drops"`
	Disconnects      int64   `json:"client_disconnects"`
	ErrorsReceived   int64   `json:"error_events"`
	FloodFramesSent  int64   `json:"flood_frames_sent"`
}

// chatCmd connects N clients to one room, has S of them chat at a fixed
// total rate, and measures delivery to everyone: throughput, end-to-end
// latency (send → receive, one clock), and the server's CPU and memory
// from its /metrics.
func chatCmd(ctx context.Context, args []string, out io.Writer) error {
	var f wsFlags
	fs := flag.NewFlagSet("chat", flag.ContinueOnError)
	f.register(fs)
	rate := fs.Float64("rate", 50, "chat messages per second, all senders together")
	senders := fs.Int("senders", 50, "clients that send (each one its own user; mind chat.chat_rate)")
	duration := fs.Duration("duration", 30*time.Second, "measured window")
	warmup := fs.Duration("warmup", 5*time.Second, "traffic before the window")
	flooders := fs.Int("flooders", 0, "extra clients sending chat.send as fast as they can (they reconnect when cut off)")
	probes := fs.Int("probes", 0, "if set, only this many clients (senders included) parse every frame and measure latency; "+
		"the rest are bulk readers that read every --sink-interval and only walk frame headers, so the load tool's CPU "+
		"does not starve a server on the same machine")
	sinkInterval := fs.Duration("sink-interval", 200*time.Millisecond, "read interval of bulk readers (with --probes)")
	sendURL := fs.String("send-url", "", "cluster: senders connect to this node instead of --url, and latency and "+
		"deliveries are counted on the other clients only (cross-node delivery)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := f.check(); err != nil {
		return err
	}
	if *rate <= 0 || *senders < 1 || *senders > f.clients {
		return errors.New("--rate must be positive and --senders 1..clients")
	}
	full := f.clients // clients that parse every frame
	if *probes > 0 {
		full = min(f.clients, max(*probes, *senders))
		if strings.HasPrefix(f.baseURL, "https") {
			return errors.New("--probes: bulk readers speak plain ws:// only")
		}
	}
	raiseFileLimit(f.clients + *flooders)
	m, err := newMinter(&f)
	if err != nil {
		return err
	}
	rxToken, err := m.token(ctx, "load-viewer", room.RoleViewer)
	if err != nil {
		return err
	}
	run := &chatRun{f: &f, start: time.Now()}
	txFlags := f
	if *sendURL != "" {
		txFlags.baseURL = strings.TrimRight(*sendURL, "/")
	}
	clients := make([]*loadClient, f.clients)
	sinks := make([]*sinkClient, f.clients)
	d := f.dialer()
	failed, firstErr := f.connectAll(ctx, f.clients, func(ctx context.Context, i int) error {
		tok := rxToken
		if i < *senders {
			// A local err: connectAll runs these concurrently.
			var err error
			if tok, err = m.token(ctx, fmt.Sprintf("load-sender-%d", i), room.RoleViewer); err != nil {
				return err
			}
		}
		if i >= full {
			s, err := dialSink(ctx, f.netDialer(), f.wsURL(tok))
			if err != nil {
				return err
			}
			sinks[i] = s
			return nil
		}
		u := f.wsURL(tok)
		if i < *senders {
			u = txFlags.wsURL(tok)
		}
		ws, _, err := d.DialContext(ctx, u, nil)
		if err != nil {
			return err
		}
		// With --send-url the senders sit on another node: only the
		// others measure cross-node delivery.
		c := &loadClient{ws: ws, shard: i, muted: i < *senders && *sendURL != ""}
		clients[i] = c
		run.wg.Add(1)
		go run.read(c)
		return nil
	})
	if firstErr != nil {
		fmt.Fprintf(os.Stderr, "first connect error: %v\n", firstErr)
	}
	var live []*loadClient
	for _, c := range clients {
		if c != nil {
			live = append(live, c)
		}
	}
	var tx []*loadClient
	for _, c := range clients[:*senders] {
		if c != nil {
			tx = append(tx, c)
		}
	}
	if len(tx) == 0 {
		return errors.New("no sender connected")
	}

	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	var bg sync.WaitGroup
	var live2 []*sinkClient
	for _, s := range sinks {
		if s != nil {
			live2 = append(live2, s)
			bg.Add(1)
			go func() {
				defer bg.Done()
				if err := s.run(runCtx, *sinkInterval); err != nil && runCtx.Err() == nil {
					run.disconnects.Add(1)
				}
			}()
		}
	}
	for i := range *flooders {
		bg.Add(1)
		go func() { defer bg.Done(); run.flood(runCtx, d, m, i) }()
	}
	bg.Add(1)
	go func() { defer bg.Done(); run.send(runCtx, tx, *rate) }()
	bg.Add(1)
	go func() { defer bg.Done(); run.progress(runCtx, len(live)+len(live2)) }()

	if !sleepCtx(ctx, *warmup) {
		return ctx.Err()
	}
	before, err := scrapeServer(ctx, f.baseURL)
	if err != nil {
		return err
	}
	run.hist.reset()
	winStart := time.Now()
	run.window(winStart.UnixNano(), winStart.Add(*duration).UnixNano())
	if !sleepCtx(ctx, *duration) {
		return ctx.Err()
	}
	after, err := scrapeServer(ctx, f.baseURL)
	if err != nil {
		return err
	}
	window := time.Since(winStart)
	recvInWindow := run.recvWin.Load()
	if len(live2) > 0 {
		// Bulk readers do not parse: count what the server queued instead.
		recvInWindow = int64(after.Deliveries - before.Deliveries)
	}
	stop()
	sleepCtx(ctx, 2*time.Second) // stragglers of the window's last messages
	bg.Wait()
	for _, c := range live {
		c.ws.Close()
	}
	for _, s := range live2 {
		s.close()
	}
	run.wg.Wait()

	n, qs, maxLat := run.hist.summary(0.5, 0.9, 0.99)
	sent := run.sentWin.Load()
	res := chatResult{
		Clients: f.clients, Connected: len(live) + len(live2), Probes: len(live), Failed: failed, RatePerS: *rate, Senders: len(tx), Flooders: *flooders,
		WindowSeconds: window.Seconds(), Sent: sent, Deliveries: recvInWindow,
		DeliveriesPerS: float64(recvInWindow) / window.Seconds(),
		LatencyP50ms:   ms(qs[0]), LatencyP90ms: ms(qs[1]), LatencyP99ms: ms(qs[2]), LatencyMaxms: ms(maxLat),
		ServerCPUSeconds: after.CPUSeconds - before.CPUSeconds,
		ServerRSSMB:      after.RSS / (1 << 20),
		ServerDrops:      after.Drops - before.Drops,
		Disconnects:      run.disconnects.Load(),
		ErrorsReceived:   run.errors.Load(),
		FloodFramesSent:  run.floodFrames.Load(),
	}
	res.ServerCores = res.ServerCPUSeconds / window.Seconds()
	if recvInWindow > 0 {
		res.CPUPer1000ms = res.ServerCPUSeconds * 1000 / (float64(recvInWindow) / 1000)
	}
	if sent > 0 {
		probes := len(live)
		if *sendURL != "" {
			probes -= len(tx)
		}
		res.DeliveredPct = 100 * float64(n) / float64(sent*int64(max(probes, 1))) // of what the probes should have got
	}
	if f.json {
		return printJSON(out, res)
	}
	fmt.Fprintf(out, "liveroom-load chat: room %s, %d clients (%d parse every frame), %g msg/s from %d senders, %d flooders, %.0fs window\n",
		f.room, f.clients, len(live), *rate, len(tx), *flooders, window.Seconds())
	printTable(out, [][2]string{
		{"connected", fmt.Sprintf("%d (%d failed)", res.Connected, failed)},
		{"messages sent", fmt.Sprint(sent)},
		{"deliveries", fmt.Sprintf("%d  (%.0f/s; probes got %.2f%% of sent × probes)", recvInWindow, res.DeliveriesPerS, res.DeliveredPct)},
		{"latency p50/p90/p99", fmt.Sprintf("%.1f / %.1f / %.1f ms  (max %.0f ms; target p99 ≤ 100 ms)", res.LatencyP50ms, res.LatencyP90ms, res.LatencyP99ms, res.LatencyMaxms)},
		{"server CPU", fmt.Sprintf("%.2f cores; %.2f ms per 1,000 deliveries", res.ServerCores, res.CPUPer1000ms)},
		{"server RSS", mib(after.RSS)},
		{"server drops", fmt.Sprint(res.ServerDrops)},
		{"client disconnects", fmt.Sprint(res.Disconnects)},
		{"error events", fmt.Sprint(res.ErrorsReceived)},
	})
	return nil
}

type loadClient struct {
	ws    *websocket.Conn
	shard int
	muted bool // reads, but its deliveries are not counted
}

type chatRun struct {
	f     *wsFlags
	start time.Time
	wg    sync.WaitGroup
	hist  latencyHist

	winFrom, winTo atomic.Int64 // unix ns; messages sent inside count
	sentWin        atomic.Int64
	recvWin        atomic.Int64 // chat.message frames received inside the window
	recvAll        atomic.Int64
	disconnects    atomic.Int64
	errors         atomic.Int64
	floodFrames    atomic.Int64
}

func (r *chatRun) window(from, to int64) {
	r.winTo.Store(to)
	r.winFrom.Store(from)
}

var (
	chatMsgPrefix = []byte(`{"type":"chat.message"`)
	errorPrefix   = []byte(`{"type":"error"`)
	stampMarker   = []byte(`"text":"lt `)
)

// read consumes one client's frames; it never parses JSON: chat messages
// carry their send time in the text.
func (r *chatRun) read(c *loadClient) {
	defer r.wg.Done()
	var buf bytes.Buffer
	for {
		_, rd, err := c.ws.NextReader()
		if err != nil {
			if !errors.Is(err, websocket.ErrCloseSent) && !isClosedErr(err) {
				r.disconnects.Add(1)
			}
			return
		}
		buf.Reset()
		if _, err := buf.ReadFrom(rd); err != nil {
			r.disconnects.Add(1)
			return
		}
		now := time.Now().UnixNano()
		b := buf.Bytes()
		switch {
		case bytes.HasPrefix(b, chatMsgPrefix) && c.muted:
		case bytes.HasPrefix(b, chatMsgPrefix):
			r.recvAll.Add(1)
			from, to := r.winFrom.Load(), r.winTo.Load()
			if from != 0 && now >= from && now <= to {
				r.recvWin.Add(1)
			}
			if i := bytes.Index(b, stampMarker); i >= 0 {
				sentAt := decodeStamp(b[i+len(stampMarker):])
				if from != 0 && sentAt >= from && sentAt <= to {
					r.hist.add(c.shard, time.Duration(now-sentAt))
				}
			}
		case bytes.HasPrefix(b, errorPrefix):
			r.errors.Add(1)
		}
	}
}

func isClosedErr(err error) bool {
	var ce *websocket.CloseError
	return errors.As(err, &ce) && ce.Code == websocket.CloseNormalClosure || errors.Is(err, net.ErrClosed)
}

// send spreads rate messages a second over the senders, round robin.
func (r *chatRun) send(ctx context.Context, tx []*loadClient, rate float64) {
	interval := time.Duration(float64(time.Second) / rate)
	next := time.Now()
	for i := 0; ; i++ {
		next = next.Add(interval)
		if !sleepCtx(ctx, time.Until(next)) {
			return
		}
		c := tx[i%len(tx)]
		now := time.Now().UnixNano()
		frame := append([]byte(`{"type":"chat.send","text":"lt `), encodeStamp(now)...)
		frame = append(frame, `"}`...)
		_ = c.ws.SetWriteDeadline(time.Now().Add(5 * time.Second))
		if err := c.ws.WriteMessage(websocket.TextMessage, frame); err != nil {
			continue
		}
		if from, to := r.winFrom.Load(), r.winTo.Load(); from != 0 && now >= from && now <= to {
			r.sentWin.Add(1)
		}
	}
}

// flood sends chat.send frames as fast as one connection allows, and
// reconnects when the server cuts it off.
func (r *chatRun) flood(ctx context.Context, d *websocket.Dialer, m *minter, i int) {
	tok, err := m.token(ctx, fmt.Sprintf("load-flooder-%d", i), room.RoleViewer)
	if err != nil {
		return
	}
	frame := []byte(`{"type":"chat.send","text":"flood flood flood"}`)
	for ctx.Err() == nil {
		ws, _, err := d.DialContext(ctx, r.f.wsURL(tok), nil)
		if err != nil {
			sleepCtx(ctx, 100*time.Millisecond)
			continue
		}
		go func() { // drain, so the server never sees a slow consumer
			for {
				if _, _, err := ws.NextReader(); err != nil {
					return
				}
			}
		}()
		for ctx.Err() == nil {
			if ws.WriteMessage(websocket.TextMessage, frame) != nil {
				break
			}
			r.floodFrames.Add(1)
		}
		ws.Close()
	}
}

func (r *chatRun) progress(ctx context.Context, conns int) {
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	last, lastAt := r.recvAll.Load(), time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			cur := r.recvAll.Load()
			_, qs, _ := r.hist.summary(0.5, 0.99)
			fmt.Fprintf(os.Stderr, "t=%4.0fs conns=%d deliveries/s=%.0f window p50=%.1fms p99=%.1fms disconnects=%d errors=%d\n",
				time.Since(r.start).Seconds(), conns, float64(cur-last)/now.Sub(lastAt).Seconds(), ms(qs[0]), ms(qs[1]),
				r.disconnects.Load(), r.errors.Load())
			last, lastAt = cur, now
		}
	}
}

// encodeStamp writes ns in base 26 letters: no digits, so the message
// never looks like a phone number to the review filter.
func encodeStamp(ns int64) []byte {
	var b [16]byte
	i := len(b)
	u := uint64(ns)
	for u > 0 {
		i--
		b[i] = 'a' + byte(u%26)
		u /= 26
	}
	return append([]byte(nil), b[i:]...)
}

func decodeStamp(b []byte) int64 {
	var u uint64
	for _, c := range b {
		if c < 'a' || c > 'z' {
			break
		}
		u = u*26 + uint64(c-'a')
	}
	return int64(u)
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
