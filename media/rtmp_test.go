package media_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"liveroom/media"
	"liveroom/media/mediatest"
)

// ingestAuth: room "shop" has stream key "sk_shop" (host "host-shop");
// key "secret" publishes any room as "host1", "other" as "host2"; room
// "missing" does not exist.
type ingestAuth struct{}

func (ingestAuth) AuthorizePublish(_ context.Context, roomID, key string) (string, error) {
	switch {
	case roomID == "missing":
		return "", media.ErrRoomNotFound
	case key == "secret":
		return "host1", nil
	case key == "other":
		return "host2", nil
	case roomID == "shop" && key == "sk_shop":
		return "host-shop", nil
	}
	return "", errors.New("bad credentials")
}

func (ingestAuth) FindPublish(_ context.Context, key string) (string, string, error) {
	if key == "sk_shop" {
		return "shop", "host-shop", nil
	}
	return "", "", media.ErrRoomNotFound
}

func startRTMP(t *testing.T, s *media.SFU, n *notices, tlsCfg media.RTMPSConfig) *media.RTMPServer {
	t.Helper()
	deps := media.RTMPDeps{Auth: ingestAuth{}}
	if n != nil {
		deps.Notice = n.add
	}
	srv, err := s.ServeRTMP(media.RTMPConfig{Address: "127.0.0.1:0"}, tlsCfg, deps)
	if err != nil {
		t.Fatalf("ServeRTMP: %v", err)
	}
	t.Cleanup(srv.Close)
	return srv
}

// rtmpArgs is the README's ffmpeg command: H264 baseline without B-frames
// and AAC, as FLV over RTMP; extra replaces the video encoder options.
func rtmpArgs(url string, seconds string, extra ...string) []string {
	video := []string{"-c:v", "libx264", "-profile:v", "baseline", "-pix_fmt", "yuv420p", "-bf", "0", "-g", "30"}
	if len(extra) > 0 {
		video = extra
	}
	args := []string{"-re", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=30", "-f", "lavfi", "-i", "sine=frequency=440", "-t", seconds}
	args = append(args, video...)
	return append(args, "-c:a", "aac", "-f", "flv", url)
}

// TestRTMPPublishFFmpeg: the OBS "Custom" form (server rtmp://host/live,
// stream key as the key) and the ?key= form reach a WHEP viewer: a
// keyframe with SPS/PPS first, payloads <= 1200 bytes, AAC heard as Opus.
func TestRTMPPublishFFmpeg(t *testing.T) {
	for _, tc := range []struct{ name, path, room string }{
		{"obs custom", "/live/sk_shop", "shop"},
		{"key query", "/live/shop2?key=secret", "shop2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			needFFmpeg(t)
			ctx := testCtx(t, 40*time.Second)
			s := newSFU(t)
			srv := startRTMP(t, s.SFU, nil, media.RTMPSConfig{})
			lat := newLatencyProbe()
			media.SetRTMPTrace(srv, func(ts uint32, at time.Time) { lat.arrived(true, ts, true, at) })
			v, _ := startViewer(t, ctx, s.SFU, tc.room)
			probe := startProbeViewer(t, ctx, s.SFU, tc.room, lat)
			ff := startFFmpeg(t, rtmpArgs("rtmp://"+srv.Addr().String()+tc.path, "30")...)
			st := waitStats(t, ctx, v, "keyframe and audio", func(st mediatest.ViewerStats) bool {
				return !st.FirstKeyframeAt.IsZero() && st.Audio.Packets >= 25 && st.Video.Packets >= 60
			})
			if !st.FirstVideoKeyframe || !st.FirstKeyframeParams {
				t.Errorf("first video packet starts a keyframe: %v, keyframe had SPS/PPS: %v; want both", st.FirstVideoKeyframe, st.FirstKeyframeParams)
			}
			if st.Video.MaxPayload > 1200 || st.Audio.MaxPayload > 1200 {
				t.Errorf("max payload video %d audio %d, want <= 1200", st.Video.MaxPayload, st.Audio.MaxPayload)
			}
			if !s.Live(tc.room) {
				t.Errorf("room not live")
			}
			if tc.room == "shop" {
				// Malformed handshakes and chunks end their own connection only.
				before := v.Stats().Video.Packets
				c1 := strings.Repeat("\x00", 1536)
				for _, junk := range []string{
					"\x00\xff\x13garbage\r\n\r\n",
					"\x03" + c1, // C0+C1, then silence
					"\x03" + c1 + c1 + "\x02\xff\xff\xff\xff\xff\xff\x14" + strings.Repeat("z", 300), // a chunk with a huge length
					"\x06" + strings.Repeat("\xff", 4000),                                            // encrypted handshake type with junk
				} {
					sendRaw(t, srv.Addr().String(), junk)
				}
				waitStats(t, ctx, v, "video to keep flowing after garbage", func(st mediatest.ViewerStats) bool {
					return st.Video.Packets > before+60
				})
			}
			t.Logf("MEASURE first RTMP video frame -> WHEP viewer's first complete keyframe: %v", st.FirstKeyframeAt.Sub(lat.firstArrival()).Round(time.Millisecond))
			p50, p99, n := probe.latency()
			t.Logf("MEASURE RTMP video frame arrival -> WHEP viewer receives its last packet (n=%d): p50 %v, p99 %v", n, p50, p99)
			ff.stop()
			waitFor(t, ctx, "room offline after the publisher left", func() bool { return !s.Live(tc.room) })
		})
	}
}

