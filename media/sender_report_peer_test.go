package media_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"liveroom/media/mediatest"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4"
)

// TestViewerSyncFollowsSourceReports, with real pion peers: a publisher
// whose audio reaches the SFU 300 ms after the video captured at the same
// instant (a transcoder's delay), and whose own sender reports say when
// each was captured. A viewer's sender reports from the SFU must carry that:
// by their mapping, the audio it receives is 300 ms older than the video
// received at the same moment, so a browser delays video to play them in
// sync. (pion's sender-report interceptor, used before, stamped reports with
// send times: both kinds looked current and played 300 ms apart.)
func TestViewerSyncFollowsSourceReports(t *testing.T) {
	const delay = 300 * time.Millisecond
	ctx := testCtx(t, 40*time.Second)
	s := newSFU(t)
	startDelayedPublisher(t, ctx, publishVia(s.SFU, "sync", "host", nil), delay)
	v, _ := startViewer(t, ctx, s.SFU, "sync")
	start := time.Now()
	st := waitStats(t, ctx, v, "media and sender reports", func(st mediatest.ViewerStats) bool {
		return time.Since(start) > 3*time.Second && st.Video.SenderReports >= 2 && st.Audio.SenderReports >= 2
	})
	// How old is the newest packet of each kind, by the viewer's reports?
	age := func(s mediatest.StreamStats, rate float64) time.Duration {
		at := s.SRNTP.Add(time.Duration(float64(int32(s.LastTS-s.SRRTP)) / rate * float64(time.Second)))
		return s.LastAt.Sub(at)
	}
	skew := age(st.Audio, 48000) - age(st.Video, 90000)
	t.Logf("audio is %v older than video by the SFU's sender reports (the source delayed it %v)", skew, delay)
	if skew < delay-100*time.Millisecond || skew > delay+100*time.Millisecond {
		t.Errorf("audio/video offset by the sender reports %v, want %v ± 100 ms", skew, delay)
	}
}

// startDelayedPublisher publishes the test clip with capture timestamps,
// audio sent delay after its capture, and its own sender reports every
// 250 ms mapping both kinds to the capture clock.
func startDelayedPublisher(t *testing.T, ctx context.Context, signal mediatest.Signal, delay time.Duration) {
	t.Helper()
	api, err := mediatest.NewAPIWithoutInterceptors()
	if err != nil {
		t.Fatal(err)
	}
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	t.Cleanup(func() {
		close(done)
		_ = pc.Close() // ends the RTCP readers
		wg.Wait()
	})
	video, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000,
		SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"}, "video", "delayed")
	if err != nil {
		t.Fatal(err)
	}
	audio, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "audio", "delayed")
	if err != nil {
		t.Fatal(err)
	}
	var ssrc [2]uint32
	for i, tr := range []*webrtc.TrackLocalStaticRTP{video, audio} {
		x, err := pc.AddTransceiverFromTrack(tr, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
		if err != nil {
			t.Fatal(err)
		}
		ssrc[i] = uint32(x.Sender().GetParameters().Encodings[0].SSRC)
		snd := x.Sender()
		wg.Go(func() {
			for {
				if _, _, err := snd.ReadRTCP(); err != nil {
					return
				}
			}
		})
	}
	connected := make(chan struct{})
	var once sync.Once
	pc.OnConnectionStateChange(func(st webrtc.PeerConnectionState) {
		if st == webrtc.PeerConnectionStateConnected {
			once.Do(func() { close(connected) })
		}
	})
	if err := mediatest.Negotiate(ctx, pc, signal); err != nil {
		t.Fatal(err)
	}
	select {
	case <-connected:
	case <-ctx.Done():
		t.Fatal("delayed publisher did not connect")
	}
	c := clip(t)
	epoch := time.Now()
	// sleepUntil waits for epoch+d; false once the test is over.
	sleepUntil := func(d time.Duration) bool {
		select {
		case <-done:
			return false
		case <-time.After(time.Until(epoch.Add(d))):
			return true
		}
	}
	wg.Go(func() { // video at capture time
		var pay codecs.H264Payloader
		seq := uint16(0)
		for i := 0; ; i++ {
			at := time.Duration(i) * time.Second / 30
			if !sleepUntil(at) {
				return
			}
			parts := pay.Payload(1200, c.H264[i%len(c.H264)].Data)
			for j, p := range parts {
				seq++
				_ = video.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, Marker: j == len(parts)-1, SequenceNumber: seq,
					Timestamp: uint32(at * 90000 / time.Second)}, Payload: p})
			}
		}
	})
	wg.Go(func() { // audio, delay after capture
		at := time.Duration(0)
		for i := 0; ; i++ {
			op := c.Opus[i%len(c.Opus)]
			if !sleepUntil(at + delay) {
				return
			}
			_ = audio.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, Marker: true, SequenceNumber: uint16(i),
				Timestamp: uint32(at * 48000 / time.Second)}, Payload: op.Data})
			at += op.Duration
		}
	})
	wg.Go(func() { // sender reports on the capture clock
		for i := 1; sleepUntil(time.Duration(i) * 250 * time.Millisecond); i++ {
			now := time.Since(epoch)
			ntp := toNTPTime(epoch.Add(now))
			_ = pc.WriteRTCP([]rtcp.Packet{
				&rtcp.SenderReport{SSRC: ssrc[0], NTPTime: ntp, RTPTime: uint32(now * 90000 / time.Second)},
				&rtcp.SenderReport{SSRC: ssrc[1], NTPTime: ntp, RTPTime: uint32(now * 48000 / time.Second)},
			})
		}
	})
}

func toNTPTime(t time.Time) uint64 {
	ns := t.UnixNano()
	return (uint64(ns/1e9)+2208988800)<<32 | uint64(ns%1e9)<<32/1e9
}
