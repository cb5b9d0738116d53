package media_test

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"liveroom/media"
	"liveroom/media/mediatest"

	"github.com/pion/webrtc/v4"
)

// TestRTSPPublishFFmpeg: ffmpeg publishes H264 + Opus over TCP and UDP; a
// WHEP viewer gets a keyframe with SPS/PPS first, payloads <= 1200 bytes and
// audio. Over TCP it also measures latency, reads the room back with ffmpeg
// and survives garbage on the RTSP port.
func TestRTSPPublishFFmpeg(t *testing.T) {
	for _, transport := range []string{"tcp", "udp"} {
		t.Run(transport, func(t *testing.T) {
			needFFmpeg(t)
			ctx := testCtx(t, 20*time.Second)
			s := newSFU(t)
			_, base := startRTSP(t, s.SFU, nil)
			room := "shop-" + transport

			var lat *latencyProbe
			if transport == "tcp" {
				lat = newLatencyProbe()
				media.SetRTSPTrace(s.SFU, lat.arrived)
			}
			v, _ := startViewer(t, ctx, s.SFU, room)
			var probe *probeViewer
			if lat != nil {
				probe = startProbeViewer(t, ctx, s.SFU, room, lat)
			}
			ff := startFFmpeg(t, pushArgs(base+"/"+room+"?key=secret", transport)...)

			st := waitStats(t, ctx, v, "keyframe and audio", func(st mediatest.ViewerStats) bool {
				return !st.FirstKeyframeAt.IsZero() && st.Audio.Packets >= 25 && st.Video.Packets >= 60
			})
			if !st.FirstVideoKeyframe || !st.FirstKeyframeParams {
				t.Errorf("first video packet starts a keyframe: %v, keyframe had SPS/PPS: %v; want both", st.FirstVideoKeyframe, st.FirstKeyframeParams)
			}
			if st.Video.MaxPayload > 1200 || st.Audio.MaxPayload > 1200 {
				t.Errorf("max payload video %d audio %d, want <= 1200", st.Video.MaxPayload, st.Audio.MaxPayload)
			}
			if !s.Live(room) {
				t.Errorf("room not live")
			}
			if transport == "udp" {
				return
			}
			first := lat.firstArrival()
			t.Logf("MEASURE first RTSP packet -> viewer's first complete keyframe: %v", st.FirstKeyframeAt.Sub(first).Round(time.Millisecond))

			// Garbage and malformed requests on the RTSP port.
			before := v.Stats().Video.Packets
			for _, junk := range []string{
				"\x00\xff\x13garbage\r\n\r\n",
				"OPTIONS rtsp://x/ RTSP/1.0\r\n\r\n", // no CSeq
				"ANNOUNCE rtsp://x/" + room + " RTSP/1.0\r\nCSeq: 1\r\nContent-Length: 99999999\r\n\r\n",
				"DESCRIBE rtsp://x/" + room + " RTSP/1.0\r\nCSeq: 1\r\nAuthorization: Basic !!!\r\n\r\n",
				"SETUP rtsp://x/" + room + "/trackID=9 RTSP/1.0\r\nCSeq: 2\r\nTransport: nonsense\r\n\r\n",
				"RECORD rtsp://x/" + room + " RTSP/1.0\r\nCSeq: 3\r\nSession: 12345\r\n\r\n",
				"$\x00\xff\xff" + strings.Repeat("z", 300),
			} {
				sendRaw(t, strings.TrimPrefix(base, "rtsp://"), junk)
			}
			waitStats(t, ctx, v, "video to keep flowing after garbage", func(st mediatest.ViewerStats) bool {
				return st.Video.Packets > before+60
			})
			if !s.Live(room) {
				t.Fatalf("room went offline after garbage")
			}

			// ffmpeg reads the live room.
			rd := startFFmpeg(t, "-rtsp_transport", "tcp", "-i", base+"/"+room, "-t", "2", "-f", "null", "-")
			if err := rd.wait(t, 20*time.Second); err != nil {
				t.Fatalf("ffmpeg read: %v\n%s", err, rd.stderr.String())
			}
			if out := rd.stderr.String(); !strings.Contains(out, "Video: h264") || strings.Contains(out, "frame=    0") {
				t.Errorf("ffmpeg read decoded no video:\n%s", out)
			}

			p50, p99, n := probe.latency()
			t.Logf("MEASURE RTSP arrival -> WHEP viewer receive, per packet (n=%d): p50 %v, p99 %v", n, p50, p99)
			ff.stop()
		})
	}
}

