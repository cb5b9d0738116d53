package media_test

import (
	"math"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"liveroom/media"
	"liveroom/media/mediatest"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// avRecorder keeps what an A/V offset measurement needs from a WHEP viewer:
// every audio packet, the RTP timestamp of each video keyframe, and the
// last sender report of each kind.
type avRecorder struct {
	mu        sync.Mutex
	audio     []*rtp.Packet
	keyTS     []uint32
	lastKeyTS uint32
	sr        [2]*rtcp.SenderReport // 0 video, 1 audio
}

func (a *avRecorder) onTrack(tr *webrtc.TrackRemote, r *webrtc.RTPReceiver) {
	k := 0
	if tr.Kind() == webrtc.RTPCodecTypeAudio {
		k = 1
	}
	go func() {
		for {
			pkts, _, err := r.ReadRTCP()
			if err != nil {
				return
			}
			for _, p := range pkts {
				if sr, ok := p.(*rtcp.SenderReport); ok {
					a.mu.Lock()
					a.sr[k] = sr
					a.mu.Unlock()
				}
			}
		}
	}()
	for {
		p, _, err := tr.ReadRTP()
		if err != nil {
			return
		}
		a.mu.Lock()
		if k == 1 {
			a.audio = append(a.audio, p)
		} else if len(p.Payload) > 0 {
			nal := p.Payload[0] & 0x1f
			if nal == 24 && len(p.Payload) > 3 { // STAP-A: first NAL
				nal = p.Payload[3] & 0x1f
			}
			if (nal == 5 || nal == 7) && (len(a.keyTS) == 0 || a.lastKeyTS != p.Timestamp) {
				a.keyTS = append(a.keyTS, p.Timestamp)
				a.lastKeyTS = p.Timestamp
			}
		}
		a.mu.Unlock()
	}
}

// ntpOf maps an RTP timestamp through a sender report.
func ntpOf(sr *rtcp.SenderReport, ts uint32, rate int) time.Time {
	sec := int64(sr.NTPTime >> 32)
	frac := int64(sr.NTPTime & 0xffffffff)
	at := time.Unix(sec-2208988800, frac*1e9>>32)
	return at.Add(time.Duration(int64(int32(ts-sr.RTPTime))) * time.Second / time.Duration(rate))
}

// TestRTSPAACAVOffset measures the audio/video offset a WHEP viewer would
// play after the AAC track went through the transcoder: ffmpeg publishes
// video with keyframes only at t=0 and t=3 s, and audio that is silent
// until t=3 s, then a tone. The viewer's sender reports place the t=3 s
// keyframe and the tone's onset (decoded from the Opus it received) on the
// room clock; their difference is the offset a browser's lip sync sees.
func TestRTSPAACAVOffset(t *testing.T) {
	needTranscoder(t)
	ctx := testCtx(t, 60*time.Second)
	s := newSFU(t)
	_, base := startRTSP(t, s.SFU, &notices{})

	api, err := mediatest.NewAPI()
	if err != nil {
		t.Fatal(err)
	}
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pc.Close() })
	rec := &avRecorder{}
	for _, k := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio} {
		if _, err := pc.AddTransceiverFromKind(k, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
			t.Fatal(err)
		}
	}
	pc.OnTrack(rec.onTrack)
	negotiateTest(t, ctx, pc, subscribeVia(s.SFU, "avsync", nil))

	startFFmpeg(t, "-re", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=30",
		"-f", "lavfi", "-i", "aevalsrc=if(gte(t\\,3)\\,0.5*sin(2*PI*440*t)\\,0):s=48000",
		"-t", "9", "-pix_fmt", "yuv420p", "-c:v", "libx264", "-profile:v", "baseline", "-bf", "0",
		"-g", "1000", "-force_key_frames", "0,3", "-x264-params", "scenecut=0", "-preset", "ultrafast", "-tune", "zerolatency",
		"-c:a", "aac", "-f", "rtsp", "-rtsp_transport", "tcp", base+"/avsync?key=secret")

	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		rec.mu.Lock()
		done := len(rec.keyTS) >= 2 && len(rec.audio) >= 300 && rec.sr[0] != nil && rec.sr[1] != nil
		rec.mu.Unlock()
		if done {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(time.Second) // fresh sender reports after the onset
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.keyTS) < 2 || len(rec.audio) < 300 || rec.sr[0] == nil || rec.sr[1] == nil {
		t.Fatalf("got %d keyframes, %d audio packets, sender reports %v %v", len(rec.keyTS), len(rec.audio), rec.sr[0] != nil, rec.sr[1] != nil)
	}
	pkts := make([][]byte, 0, len(rec.audio))
	for i, p := range rec.audio {
		if i > 0 && p.SequenceNumber != rec.audio[i-1].SequenceNumber+1 {
			t.Fatalf("audio packet lost or reordered at %d: the onset position would be wrong", i)
		}
		pkts = append(pkts, p.Payload)
	}
	ogg := filepath.Join(t.TempDir(), "av.ogg")
	if err := media.WriteOggOpus(ogg, 2, pkts); err != nil {
		t.Fatal(err)
	}
	onset := onsetAt(decodePCM(t, ogg, "", 48000))
	if onset < 0 {
		t.Fatal("no tone onset in the viewer's audio")
	}
	audioAt := ntpOf(rec.sr[1], rec.audio[0].Timestamp+uint32(onset), 48000)
	videoAt := ntpOf(rec.sr[0], rec.keyTS[1], 90000)
	offset := audioAt.Sub(videoAt)
	t.Logf("MEASURE A/V offset at a WHEP viewer, RTSP H264+AAC → Opus (audio later if positive): %v", offset)
	if math.Abs(float64(offset)) > float64(30*time.Millisecond) {
		t.Errorf("audio is %v off the video, want within 30ms", offset)
	}
}
