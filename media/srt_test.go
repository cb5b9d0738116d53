package media_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	srt "github.com/datarhei/gosrt"
	"github.com/prometheus/client_golang/prometheus"

	"liveroom/media"
	"liveroom/media/mediatest"
)

// srtAuth: key "secret" publishes as "host1", "other" as "host2"; room
// "missing" does not exist.
type srtAuth struct{}

func (srtAuth) AuthorizePublish(_ context.Context, roomID, key string) (string, error) {
	switch {
	case roomID == "missing":
		return "", media.ErrRoomNotFound
	case key == "secret":
		return "host1", nil
	case key == "other":
		return "host2", nil
	}
	return "", errors.New("bad key")
}

func (srtAuth) FindPublish(context.Context, string) (string, string, error) {
	return "", "", media.ErrRoomNotFound
}

func startSRT(t *testing.T, s *media.SFU, n *notices, passphrase string) (*media.SRTServer, string) {
	t.Helper()
	deps := media.SRTDeps{Auth: srtAuth{}}
	if n != nil {
		deps.Notice = n.add
	}
	srv, err := s.ServeSRT(media.SRTConfig{Address: "127.0.0.1:0", Passphrase: passphrase, ConnectionsPerAddress: 10}, deps)
	if err != nil {
		t.Fatalf("ServeSRT: %v", err)
	}
	t.Cleanup(srv.Close)
	return srv, srv.Addr().String()
}

// srtPushArgs: the README's command (H264 baseline without B-frames, AAC)
// as MPEG-TS over SRT. Debian's ffmpeg 5.1 does not URL-decode streamid:
// it goes in as written ('#', ':' and ',' included).
func srtPushArgs(addr, streamID string, extra ...string) []string {
	return srtPush(addr, streamID, []string{"-c:v", "libx264", "-profile:v", "baseline", "-pix_fmt", "yuv420p", "-bf", "0", "-g", "30",
		"-preset", "ultrafast", "-tune", "zerolatency"}, extra...)
}

