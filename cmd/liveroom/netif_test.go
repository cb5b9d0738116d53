//go:build linux

package main

import (
	"context"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"liveroom/cmd/internal/proctest"
	"liveroom/media/mediatest"
)

// TestReadyzFollowsMediaAddresses runs the binary in a network namespace
// that has only loopback and a veth whose peer is down (its IPv6 address
// stays tentative): the node starts, /readyz answers 503 naming the
// missing media address; a veth pair added later makes it ready.
func TestReadyzFollowsMediaAddresses(t *testing.T) {
	mediatest.NeedNetns(t)
	bin := proctest.Binary(t)
	ns := mediatest.NewNetns(t, "ready")
	ns.IP(t, "link", "add", "lrdown0", "type", "veth", "peer", "name", "lrdown1")
	ns.IP(t, "link", "set", "lrdown0", "up")
	ns.IP(t, "addr", "add", "fd00:202::1/64", "dev", "lrdown0")

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := ns.Command(ctx, bin, "serve", "--dev", "--http", "127.0.0.1:18080", "--webrtc-port", "18443",
		"--rtsp-udp", "0", "--rtsp", "127.0.0.1:18554", "--data-dir", t.TempDir())
	out := &netifTestLog{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("server output:\n%s", out.String())
		}
	})

	client := ns.HTTPClient()
	get := func(path string) (int, string) {
		resp, err := client.Get("http://127.0.0.1:18080" + path)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	wait := func(what, path string, cond func(int, string) bool) {
		t.Helper()
		var code int
		var body string
		for range 200 {
			select {
			case err := <-exited:
				t.Fatalf("%s: the server exited: %v", what, err)
			default:
			}
			if code, body = get(path); cond(code, body) {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Fatalf("%s: %s answered %d %s", what, path, code, body)
	}
	wait("the server starts", "/healthz", func(code int, _ string) bool { return code == http.StatusOK })
	wait("not ready without a media address", "/readyz", func(code int, body string) bool {
		return code == http.StatusServiceUnavailable && strings.Contains(body, "no usable interface address")
	})

	peer := mediatest.NewNetns(t, "peer")
	mediatest.Veth(t, ns, "lrn1", "10.200.3.1/30", peer, "lrp1", "10.200.3.2/30")
	wait("ready once an address exists", "/readyz", func(code int, _ string) bool { return code == http.StatusOK })
}

type netifTestLog struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *netifTestLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *netifTestLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
