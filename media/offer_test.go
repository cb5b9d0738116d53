package media_test

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"

	"liveroom/media"
	"liveroom/media/mediatest"

	"github.com/pion/webrtc/v4"
)

// clientOffer builds a real offer: a publisher's (sendonly tracks) or a
// viewer's (recvonly transceivers), with the given client API.
func clientOffer(t *testing.T, api *webrtc.API, publish bool, video, audio webrtc.RTPCodecCapability) string {
	t.Helper()
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	for _, c := range []webrtc.RTPCodecCapability{video, audio} {
		if publish {
			tr, err := webrtc.NewTrackLocalStaticSample(c, strings.Split(c.MimeType, "/")[0], "s")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := pc.AddTransceiverFromTrack(tr, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly}); err != nil {
				t.Fatal(err)
			}
			continue
		}
		k := webrtc.RTPCodecTypeVideo
		if strings.HasPrefix(c.MimeType, "audio/") {
			k = webrtc.RTPCodecTypeAudio
		}
		if _, err := pc.AddTransceiverFromKind(k, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
			t.Fatal(err)
		}
	}
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	<-gathered
	return pc.LocalDescription().SDP
}

var (
	madeUpVideo = webrtc.RTPCodecCapability{MimeType: "video/x-madeup", ClockRate: 90000}
	madeUpAudio = webrtc.RTPCodecCapability{MimeType: "audio/x-madeup", ClockRate: 48000}
	h264        = webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000,
		SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"}
	h264mode0 = webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000,
		SDPFmtpLine: "packetization-mode=0;profile-level-id=42e01f"}
	opus = webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}
)

// codecAPI is a client that knows only the given video and audio codec.
func codecAPI(t *testing.T, video, audio webrtc.RTPCodecCapability) *webrtc.API {
	t.Helper()
	m := &webrtc.MediaEngine{}
	if err := m.RegisterCodec(webrtc.RTPCodecParameters{RTPCodecCapability: video, PayloadType: 120}, webrtc.RTPCodecTypeVideo); err != nil {
		t.Fatal(err)
	}
	if err := m.RegisterCodec(webrtc.RTPCodecParameters{RTPCodecCapability: audio, PayloadType: 121}, webrtc.RTPCodecTypeAudio); err != nil {
		t.Fatal(err)
	}
	return webrtc.NewAPI(webrtc.WithMediaEngine(m))
}

func TestBadOffers(t *testing.T) {
	s := newSFU(t)
	api, err := mediatest.NewAPI()
	if err != nil {
		t.Fatal(err)
	}
	goodPub := clientOffer(t, api, true, h264, opus)
	goodView := clientOffer(t, api, false, h264, opus)
	stripped := func(sdp string, prefixes ...string) string {
		var out []string
		for _, l := range strings.Split(sdp, "\r\n") {
			drop := false
			for _, p := range prefixes {
				drop = drop || strings.HasPrefix(l, p)
			}
			if !drop {
				out = append(out, l)
			}
		}
		return strings.Join(out, "\r\n")
	}
	// Build the offers before counting goroutines: client PeerConnections
	// leave a few goroutines winding down.
	cases := []struct {
		name    string
		publish bool
		offer   string
		want    error
	}{
		{"empty", true, "", media.ErrBadOffer},
		{"garbage", false, "hello, world", media.ErrBadOffer},
		{"no media", true, "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n", media.ErrBadOffer},
		{"oversize", false, goodView + strings.Repeat("a=x-padding:0123456789\r\n", 4000), media.ErrBadOffer},
		{"no fingerprint", true, stripped(goodPub, "a=fingerprint"), media.ErrBadOffer},
		{"no ice credentials", false, stripped(goodView, "a=ice-ufrag", "a=ice-pwd"), media.ErrBadOffer},
		{"made-up codec publish", true, clientOffer(t, codecAPI(t, madeUpVideo, madeUpAudio), true, madeUpVideo, madeUpAudio), media.ErrNoCodec},
		{"made-up codec subscribe", false, clientOffer(t, codecAPI(t, madeUpVideo, madeUpAudio), false, madeUpVideo, madeUpAudio), media.ErrNoCodec},
		{"h264 packetization-mode 0 only", true, clientOffer(t, codecAPI(t, h264mode0, madeUpAudio), true, h264mode0, madeUpAudio), media.ErrNoCodec},
		{"viewer offer to publish", true, goodView, media.ErrNoCodec},
		{"publisher offer to subscribe", false, goodPub, media.ErrNoCodec},
	}
	time.Sleep(200 * time.Millisecond)
	base := runtime.NumGoroutine()

	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			var err error
			if c.publish {
				_, err = s.Publish(ctx, "bad", "host", c.offer)
			} else {
				_, err = s.Subscribe(ctx, "bad", c.offer)
			}
			if !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
		})
	}
	if s.Live("bad") || s.Viewers("bad") != 0 {
		t.Errorf("after bad offers: live %v viewers %d, want false 0", s.Live("bad"), s.Viewers("bad"))
	}
	waitGoroutines(t, base, 5*time.Second)
}

func TestUnknownSession(t *testing.T) {
	s := newSFU(t)
	ctx := testCtx(t, 20*time.Second)
	cases := []struct {
		name, room string
	}{
		{"unknown room", "nowhere"},
		{"unknown session in a room", "here"},
	}
	startViewer(t, ctx, s.SFU, "here")
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if err := s.Close(c.room, "nope"); !errors.Is(err, media.ErrSessionNotFound) {
				t.Errorf("Close: got %v, want ErrSessionNotFound", err)
			}
			if _, err := s.Patch(ctx, c.room, "nope", "a=end-of-candidates\r\n"); !errors.Is(err, media.ErrSessionNotFound) {
				t.Errorf("Patch: got %v, want ErrSessionNotFound", err)
			}
		})
	}
}
