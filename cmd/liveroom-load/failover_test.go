package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"liveroom/cmd/internal/proctest"
	"liveroom/media/mediatest"
	"liveroom/room/roomtest"
)

// TestFailoverWorkload is the CI smoke of the failover workload: three nodes
// on one redis-server behind haproxy (configs/haproxy.cfg as it is), the host
// publishing to node a, viewers through the balancer; node b is killed with
// SIGKILL and every viewer it served watches again on another node. The
// nodes hold one unconnected WHEP session at a time
// (webrtc.limits.unconnected_per_node: 1), so the viewers stampeding the
// survivors are refused 429/503 with Retry-After and come back after it:
// nothing else fails, and no node holds more than its cap.
func TestFailoverWorkload(t *testing.T) {
	if testing.Short() {
		t.Skip("process test: skipped with -short")
	}
	haproxy, err := exec.LookPath("haproxy")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/haproxy"); serr != nil {
			if os.Getenv("CI") == "true" {
				t.Fatal("haproxy not found (apt-get install haproxy); required under CI=true")
			}
			t.Skip("haproxy not found")
		}
		haproxy = "/usr/sbin/haproxy"
	}
	redis := roomtest.StartRedis(t)
	env := []string{"LIVEROOM_ADMIN_KEY=" + testAdminKey, "LIVEROOM_JWT_SECRET=load-test-jwt-secret-0123456789",
		"LIVEROOM_MAX_CONNS_PER_IP=0", "LIVEROOM_REDIS_URL=" + redis.URL()}
	cfg := filepath.Join(t.TempDir(), "caps.yaml")
	if err := os.WriteFile(cfg, []byte("webrtc:\n  limits:\n    unconnected_per_node: 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	nodes := map[string]*proctest.Server{}
	for _, id := range []string{"a", "b", "c"} {
		nodes[id] = proctest.Start(t, proctest.Options{DataDir: t.TempDir(), Env: env, Args: []string{"--node-id", id, "--config", cfg}})
	}
	lb := startBalancer(t, haproxy, nodes)

	a := nodes["a"].Base
	streamKey := createRoom(t, a, "fo")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	clip, err := mediatest.LoadClip("")
	if err != nil {
		t.Fatal(err)
	}
	pub, err := mediatest.NewPublisher(ctx, mediatest.WHIP(a+"/whip/fo", streamKey).Signal, mediatest.PublisherOptions{Clip: clip})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	if err := pub.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}

	var out bytes.Buffer
	event := fmt.Sprintf("kill -9 %d", nodes["b"].PID())
	err = failoverCmd(ctx, []string{"--url", lb, "--room", "fo", "--n", "12", "--event", event, "--settle", "1s", "--timeout", "30s", "--json",
		"--nodes", nodes["a"].Base + "," + nodes["c"].Base}, &out)
	if err != nil {
		t.Fatalf("failover: %v\n%s", err, out.String())
	}
	js := out.String()[strings.Index(out.String(), "{"):]
	var res failoverResult
	if err := json.Unmarshal([]byte(js), &res); err != nil {
		t.Fatalf("report is not JSON: %v\n%s", err, out.String())
	}
	t.Logf("%s", js)
	if res.Joined != 12 || res.ByNode["b"] == 0 {
		t.Fatalf("got %+v; want 12 viewers, some on b", res)
	}
	if res.Affected != res.ByNode["b"] || res.Recovered != res.Affected {
		t.Errorf("b served %d viewers; %d noticed, %d recovered; want all", res.ByNode["b"], res.Affected, res.Recovered)
	}
	if res.After["b"] != 0 {
		t.Errorf("after the kill %d viewers are still on b", res.After["b"])
	}
	if res.OutageMax > 15000 {
		t.Errorf("outage max %.0f ms, want well under 15 s (target 5 s)", res.OutageMax)
	}
	// The survivors' caps held: the nodes' refusals came with Retry-After,
	// nothing else failed (a request the balancer cut in flight to the
	// killed node is a transport error, and haproxy's own 503 page has no
	// Retry-After: both retried, reported, not failed on), and no survivor
	// held more than one unconnected session.
	refusedByNodes := 0.0
	for _, n := range res.ServerRefusals {
		refusedByNodes += n
	}
	if refusedByNodes == 0 || res.NoRetryAfter != 0 || res.JoinFailures != 0 {
		t.Errorf("nodes a and c refused %v offers (viewers saw %d 429, %d 503), %d without Retry-After, %d joins failed otherwise; want refusals (haproxy retries a 503 elsewhere), all with Retry-After, no other failure",
			refusedByNodes, res.Refused429, res.Refused503, res.NoRetryAfter, res.JoinFailures)
	}
	for node, peak := range res.UnconnectedPeak {
		if peak > 1 {
			t.Errorf("node %s held %v unconnected sessions, cap 1", node, peak)
		}
	}
	if len(res.UnconnectedPeak) != 2 {
		t.Errorf("unconnected sessions sampled on %d nodes, want 2 (a, c)", len(res.UnconnectedPeak))
	}
}

// startBalancer runs haproxy with configs/haproxy.cfg in front of a, b, c
// and waits until it answers; it returns the balancer's base URL.
func startBalancer(t *testing.T, bin string, nodes map[string]*proctest.Server) string {
	t.Helper()
	cfg, err := filepath.Abs("../../configs/haproxy.cfg")
	if err != nil {
		t.Fatal(err)
	}
	lb := fmt.Sprintf("127.0.0.1:%d", proctest.FreeTCP(t))
	stats := fmt.Sprintf("127.0.0.1:%d", proctest.FreeTCP(t))
	cmd := exec.Command(bin, "-db", "-f", cfg)
	cmd.Env = append(os.Environ(), "LIVEROOM_LB="+lb, "LIVEROOM_LB_STATS="+stats,
		"LIVEROOM_NODE_A="+strings.TrimPrefix(nodes["a"].Base, "http://"),
		"LIVEROOM_NODE_B="+strings.TrimPrefix(nodes["b"].Base, "http://"),
		"LIVEROOM_NODE_C="+strings.TrimPrefix(nodes["c"].Base, "http://"))
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("haproxy: %v", err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	// Every node in rotation: the stats page says UP for all three.
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get("http://" + stats + "/stats;csv"); err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if strings.Count(string(b), ",UP,") >= 4 { // three servers and the backend
				return "http://" + lb
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("haproxy did not put the nodes in rotation:\n%s", logs.String())
	return ""
}
