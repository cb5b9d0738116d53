package media_test

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"liveroom/media"
	"liveroom/media/mediatest"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/webrtc/v4"
)

// socketAPI is a client whose ICE runs on conn only, so the test can pull
// the socket out from under a connected PeerConnection.
func socketAPI(t *testing.T, conn net.PacketConn) *webrtc.API {
	t.Helper()
	m := &webrtc.MediaEngine{}
	if err := m.RegisterDefaultCodecs(); err != nil {
		t.Fatal(err)
	}
	reg := &interceptor.Registry{}
	if err := webrtc.RegisterDefaultInterceptors(m, reg); err != nil {
		t.Fatal(err)
	}
	se := webrtc.SettingEngine{}
	se.SetIncludeLoopbackCandidate(true)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetICEUDPMux(webrtc.NewICEUDPMux(nil, conn))
	return webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(reg), webrtc.WithSettingEngine(se))
}

func TestDeadViewersDoNotStopOthers(t *testing.T) {
	s := newSFU(t, func(c *media.Config) {
		// Short enough to see dead viewers reaped within the test, long
		// enough that they are still there while the healthy viewer is
		// measured (~2 s): a full ICE agent fails a viewer that never
		// answers its checks after disconnected + failed timeouts.
		c.ConnectTimeout = 3 * time.Second
		c.ICEDisconnectedTimeout = time.Second
		c.ICEFailedTimeout = 2 * time.Second
	})
	ctx := testCtx(t, 40*time.Second)
	startPublisher(t, ctx, s.SFU, "d", "host")
	good, _ := startViewer(t, ctx, s.SFU, "d")

	// A viewer whose socket vanishes while it is receiving.
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	dead, err := mediatest.NewViewer(ctx, subscribeVia(s.SFU, "d", nil), mediatest.ViewerOptions{API: socketAPI(t, conn)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = dead.Close() })
	waitStats(t, ctx, dead, "media on the doomed viewer", func(st mediatest.ViewerStats) bool { return st.Video.Packets > 20 })
	_ = conn.Close()

	// A viewer that gets its answer and never connects.
	api, err := mediatest.NewAPI()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Subscribe(ctx, "d", clientOffer(t, api, false, h264, opus)); err != nil {
		t.Fatalf("subscribe the never-connecting viewer: %v", err)
	}

	before := good.Stats()
	st := waitStats(t, ctx, good, "media on the healthy viewer", func(st mediatest.ViewerStats) bool {
		return st.Video.Packets > before.Video.Packets+90 && st.Audio.Packets > before.Audio.Packets+75
	})
	if lost := st.Video.Lost - before.Video.Lost; lost > 5 {
		t.Errorf("healthy viewer lost %d video packets meanwhile, want ~0", lost)
	}
	sessions := func() int { return int(metricValue(t, s.reg, "liveroom_media_viewers", nil)) }
	if got := sessions(); got != 3 {
		t.Errorf("viewer sessions: got %d, want 3 (the dead are not reaped yet)", got)
	}
	if got := s.Viewers("d"); got != 2 {
		t.Errorf("Viewers: got %d, want 2 (the never-connected one is no viewer)", got)
	}

	// The vanished one fails ICE, the silent one hits the connect timeout.
	for sessions() != 1 || s.Viewers("d") != 1 {
		if ctx.Err() != nil {
			t.Fatalf("dead viewers not reaped: sessions %d, Viewers %d, want 1", sessions(), s.Viewers("d"))
		}
		time.Sleep(50 * time.Millisecond)
	}
	before = good.Stats()
	waitStats(t, ctx, good, "media after the reaping", func(st mediatest.ViewerStats) bool {
		return st.Video.Packets > before.Video.Packets+30
	})
}

// ownGoroutines counts goroutines with package media (not its tests or
// mediatest) on their stack.
func ownGoroutines() int {
	buf := make([]byte, 4<<20)
	buf = buf[:runtime.Stack(buf, true)]
	n := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "liveroom/media.") {
			n++
		}
	}
	return n
}

func TestShutdownLeavesNoGoroutines(t *testing.T) {
	base := runtime.NumGoroutine()
	s, err := media.New(media.Config{ListenIP: "127.0.0.1"}, media.Options{
		Logger: slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t, 30*time.Second)
	pub, err := mediatest.NewPublisher(ctx, publishVia(s, "z", "host", nil), mediatest.PublisherOptions{Clip: clip(t)})
	if err != nil {
		t.Fatal(err)
	}
	var viewers []*mediatest.Viewer
	for range 2 {
		v, err := mediatest.NewViewer(ctx, subscribeVia(s, "z", nil), mediatest.ViewerOptions{})
		if err != nil {
			t.Fatal(err)
		}
		viewers = append(viewers, v)
		waitStats(t, ctx, v, "media", func(st mediatest.ViewerStats) bool { return st.Video.Packets > 10 })
	}

	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := s.Shutdown(sctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if err := s.Shutdown(sctx); err != nil {
		t.Errorf("second Shutdown: got %v, want nil", err)
	}
	if n := ownGoroutines(); n != 0 {
		t.Errorf("goroutines running package media code after Shutdown: %d, want 0", n)
	}
	api, err := mediatest.NewAPI()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Subscribe(ctx, "z", clientOffer(t, api, false, h264, opus)); !errors.Is(err, media.ErrClosed) {
		t.Errorf("Subscribe after Shutdown: got %v, want ErrClosed", err)
	}
	if s.Live("z") || s.Viewers("z") != 0 {
		t.Errorf("after Shutdown: live %v, viewers %d; want false, 0", s.Live("z"), s.Viewers("z"))
	}
	// The SFU's goroutines are gone once Shutdown returns; the clients'
	// wind down when closed.
	_ = pub.Close()
	for _, v := range viewers {
		_ = v.Close()
	}
	waitGoroutines(t, base, 10*time.Second)
}

func TestConnectTimeout(t *testing.T) {
	s := newSFU(t, func(c *media.Config) { c.ConnectTimeout = 500 * time.Millisecond })
	ctx := testCtx(t, 20*time.Second)
	api, err := mediatest.NewAPI()
	if err != nil {
		t.Fatal(err)
	}
	// Clients that get an answer and never connect.
	if _, err := s.Subscribe(ctx, "ct", clientOffer(t, api, false, h264, opus)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Publish(ctx, "ct", "host", clientOffer(t, api, true, h264, opus)); err != nil {
		t.Fatal(err)
	}
	for metricValue(t, s.reg, "liveroom_media_viewers", nil) != 0 || metricValue(t, s.reg, "liveroom_media_publishers", nil) != 0 {
		if ctx.Err() != nil {
			t.Fatalf("sessions that never connected still there: viewers %v", metricValue(t, s.reg, "liveroom_media_viewers", nil))
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The room is free for another host.
	if _, err := s.Publish(ctx, "ct", "other", clientOffer(t, api, true, h264, opus)); err != nil {
		t.Errorf("publish after the stale publisher timed out: %v", err)
	}
}
