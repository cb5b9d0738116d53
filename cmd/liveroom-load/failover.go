package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/pion/webrtc/v4"

	"liveroom/media/mediatest"
)

// failoverResult is the failover workload's report.
type failoverResult struct {
	Viewers   int            `json:"viewers"`
	Joined    int            `json:"joined"`
	ByNode    map[string]int `json:"by_node"`       // video sessions per node before the event
	Affected  int            `json:"affected"`      // viewers whose video node went away
	Recovered int            `json:"recovered"`     // of those, watching again before --timeout
	OutageP50 float64        `json:"outage_p50_ms"` // event → first video packet of the new session
	OutageP95 float64        `json:"outage_p95_ms"`
	OutageMax float64        `json:"outage_max_ms"`
	// The longest pause in an affected viewer's video: a drained node keeps
	// sending until the new session plays, so this can be far below outage.
	GapP50     float64        `json:"gap_p50_ms"`
	GapP95     float64        `json:"gap_p95_ms"`
	GapMax     float64        `json:"gap_max_ms"`
	Attempts   int            `json:"attempts"`         // renegotiations, failed ones included
	PeakJoins  int            `json:"peak_joins_per_s"` // re-joins completed in the busiest second
	Unaffected int            `json:"unaffected"`       // viewers on the other nodes
	Disturbed  int            `json:"disturbed"`        // of those, video paused over 1 s
	After      map[string]int `json:"after_by_node"`    // video sessions per node after
	// The nodes' caps at work (issue #21): refusals the viewers got (429 or
	// 503, each with Retry-After, retried after it), joins that failed
	// otherwise, and each --nodes node's unconnected WHEP sessions at most
	// (sampled from its /metrics) and refusals it counted.
	Refused429    int    `json:"refused_429"`
	Refused503    int    `json:"refused_503"`
	NoRetryAfter  int    `json:"refusals_without_retry_after"` // from the nodes (a JSON error)
	NoRetrySample string `json:"refusal_without_retry_after_sample,omitempty"`
	// 503s the balancer made itself (haproxy's "No server is available"
	// page, no Retry-After), retried like the nodes' after a second.
	Balancer503   int    `json:"balancer_503"`
	JoinFailures  int    `json:"join_failures"` // an HTTP error other than 429/503, or no video
	FailureSample string `json:"join_failure_sample,omitempty"`
	// Joins cut at the transport (the balancer closed the connection: a
	// request in flight to the killed node), retried like the rest.
	TransportErrors int                `json:"join_transport_errors"`
	UnconnectedPeak map[string]float64 `json:"unconnected_peak_by_node,omitempty"`
	ServerRefusals  map[string]float64 `json:"server_refusals_by_node,omitempty"`
}