// TestRTSPRefusals: what a browser cannot play gets a clear message; bad
// credentials get 401, an unknown room 404.
func TestRTSPRefusals(t *testing.T) {
	needFFmpeg(t)
	ctx := testCtx(t, 60*time.Second)
	s := newSFU(t)
	n := &notices{}
	_, base := startRTSP(t, s.SFU, n)

	for _, tc := range []struct {
		name, url string
		extra     []string
		want      string
	}{
		{"b-frames", base + "/bf?key=secret", []string{"-profile:v", "main", "-bf", "2"}, "B-frames cannot be played by browsers"},
		{"wrong key", base + "/room1?key=nope", nil, "401"},
		{"wrong password", strings.Replace(base, "rtsp://", "rtsp://u:nope@", 1) + "/room1", nil, "401"},
		{"unknown room", base + "/missing?key=secret", nil, "404"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ff := startFFmpeg(t, pushArgs(tc.url, "tcp", tc.extra...)...)
			if err := ff.wait(t, 20*time.Second); err == nil {
				t.Fatalf("ffmpeg succeeded, want refusal")
			}
			if out := ff.stderr.String(); !strings.Contains(out, tc.want) {
				t.Fatalf("ffmpeg stderr lacks %q:\n%s", tc.want, out)
			}
		})
	}
	if !n.has("bf: video: H264 with B-frames") {
		t.Errorf("no B-frames notice; got %v", n.got)
	}

	t.Run("password auth", func(t *testing.T) {
		v, _ := startViewer(t, ctx, s.SFU, "pw")
		startFFmpeg(t, pushArgs(strings.Replace(base, "rtsp://", "rtsp://host:secret@", 1)+"/pw", "tcp")...)
		waitStats(t, ctx, v, "video keyframe", func(st mediatest.ViewerStats) bool { return !st.FirstKeyframeAt.IsZero() })
	})
}

func sendRaw(t *testing.T, addr, data string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatalf("dial rtsp: %v", err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(500 * time.Millisecond))
	_, _ = c.Write([]byte(data))
	buf := make([]byte, 4096)
	_, _ = c.Read(buf)
}

// latencyProbe pairs RTSP arrival times with WHEP receive times by RTP
// timestamp: the first source's timestamps reach viewers unchanged (the
// forwarder's offset is 0), so (kind, timestamp) identifies a video frame's
// marker packet and an audio packet on both sides.
type latencyProbe struct {
	mu      sync.Mutex
	first   time.Time
	arrival map[[2]uint32]time.Time
	deltas  []time.Duration
}

func newLatencyProbe() *latencyProbe { return &latencyProbe{arrival: map[[2]uint32]time.Time{}} }

func probeKey(video bool, ts uint32) [2]uint32 {
	if video {
		return [2]uint32{1, ts}
	}
	return [2]uint32{0, ts}
}

func (l *latencyProbe) arrived(video bool, ts uint32, marker bool, at time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.first.IsZero() {
		l.first = at
	}
	if !video || marker {
		l.arrival[probeKey(video, ts)] = at
	}
}

func (l *latencyProbe) received(video bool, ts uint32, at time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if a, ok := l.arrival[probeKey(video, ts)]; ok {
		l.deltas = append(l.deltas, at.Sub(a))
		delete(l.arrival, probeKey(video, ts))
	}
}

func (l *latencyProbe) firstArrival() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.first
}

type probeViewer struct{ lat *latencyProbe }

func (p *probeViewer) latency() (p50, p99 time.Duration, n int) {
	l := p.lat
	l.mu.Lock()
	d := slices.Clone(l.deltas)
	l.mu.Unlock()
	if len(d) == 0 {
		return 0, 0, 0
	}
	slices.Sort(d)
	return d[len(d)/2], d[len(d)*99/100], len(d)
}

// startProbeViewer is a plain pion WHEP viewer that reports when each
// marker (video) or audio packet arrives.
func startProbeViewer(t *testing.T, ctx context.Context, s *media.SFU, room string, lat *latencyProbe) *probeViewer {
	t.Helper()
	api, err := mediatest.NewAPI()
	if err != nil {
		t.Fatal(err)
	}
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pc.Close() })
	for _, k := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio} {
		if _, err := pc.AddTransceiverFromKind(k, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
			t.Fatal(err)
		}
	}
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		video := tr.Kind() == webrtc.RTPCodecTypeVideo
		for {
			p, _, err := tr.ReadRTP()
			if err != nil {
				return
			}
			if !video || p.Marker {
				lat.received(video, p.Timestamp, time.Now())
			}
		}
	})
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	<-gathered
	sess, err := s.Subscribe(ctx, room, pc.LocalDescription().SDP)
	if err != nil {
		t.Fatalf("probe subscribe: %v", err)
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: sess.AnswerSDP}); err != nil {
		t.Fatal(fmt.Errorf("probe answer: %w", err))
	}
	return &probeViewer{lat: lat}
}
