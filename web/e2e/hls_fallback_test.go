package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"liveroom/media/mediatest"
)

// hlsResult is what hls_fallback.mjs and hls_firefox.mjs print.
type hlsResult struct {
	OK          bool     `json:"ok"`
	Step        string   `json:"step"`
	Error       string   `json:"error"`
	Logs        []string `json:"logs"`
	Engine      string   `json:"engine"`
	Message     string   `json:"message"`
	Pill        string   `json:"pill"`
	SeamToScrMs float64  `json:"seamToScreenMs"`
	VideoWidth  int      `json:"videoWidth"`
	TimeBefore  float64  `json:"timeBefore"`
	TimeAfter   float64  `json:"timeAfter"`
	LatencyS    float64  `json:"latency"`
	Timeline    []any    `json:"timeline"`
	FallbackMs  int      `json:"fallbackMs"`
	UserAgent   string   `json:"userAgent"`
	WHEPOutcome string   `json:"whepOutcome"`
	AudioCodec  string   `json:"audioCodec"`
	// AudioDecoded is nil where the browser does not say.
	AudioDecoded *bool `json:"audioDecoded"`
}

// checkHLSAudio: the node has ffmpeg, so the room's Opus reaches HLS
// players as AAC (docs/hls.md), and the browser decoded some of it.
func checkHLSAudio(t *testing.T, res hlsResult) {
	t.Helper()
	if !strings.HasPrefix(res.AudioCodec, "mp4a.") {
		t.Errorf("HLS audio codec %q, want AAC (mp4a.*)", res.AudioCodec)
	}
	if res.AudioDecoded == nil || !*res.AudioDecoded {
		t.Errorf("the player decoded no audio (%v)", res.AudioDecoded)
	}
}

// TestBrowserHLSFallbackBlockedWebRTC: a Chromium viewer in a network
// namespace plays over WebRTC (the control); once nft rules there drop UDP
// and TCP to the server's WebRTC port (HTTP reaches the server through a
// forwarder), a new viewer cannot connect over WHEP;
// within a few seconds the page falls back to the room's LL-HLS by itself,
// says it is on a delayed stream, and plays (currentTime advances,
// videoWidth > 0).
func TestBrowserHLSFallbackBlockedWebRTC(t *testing.T) {
	chromium, node := browserTools(t)
	nft, err := exec.LookPath("nft")
	if err != nil {
		missing(t, "nft not found (the firewall rule that blocks WebRTC)")
	}
	artifacts := artifactsDir(t)
	webrtcPort := freePort(t, true)
	srv := startNode(t, artifacts, nodeOptions{name: "hls-fallback", jwtSecret: randomString(t), adminKey: randomString(t),
		args: []string{"--webrtc-port", fmt.Sprint(webrtcPort)}})
	var created struct {
		StreamKey string `json:"stream_key"`
	}
	srv.admin(t, "/api/v1/rooms", map[string]any{"id": room, "title": "HLS fallback room"}, http.StatusCreated, &created)
	viewer := mint(t, srv, "buyer-1", "Ana", "viewer")
	publishWHIP(t, srv, created.StreamKey)

	ns, nsNode := viewerNetns(t, node, srv)
	// The control: from the same namespace, nothing blocked, the page
	// plays over WebRTC (so what follows is the firewall's doing).
	var control hlsResult
	if ok := runScript(t, nsNode, chromium, &control, "hls_fallback.mjs", "--base", srv.base, "--room", room, "--token", viewer,
		"--out", artifacts, "--expect", "webrtc"); !ok || !control.OK || control.Engine != "webrtc" {
		t.Fatalf("control run (WebRTC not blocked) in step %q: %s; engine %q, want webrtc", control.Step, control.Error, control.Engine)
	}

	rules := fmt.Sprintf(`table inet lr_block {
  chain out { type filter hook output priority 0; policy accept;
    udp dport %[1]d drop
    tcp dport %[1]d drop
  }
}
`, webrtcPort)
	cmd := exec.Command("ip", "netns", "exec", ns.Name, nft, "-f", "-")
	cmd.Stdin = strings.NewReader(rules)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("nft: %v\n%s", err, out)
	}

	var res hlsResult
	ok := runScript(t, nsNode, chromium, &res, "hls_fallback.mjs", "--base", srv.base, "--room", room, "--token", viewer, "--out", artifacts)
	for _, l := range res.Logs {
		t.Log("browser: " + l)
	}
	t.Logf("timeline: %v", res.Timeline)
	if !res.OK || !ok {
		t.Fatalf("browser run failed in step %q: %s", res.Step, res.Error)
	}
	t.Logf("fell back after %d ms; engine %s; hls.js latency %.2f s; seam to screen %.0f ms; currentTime %.2f -> %.2f; audio %s; %q",
		res.FallbackMs, res.Engine, res.LatencyS, res.SeamToScrMs, res.TimeBefore, res.TimeAfter, res.AudioCodec, res.Message)
	if res.Engine != "hls.js" {
		t.Errorf("engine %q, want hls.js (Chromium has no native HLS)", res.Engine)
	}
	if !strings.Contains(strings.ToLower(res.Message), "delayed stream") || res.Pill != "Delayed" {
		t.Errorf("page says %q (badge %q), want it to say delayed stream (badge Delayed)", res.Message, res.Pill)
	}
	if res.VideoWidth == 0 || res.TimeAfter <= res.TimeBefore {
		t.Errorf("not playing: videoWidth %d, currentTime %.2f -> %.2f", res.VideoWidth, res.TimeBefore, res.TimeAfter)
	}
	checkHLSAudio(t, res)
}