// failoverCmd: viewers watch a room through a load balancer like the viewer
// page does (a cookie jar each, so the balancer's stickiness applies, a room
// WebSocket and a WHEP session); then --event runs (e.g. kill -9 or SIGTERM
// of one node). A viewer whose room WebSocket closes without a normal close,
// or whose peer connection fails, renegotiates through the same URL at once,
// with jittered backoff only after a failed attempt — the page's rule. The
// report is the outage of each affected viewer: from the event to the first
// video packet of its new session.
func failoverCmd(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("failover", flag.ContinueOnError)
	base := fs.String("url", "http://127.0.0.1:8080", "the load balancer's base URL")
	roomID := fs.String("room", "demo", "room id (live: someone publishes to it)")
	token := fs.String("token", "", "viewer token (private rooms)")
	n := fs.Int("n", 200, "viewers")
	event := fs.String("event", "", "shell command run once everyone watches, e.g. 'kill -9 PID' (required)")
	settle := fs.Duration("settle", 2*time.Second, "steady watching before the event")
	timeout := fs.Duration("timeout", 20*time.Second, "how long to wait for every affected viewer to come back")
	nodeList := fs.String("nodes", "", "comma-separated base URLs of the nodes behind the balancer: their /metrics are sampled (unconnected sessions, refusals)")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *event == "" || *n < 1 {
		return errors.New("--event and --n >= 1 are required")
	}
	*base = strings.TrimRight(*base, "/")
	raiseFileLimit(*n * 4)
	// The room socket is the first sign of a dead node (the balancer keeps
	// a viewer's socket and video on one node); ICE failing is the fallback
	// for a viewer whose socket is elsewhere: sooner than pion's 30 s, but not
	// so soon that a busy machine's hiccup moves everyone.
	api, err := mediatest.NewAPIWith(func(se *webrtc.SettingEngine) {
		se.SetICETimeouts(4*time.Second, 8*time.Second, time.Second)
	})
	if err != nil {
		return err
	}

	vs := make([]*fviewer, *n)
	var wg sync.WaitGroup
	errs := make([]error, *n)
	for i := range vs {
		vs[i] = &fviewer{base: *base, room: *roomID, token: *token, api: api}
		wg.Go(func() { errs[i] = vs[i].start(ctx) })
		time.Sleep(5 * time.Millisecond) // a crowd, not one burst
	}
	wg.Wait()
	defer func() {
		for _, v := range vs {
			v.close()
		}
	}()
	res := failoverResult{Viewers: *n, ByNode: map[string]int{}, After: map[string]int{}}
	for i, v := range vs {
		if errs[i] == nil {
			res.Joined++
			res.ByNode[v.videoNode()]++
		}
	}
	if res.Joined == 0 {
		return fmt.Errorf("no viewer joined (first error: %v)", firstErr(errs))
	}
	fmt.Fprintf(out, "%d/%d watching %v; event in %v: %s\n", res.Joined, *n, res.ByNode, *settle, *event)
	var nodes []string
	if *nodeList != "" {
		nodes = strings.Split(*nodeList, ",")
	}
	sampler := newCapSampler(nodes)
	sctx, stopSampling := context.WithCancel(ctx)
	defer stopSampling()
	var sampling sync.WaitGroup
	sampling.Go(func() { sampler.run(sctx) })
	time.Sleep(*settle)

	// Armed before the event: a socket may close before the command returns.
	at := time.Now()
	for _, v := range vs {
		v.armed(at)
	}
	if msg, err := exec.CommandContext(ctx, "sh", "-c", *event).CombinedOutput(); err != nil {
		return fmt.Errorf("--event: %v: %s", err, msg)
	}

	// Wait until every viewer whose node went away watches again elsewhere.
	deadline := time.Now().Add(*timeout)
	for time.Now().Before(deadline) {
		pending := 0
		for i, v := range vs {
			if errs[i] == nil && (!v.lostAt().IsZero() && v.recoveredAt().IsZero() || v.iceTroubled()) {
				pending++
			}
		}
		// Viewers whose socket was on another node notice through ICE (8 s).
		if pending == 0 && time.Since(at) > 10*time.Second {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}

	stopSampling()
	sampling.Wait()
	res.UnconnectedPeak, res.ServerRefusals = sampler.result(ctx)

	var outages, gaps []time.Duration
	var joins []time.Time
	for i, v := range vs {
		st := v.report()
		res.Refused429 += st.refused[http.StatusTooManyRequests]
		res.Refused503 += st.refused[http.StatusServiceUnavailable]
		res.NoRetryAfter += st.noRetryAfter
		res.Balancer503 += st.balancer
		if st.noRetrySample != "" {
			res.NoRetrySample = st.noRetrySample
		}
		res.JoinFailures += st.failures
		res.TransportErrors += st.transport
		if st.failure != "" {
			res.FailureSample = st.failure
		}
		if errs[i] != nil {
			continue
		}
		res.Attempts += st.attempts
		res.After[v.videoNode()]++
		if st.lost.IsZero() {
			res.Unaffected++
			if st.maxGap > time.Second {
				res.Disturbed++
			}
			continue
		}
		res.Affected++
		gaps = append(gaps, st.maxGap)
		if !st.recovered.IsZero() {
			res.Recovered++
			outages = append(outages, st.recovered.Sub(at))
			joins = append(joins, st.recovered)
		}
	}
	sort.Slice(outages, func(i, j int) bool { return outages[i] < outages[j] })
	if len(outages) > 0 {
		res.OutageP50 = ms(percentile(outages, 50))
		res.OutageP95 = ms(percentile(outages, 95))
		res.OutageMax = ms(outages[len(outages)-1])
	}
	sort.Slice(gaps, func(i, j int) bool { return gaps[i] < gaps[j] })
	if len(gaps) > 0 {
		res.GapP50 = ms(percentile(gaps, 50))
		res.GapP95 = ms(percentile(gaps, 95))
		res.GapMax = ms(gaps[len(gaps)-1])
	}
	res.PeakJoins = peakPerSecond(joins)
	if *asJSON {
		return printJSON(out, res)
	}
	printTable(out, [][2]string{
		{"viewers watching before", fmt.Sprintf("%d of %d %v", res.Joined, res.Viewers, res.ByNode)},
		{"affected (their node went away)", fmt.Sprintf("%d; recovered %d", res.Affected, res.Recovered)},
		{"event → new session's video p50 / p95 / max (target <= 5 s)", fmt.Sprintf("%.0f / %.0f / %.0f ms", res.OutageP50, res.OutageP95, res.OutageMax)},
		{"longest video pause p50 / p95 / max", fmt.Sprintf("%.0f / %.0f / %.0f ms", res.GapP50, res.GapP95, res.GapMax)},
		{"renegotiations (failed ones included)", fmt.Sprint(res.Attempts)},
		{"re-joins in the busiest second", fmt.Sprint(res.PeakJoins)},
		{"unaffected / paused over 1 s", fmt.Sprintf("%d / %d", res.Unaffected, res.Disturbed)},
		{"video sessions after", fmt.Sprint(res.After)},
		{"refused 429 / 503 (by a node without Retry-After; by the balancer)", fmt.Sprintf("%d / %d (%d; %d)", res.Refused429, res.Refused503, res.NoRetryAfter, res.Balancer503)},
		{"a refusal without Retry-After", strings.Join(strings.Fields(res.NoRetrySample), " ")},
		{"joins failed otherwise (HTTP / transport)", fmt.Sprintf("%d / %d", res.JoinFailures, res.TransportErrors)},
		{"nodes' unconnected sessions at most", fmt.Sprint(res.UnconnectedPeak)},
		{"nodes' refusals", fmt.Sprint(res.ServerRefusals)},
	})
	return nil
}

// peakPerSecond is the largest number of times within one second.
func peakPerSecond(ts []time.Time) int {
	sort.Slice(ts, func(i, j int) bool { return ts[i].Before(ts[j]) })
	peak, lo := 0, 0
	for hi := range ts {
		for ts[hi].Sub(ts[lo]) >= time.Second {
			lo++
		}
		peak = max(peak, hi-lo+1)
	}
	return peak
}

// fviewer is one page's worth of a viewer: a cookie jar, a room WebSocket
// and a WHEP session, both through the balancer.
type fviewer struct {
	base, room, token string
	api               *webrtc.API
	client            *http.Client

	mu        sync.Mutex
	v         *mediatest.Viewer
	node      string // the video session's node
	ws        *websocket.Conn
	wsNode    string
	eventAt   time.Time
	lost      time.Time // when it noticed its node went away (after the event)
	recovered time.Time // first video packet of the session that replaced it
	attempts  int
	maxGap    time.Duration
	closed    bool
	cancel    context.CancelFunc
	refused   map[int]int // 429s and 503s, by status
	noRetry   int         // of those, without a Retry-After
	noRetryAt string      // the body of the last such refusal
	balancer  int         // 503s the balancer made itself
	failures  int         // joins that failed otherwise
	failure   string      // the last such failure
	transport int         // joins cut at the transport
}

type fviewerReport struct {
	lost, recovered time.Time
	attempts        int
	maxGap          time.Duration
	refused         map[int]int
	noRetryAfter    int
	noRetrySample   string
	balancer        int
	failures        int
	failure         string
	transport       int
}

func (f *fviewer) start(ctx context.Context) error {
	jar, _ := cookiejar.New(nil)
	f.client = &http.Client{Jar: jar, Timeout: 15 * time.Second}
	ctx, f.cancel = context.WithCancel(ctx)
	// The page first: the balancer picks a node and sets its cookie.
	resp, err := f.client.Get(f.base + "/r/" + url.PathEscape(f.room))
	if err != nil {
		return fmt.Errorf("page: %w", err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err := f.dialWS(ctx); err != nil {
		return err
	}
	if err := f.joinAdmitted(ctx); err != nil {
		return err
	}
	go f.watch(ctx)
	return nil
}

// joinRefused is a WHEP offer answered 429 or 503.
type joinRefused struct {
	code       int
	retryAfter time.Duration // 0 = none given
	body       string
}

func (e *joinRefused) Error() string { return fmt.Sprintf("http %d: %s", e.code, e.body) }

// joinAdmitted joins, and when the node refuses (429 or 503: a cap, or a
// drain) tries again after its Retry-After, spread over as long again, as
// the viewer page does. Other failures are returned.
func (f *fviewer) joinAdmitted(ctx context.Context) error {
	for {
		err := f.join(ctx)
		var se *joinRefused
		if !errors.As(err, &se) {
			var ue *url.Error
			f.mu.Lock()
			switch {
			case err == nil:
			case errors.As(err, &ue):
				f.transport++
			default:
				f.failures++
				f.failure = err.Error()
			}
			f.mu.Unlock()
			return err
		}
		f.mu.Lock()
		if f.refused == nil {
			f.refused = map[int]int{}
		}
		f.refused[se.code]++
		switch {
		case !strings.HasPrefix(strings.TrimSpace(se.body), "{"):
			f.balancer++
		case se.retryAfter <= 0:
			f.noRetry++
			f.noRetryAt = se.body
		}
		f.mu.Unlock()
		wait := max(se.retryAfter, time.Second)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait + rand.N(wait)):
		}
	}
}

// dialWS opens the room WebSocket with the jar (the balancer's cookie).
func (f *fviewer) dialWS(ctx context.Context) error {
	u, err := url.Parse(f.base + "/ws/" + url.PathEscape(f.room))
	if err != nil {
		return err
	}
	u.Scheme = strings.Replace(u.Scheme, "http", "ws", 1)
	// As the pages do: the token goes in the first frame, never in the URL
	// a balancer may log.
	u.RawQuery = "auth=frame"
	// A browser sends the balancer's cookie with the WebSocket too; the
	// jar only knows http(s) URLs, so the cookie is carried by hand.
	page, _ := url.Parse(f.base)
	hdr := http.Header{}
	for _, c := range f.client.Jar.Cookies(page) {
		hdr.Add("Cookie", c.String())
	}
	d := websocket.Dialer{HandshakeTimeout: 10 * time.Second}
	ws, resp, err := d.DialContext(ctx, u.String(), hdr)
	if err != nil {
		return fmt.Errorf("websocket: %w", err)
	}
	f.client.Jar.SetCookies(page, resp.Cookies())
	if err := ws.WriteJSON(map[string]string{"type": "auth", "token": f.token}); err != nil {
		ws.Close()
		return fmt.Errorf("websocket: auth frame: %w", err)
	}
	var welcome struct {
		Type string `json:"type"`
		Node string `json:"node"`
	}
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	if err := ws.ReadJSON(&welcome); err != nil || welcome.Type != "welcome" {
		ws.Close()
		return fmt.Errorf("websocket: no welcome (%v)", err)
	}
	_ = ws.SetReadDeadline(time.Time{})
	f.mu.Lock()
	f.ws, f.wsNode = ws, welcome.Node
	f.mu.Unlock()
	go f.readWS(ctx, ws)
	return nil
}

// readWS drains the socket; an abnormal end (no close frame: the node died,
// or 1001/1012: it drains) means the node went away.
func (f *fviewer) readWS(ctx context.Context, ws *websocket.Conn) {
	for {
		if _, _, err := ws.NextReader(); err != nil {
			normal := websocket.IsCloseError(err, websocket.CloseNormalClosure)
			f.mu.Lock()
			mine := f.ws == ws && !f.closed
			node, sameNode := f.wsNode, f.wsNode == "" || f.node == "" || f.wsNode == f.node
			f.mu.Unlock()
			if !mine || normal || ctx.Err() != nil {
				return
			}
			if sameNode {
				f.nodeLost(ctx, node) // the video moves, then the socket
			} else {
				f.redialWS(ctx)
			}
			return
		}
	}
}

// join negotiates a WHEP session and waits for its first keyframe.
func (f *fviewer) join(ctx context.Context) error {
	jctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	var node string
	signal := func(ctx context.Context, offer string) (string, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, f.base+"/whep/"+url.PathEscape(f.room), strings.NewReader(offer))
		if err != nil {
			return "", err
		}
		req.Header.Set("Content-Type", "application/sdp")
		if f.token != "" {
			req.Header.Set("Authorization", "Bearer "+f.token)
		}
		resp, err := f.client.Do(req)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
			ra, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
			return "", &joinRefused{code: resp.StatusCode, retryAfter: time.Duration(ra) * time.Second, body: string(body)}
		}
		if resp.StatusCode != http.StatusCreated {
			return "", &mediatest.StatusError{Code: resp.StatusCode, Body: string(body)}
		}
		node = resp.Header.Get("X-Liveroom-Node")
		return string(body), nil
	}
	v, err := mediatest.NewViewer(jctx, signal, mediatest.ViewerOptions{API: f.api})
	if err != nil {
		return err
	}
	st, err := v.WaitFor(jctx, func(s mediatest.ViewerStats) bool { return s.Video.Packets > 0 })
	if err != nil {
		v.Close()
		return fmt.Errorf("no video: %w", err)
	}
	f.mu.Lock()
	old := f.v
	f.v, f.node = v, node
	if !f.eventAt.IsZero() && !f.lost.IsZero() && f.recovered.IsZero() {
		f.recovered = st.Video.FirstAt
	}
	f.mu.Unlock()
	if old != nil {
		go old.Close()
	}
	return nil
}

