//go:build linux

package media_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"liveroom/media"
	"liveroom/media/mediatest"

	"github.com/pion/webrtc/v4"
)

// The network-change test runs the node and each viewer as a helper
// process (this test binary, re-run inside a namespace): pion makes sockets
// on many goroutines, which all must be in the namespace. The helpers are
// TestNetnsHelper, selected by this environment variable.
const netnsHelperEnv = "LIVEROOM_NETNS_HELPER"

const (
	nodeHTTP   = ":18080"
	nodeWebRTC = 18443
)

// TestNetworkChanges: the node starts next to a veth whose peer is down
// (its IPv6 addresses stay tentative, which made startup fail before); a
// viewer behind an existing veth plays; a veth pair added after startup
// carries media to viewers (UDP and ICE-TCP) in the new namespace (an IPv6
// viewer plays through the first one); removing
// that pair leaves the first viewer playing; with no usable address left
// the node says it is not ready, until the tentative address becomes valid.
func TestNetworkChanges(t *testing.T) {
	mediatest.NeedNetns(t)
	node := mediatest.NewNetns(t, "node")
	v1 := mediatest.NewNetns(t, "v1")

	// A veth whose peer stays down: the addresses of lrdown0 stay tentative.
	node.IP(t, "link", "add", "lrdown0", "type", "veth", "peer", "name", "lrdown1")
	node.IP(t, "link", "set", "lrdown0", "up")
	node.IP(t, "addr", "add", "fd00:200::1/64", "dev", "lrdown0")
	if out := node.IP(t, "-6", "addr", "show", "dev", "lrdown0"); !strings.Contains(out, "tentative") {
		t.Fatalf("precondition: lrdown0's IPv6 addresses are not tentative:\n%s", out)
	}
	mediatest.Veth(t, node, "lrn1", "10.200.1.1/30", v1, "lrv1", "10.200.1.2/30")
	// An IPv6 address on the same link, usable at once (nodad).
	node.IP(t, "addr", "add", "fd00:201::1/64", "dev", "lrn1", "nodad")
	v1.IP(t, "addr", "add", "fd00:201::2/64", "dev", "lrv1", "nodad")

	ctx := testCtx(t, 2*time.Minute)
	n := startHelper(t, ctx, node, "node")
	n.waitLine(t, "READY", 30*time.Second)
	want := []string{fmt.Sprintf("10.200.1.1:%d", nodeWebRTC), fmt.Sprintf("[fd00:201::1]:%d", nodeWebRTC)}
	if status := nodeStatus(t, node); status.Err != "" || !slices.Equal(status.Addrs, want) {
		t.Fatalf("node's usable addresses: %+v, want %v (no tentative, no link-local)", status, want)
	}

	first := startHelper(t, ctx, v1, "viewer", "URL=http://10.200.1.1"+nodeHTTP+"/whep/demo", "NET=udp")
	first.waitStats(t, "the first viewer plays", 30*time.Second, func(s viewerStats) bool {
		return s.Keyframes > 0 && s.Audio > 25
	})
	v6 := startHelper(t, ctx, v1, "viewer", "URL=http://10.200.1.1"+nodeHTTP+"/whep/demo", "NET=udp6")
	if s := v6.waitStats(t, "an IPv6 viewer plays", 30*time.Second, func(s viewerStats) bool {
		return s.Keyframes > 0 && s.Audio > 25
	}); s.Remote != "fd00:201::1" {
		t.Errorf("IPv6 viewer: media from %q, want fd00:201::1", s.Remote)
	}
	v6.stop()

	// A namespace attached after startup.
	v2 := mediatest.NewNetns(t, "v2")
	mediatest.Veth(t, node, "lrn2", "10.200.2.1/30", v2, "lrv2", "10.200.2.2/30")
	var late []*helper
	for _, network := range []string{"udp", "tcp"} {
		h := startHelper(t, ctx, v2, "viewer", "URL=http://10.200.2.1"+nodeHTTP+"/whep/demo", "NET="+network)
		s := h.waitStats(t, network+" viewer behind the new veth plays", 30*time.Second, func(s viewerStats) bool {
			return s.Keyframes > 0 && s.Audio > 25
		})
		if s.Remote != "10.200.2.1" {
			t.Errorf("%s viewer behind the new veth: media from %q, want 10.200.2.1", network, s.Remote)
		}
		late = append(late, h)
	}

	// Remove the new pair: the first viewer keeps playing.
	node.IP(t, "link", "del", "lrn2")
	for _, h := range late {
		h.stop()
	}
	before := first.stats()
	first.waitStats(t, "the first viewer still plays after the pair was removed", 20*time.Second, func(s viewerStats) bool {
		return s.Audio > before.Audio+100 && s.Video > before.Video+100 && s.Keyframes > before.Keyframes
	})
	waitStatus(t, node, "the removed address is dropped", func(s netnsStatus) bool {
		return s.Err == "" && slices.Equal(s.Addrs, want)
	})

	// No usable address left: not ready, still running.
	node.IP(t, "link", "del", "lrn1")
	waitStatus(t, node, "not ready without an address", func(s netnsStatus) bool {
		return strings.Contains(s.Err, "no usable interface address") && len(s.Addrs) == 0
	})

	// The tentative address's link gets its peer: duplicate-address
	// detection completes and the address is taken up.
	node.IP(t, "link", "set", "lrdown1", "up")
	waitStatus(t, node, "the formerly tentative address is used once valid", func(s netnsStatus) bool {
		return s.Err == "" && slices.Equal(s.Addrs, []string{fmt.Sprintf("[fd00:200::1]:%d", nodeWebRTC)})
	})
	n.stop()
	if err := n.exitErr(); err != nil {
		t.Errorf("node helper: %v\n%s", err, n.output())
	}
}