// TestRTMPRefusals: wrong key, unknown room or app, B-frames and a second
// host are refused with a status ffmpeg prints; B-frames also reach the
// studio as a notice.
func TestRTMPRefusals(t *testing.T) {
	needFFmpeg(t)
	ctx := testCtx(t, 90*time.Second)
	s := newSFU(t)
	n := &notices{}
	srv := startRTMP(t, s.SFU, n, media.RTMPSConfig{})
	base := "rtmp://" + srv.Addr().String()

	for _, tc := range []struct {
		name, path, want string
		video            []string
	}{
		{"wrong key", "/live/shop?key=nope", "wrong stream key", nil},
		{"unknown key", "/live/sk_nope", "no room for this stream key", nil},
		{"unknown room", "/live/missing?key=secret", "no room for this stream key", nil},
		{"unknown app", "/other/sk_shop", "unknown application", nil},
		{"b-frames", "/live/bf?key=secret", "B-frames", []string{"-c:v", "libx264", "-profile:v", "main", "-pix_fmt", "yuv420p", "-bf", "2", "-g", "30"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ff := startFFmpeg(t, rtmpArgs(base+tc.path, "10", tc.video...)...)
			if err := ff.wait(t, 30*time.Second); err == nil {
				t.Fatalf("ffmpeg succeeded, want a refusal")
			}
			if out := ff.stderr.String(); !strings.Contains(out, tc.want) {
				t.Errorf("ffmpeg output lacks %q:\n%s", tc.want, out)
			}
		})
	}
	if !n.has("bf: H264 with B-frames cannot be played by browsers") {
		t.Errorf("no B-frames notice for the studio; got %v", n.got)
	}
	if s.Live("bf") {
		t.Errorf("room bf live after the refusal")
	}

	t.Run("second host refused, same host replaces", func(t *testing.T) {
		v, _ := startViewer(t, ctx, s.SFU, "duo")
		first := startFFmpeg(t, rtmpArgs(base+"/live/duo?key=secret", "60")...)
		waitStats(t, ctx, v, "first publisher's keyframe", func(st mediatest.ViewerStats) bool { return !st.FirstKeyframeAt.IsZero() })
		other := startFFmpeg(t, rtmpArgs(base+"/live/duo?key=other", "10")...)
		if err := other.wait(t, 30*time.Second); err == nil || !strings.Contains(other.stderr.String(), "another host is publishing") {
			t.Errorf("second host: err %v, output:\n%s", err, other.stderr.String())
		}
		before := v.Stats().Keyframes
		again := startFFmpeg(t, rtmpArgs(base+"/live/duo?key=secret", "60")...)
		if err := first.wait(t, 30*time.Second); err == nil {
			t.Errorf("replaced publisher's ffmpeg exited cleanly")
		}
		waitStats(t, ctx, v, "keyframes from the reconnected host", func(st mediatest.ViewerStats) bool { return st.Keyframes > before+2 })
		if !s.Live("duo") {
			t.Errorf("room offline after the host reconnected")
		}
		again.stop()
	})
}

// TestRTMPS: RTMP over TLS with a certificate made here reaches viewers.
func TestRTMPS(t *testing.T) {
	needFFmpeg(t)
	ctx := testCtx(t, 40*time.Second)
	s := newSFU(t)
	cert, key := testCert(t)
	srv := startRTMP(t, s.SFU, nil, media.RTMPSConfig{Address: "127.0.0.1:0", Cert: cert, Key: key})
	if srv.TLSAddr() == nil {
		t.Fatal("no RTMPS listener")
	}
	v, _ := startViewer(t, ctx, s.SFU, "secure")
	startFFmpeg(t, rtmpArgs("rtmps://"+srv.TLSAddr().String()+"/live/secure?key=secret", "30")...)
	st := waitStats(t, ctx, v, "keyframe over RTMPS", func(st mediatest.ViewerStats) bool {
		return !st.FirstKeyframeAt.IsZero() && st.Video.Packets >= 30
	})
	if !st.FirstKeyframeParams || st.Video.MaxPayload > 1200 {
		t.Errorf("keyframe had SPS/PPS %v, max payload %d", st.FirstKeyframeParams, st.Video.MaxPayload)
	}
	// Plain RTMP on the TLS port is not accepted.
	c, err := net.Dial("tcp", srv.TLSAddr().String())
	if err == nil {
		_, _ = c.Write([]byte{3})
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 1)
		if _, err := c.Read(buf); err == nil && buf[0] == 3 {
			t.Errorf("RTMPS port answered a plain RTMP handshake")
		}
		c.Close()
	}
}

// testCert writes a self-signed certificate for 127.0.0.1 and its key.
func testCert(t *testing.T) (certFile, keyFile string) {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "liveroom test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}