// watch notices a video session that ends (the peer connection failed),
// and measures pauses in the video of viewers that were not moved.
func (f *fviewer) watch(ctx context.Context) {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		f.mu.Lock()
		v, node, armed := f.v, f.node, !f.eventAt.IsZero()
		f.mu.Unlock()
		if v == nil {
			continue
		}
		select {
		case <-v.Ended():
			f.nodeLost(ctx, node)
			continue
		default:
		}
		if v.PC.ICEConnectionState() == webrtc.ICEConnectionStateFailed {
			f.nodeLost(ctx, node) // the node stopped answering, and the socket did not say
			continue
		}
		if armed {
			gap := time.Since(v.Stats().Video.LastAt)
			f.mu.Lock()
			f.maxGap = max(f.maxGap, gap)
			f.mu.Unlock()
		}
	}
}

// nodeLost moves the viewer if its video is on node ("" = unknown): a new
// session through the balancer at once, backoff with jitter only after a
// failed attempt, then a new room socket. Only the first loss after the
// event is measured.
func (f *fviewer) nodeLost(ctx context.Context, node string) {
	f.mu.Lock()
	moving := !f.lost.IsZero() && f.recovered.IsZero()
	if f.closed || f.eventAt.IsZero() || moving || (node != "" && f.node != "" && node != f.node) {
		f.mu.Unlock()
		return
	}
	if f.lost.IsZero() {
		f.lost = time.Now()
	}
	f.mu.Unlock()
	go func() {
		delay := 250 * time.Millisecond
		for ctx.Err() == nil {
			f.mu.Lock()
			f.attempts++
			f.mu.Unlock()
			if err := f.joinAdmitted(ctx); err == nil {
				break
			}
			time.Sleep(delay/2 + rand.N(delay))
			delay = min(2*delay, 8*time.Second)
		}
		f.redialWS(ctx)
	}()
}