// publishWHIP publishes the committed H264 + Opus clip to the room over
// WHIP from the test process (root namespace, loopback).
func publishWHIP(t *testing.T, srv *server, streamKey string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	pub, err := mediatest.NewPublisher(context.Background(), mediatest.WHIP(srv.base+"/whip/"+room, streamKey).Signal, mediatest.PublisherOptions{})
	if err != nil {
		t.Fatalf("publish: %v", err)
	}
	t.Cleanup(func() { _ = pub.Close() })
	if err := pub.WaitConnected(ctx); err != nil {
		t.Fatalf("publisher connect: %v", err)
	}
}

// viewerNetns makes a network namespace for the browser: a veth to the
// host (so the server's WebRTC candidates are routable from it, and only a
// firewall rule stands in the way) and, inside it, a forwarder on the
// server's HTTP address (127.0.0.1:PORT, the same origin) to the server.
// It returns the namespace and a node wrapper that runs node inside it.
func viewerNetns(t *testing.T, node string, srv *server) (*mediatest.Netns, string) {
	t.Helper()
	ns := mediatest.NewNetns(t, "hlsv")
	var b [2]byte
	_, _ = rand.Read(b[:])
	suffix := hex.EncodeToString(b[:])
	// <= 15 bytes; test peers (mediatest) never gather on a root-side lrh… device.
	host, peer := "lrh"+suffix, "lrp"+suffix
	sub := fmt.Sprintf("10.%d.%d", 100+int(b[0])%100, b[1])
	if out, err := exec.Command("ip", "link", "add", host, "type", "veth", "peer", "name", peer, "netns", ns.Name).CombinedOutput(); err != nil {
		t.Fatalf("veth: %v\n%s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("ip", "link", "del", host).Run() }) // gone with the namespace too
	for _, args := range [][]string{
		{"addr", "add", sub + ".1/30", "dev", host},
		{"link", "set", host, "up"},
	} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v\n%s", args, err, out)
		}
	}
	ns.IP(t, "addr", "add", sub+".2/30", "dev", peer)
	ns.IP(t, "link", "set", peer, "up")
	ns.IP(t, "route", "add", "default", "via", sub+".1")

	addr := strings.TrimPrefix(srv.base, "http://")
	forwardInto(t, ns, addr)

	wrapper := filepath.Join(t.TempDir(), "node-in-netns")
	script := fmt.Sprintf("#!/bin/sh\nexec ip netns exec %s %s \"$@\"\n", ns.Name, node)
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return ns, wrapper
}