// TestNetnsHelper is the node or a viewer of TestNetworkChanges, run in a
// namespace; without the environment variable it does nothing.
func TestNetnsHelper(t *testing.T) {
	switch os.Getenv(netnsHelperEnv) {
	case "node":
		runNodeHelper(t)
	case "viewer":
		runViewerHelper(t)
	}
}

type netnsStatus struct {
	Err   string   `json:"err"`
	Addrs []string `json:"addrs"`
}

// runNodeHelper: an SFU on every interface of its namespace, a publisher
// playing the test clip into room "demo", WHEP on nodeHTTP and the SFU's
// Ready and UsableAddrs on /status. It runs until its stdin closes.
func runNodeHelper(t *testing.T) {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s, err := media.New(media.Config{Port: nodeWebRTC}, media.Options{Logger: log})
	if err != nil {
		t.Fatalf("media.New: %v", err)
	}
	defer s.Shutdown(context.Background())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pub, err := mediatest.NewPublisher(ctx, publishVia(s, "demo", "host", nil), mediatest.PublisherOptions{Clip: clip(t)})
	if err != nil {
		t.Fatalf("publisher: %v", err)
	}
	defer pub.Close()

	mux := http.NewServeMux()
	mux.HandleFunc("POST /whep/{room}", func(w http.ResponseWriter, r *http.Request) {
		offer, _ := io.ReadAll(r.Body)
		sess, err := s.Subscribe(r.Context(), r.PathValue("room"), string(offer))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Location", "/whep/"+r.PathValue("room")+"/"+sess.ID)
		w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(w, sess.AnswerSDP)
	})
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		var st netnsStatus
		if err := s.Ready(r.Context()); err != nil {
			st.Err = err.Error()
		}
		for _, a := range s.UsableAddrs() {
			st.Addrs = append(st.Addrs, a.String())
		}
		_ = json.NewEncoder(w).Encode(st)
	})
	srv := &http.Server{Addr: nodeHTTP, Handler: mux}
	go func() { _ = srv.ListenAndServe() }()
	defer srv.Close()
	if err := pub.WaitConnected(ctx); err != nil {
		t.Fatalf("publisher: %v", err)
	}
	fmt.Println("READY")
	_, _ = io.Copy(io.Discard, os.Stdin)
}

// runViewerHelper: a WHEP viewer (UDP or ICE-TCP) printing what it
// received every 100 ms until its stdin closes.
func runViewerHelper(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	network := map[string]webrtc.NetworkType{
		"udp": webrtc.NetworkTypeUDP4, "udp6": webrtc.NetworkTypeUDP6, "tcp": webrtc.NetworkTypeTCP4,
	}[os.Getenv("NET")]
	api, err := mediatest.NewAPI(network)
	if err != nil {
		t.Fatal(err)
	}
	sig := mediatest.WHEP(os.Getenv("URL"), "")
	v, err := mediatest.NewViewer(ctx, sig.Signal, mediatest.ViewerOptions{API: api})
	if err != nil {
		t.Fatalf("viewer: %v", err)
	}
	defer v.Close()
	go func() { _, _ = io.Copy(io.Discard, os.Stdin); cancel() }()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		st := v.Stats()
		remote := "-"
		if pair, err := v.PC.SCTP().Transport().ICETransport().GetSelectedCandidatePair(); err == nil && pair != nil {
			remote = pair.Remote.Address
		}
		fmt.Printf("STATS %d %d %d %s\n", st.Keyframes, st.Audio.Packets, st.Video.Packets, remote)
		select {
		case <-ctx.Done():
			return
		case <-v.Ended():
			t.Fatalf("viewer's connection failed")
		case <-tick.C:
		}
	}
}