// redialWS opens a new room socket if the current one is gone.
func (f *fviewer) redialWS(ctx context.Context) {
	for ctx.Err() == nil {
		if err := f.dialWS(ctx); err == nil {
			return
		}
		time.Sleep(250*time.Millisecond + rand.N(500*time.Millisecond))
	}
}

func (f *fviewer) armed(at time.Time) {
	f.mu.Lock()
	f.eventAt = at
	f.mu.Unlock()
}

func (f *fviewer) videoNode() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.node
}

// iceTroubled: the video session's ICE is disconnected or failed and the
// viewer has not acted on it yet (on a busy machine that can take past the
// 10 s the wait gives every viewer to notice).
func (f *fviewer) iceTroubled() bool {
	f.mu.Lock()
	v, moving := f.v, !f.lost.IsZero()
	f.mu.Unlock()
	if v == nil || moving {
		return false
	}
	st := v.PC.ICEConnectionState()
	return st == webrtc.ICEConnectionStateDisconnected || st == webrtc.ICEConnectionStateFailed
}

func (f *fviewer) lostAt() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.lost
}

func (f *fviewer) recoveredAt() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.recovered
}

func (f *fviewer) report() fviewerReport {
	f.mu.Lock()
	defer f.mu.Unlock()
	return fviewerReport{lost: f.lost, recovered: f.recovered, attempts: f.attempts, maxGap: f.maxGap,
		refused: f.refused, noRetryAfter: f.noRetry, noRetrySample: f.noRetryAt, balancer: f.balancer, failures: f.failures, failure: f.failure, transport: f.transport}
}

