package media_test

import (
	"math"
	"testing"
	"time"

	"liveroom/media"
	"liveroom/media/mediatest"
)

// TestRTMPAudioTone: ffmpeg's H264 and 440 Hz AAC over RTMP reach a WHEP
// viewer as Opus that decodes to the same tone, not silence; the host is not
// told about AAC.
func TestRTMPAudioTone(t *testing.T) {
	needTranscoder(t)
	ctx := testCtx(t, 60*time.Second)
	s := newSFU(t)
	n := &notices{}
	srv := startRTMP(t, s.SFU, n, media.RTMPSConfig{})
	const room = "rtmp-tone"
	v, _ := startViewer(t, ctx, s.SFU, room)
	rec := startAudioRecorder(t, ctx, subscribeVia(s.SFU, room, nil))
	startFFmpeg(t, rtmpArgs("rtmp://"+srv.Addr().String()+"/live/"+room+"?key=secret", "30")...)
	waitStats(t, ctx, v, "video keyframe and audio", func(st mediatest.ViewerStats) bool {
		return !st.FirstKeyframeAt.IsZero() && st.Audio.Packets >= 100
	})
	deadline := time.Now().Add(20 * time.Second)
	for rec.count() < 150 && time.Now().Before(deadline) { // 3 s of Opus
		time.Sleep(50 * time.Millisecond)
	}
	if st := v.Stats(); st.Audio.TSBackwards > 0 {
		t.Errorf("audio timestamps went backwards %d times", st.Audio.TSBackwards)
	}
	if n.has("AAC") {
		t.Errorf("host told about AAC although it is transcoded: %v", n.got)
	}
	hz, rms := rec.tone(t)
	t.Logf("viewer got %d Opus packets: %.1f Hz, rms %.0f", rec.count(), hz, rms)
	if math.Abs(hz-440) > 10 {
		t.Errorf("viewer's audio is %.1f Hz, want 440", hz)
	}
	if rms < 1000 {
		t.Errorf("viewer's audio RMS %.0f: silence, want the tone", rms)
	}
}
