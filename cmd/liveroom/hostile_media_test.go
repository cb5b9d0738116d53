package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/bluenviron/gortsplib/v4/pkg/liberrors"
	"github.com/pion/webrtc/v4"

	"liveroom/cmd/internal/proctest"
	"liveroom/media/mediatest"
)

// The hostile-client suite for media sessions (issue #12), through the real
// binary. Addresses in 127.0.0.0/8 other than 127.0.0.1 stand for
// different clients: the HTTP client binds its source address.

const hostileConfig = `auth:
  jwt_secret: %s
  admin_key: %s
webrtc:
  connect_timeout: 4s
  limits:
    unconnected_per_address: 4
    unconnected_per_room: 10
    unconnected_per_node: 14
    viewers_per_address: 5
rtsp:
  limits:
    readers_per_address: 2
    sessions_per_node: 5
`

func startHostileServer(t *testing.T) *proctest.Server {
	t.Helper()
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "liveroom.yaml")
	if err := os.WriteFile(cfgPath, []byte(fmt.Sprintf(hostileConfig, crashSecret, crashAdminKey)), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startServer(t, filepath.Join(dir, "data"), "--config", cfgPath)
	for _, id := range []string{"shop", "other"} {
		if status, b := adminDo(t, "POST", p.Base+"/api/v1/rooms", map[string]any{"id": id, "title": id}); status != 201 {
			t.Fatalf("create room %s: %d %s", id, status, b)
		}
	}
	t.Cleanup(func() {
		if t.Failed() && !testing.Verbose() {
			t.Logf("server log tail:\n%s", logTail(p.Log(), 40))
		}
	})
	return p
}

// clientFrom is an HTTP client whose connections come from ip.
func httpClientFrom(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: d.DialContext, MaxIdleConnsPerHost: 64}}
}

// staleOffer is a valid WHEP offer from a client that will never connect:
// its PeerConnection is closed as soon as the offer is written.
func staleOffer(t *testing.T) string {
	t.Helper()
	api, err := mediatest.NewAPI()
	if err != nil {
		t.Fatal(err)
	}
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	for _, k := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio} {
		if _, err := pc.AddTransceiverFromKind(k, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
			t.Fatal(err)
		}
	}
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	<-gathered
	return pc.LocalDescription().SDP
}

// floodResult counts the answers to a flood of stale offers.
type floodResult struct {
	mu       sync.Mutex
	statuses map[int]int
	codes    map[string]int
	noRetry  int // refusals without a Retry-After
}

func (f *floodResult) String() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return fmt.Sprintf("statuses %v, codes %v, refusals without Retry-After %d", f.statuses, f.codes, f.noRetry)
}

// flood POSTs n stale offers to room from ip, inflight at a time.
func flood(t *testing.T, p *proctest.Server, ip, roomID, offer string, n, inflight int) *floodResult {
	t.Helper()
	res := &floodResult{statuses: map[int]int{}, codes: map[string]int{}}
	c := httpClientFrom(ip)
	defer c.CloseIdleConnections()
	sem := make(chan struct{}, inflight)
	var wg sync.WaitGroup
	for range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			resp, err := c.Post(p.Base+"/whep/"+roomID, "application/sdp", strings.NewReader(offer))
			if err != nil {
				t.Errorf("offer from %s: %v", ip, err)
				return
			}
			defer resp.Body.Close()
			var e struct {
				Error struct{ Code string } `json:"error"`
			}
			b, _ := io.ReadAll(resp.Body)
			_ = json.Unmarshal(b, &e)
			res.mu.Lock()
			defer res.mu.Unlock()
			res.statuses[resp.StatusCode]++
			if resp.StatusCode != http.StatusCreated {
				res.codes[e.Error.Code]++
				if ra, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || ra < 1 {
					res.noRetry++
				}
			}
		})
	}
	wg.Wait()
	return res
}

// watchFrom starts a viewer from ip that retries refusals as the viewer
// page does (after Retry-After), and waits for its first keyframe.
func watchFrom(t *testing.T, ctx context.Context, p *proctest.Server, ip, roomID string) (*mediatest.Viewer, int) {
	t.Helper()
	refused := 0
	for {
		sig := mediatest.WHEP(p.Base+"/whep/"+roomID, "")
		sig.Client = httpClientFrom(ip)
		v, err := mediatest.NewViewer(ctx, sig.Signal, mediatest.ViewerOptions{})
		var se *mediatest.StatusError
		if errors.As(err, &se) && (se.Code == http.StatusTooManyRequests || se.Code == http.StatusServiceUnavailable) && ctx.Err() == nil {
			refused++
			time.Sleep(time.Second)
			continue
		}
		if err != nil {
			t.Fatalf("viewer from %s: %v", ip, err)
		}
		t.Cleanup(func() { _ = v.Close() })
		if err := v.WaitConnected(ctx); err != nil {
			t.Fatalf("viewer from %s connect: %v", ip, err)
		}
		waitVideo(t, ctx, v, "a keyframe for the viewer from "+ip, func(st mediatest.ViewerStats) bool { return !st.FirstKeyframeAt.IsZero() })
		return v, refused
	}
}