func (f *fviewer) close() {
	f.mu.Lock()
	f.closed = true
	v, ws := f.v, f.ws
	f.mu.Unlock()
	if f.cancel != nil {
		f.cancel()
	}
	if ws != nil {
		ws.Close()
	}
	if v != nil {
		v.Close()
	}
}

// capSampler follows the nodes' WebRTC caps through their /metrics: the
// most unconnected WHEP sessions each held at once (the node's own
// high-water mark, and samples every 50 ms of a node that may die before
// the end) and, at the end, the refusals each counted.
type capSampler struct {
	nodes []string
	mu    sync.Mutex
	peak  map[string]float64
}

func newCapSampler(nodes []string) *capSampler {
	return &capSampler{nodes: nodes, peak: map[string]float64{}}
}

func (c *capSampler) run(ctx context.Context) {
	if len(c.nodes) == 0 {
		return
	}
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		for _, n := range c.nodes {
			if m, err := scrapeMetrics(ctx, n); err == nil {
				c.mu.Lock()
				c.peak[n] = max(c.peak[n], m.get(unconnectedViewers), m.get("liveroom_media_sessions_unconnected_peak"))
				c.mu.Unlock()
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (c *capSampler) result(ctx context.Context) (peak, refusals map[string]float64) {
	if len(c.nodes) == 0 {
		return nil, nil
	}
	refusals = map[string]float64{}
	for _, n := range c.nodes {
		if m, err := scrapeMetrics(ctx, n); err == nil {
			refusals[n] = m.get("liveroom_media_admissions_refused_total")
			c.mu.Lock()
			c.peak[n] = max(c.peak[n], m.get("liveroom_media_sessions_unconnected_peak"))
			c.mu.Unlock()
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.peak, refusals
}
