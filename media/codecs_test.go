package media_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"liveroom/media"
	"liveroom/media/mediatest"

	"github.com/pion/webrtc/v4"
)

// TestViewerCodecs: the down-track binds to whatever the viewer negotiated
// and sends the publisher's codec with the viewer's payload type; a viewer
// that cannot decode the live room's video is refused with
// ErrCodecUnsupported naming what the room sends (offer_codecs.go), so that
// its page falls back to HLS instead of showing a black player.
func TestViewerCodecs(t *testing.T) {
	s := newSFU(t)
	ctx := testCtx(t, 30*time.Second)
	startPublisher(t, ctx, s.SFU, "codecs", "host")
	vp8 := webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, PayloadType: 96}
	vp9 := webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP9, ClockRate: 90000, SDPFmtpLine: "profile-id=0"}, PayloadType: 98}
	h264High := webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000,
		SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=64001f"}, PayloadType: 112}
	cases := []struct {
		name      string
		video     []webrtc.RTPCodecParameters
		wantVideo bool
	}{
		{"default codecs", nil, true},
		{"only high-profile H264 (other payload type)", []webrtc.RTPCodecParameters{h264High}, true},
		{"only VP8", []webrtc.RTPCodecParameters{vp8}, false},
		{"only VP9", []webrtc.RTPCodecParameters{vp9}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v, err := mediatest.NewViewer(ctx, subscribeVia(s.SFU, "codecs", nil), mediatest.ViewerOptions{VideoOnly: c.video})
			if !c.wantVideo {
				var ce *media.CodecError
				if !errors.As(err, &ce) || strings.Join(ce.RoomSends, ",") != "H264,Opus" {
					t.Fatalf("subscribe: got %v, want a CodecError naming H264 and Opus", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("subscribe: %v", err)
			}
			defer v.Close()
			st := waitStats(t, ctx, v, "audio", func(st mediatest.ViewerStats) bool {
				return st.Audio.Packets > 25 && (!c.wantVideo || st.Keyframes > 0)
			})
			if got := st.Video.Packets > 0; got != c.wantVideo {
				t.Fatalf("video received: got %v, want %v", got, c.wantVideo)
			}
			if !c.wantVideo {
				return
			}
			for _, tr := range v.PC.GetTransceivers() {
				if tr.Kind() != webrtc.RTPCodecTypeVideo || tr.Receiver().Track() == nil {
					continue
				}
				got := tr.Receiver().Track().Codec()
				if !strings.EqualFold(got.MimeType, webrtc.MimeTypeH264) {
					t.Errorf("video track codec: got %s (PT %d), want H264", got.MimeType, got.PayloadType)
				}
				if c.video != nil && got.PayloadType != c.video[0].PayloadType {
					t.Errorf("payload type: got %d, want the viewer's %d", got.PayloadType, c.video[0].PayloadType)
				}
			}
		})
	}
}

// TestCodecFollowsPublisher: viewers subscribe before the host picks a
// codec; the host publishes VP8, then reconnects with H264. Each viewer
// gets what it can decode, at a keyframe, on one SSRC.
func TestCodecFollowsPublisher(t *testing.T) {
	s := newSFU(t)
	ctx := testCtx(t, 40*time.Second)
	vp8 := webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, PayloadType: 96}
	anyCodec, _ := startViewer(t, ctx, s.SFU, "sw")
	onlyVP8, err := mediatest.NewViewer(ctx, subscribeVia(s.SFU, "sw", nil), mediatest.ViewerOptions{VideoOnly: []webrtc.RTPCodecParameters{vp8}})
	if err != nil {
		t.Fatal(err)
	}
	defer onlyVP8.Close()

	pub, err := mediatest.NewPublisher(ctx, publishVia(s.SFU, "sw", "host", nil), mediatest.PublisherOptions{Clip: clip(t), VideoCodec: webrtc.MimeTypeVP8})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	for name, v := range map[string]*mediatest.Viewer{"any codec": anyCodec, "VP8 only": onlyVP8} {
		st := waitStats(t, ctx, v, name+": VP8 keyframe", func(st mediatest.ViewerStats) bool { return st.Keyframes > 0 })
		if !st.FirstVideoKeyframe {
			t.Errorf("%s: first VP8 packet is not a keyframe start", name)
		}
	}
	vp8PT := anyCodec.Stats().Video.PayloadType

	switched := time.Now()
	startPublisher(t, ctx, s.SFU, "sw", "host") // H264 now
	st := waitStats(t, ctx, anyCodec, "H264 keyframe after the switch", func(st mediatest.ViewerStats) bool {
		return st.LastKeyframeAt.After(switched) && st.Video.PayloadType != vp8PT
	})
	if st.Video.SSRCChanges != 0 || st.Video.SeqJumps != 0 {
		t.Errorf("codec switch: %d SSRC changes, %d sequence jumps; want 0, 0", st.Video.SSRCChanges, st.Video.SeqJumps)
	}
	// The VP8-only viewer cannot decode H264: it gets audio only.
	before := onlyVP8.Stats()
	waitStats(t, ctx, onlyVP8, "audio after the switch", func(st mediatest.ViewerStats) bool {
		return st.Audio.Packets > before.Audio.Packets+50
	})
	if got := onlyVP8.Stats().Video.PayloadType; got != before.Video.PayloadType {
		t.Errorf("VP8-only viewer got payload type %d, want only VP8's %d", got, before.Video.PayloadType)
	}
}
