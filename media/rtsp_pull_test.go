package media_test

import (
	"net"
	"sync"
	"testing"
	"time"

	"liveroom/media/mediatest"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/pion/rtp"
)

// camera is a stand-in IP camera: an RTSP server that relays whatever ffmpeg
// publishes to it to its readers, and drops them when ffmpeg goes away.
type camera struct {
	srv    *gortsplib.Server
	mu     sync.Mutex
	stream *gortsplib.ServerStream
	pub    *gortsplib.ServerSession
}

func (c *camera) OnSessionClose(ctx *gortsplib.ServerHandlerOnSessionCloseCtx) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stream != nil && ctx.Session == c.pub {
		c.stream.Close()
		c.stream, c.pub = nil, nil
	}
}

func (c *camera) OnDescribe(*gortsplib.ServerHandlerOnDescribeCtx) (*base.Response, *gortsplib.ServerStream, error) {
	return c.current()
}

func (c *camera) OnSetup(ctx *gortsplib.ServerHandlerOnSetupCtx) (*base.Response, *gortsplib.ServerStream, error) {
	if ctx.Session.State() == gortsplib.ServerSessionStatePreRecord {
		return &base.Response{StatusCode: base.StatusOK}, nil, nil
	}
	return c.current()
}

func (c *camera) current() (*base.Response, *gortsplib.ServerStream, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stream == nil {
		return &base.Response{StatusCode: base.StatusNotFound}, nil, nil
	}
	return &base.Response{StatusCode: base.StatusOK}, c.stream, nil
}

func (c *camera) OnAnnounce(ctx *gortsplib.ServerHandlerOnAnnounceCtx) (*base.Response, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stream != nil {
		return &base.Response{StatusCode: base.StatusNotAcceptable}, nil
	}
	st := &gortsplib.ServerStream{Server: c.srv, Desc: ctx.Description}
	if err := st.Initialize(); err != nil {
		return &base.Response{StatusCode: base.StatusInternalServerError}, nil
	}
	c.stream, c.pub = st, ctx.Session
	return &base.Response{StatusCode: base.StatusOK}, nil
}

func (c *camera) OnPlay(*gortsplib.ServerHandlerOnPlayCtx) (*base.Response, error) {
	return &base.Response{StatusCode: base.StatusOK}, nil
}

func (c *camera) OnRecord(ctx *gortsplib.ServerHandlerOnRecordCtx) (*base.Response, error) {
	c.mu.Lock()
	st := c.stream
	c.mu.Unlock()
	ctx.Session.OnPacketRTPAny(func(m *description.Media, _ format.Format, p *rtp.Packet) {
		_ = st.WritePacketRTP(m, p)
	})
	return &base.Response{StatusCode: base.StatusOK}, nil
}

func startCamera(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	c := &camera{}
	c.srv = &gortsplib.Server{Handler: c, RTSPAddress: addr}
	if err := c.srv.Start(); err != nil {
		t.Fatalf("camera: %v", err)
	}
	t.Cleanup(c.srv.Close)
	return "rtsp://" + addr + "/cam"
}

// TestRTSPPull: a room with an RTSP source reaches a WHEP viewer, goes
// offline when the camera's feed stops and comes back when it restarts.
func TestRTSPPull(t *testing.T) {
	needFFmpeg(t)
	ctx := testCtx(t, 60*time.Second)
	s := newSFU(t)
	startRTSP(t, s.SFU, nil) // pulled rooms are readable over RTSP too
	cam := startCamera(t)
	feed := startFFmpeg(t, pushArgs(cam, "tcp")...)

	v, _ := startViewer(t, ctx, s.SFU, "cam-room")
	if err := s.StartPull("cam-room", cam); err != nil {
		t.Fatalf("StartPull: %v", err)
	}
	st := waitStats(t, ctx, v, "pulled keyframe", func(st mediatest.ViewerStats) bool {
		return st.Keyframes >= 1 && st.Audio.Packets > 10
	})
	if !st.FirstKeyframeParams || st.Video.MaxPayload > 1200 {
		t.Errorf("keyframe with SPS/PPS %v, max payload %d; want true, <= 1200", st.FirstKeyframeParams, st.Video.MaxPayload)
	}
	waitFor(t, ctx, "room live", func() bool { return s.Live("cam-room") })

	feed.stop()
	waitFor(t, ctx, "room offline after the camera stopped", func() bool { return !s.Live("cam-room") })
	before := v.Stats().Keyframes

	startFFmpeg(t, pushArgs(cam, "tcp")...)
	waitStats(t, ctx, v, "keyframe after the camera restarted", func(st mediatest.ViewerStats) bool {
		return st.Keyframes > before+1
	})
	waitFor(t, ctx, "room live again", func() bool { return s.Live("cam-room") })

	s.StopPull("cam-room")
	if s.Live("cam-room") {
		t.Fatalf("room live after StopPull")
	}
}

func waitFor(t *testing.T, ctx interface{ Done() <-chan struct{} }, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s", what)
		case <-time.After(20 * time.Millisecond):
		}
	}
}