func waitHostile(t *testing.T, ctx context.Context, p *proctest.Server, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		if ctx.Err() != nil {
			t.Fatalf("waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestHostileWHEPFloodFromOneAddress(t *testing.T) {
	p := startHostileServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	publishTo(t, ctx, p, "shop", mintToken(t, p.Base, "host", "host", "shop"))
	unconnected := func() float64 { return metricLabeled(t, p, "liveroom_media_sessions", `state="unconnected"`) }
	baseGoroutines := metric(t, p, "go_goroutines")

	offer := staleOffer(t)
	res := flood(t, p, "127.0.0.7", "shop", offer, 60, 12)
	t.Logf("60 stale offers from 127.0.0.7: %s", res)
	if res.statuses[http.StatusCreated] != 4 || res.statuses[http.StatusTooManyRequests] != 56 || res.codes["rate_limited"] != 56 || res.noRetry != 0 {
		t.Errorf("got %s; want 4 answered, 56 refused 429 rate_limited with Retry-After", res)
	}
	if got := unconnected(); got > 4 {
		t.Errorf("unconnected sessions after the flood: got %v, want <= 4", got)
	}
	if got := metric(t, p, "liveroom_media_sessions_unconnected_peak"); got != 4 {
		t.Errorf("most unconnected sessions at once during the flood: got %v, want 4", got)
	}
	// A handful of sessions, not one per offer (each costs tens).
	if g := metric(t, p, "go_goroutines"); g > baseGoroutines+4*60+100 {
		t.Errorf("goroutines: %v after the flood, %v before", g, baseGoroutines)
	}
	// A viewer from another address is not affected.
	_, refused := watchFrom(t, ctx, p, "127.0.0.9", "shop")
	if refused != 0 {
		t.Errorf("viewer from 127.0.0.9 refused %d times during a flood from 127.0.0.7", refused)
	}
	// The stale sessions end at the connect timeout and free their places.
	waitHostile(t, ctx, p, "the stale sessions to time out", func() bool { return unconnected() == 0 })
	if res := flood(t, p, "127.0.0.7", "shop", offer, 1, 1); res.statuses[http.StatusCreated] != 1 {
		t.Errorf("after the connect timeout: %s, want 201", res)
	}
}

// The room and node caps hold against many addresses; other rooms (room
// cap) and, once the stale sessions time out, everyone (node cap) get in.
func TestHostileWHEPRoomAndNodeCaps(t *testing.T) {
	p := startHostileServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	publishTo(t, ctx, p, "shop", mintToken(t, p.Base, "host", "host", "shop"))
	publishTo(t, ctx, p, "other", mintToken(t, p.Base, "host2", "host", "other"))
	offer := staleOffer(t)
	unconnected := func() float64 { return metricLabeled(t, p, "liveroom_media_sessions", `state="unconnected"`) }

	// Room cap: 10 unconnected in "shop", from three addresses of 4 each.
	answered := 0
	for _, ip := range []string{"127.0.0.7", "127.0.0.8", "127.0.0.10"} {
		res := flood(t, p, ip, "shop", offer, 4, 4)
		answered += res.statuses[http.StatusCreated]
		if ip == "127.0.0.10" && (res.statuses[http.StatusServiceUnavailable] != 2 || res.noRetry != 0) {
			t.Errorf("third address into a full room: %s; want 2 refused 503 with Retry-After", res)
		}
	}
	if answered != 10 {
		t.Errorf("answered in shop: got %d, want 10 (unconnected_per_room)", answered)
	}
	if got := metricLabeled(t, p, "liveroom_media_admissions_refused_total", `reason="unconnected_per_room"`); got != 2 {
		t.Errorf("refusals unconnected_per_room: got %v, want 2", got)
	}
	// Another room still takes viewers, up to the node cap (14).
	if res := flood(t, p, "127.0.0.11", "other", offer, 4, 4); res.statuses[http.StatusCreated] != 4 {
		t.Errorf("other room: %s; want 4 answered", res)
	}
	if res := flood(t, p, "127.0.0.12", "other", offer, 2, 1); res.statuses[http.StatusServiceUnavailable] != 2 || res.codes["unavailable"] != 2 {
		t.Errorf("past the node cap: %s; want 2 refused 503", res)
	}
	if got := unconnected(); got != 14 {
		t.Errorf("unconnected sessions: got %v, want 14", got)
	}
	// A real viewer retries after Retry-After and gets in once the stale
	// sessions time out; a connected viewer does not count as unconnected.
	_, refused := watchFrom(t, ctx, p, "127.0.0.9", "shop")
	t.Logf("viewer from 127.0.0.9 refused %d times before the stale sessions timed out", refused)
	if refused == 0 {
		t.Errorf("viewer got in at once while the node was full of stale sessions")
	}
	waitHostile(t, ctx, p, "the stale sessions to time out", func() bool { return unconnected() == 0 })
	if got := metricLabeled(t, p, "liveroom_media_sessions", `kind="viewer",state="connected"`); got != 1 {
		t.Errorf("connected viewers: got %v, want 1", got)
	}
}

// Connected viewers per address: the sixth from one address is refused,
// another address still watches.
func TestHostileConnectedViewersPerAddress(t *testing.T) {
	p := startHostileServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	publishTo(t, ctx, p, "shop", mintToken(t, p.Base, "host", "host", "shop"))
	for range 5 {
		if _, refused := watchFrom(t, ctx, p, "127.0.0.7", "shop"); refused != 0 {
			t.Fatalf("viewer from 127.0.0.7 refused under the cap")
		}
	}
	sig := mediatest.WHEP(p.Base+"/whep/shop", "")
	sig.Client = httpClientFrom("127.0.0.7")
	_, err := mediatest.NewViewer(ctx, sig.Signal, mediatest.ViewerOptions{})
	var se *mediatest.StatusError
	if !errors.As(err, &se) || se.Code != http.StatusTooManyRequests || !strings.Contains(se.Body, "viewers_per_address") {
		t.Errorf("sixth viewer from one address: got %v, want 429 viewers_per_address", err)
	}
	watchFrom(t, ctx, p, "127.0.0.9", "shop")
	if got := metricLabeled(t, p, "liveroom_media_sessions", `kind="viewer",state="connected"`); got != 6 {
		t.Errorf("connected viewers: got %v, want 6", got)
	}
}

// RTSP readers per address and sessions per node, with gortsplib clients
// from different addresses: past a cap the answer is 503 and other
// addresses still read.
func TestHostileRTSPCaps(t *testing.T) {
	p := startHostileServer(t)
	var created struct {
		StreamKey string `json:"stream_key"`
	}
	status, b := adminDo(t, "GET", p.Base+"/api/v1/rooms/shop", nil)
	if status != 200 || json.Unmarshal(b, &created) != nil || created.StreamKey == "" {
		t.Fatalf("room: %d %s", status, b)
	}
	base := "rtsp://" + p.RTSPAddr
	pub := rtspClientFrom("127.0.0.1")
	desc := &description.Session{Medias: []*description.Media{{
		Type: description.MediaTypeVideo,
		Formats: []format.Format{&format.H264{
			PayloadTyp:        96,
			PacketizationMode: 1,
			SPS:               []byte{0x67, 0x42, 0xc0, 0x1f, 0xd9, 0x00, 0x78, 0x02, 0x27, 0xe5, 0x84, 0x00, 0x00, 0x03, 0x00, 0x04, 0x00, 0x00, 0x03, 0x00, 0xf0, 0x3c, 0x60, 0xc9, 0x20},
			PPS:               []byte{0x68, 0xcb, 0x83, 0xcb, 0x20},
		}},
	}}}
	if err := pub.StartRecording(base+"/shop?key="+created.StreamKey, desc); err != nil {
		t.Fatalf("rtsp publish: %v", err)
	}
	defer pub.Close()

	steps := []struct {
		ip   string
		want int // 200 = reading
	}{
		{"127.0.0.7", 200}, {"127.0.0.7", 200}, {"127.0.0.7", 503}, // readers_per_address
		{"127.0.0.9", 200}, {"127.0.0.10", 200}, // the node now has 5 sessions, the publisher's included
		{"127.0.0.11", 503}, // sessions_per_node
	}
	for i, st := range steps {
		c, err := rtspReadFrom(base+"/shop", st.ip)
		var bad liberrors.ErrClientBadStatusCode
		switch {
		case st.want == 200 && err != nil:
			t.Fatalf("reader %d from %s: %v, want to read", i, st.ip, err)
		case st.want == 503 && (!errors.As(err, &bad) || bad.Code != 503):
			t.Fatalf("reader %d from %s: %v, want 503", i, st.ip, err)
		}
		if c != nil {
			defer c.Close()
		}
	}
	for _, reason := range []string{"rtsp_readers_per_address", "rtsp_sessions_per_node"} {
		if got := metricLabeled(t, p, "liveroom_media_admissions_refused_total", `reason="`+reason+`"`); got != 1 {
			t.Errorf("refusals %s: got %v, want 1", reason, got)
		}
	}
}

// rtspClientFrom is a gortsplib client (TCP) whose connection comes from ip.
func rtspClientFrom(ip string) *gortsplib.Client {
	tcp := gortsplib.TransportTCP
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	return &gortsplib.Client{Transport: &tcp, DialContext: d.DialContext}
}

// rtspReadFrom reads a room (DESCRIBE, SETUP, PLAY) from ip.
func rtspReadFrom(rawURL, ip string) (*gortsplib.Client, error) {
	u, err := base.ParseURL(rawURL)
	if err != nil {
		return nil, err
	}
	c := rtspClientFrom(ip)
	if err := c.Start(u.Scheme, u.Host); err != nil {
		return nil, err
	}
	desc, _, err := c.Describe(u)
	if err == nil {
		err = c.SetupAll(desc.BaseURL, desc.Medias)
	}
	if err == nil {
		_, err = c.Play(nil)
	}
	if err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}
