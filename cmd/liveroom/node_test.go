package main

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"liveroom/media/mediatest"
	"liveroom/room"
)

// testConfig is a single node on free loopback ports in a temp dir.
func testConfig(t *testing.T) Config {
	t.Helper()
	cfg := defaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.HTTP.Listen = "127.0.0.1:0"
	cfg.WebRTC.Port = freePort(t, "udp")
	cfg.WebRTC.ListenIP = "127.0.0.1"
	cfg.RTSP.Listen = "127.0.0.1:0"
	cfg.RTMP.Address = "127.0.0.1:0"
	zero := 0
	cfg.RTSP.UDPPort = &zero
	cfg.SRT.Address = "127.0.0.1:0"
	cfg.Auth.JWTSecret, cfg.Auth.AdminKey = crashSecret, crashAdminKey
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// A node that cannot be built (its RTSP port is taken) reports an error and
// releases what it had opened, instead of panicking.
func TestBuildNodeFailureReleasesSockets(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	cfg := testConfig(t)
	cfg.RTSP.Listen = busy.Addr().String()
	if _, err := buildNode(cfg, prometheus.NewRegistry(), quietLog()); err == nil {
		t.Fatal("got a node with its RTSP port taken, want an error")
	}
	// The WebRTC port was released: a second node can bind it.
	cfg.RTSP.Listen = "127.0.0.1:0"
	n, err := buildNode(cfg, prometheus.NewRegistry(), quietLog())
	if err != nil {
		t.Fatalf("second build on the same WebRTC port: %v", err)
	}
	n.start()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	n.stop(ctx)
}

// The room's stream key only publishes: the binary's WebSocket refuses it
// (it used to stand for the host there), as it refuses a wrong key.
func TestStreamKeyOpensNoWebSocket(t *testing.T) {
	n, err := buildNode(testConfig(t), prometheus.NewRegistry(), quietLog())
	if err != nil {
		t.Fatal(err)
	}
	n.start()
	srv := httptest.NewServer(n.web)
	defer func() {
		srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		n.stop(ctx)
	}()
	status, b := adminDo(t, "POST", srv.URL+"/api/v1/rooms", map[string]any{"id": "keyed", "title": "Keyed"})
	if status != 201 {
		t.Fatalf("create room: %d %s", status, b)
	}
	rm, err := n.rooms.Get(context.Background(), "keyed")
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{rm.StreamKey, "sk_not_the_key"} {
		c := dialWS(t, srv.URL, "keyed", key)
		if e := c.await("error", 5*time.Second); e == nil || e["code"] != "unauthorized" {
			t.Fatalf("key %.6s…: got %v, want an unauthorized error", key, e)
		}
	}
}

// One node runs the cluster's control plane on memory backends: it pulls a
// room's RTSP source itself (the source reconciler), and a room left live
// when the node stopped is taken offline by the lifecycle's sweep after a
// restart (nobody holds its origin lease).
func TestSingleNodeSourceAndRestart(t *testing.T) {
	cfg := testConfig(t)
	start := func() (*inNode, context.Context) {
		n, err := buildNode(cfg, prometheus.NewRegistry(), quietLog())
		if err != nil {
			t.Fatal(err)
		}
		in := serveInProcess(t, n)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		t.Cleanup(cancel)
		return in, ctx
	}
	n, ctx := start()
	p := n.p
	for _, body := range []map[string]any{
		{"id": "cam", "title": "Camera"},
		{"id": "mirror", "title": "Mirror", "source": "rtsp://" + p.RTSPAddr + "/cam"},
	} {
		if status, b := adminDo(t, "POST", p.Base+"/api/v1/rooms", body); status != 201 {
			t.Fatalf("create room: %d %s", status, b)
		}
	}
	publishTo(t, ctx, p, "cam", mintToken(t, p.Base, "host", "host", "cam"))
	v, _ := watchOn(t, ctx, p, "mirror")
	waitVideo(t, ctx, v, "the pulled source", func(st mediatest.ViewerStats) bool {
		return !st.FirstKeyframeAt.IsZero() && st.Video.Packets > 60
	})
	wantLive(t, p, "mirror")
	n.leave()

	// The node stopped while the room was live (as after a crash).
	rooms, err := room.OpenFileStore(cfg.DataDir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rooms.Update(context.Background(), "cam", func(r *room.Room) error { r.Status = room.StatusLive; return nil }); err != nil {
		t.Fatal(err)
	}
	n, ctx = start()
	for {
		rm, err := n.rooms.Get(ctx, "cam")
		if err != nil {
			t.Fatal(err)
		}
		if rm.Status == room.StatusScheduled {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("room left live by the stopped node: status %s, want scheduled", rm.Status)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