// forwardInto listens on addr inside ns and copies each connection to addr
// on the host: the page keeps the server's origin, HTTP only.
func forwardInto(t *testing.T, ns *mediatest.Netns, addr string) {
	t.Helper()
	type result struct {
		l   net.Listener
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread exits with this goroutine
		f, err := os.Open("/run/netns/" + ns.Name)
		if err != nil {
			ch <- result{err: err}
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			ch <- result{err: err}
			return
		}
		l, err := net.Listen("tcp", addr)
		ch <- result{l, err}
	}()
	r := <-ch
	if r.err != nil {
		t.Fatalf("listen in %s: %v", ns.Name, r.err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { r.l.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			in, err := r.l.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer in.Close()
				out, err := net.DialTimeout("tcp", addr, 5*time.Second)
				if err != nil {
					return
				}
				defer out.Close()
				wg.Go(func() { _, _ = io.Copy(out, in); _ = out.(*net.TCPConn).CloseWrite() })
				_, _ = io.Copy(in, out)
			})
		}
	})
}

// TestBrowserFirefoxHLSFallback: Firefox ESR without OpenH264, driven by
// puppeteer-core over WebDriver BiDi, opens an H264 room: its WHEP offer
// (VP8/VP9/AV1 only) is answered codec_unsupported and the page plays the
// room through the HLS fallback instead of a black player.
func TestBrowserFirefoxHLSFallback(t *testing.T) {
	_, node := browserTools(t)
	firefox := os.Getenv("FIREFOX")
	if firefox == "" {
		firefox = "/usr/bin/firefox-esr"
	}
	if _, err := os.Stat(firefox); err != nil {
		missing(t, "firefox-esr not found (apt install firefox-esr)")
	}
	artifacts := artifactsDir(t)
	srv := startNode(t, artifacts, nodeOptions{name: "hls-firefox", jwtSecret: randomString(t), adminKey: randomString(t)})
	var created struct {
		StreamKey string `json:"stream_key"`
	}
	srv.admin(t, "/api/v1/rooms", map[string]any{"id": room, "title": "H264 room"}, http.StatusCreated, &created)
	viewer := mint(t, srv, "buyer-1", "Ana", "viewer")
	publishWHIP(t, srv, created.StreamKey)

	var res hlsResult
	ok := runScript(t, node, "", &res, "hls_firefox.mjs", "--base", srv.base, "--room", room, "--token", viewer,
		"--out", artifacts, "--firefox", firefox)
	for _, l := range res.Logs {
		t.Log("browser: " + l)
	}
	if !res.OK || !ok {
		t.Fatalf("firefox run failed in step %q: %s", res.Step, res.Error)
	}
	t.Logf("%s: fell back after %d ms (%s); engine %s; latency %.2f s; seam to screen %.0f ms; currentTime %.2f -> %.2f; audio %s; %q",
		res.UserAgent, res.FallbackMs, res.WHEPOutcome, res.Engine, res.LatencyS, res.SeamToScrMs, res.TimeBefore, res.TimeAfter, res.AudioCodec, res.Message)
	if !strings.Contains(res.WHEPOutcome, "cannot play this room over WebRTC") {
		t.Errorf("the fallback's reason %q, want the WHEP codec_unsupported answer", res.WHEPOutcome)
	}
	if !strings.Contains(strings.ToLower(res.Message), "delayed stream") || res.Pill != "Delayed" {
		t.Errorf("page says %q (badge %q), want it to say delayed stream (badge Delayed)", res.Message, res.Pill)
	}
	if res.VideoWidth == 0 || res.TimeAfter <= res.TimeBefore {
		t.Errorf("not playing: videoWidth %d, currentTime %.2f -> %.2f", res.VideoWidth, res.TimeBefore, res.TimeAfter)
	}
	checkHLSAudio(t, res)
}
