package media_test

import (
	"context"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"liveroom/media"
	"liveroom/media/mediatest"

	"github.com/pion/webrtc/v4"
)

// TestRTSPPublishG711: ffmpeg publishes H264 + G.711 (µ-law, A-law) over
// RTSP; a WHEP viewer gets the audio with the G.711 payload type.
func TestRTSPPublishG711(t *testing.T) {
	needFFmpeg(t)
	ctx := testCtx(t, 40*time.Second)
	s := newSFU(t)
	n := &notices{}
	_, base := startRTSP(t, s.SFU, n)
	for _, tc := range []struct {
		name, codec, mime string
		pt                uint8
	}{
		{"pcmu", "pcm_mulaw", webrtc.MimeTypePCMU, 0},
		{"pcma", "pcm_alaw", webrtc.MimeTypePCMA, 8},
	} {
		t.Run(tc.name, func(t *testing.T) {
			room := "g711-" + tc.name
			v, _ := startViewer(t, ctx, s.SFU, room)
			ff := startFFmpeg(t, pushArgs(base+"/"+room+"?key=secret", "tcp", "-c:a", tc.codec, "-ar", "8000", "-ac", "1")...)
			st := waitStats(t, ctx, v, "G.711 audio and video", func(st mediatest.ViewerStats) bool {
				return st.Audio.Packets >= 10 && st.Keyframes > 0
			})
			if st.Audio.PayloadType != tc.pt || st.Audio.PTChanges != 0 {
				t.Errorf("audio payload type %d (%d changes), want %d", st.Audio.PayloadType, st.Audio.PTChanges, tc.pt)
			}
			for _, tr := range v.PC.GetTransceivers() {
				if tr.Kind() == webrtc.RTPCodecTypeAudio && tr.Receiver().Track() != nil {
					if got := tr.Receiver().Track().Codec().MimeType; !strings.EqualFold(got, tc.mime) {
						t.Errorf("audio track codec %s, want %s", got, tc.mime)
					}
				}
			}
			if n.has(room + ": audio") {
				t.Errorf("G.711 reported as dropped: %v", n.got)
			}
			ff.stop()
		})
	}
}