type viewerStats struct {
	Keyframes, Audio, Video int
	Remote                  string
}

// helper is a helper process of this test, with what it printed.
type helper struct {
	name string
	cmd  *exec.Cmd
	in   io.WriteCloser
	done chan struct{}
	err  error

	mu    sync.Mutex
	out   strings.Builder // stdout and stderr, for failure messages
	lines []string
	last  viewerStats
}

func startHelper(t *testing.T, ctx context.Context, ns *mediatest.Netns, role string, env ...string) *helper {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := ns.Command(ctx, exe, "-test.run", "^TestNetnsHelper$", "-test.count", "1")
	cmd.Env = append(os.Environ(), append([]string{netnsHelperEnv + "=" + role}, env...)...)
	h := &helper{name: role + " in " + ns.Name, cmd: cmd, done: make(chan struct{})}
	if h.in, err = cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = writerFunc(func(p []byte) (int, error) {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.out.Write(p)
		return len(p), nil
	})
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			h.mu.Lock()
			var s viewerStats
			if n, _ := fmt.Sscanf(line, "STATS %d %d %d %s", &s.Keyframes, &s.Audio, &s.Video, &s.Remote); n == 4 {
				h.last = s
			} else {
				h.lines = append(h.lines, line)
				h.out.WriteString(line + "\n")
			}
			h.mu.Unlock()
		}
		h.err = cmd.Wait()
		close(h.done)
	}()
	t.Cleanup(func() {
		h.stop()
		if t.Failed() {
			t.Logf("%s printed:\n%s", h.name, h.output())
		}
	})
	return h
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// stop closes the helper's stdin and waits for it (killing it after 10 s).
func (h *helper) stop() {
	_ = h.in.Close()
	select {
	case <-h.done:
	case <-time.After(10 * time.Second):
		_ = h.cmd.Process.Kill()
		<-h.done
	}
}

func (h *helper) exitErr() error { <-h.done; return h.err }

func (h *helper) output() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := h.out.String()
	if len(s) > 8000 {
		s = "…" + s[len(s)-8000:]
	}
	return s
}

func (h *helper) stats() viewerStats {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.last
}

func (h *helper) waitLine(t *testing.T, want string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		h.mu.Lock()
		for _, l := range h.lines {
			if l == want {
				h.mu.Unlock()
				return
			}
		}
		h.mu.Unlock()
		select {
		case <-h.done:
			t.Fatalf("%s exited (%v) before printing %q:\n%s", h.name, h.err, want, h.output())
		case <-time.After(50 * time.Millisecond):
		}
	}
	t.Fatalf("%s did not print %q within %v:\n%s", h.name, want, within, h.output())
}

func (h *helper) waitStats(t *testing.T, what string, within time.Duration, cond func(viewerStats) bool) viewerStats {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		s := h.stats()
		if cond(s) {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v; last %+v\n%s", what, within, s, h.output())
		}
		select {
		case <-h.done:
			t.Fatalf("%s: %s exited (%v); last %+v\n%s", what, h.name, h.err, s, h.output())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// nodeStatus asks the node helper, over its namespace's loopback.
func nodeStatus(t *testing.T, node *mediatest.Netns) netnsStatus {
	t.Helper()
	resp, err := node.HTTPClient().Get("http://127.0.0.1" + nodeHTTP + "/status")
	if err != nil {
		t.Fatalf("node status: %v", err)
	}
	defer resp.Body.Close()
	var st netnsStatus
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatalf("node status: %v", err)
	}
	return st
}

func waitStatus(t *testing.T, node *mediatest.Netns, what string, cond func(netnsStatus) bool) {
	t.Helper()
	var st netnsStatus
	for range 100 {
		if st = nodeStatus(t, node); cond(st) {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s: node status %+v", what, st)
}
