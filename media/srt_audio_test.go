package media_test

import (
	"math"
	"testing"
	"time"

	"liveroom/media/mediatest"
)

// TestSRTAACTone: ffmpeg's 440 Hz AAC over SRT (MPEG-TS) reaches a WHEP
// viewer as Opus that decodes to the same tone, not silence, with sender
// reports on both tracks; the host is not told about AAC.
func TestSRTAACTone(t *testing.T) {
	needTranscoder(t)
	ctx := testCtx(t, 60*time.Second)
	s := newSFU(t)
	n := &notices{}
	_, addr := startSRT(t, s.SFU, n, "")
	const room = "srt-tone"
	v, _ := startViewer(t, ctx, s.SFU, room)
	rec := startAudioRecorder(t, ctx, subscribeVia(s.SFU, room, nil))
	startFFmpeg(t, srtPushArgs(addr, "publish:"+room+":secret")...)
	waitStats(t, ctx, v, "video keyframe and audio", func(st mediatest.ViewerStats) bool {
		return !st.FirstKeyframeAt.IsZero() && st.Audio.Packets >= 100 && st.Audio.SenderReports > 0 && st.Video.SenderReports > 0
	})
	deadline := time.Now().Add(20 * time.Second)
	for rec.count() < 150 && time.Now().Before(deadline) { // 3 s of Opus
		time.Sleep(50 * time.Millisecond)
	}
	st := v.Stats()
	if st.Audio.TSBackwards > 0 {
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

// TestSRTOpus: Opus in MPEG-TS passes through to viewers without the
// transcoder.
func TestSRTOpus(t *testing.T) {
	needFFmpeg(t)
	ctx := testCtx(t, 30*time.Second)
	s := newSFU(t)
	n := &notices{}
	_, addr := startSRT(t, s.SFU, n, "")
	const room = "srt-opus"
	v, _ := startViewer(t, ctx, s.SFU, room)
	args := srtPushArgs(addr, "publish:"+room+":secret")
	for i, a := range args {
		if a == "aac" && args[i-1] == "-c:a" {
			args[i] = "libopus"
		}
	}
	startFFmpeg(t, args...)
	st := waitStats(t, ctx, v, "keyframe and Opus", func(st mediatest.ViewerStats) bool {
		return !st.FirstKeyframeAt.IsZero() && st.Audio.Packets >= 50
	})
	if st.Audio.MaxPayload > 1200 || st.Audio.TSBackwards > 0 {
		t.Errorf("audio max payload %d, timestamps backwards %d; want <= 1200 and 0", st.Audio.MaxPayload, st.Audio.TSBackwards)
	}
	if n.has("AAC") || n.has("audio") {
		t.Errorf("host told about audio although it is Opus: %v", n.got)
	}
}
