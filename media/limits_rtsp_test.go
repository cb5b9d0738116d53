package media_test

import (
	"errors"
	"net"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/bluenviron/gortsplib/v4/pkg/liberrors"

	"liveroom/media"
)

// rtspClientFrom is a gortsplib client (TCP) whose connection comes from ip.
func rtspClientFrom(ip string) *gortsplib.Client {
	tcp := gortsplib.TransportTCP
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	return &gortsplib.Client{Transport: &tcp, DialContext: d.DialContext}
}

// rtspRead starts reading room (DESCRIBE, SETUP, PLAY) from ip; the error
// is the server's refusal, if any.
func rtspRead(t *testing.T, base, ip, room string) (*gortsplib.Client, error) {
	t.Helper()
	c := rtspClientFrom(ip)
	u, err := baseURL(base + "/" + room)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(u.Scheme, u.Host); err != nil {
		t.Fatal(err)
	}
	desc, _, err := c.Describe(u)
	if err == nil {
		err = c.SetupAll(desc.BaseURL, desc.Medias)
	}
	if err == nil {
		_, err = c.Play(nil)
	}
	if err != nil {
		c.Close()
		return nil, err
	}
	t.Cleanup(c.Close)
	return c, nil
}

func baseURL(s string) (*base.URL, error) { return base.ParseURL(s) }

// rtspPublish publishes an H.264 track to room with gortsplib.
func rtspPublish(t *testing.T, base, room string) {
	t.Helper()
	c := rtspClientFrom("127.0.0.1")
	desc := &description.Session{Medias: []*description.Media{{
		Type: description.MediaTypeVideo,
		Formats: []format.Format{&format.H264{
			PayloadTyp:        96,
			PacketizationMode: 1,
			SPS:               []byte{0x67, 0x42, 0xc0, 0x1f, 0xd9, 0x00, 0x78, 0x02, 0x27, 0xe5, 0x84, 0x00, 0x00, 0x03, 0x00, 0x04, 0x00, 0x00, 0x03, 0x00, 0xf0, 0x3c, 0x60, 0xc9, 0x20},
			PPS:               []byte{0x68, 0xcb, 0x83, 0xcb, 0x20},
		}},
	}}}
	if err := c.StartRecording(base+"/"+room+"?key=secret", desc); err != nil {
		t.Fatalf("rtsp publish: %v", err)
	}
	t.Cleanup(c.Close)
}

func TestRTSPCaps(t *testing.T) {
	type read struct {
		ip     string
		reason string // "" = admitted
	}
	cases := []struct {
		name   string
		limits media.RTSPLimits
		reads  []read
	}{
		{"readers", media.RTSPLimits{ReadersPerAddress: 2, ReadersPerNode: 3}, []read{
			{"127.0.0.7", ""}, {"127.0.0.7", ""}, {"127.0.0.7", "rtsp_readers_per_address"},
			{"127.0.0.8", ""}, {"127.0.0.8", "rtsp_readers_per_node"},
		}},
		// The publisher (127.0.0.1) holds one session of the node's four.
		{"sessions", media.RTSPLimits{SessionsPerAddress: 2, SessionsPerNode: 4}, []read{
			{"127.0.0.7", ""}, {"127.0.0.7", ""}, {"127.0.0.7", "rtsp_sessions_per_address"},
			{"127.0.0.8", ""}, {"127.0.0.8", "rtsp_sessions_per_node"},
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := newSFU(t)
			udp := 0
			srv, err := s.ServeRTSP(media.RTSPConfig{Listen: "127.0.0.1:0", UDPPort: &udp, Limits: c.limits}, media.RTSPDeps{Auth: fakeAuth{}})
			if err != nil {
				t.Fatal(err)
			}
			base := "rtsp://" + srv.Addr().String()
			rtspPublish(t, base, "caps")
			var first *gortsplib.Client
			for i, r := range c.reads {
				cl, err := rtspRead(t, base, r.ip, "caps")
				var bad liberrors.ErrClientBadStatusCode
				switch {
				case r.reason == "" && err != nil:
					t.Fatalf("read %d from %s: %v, want admitted", i, r.ip, err)
				case r.reason != "" && (!errors.As(err, &bad) || bad.Code != 503):
					t.Fatalf("read %d from %s: %v, want 503 (%s)", i, r.ip, err, r.reason)
				case r.reason != "":
					if got := metricValue(t, s.reg, "liveroom_media_admissions_refused_total", map[string]string{"reason": r.reason}); got < 1 {
						t.Errorf("refusals{reason=%s}: got %v, want >= 1", r.reason, got)
					}
				}
				if first == nil {
					first = cl
				}
			}
			// A reader that leaves frees its place for another address.
			first.Close()
			ctx := testCtx(t, 10*time.Second)
			for {
				_, err := rtspRead(t, base, "127.0.0.8", "caps")
				if err == nil {
					break
				}
				if ctx.Err() != nil {
					t.Fatalf("after a reader left: %v", err)
				}
				time.Sleep(50 * time.Millisecond)
			}
		})
	}
}