// TestWHIPPublisherPrefersOpus: a publisher offering G.711 before Opus
// gets an answer with Opus first (what it will send), and viewers get Opus.
func TestWHIPPublisherPrefersOpus(t *testing.T) {
	ctx := testCtx(t, 20*time.Second)
	s := newSFU(t)
	mline := regexp.MustCompile(`(?m)^m=audio \S+ \S+ (.*?)\r?$`)
	var answer string
	pub, err := mediatest.NewPublisher(ctx, func(c context.Context, offer string) (string, error) {
		m := mline.FindStringSubmatch(offer)
		if m == nil {
			t.Errorf("no audio section in offer:\n%s", offer)
			return "", nil
		}
		// Move Opus (111) behind everything else.
		var rest []string
		for _, pt := range strings.Fields(m[1]) {
			if pt != "111" {
				rest = append(rest, pt)
			}
		}
		munged := strings.Replace(offer, m[0], strings.Replace(m[0], m[1], strings.Join(append(rest, "111"), " "), 1), 1)
		ans, err := publishVia(s.SFU, "opus", "host", nil)(c, munged)
		answer = ans
		return ans, err
	}, mediatest.PublisherOptions{Clip: clip(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	m := mline.FindStringSubmatch(answer)
	if m == nil || strings.Fields(m[1])[0] != "111" {
		t.Fatalf("answer's audio formats %q, want Opus (111) first", m)
	}
	if err := pub.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	v, _ := startViewer(t, ctx, s.SFU, "opus")
	st := waitStats(t, ctx, v, "audio", func(st mediatest.ViewerStats) bool { return st.Audio.Packets > 10 })
	if st.Audio.PayloadType != 111 {
		t.Errorf("viewer audio payload type %d, want Opus 111", st.Audio.PayloadType)
	}
}

var ffmpegFrames = regexp.MustCompile(`frame=\s*(\d+)`)

// framesDecoded is the last frame= count ffmpeg reported.
func framesDecoded(stderr string) int {
	all := ffmpegFrames.FindAllStringSubmatch(stderr, -1)
	if len(all) == 0 {
		return 0
	}
	n, _ := strconv.Atoi(all[len(all)-1][1])
	return n
}

func waitTaps(t *testing.T, s *media.SFU, room string, want int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for media.RoomTaps(s, room) != want {
		if time.Now().After(deadline) {
			t.Fatalf("room %s has %d taps, want %d", room, media.RoomTaps(s, room), want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestRTSPReadWHIPRoom: a room published over WebRTC (the Go API) is read
// over RTSP by ffmpeg, which decodes video; the tap goes with the reader,
// and readers are disconnected when the room goes offline.
func TestRTSPReadWHIPRoom(t *testing.T) {
	needFFmpeg(t)
	ctx := testCtx(t, 60*time.Second)
	s := newSFU(t)
	_, base := startRTSP(t, s.SFU, nil)
	const room = "whip-read"
	pub, _ := startPublisher(t, ctx, s.SFU, room, "host")
	deadline := time.Now().Add(10 * time.Second)
	for !s.Live(room) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}

	rd := startFFmpeg(t, "-rtsp_transport", "tcp", "-i", base+"/"+room, "-t", "2", "-f", "null", "-")
	if err := rd.wait(t, 20*time.Second); err != nil {
		t.Fatalf("ffmpeg read: %v\n%s", err, rd.stderr.String())
	}
	out := rd.stderr.String()
	if !strings.Contains(out, "Video: h264") || !strings.Contains(out, "Audio: opus") {
		t.Errorf("ffmpeg did not see H264 and Opus:\n%s", out)
	}
	t.Logf("ffmpeg read decoded %d frames", framesDecoded(out))
	if n := framesDecoded(out); n <= 0 {
		t.Errorf("ffmpeg decoded %d frames, want > 0:\n%s", n, out)
	}
	waitTaps(t, s.SFU, room, 0)

	// A reader is disconnected when the publisher leaves; the tap goes too.
	rd2 := startFFmpeg(t, "-rtsp_transport", "tcp", "-i", base+"/"+room, "-t", "30", "-f", "null", "-")
	waitTaps(t, s.SFU, room, 1)
	_ = pub.Close()
	_ = rd2.wait(t, 20*time.Second)
	waitTaps(t, s.SFU, room, 0)

	// An offline room is not readable.
	rd3 := startFFmpeg(t, "-rtsp_transport", "tcp", "-i", base+"/"+room, "-t", "1", "-f", "null", "-")
	if err := rd3.wait(t, 20*time.Second); err == nil || !strings.Contains(rd3.stderr.String(), "404") {
		t.Errorf("reading an offline room: err %v, want a 404:\n%s", err, rd3.stderr.String())
	}
}

// TestRTSPReadStartsFromGOPCache: with the room's stream already running (a
// recorder-like reader), an RTSP reader starts from the GOP cache: ffmpeg
// decodes from its first frame, without the "no PPS"/"no frame" errors of a
// mid-GOP start, and the publisher is not asked for a keyframe.
func TestRTSPReadStartsFromGOPCache(t *testing.T) {
	needFFmpeg(t)
	ctx := testCtx(t, 60*time.Second)
	s := newSFU(t)
	_, base := startRTSP(t, s.SFU, nil)
	const room = "gop-read"
	pub, _ := startPublisher(t, ctx, s.SFU, room, "host")
	rec, err := s.OpenReader(room, media.ReaderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Close()
	log := readAll(t, ctx, rec)
	var last [2]time.Duration
	log.until(ctx, "the recorder's keyframe", &last, func(au *media.AccessUnit) bool { return au.Key })
	go func() { // keep draining: the recorder is not what is tested
		for {
			select {
			case <-log.unit:
			case <-ctx.Done():
				return
			}
		}
	}()
	time.Sleep(700 * time.Millisecond) // past any repeated request for that keyframe
	plis := pub.PLIs()

	rd := startFFmpeg(t, "-rtsp_transport", "tcp", "-i", base+"/"+room, "-t", "1", "-f", "null", "-")
	if err := rd.wait(t, 20*time.Second); err != nil {
		t.Fatalf("ffmpeg read: %v\n%s", err, rd.stderr.String())
	}
	out := rd.stderr.String()
	if n := framesDecoded(out); n <= 0 {
		t.Errorf("ffmpeg decoded %d frames, want > 0:\n%s", n, out)
	}
	for _, bad := range []string{"non-existing PPS", "no frame!", "decode_slice_header error"} {
		if strings.Contains(out, bad) {
			t.Errorf("ffmpeg reported %q: the read did not start at a keyframe:\n%s", bad, out)
		}
	}
	if got := pub.PLIs(); got != plis {
		t.Errorf("the RTSP read sent %d keyframe requests to the publisher, want 0 (the GOP cache has one)", got-plis)
	}
}
