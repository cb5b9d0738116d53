package media_test

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"liveroom/media/mediatest"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media/oggwriter"
)

// audioRecorder is a WHEP viewer that keeps the Opus packets it receives.
type audioRecorder struct {
	pc   *webrtc.PeerConnection
	mu   sync.Mutex
	pkts []*rtp.Packet
}

func (a *audioRecorder) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.pkts)
}

func startAudioRecorder(t *testing.T, ctx context.Context, signal mediatest.Signal) *audioRecorder {
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
	a := &audioRecorder{pc: pc}
	if _, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeAudio, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
		t.Fatal(err)
	}
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		if !strings.EqualFold(tr.Codec().MimeType, webrtc.MimeTypeOpus) {
			return
		}
		for {
			p, _, err := tr.ReadRTP()
			if err != nil {
				return
			}
			a.mu.Lock()
			a.pkts = append(a.pkts, p)
			a.mu.Unlock()
		}
	})
	negotiateTest(t, ctx, pc, signal)
	return a
}

// negotiateTest offers pc's transceivers through signal and applies the answer.
func negotiateTest(t *testing.T, ctx context.Context, pc *webrtc.PeerConnection, signal mediatest.Signal) {
	t.Helper()
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	<-gathered
	answer, err := signal(ctx, pc.LocalDescription().SDP)
	if err != nil {
		t.Fatalf("whep: %v", err)
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		t.Fatal(err)
	}
}

// tone writes the recorded Opus to an Ogg file and measures it.
func (a *audioRecorder) tone(t *testing.T) (hz, rms float64) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "viewer.ogg")
	w, err := oggwriter.New(path, 48000, 2)
	if err != nil {
		t.Fatal(err)
	}
	a.mu.Lock()
	for _, p := range a.pkts {
		if err := w.WriteRTP(p); err != nil {
			t.Fatal(err)
		}
	}
	a.mu.Unlock()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return decodeTone(t, path)
}

// TestRTSPPublishAACTranscoded: an IP camera's H264 + AAC over RTSP reaches
// a WHEP viewer with video and the 440 Hz tone as Opus, with sender reports
// on both tracks.
func TestRTSPPublishAACTranscoded(t *testing.T) {
	rtspAACPublish(t)
}

// TestRTSPPublishLATMTranscoded: the same with AAC packetized as MP4A-LATM
// (RFC 6416, config in the SDP), as some cameras send it.
func TestRTSPPublishLATMTranscoded(t *testing.T) {
	rtspAACPublish(t, "-rtpflags", "latm")
}

// rtspAACPublish pushes H264 + AAC with ffmpeg (extra: its RTP options)
// and checks what WHEP and RTSP readers get.
func rtspAACPublish(t *testing.T, extra ...string) {
	needTranscoder(t)
	ctx := testCtx(t, 60*time.Second)
	s := newSFU(t)
	n := &notices{}
	_, base := startRTSP(t, s.SFU, n)

	v, _ := startViewer(t, ctx, s.SFU, "aac")
	rec := startAudioRecorder(t, ctx, subscribeVia(s.SFU, "aac", nil))
	ff := startFFmpeg(t, pushArgs(base+"/aac?key=secret", "tcp", append([]string{"-c:a", "aac", "-ar", "44100"}, extra...)...)...)
	waitStats(t, ctx, v, "video keyframe and audio", func(st mediatest.ViewerStats) bool {
		return !st.FirstKeyframeAt.IsZero() && st.FirstKeyframeParams && st.Audio.Packets >= 100 &&
			st.Audio.SenderReports > 0 && st.Video.SenderReports > 0
	})
	deadline := time.Now().Add(20 * time.Second)
	for rec.count() < 150 && time.Now().Before(deadline) { // 3 s of Opus
		time.Sleep(50 * time.Millisecond)
	}
	st := v.Stats()
	if st.Audio.MaxPayload > 1200 || st.Video.MaxPayload > 1200 {
		t.Errorf("max payload audio %d video %d, want <= 1200", st.Audio.MaxPayload, st.Video.MaxPayload)
	}
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

	// RTSP readers get the Opus too.
	wav := filepath.Join(t.TempDir(), "read.wav")
	rd := startFFmpeg(t, "-rtsp_transport", "tcp", "-i", base+"/aac", "-t", "2", "-vn", wav)
	if err := rd.wait(t, 20*time.Second); err != nil {
		t.Fatalf("ffmpeg read: %v\n%s", err, rd.stderr.String())
	}
	if !strings.Contains(rd.stderr.String(), "Audio: opus") {
		t.Errorf("RTSP read has no Opus audio:\n%s", rd.stderr.String())
	}
	if hz, rms := decodeTone(t, wav); math.Abs(hz-440) > 10 || rms < 1000 {
		t.Errorf("RTSP read audio %.1f Hz rms %.0f, want a 440 Hz tone", hz, rms)
	}

	// The publisher leaves: its transcoder's ffmpeg is gone (no zombie).
	ff.stop()
	deadline = time.Now().Add(10 * time.Second)
	for len(childFFmpeg(t)) > 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if left := childFFmpeg(t); len(left) > 0 {
		t.Errorf("ffmpeg children left after the publisher ended: %v", left)
	}
}

// childFFmpeg lists this process's ffmpeg children, running or zombie.
func childFFmpeg(t *testing.T) []string {
	t.Helper()
	stats, err := filepath.Glob("/proc/[0-9]*/stat")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	self := strconv.Itoa(os.Getpid())
	for _, p := range stats {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 || !strings.Contains(s[:i], "(ffmpeg") {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) > 1 && f[1] == self {
			out = append(out, strings.TrimSpace(s[:i+1])+" "+f[0])
		}
	}
	return out
}

// TestRTSPPullAACTranscoded: a pulled IP camera sending H264 + AAC is heard
// by WHEP viewers as the 440 Hz tone in Opus.
func TestRTSPPullAACTranscoded(t *testing.T) {
	needTranscoder(t)
	ctx := testCtx(t, 60*time.Second)
	s := newSFU(t)
	cam := startCamera(t)
	startFFmpeg(t, pushArgs(cam, "tcp", "-c:a", "aac")...)

	v, _ := startViewer(t, ctx, s.SFU, "cam-aac")
	rec := startAudioRecorder(t, ctx, subscribeVia(s.SFU, "cam-aac", nil))
	if err := s.StartPull("cam-aac", cam); err != nil {
		t.Fatalf("StartPull: %v", err)
	}
	waitStats(t, ctx, v, "pulled keyframe and audio", func(st mediatest.ViewerStats) bool {
		return st.Keyframes >= 1 && st.Audio.Packets >= 100
	})
	deadline := time.Now().Add(20 * time.Second)
	for rec.count() < 150 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	hz, rms := rec.tone(t)
	t.Logf("viewer got %d Opus packets from the pull: %.1f Hz, rms %.0f", rec.count(), hz, rms)
	if math.Abs(hz-440) > 10 || rms < 1000 {
		t.Errorf("pulled audio %.1f Hz rms %.0f, want a 440 Hz tone", hz, rms)
	}
}