// srtPush is ffmpeg's test source with the given video encoding and AAC,
// as MPEG-TS to srt://addr; extra are more URL options.
func srtPush(addr, streamID string, video []string, extra ...string) []string {
	u := "srt://" + addr + "?streamid=" + streamID + "&pkt_size=1316"
	for _, e := range extra {
		u += "&" + e
	}
	args := []string{"-re", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=30", "-f", "lavfi", "-i", "sine=frequency=440", "-t", "30"}
	args = append(args, video...)
	return append(args, "-c:a", "aac", "-f", "mpegts", u)
}

// TestSRTPublishFFmpeg: ffmpeg publishes H264 + AAC as MPEG-TS over SRT,
// with either stream id form; a WHEP viewer gets a keyframe with SPS/PPS
// first, payloads <= 1200 bytes, and Opus audio when the transcoder is
// installed. It measures first SRT packet -> the viewer's first keyframe.
func TestSRTPublishFFmpeg(t *testing.T) {
	for _, form := range []struct {
		name, id string
		mux      []string // ffmpeg MPEG-TS muxer options
	}{
		{"short", "publish:%s:secret", nil},
		{"access-control", "#!::r=%s,m=publish,s=secret", nil},
		// ffmpeg buffers ~0.3 s of AAC per PES by default, and the demuxer
		// needs the first audio PES (its AudioSpecificConfig) to start.
		{"small-pes", "publish:%s:secret", []string{"-pes_payload_size", "0"}},
	} {
		t.Run(form.name, func(t *testing.T) {
			needFFmpeg(t)
			ctx := testCtx(t, 25*time.Second)
			s := newSFU(t)
			n := &notices{}
			srv, addr := startSRT(t, s.SFU, n, "")
			room := "srt-" + form.name
			var mu sync.Mutex
			var first time.Time
			media.SetSRTFirstPacket(srv, func(_ string, at time.Time) { mu.Lock(); first = at; mu.Unlock() })
			lat := newLatencyProbe()
			media.SetSRTTrace(srv, func(ts uint32, at time.Time) { lat.arrived(true, ts, true, at) })

			v, _ := startViewer(t, ctx, s.SFU, room)
			probe := startProbeViewer(t, ctx, s.SFU, room, lat)
			args := srtPushArgs(addr, fmt.Sprintf(form.id, room))
			args = append(args[:len(args)-1], append(form.mux, args[len(args)-1])...)
			startFFmpeg(t, args...)
			wantAudio := media.TranscoderAvailable() == nil
			st := waitStats(t, ctx, v, "keyframe and audio", func(st mediatest.ViewerStats) bool {
				return !st.FirstKeyframeAt.IsZero() && st.Video.Packets >= 60 && (!wantAudio || st.Audio.Packets >= 25)
			})
			if !st.FirstVideoKeyframe || !st.FirstKeyframeParams {
				t.Errorf("first video packet starts a keyframe: %v, keyframe had SPS/PPS: %v; want both", st.FirstVideoKeyframe, st.FirstKeyframeParams)
			}
			if st.Video.MaxPayload > 1200 || st.Audio.MaxPayload > 1200 {
				t.Errorf("max payload video %d audio %d, want <= 1200", st.Video.MaxPayload, st.Audio.MaxPayload)
			}
			if !wantAudio && !n.has("AAC") {
				t.Errorf("no transcoder and no notice about AAC; notices %v", n.got)
			}
			if !s.Live(room) {
				t.Errorf("room not live")
			}
			mu.Lock()
			t.Logf("MEASURE first SRT packet -> viewer's first complete keyframe (%s): %v", form.name, st.FirstKeyframeAt.Sub(first).Round(time.Millisecond))
			mu.Unlock()
			p50, p99, count := probe.latency()
			t.Logf("MEASURE demuxed SRT video access unit -> WHEP viewer receives its last packet (%s, n=%d): p50 %v, p99 %v", form.name, count, p50, p99)
		})
	}
}

// dialSRT is a gosrt caller with the given stream id and passphrase.
func dialSRT(addr, streamID, passphrase string) (srt.Conn, error) {
	c := srt.DefaultConfig()
	c.StreamId = streamID
	c.Passphrase = passphrase
	c.ConnectionTimeout = 3 * time.Second
	return srt.Dial("srt", addr, c)
}

// TestSRTRefusals: handshakes the server must refuse, while another room's
// publisher keeps flowing; the caps; passphrase required when configured.
func TestSRTRefusals(t *testing.T) {
	needFFmpeg(t)
	ctx := testCtx(t, 40*time.Second)
	s := newSFU(t)
	n := &notices{}
	_, addr := startSRT(t, s.SFU, n, "")

	const live = "srt-live"
	v, _ := startViewer(t, ctx, s.SFU, live)
	startFFmpeg(t, srtPushArgs(addr, "publish:"+live+":secret")...)
	waitStats(t, ctx, v, "keyframe", func(st mediatest.ViewerStats) bool { return !st.FirstKeyframeAt.IsZero() })

	before := v.Stats().Video.Packets
	for _, id := range []string{
		"",
		"garbage",
		"publish:other-room:wrong", // wrong key
		"publish:missing:secret",   // no such room
		"read:other-room:secret",   // reading is not served
		"#!::r=other-room,m=request,s=secret",
		"#!::r=other-room,m=publish",   // no key
		"#!::r=a/b,m=publish,s=secret", // not a room id
		"publish:" + live + ":other",   // another host
		"#!::\x00\xff,=,==",
	} {
		if c, err := dialSRT(addr, id, ""); err == nil {
			c.Close()
			t.Errorf("stream id %q accepted", id)
		}
	}
	if !n.has("another host is publishing") {
		t.Errorf("no notice for the second host; got %v", n.got)
	}
	if _, err := dialSRT(addr, "publish:other-room:secret", "0123456789abc"); err == nil {
		t.Errorf("encrypted caller accepted by a server without a passphrase")
	}
	waitStats(t, ctx, v, "video still flowing", func(st mediatest.ViewerStats) bool { return st.Video.Packets > before+60 })
	if !s.Live(live) {
		t.Errorf("room %s not live after the refusals", live)
	}
	for result, want := range map[string]float64{
		"accepted": 1, "bad_stream_id": 5, "auth": 1, "no_room": 1, "read": 2, "conflict": 1, "passphrase": 1, "overload": 0,
	} {
		if got := srtHandshakes(t, s.reg, result); got != want {
			t.Errorf("liveroom_srt_handshakes_total{result=%q} = %v, want %v", result, got, want)
		}
	}
}

func srtHandshakes(t *testing.T, g prometheus.Gatherer, result string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "liveroom_srt_handshakes_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "result" && l.GetValue() == result {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	t.Fatalf("no liveroom_srt_handshakes_total{result=%q}", result)
	return 0
}

// TestSRTPassphrase: with srt.passphrase set, callers without it or with
// another are refused; ffmpeg with it publishes.
func TestSRTPassphrase(t *testing.T) {
	needFFmpeg(t)
	ctx := testCtx(t, 25*time.Second)
	s := newSFU(t)
	const pass = "correct-horse-battery"
	_, addr := startSRT(t, s.SFU, nil, pass)
	for _, p := range []string{"", "wrong-passphrase"} {
		if c, err := dialSRT(addr, "publish:pw:secret", p); err == nil {
			c.Close()
			t.Errorf("passphrase %q accepted", p)
		}
	}
	v, _ := startViewer(t, ctx, s.SFU, "pw")
	startFFmpeg(t, srtPushArgs(addr, "publish:pw:secret", "passphrase="+pass)...)
	waitStats(t, ctx, v, "keyframe", func(st mediatest.ViewerStats) bool { return !st.FirstKeyframeAt.IsZero() })
}

// TestSRTUnplayable: HEVC and H264 with B-frames are refused with a notice
// the host sees; the connection is closed and the room stays offline.
func TestSRTUnplayable(t *testing.T) {
	for _, tc := range []struct {
		name, notice string
		video        []string
	}{
		{"hevc", "HEVC", []string{"-c:v", "libx265", "-pix_fmt", "yuv420p", "-preset", "ultrafast", "-x265-params", "log-level=error"}},
		{"bframes", "B-frames", []string{"-c:v", "libx264", "-profile:v", "main", "-pix_fmt", "yuv420p", "-bf", "2", "-g", "30", "-preset", "ultrafast"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			needFFmpeg(t)
			s := newSFU(t)
			n := &notices{}
			_, addr := startSRT(t, s.SFU, n, "")
			room := "srt-" + tc.name
			ff := startFFmpeg(t, srtPush(addr, "publish:"+room+":secret", tc.video)...)
			if err := ff.wait(t, 15*time.Second); err == nil {
				t.Errorf("ffmpeg exited cleanly, want the connection closed under it")
			}
			if !n.has(tc.notice) {
				t.Errorf("no notice naming %s; got %v", tc.notice, n.got)
			}
			if s.Live(room) {
				t.Errorf("room live with an unplayable stream")
			}
		})
	}
}

// TestSRTHostReconnect: the same host connecting again replaces its
// previous connection (closed under the old ffmpeg); viewers keep getting
// keyframes.
func TestSRTHostReconnect(t *testing.T) {
	needFFmpeg(t)
	ctx := testCtx(t, 30*time.Second)
	s := newSFU(t)
	_, addr := startSRT(t, s.SFU, nil, "")
	const room = "srt-again"
	v, _ := startViewer(t, ctx, s.SFU, room)
	old := startFFmpeg(t, srtPushArgs(addr, "publish:"+room+":secret")...)
	waitStats(t, ctx, v, "keyframe", func(st mediatest.ViewerStats) bool { return !st.FirstKeyframeAt.IsZero() })
	startFFmpeg(t, srtPushArgs(addr, "#!::r="+room+",m=publish,s=secret")...)
	if err := old.wait(t, 15*time.Second); err == nil {
		t.Errorf("replaced ffmpeg exited cleanly, want its connection closed")
	}
	before := v.Stats().Keyframes
	waitStats(t, ctx, v, "keyframes from the new connection", func(st mediatest.ViewerStats) bool { return st.Keyframes >= before+2 })
	if !s.Live(room) {
		t.Errorf("room not live after the reconnect")
	}
}

// TestSRTCaps: srt.connections_per_address refuses a caller past the cap
// at the handshake; a slot frees when its connection ends, or when it
// sends nothing for srt.read_timeout.
func TestSRTCaps(t *testing.T) {
	s := newSFU(t)
	srv, err := s.ServeSRT(media.SRTConfig{Address: "127.0.0.1:0", ConnectionsPerAddress: 1, ReadTimeout: 500 * time.Millisecond}, media.SRTDeps{Auth: srtAuth{}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	addr := srv.Addr().String()
	first, err := dialSRT(addr, "publish:capped:secret", "")
	if err != nil {
		t.Fatalf("first caller: %v", err)
	}
	if c, err := dialSRT(addr, "publish:capped2:secret", ""); err == nil {
		c.Close()
		t.Errorf("second caller from the same address accepted past connections_per_address 1")
	}
	first.Close()
	second := waitSRTSlot(t, addr)
	// A caller that stays connected but sends nothing is dropped after
	// read_timeout (its keepalives do not count).
	waitSRTSlot(t, addr).Close()
	second.Close()
}

// waitSRTSlot dials until the server admits a caller.
func waitSRTSlot(t *testing.T, addr string) srt.Conn {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := dialSRT(addr, "publish:capped2:secret", "")
		if err == nil {
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("no slot freed within 10 s: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
