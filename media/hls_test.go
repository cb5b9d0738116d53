package media_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bluenviron/gohlslib/v2/pkg/playlist"

	"liveroom/media"
)

// hlsServer serves h at /hls/{room}/{file}, as web does after its checks.
func hlsServer(t *testing.T, h *media.HLS) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /hls/{room}/{file}", func(w http.ResponseWriter, r *http.Request) {
		h.Serve(w, r, r.PathValue("room"), r.PathValue("file"))
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func hlsGet(t *testing.T, ctx context.Context, url string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, b
}

// TestHLSPlaylistAndSegments: a room published over WebRTC (H264 + Opus)
// is muxed on the first playlist request; the playlists parse, list parts,
// and ffprobe reads init + segment as H264 and Opus (no transcoder: Opus
// passes through).
func TestHLSPlaylistAndSegments(t *testing.T) {
	ctx := testCtx(t, 60*time.Second)
	s := newSFU(t)
	startPublisher(t, ctx, s.SFU, "shop1", "host")
	h := s.NewHLS(media.HLSConfig{})
	checkHLSLive(t, ctx, h, "shop1", "opus", "opus")
}

// TestHLSAAC: with the node's AACStreams the same room's HLS audio is AAC
// (mp4a in the playlist, aac to ffprobe) from the room's shared Opus -> AAC
// stream (one per room, shared with a second output such as the recorder),
// its segments start near the video's, and the output's subscription ends
// with the output.
func TestHLSAAC(t *testing.T) {
	needTranscoder(t)
	ctx := testCtx(t, 60*time.Second)
	s := newSFU(t)
	startPublisher(t, ctx, s.SFU, "shopaac", "host")
	a := media.NewAACStreams(s.OpenReader)
	h := s.NewHLS(media.HLSConfig{AAC: a, Idle: 2 * time.Second})
	checkHLSLive(t, ctx, h, "shopaac", "mp4a", "aac")
	if n := a.Rooms(); n != 1 {
		t.Errorf("AAC streams: got %d, want 1 while HLS runs", n)
	}
	rec, err := a.Open("shopaac") // a second output (the recorder) shares it
	if err != nil {
		t.Fatal(err)
	}
	if n := a.Rooms(); n != 1 {
		t.Errorf("AAC streams with HLS and a second output: got %d, want 1 (one ffmpeg per room)", n)
	}
	rec.Close()
	for h.Rooms() != 0 || a.Rooms() != 0 {
		if ctx.Err() != nil {
			t.Fatalf("after HLS idled: %d muxers, %d AAC streams, want 0 and 0", h.Rooms(), a.Rooms())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestHLSAACFallback: when the room's AAC stream cannot start (here its
// reader fails, as NewAACReader does without ffmpeg), the output still runs
// and Opus passes through.
func TestHLSAACFallback(t *testing.T) {
	ctx := testCtx(t, 60*time.Second)
	s := newSFU(t)
	startPublisher(t, ctx, s.SFU, "shopfb", "host")
	a := media.NewAACStreams(func(string, media.ReaderOptions) (*media.Reader, error) {
		return nil, errors.New("no transcoder here")
	})
	h := s.NewHLS(media.HLSConfig{AAC: a})
	checkHLSLive(t, ctx, h, "shopfb", "opus", "opus")
}

// checkHLSLive requests room's HLS from h and checks its playlists, parts
// and a segment of each rendition: H264 video, audio that the playlist
// names with codecTag and ffprobe as probeCodec, starting within a loose
// bound of the video's segment.
func checkHLSLive(t *testing.T, ctx context.Context, h *media.HLS, room, codecTag, probeCodec string) {
	t.Helper()
	ffprobe := needTool(t, "ffprobe")
	srv := hlsServer(t, h)
	base := srv.URL + "/hls/" + room + "/"

	code, body := hlsGet(t, ctx, base+"index.m3u8")
	if code != http.StatusOK {
		t.Fatalf("index.m3u8: got %d %s, want 200", code, body)
	}
	pl, err := playlist.Unmarshal(body)
	if err != nil {
		t.Fatalf("parse multivariant: %v\n%s", err, body)
	}
	mv, ok := pl.(*playlist.Multivariant)
	if !ok || len(mv.Variants) != 1 {
		t.Fatalf("got %T %+v, want a multivariant playlist with one variant", pl, pl)
	}
	if got := strings.Join(mv.Variants[0].Codecs, ","); !strings.Contains(got, "avc1") || !strings.Contains(got, codecTag) {
		t.Errorf("variant codecs %q, want avc1 and %s", got, codecTag)
	}
	var audioURI string
	for _, r := range mv.Renditions {
		if r.Type == playlist.MultivariantRenditionTypeAudio && r.URI != nil {
			audioURI = *r.URI
		}
	}
	if audioURI == "" {
		t.Fatalf("no audio rendition in\n%s", body)
	}

	video := waitMediaPlaylist(t, ctx, base+mv.Variants[0].URI, 2)
	if video.PartInf == nil || video.ServerControl == nil || !video.ServerControl.CanBlockReload {
		t.Errorf("video playlist is not low-latency: part-inf %v server-control %+v", video.PartInf, video.ServerControl)
	}
	if len(video.Parts) == 0 && len(video.Segments[len(video.Segments)-1].Parts) == 0 {
		t.Errorf("no parts listed")
	}
	seg := lastFull(video)
	if seg.Duration <= 0 || seg.Duration > 5*time.Second {
		t.Errorf("segment duration %v, want (0, 5s]", seg.Duration)
	}
	audio := waitMediaPlaylist(t, ctx, base+audioURI, 2)

	// The audio segment of the video's last full one: same media sequence.
	vseg := lastFull(video)
	seq := video.MediaSequence + len(video.Segments) - 1
	for i := len(video.Segments) - 1; video.Segments[i] != vseg; i-- {
		seq--
	}
	i := seq - audio.MediaSequence
	if i < 0 || i >= len(audio.Segments) || audio.Segments[i].Gap {
		t.Fatalf("audio playlist (sequence %d, %d segments) lacks segment %d", audio.MediaSequence, len(audio.Segments), seq)
	}
	aseg := audio.Segments[i]

	dir := t.TempDir()
	start := map[string]float64{}
	for name, pl := range map[string]*playlist.Media{"video": video, "audio": audio} {
		_, init := hlsGet(t, ctx, base+pl.Map.URI)
		seg := map[string]*playlist.MediaSegment{"video": vseg, "audio": aseg}[name]
		code, data := hlsGet(t, ctx, base+seg.URI)
		if code != http.StatusOK || len(data) == 0 {
			t.Fatalf("%s segment: got %d, %d bytes", name, code, len(data))
		}
		file := filepath.Join(dir, name+".mp4")
		if err := os.WriteFile(file, append(init, data...), 0o600); err != nil {
			t.Fatal(err)
		}
		out, err := exec.CommandContext(ctx, ffprobe, "-v", "error", "-show_entries", "stream=codec_name,width,height,start_time",
			"-of", "json", file).Output()
		if err != nil {
			t.Fatalf("ffprobe %s: %v", name, err)
		}
		var probe struct {
			Streams []struct {
				Codec  string `json:"codec_name"`
				Width  int    `json:"width"`
				Height int    `json:"height"`
				Start  string `json:"start_time"`
			} `json:"streams"`
		}
		if err := json.Unmarshal(out, &probe); err != nil || len(probe.Streams) != 1 {
			t.Fatalf("ffprobe %s: %s (%v)", name, out, err)
		}
		want := map[string]string{"video": "h264", "audio": probeCodec}[name]
		if got := probe.Streams[0]; got.Codec != want || name == "video" && got.Width == 0 {
			t.Errorf("%s: ffprobe says %+v, want codec %s", name, got, want)
		}
		var st float64
		if _, err := fmt.Sscan(probe.Streams[0].Start, &st); err != nil {
			t.Fatalf("%s: start_time %q: %v", name, probe.Streams[0].Start, err)
		}
		start[name] = st
	}
	// Both renditions of one segment cover the same time: audio trails the
	// video by the transcoder's delay at most, far less than this bound.
	if d := start["audio"] - start["video"]; d < -1 || d > 1 {
		t.Errorf("segment %d: audio starts at %.3fs, video at %.3fs, want within 1s", seq, start["audio"], start["video"])
	} else {
		t.Logf("segment %d: audio - video start = %+.3fs", seq, d)
	}
	if n := h.Rooms(); n != 1 {
		t.Errorf("rooms muxed: got %d, want 1 (one muxer per room)", n)
	}
}

// TestHLSBadInput: names the muxer never made, traversal, a room that is not
// live, a part of a muxer that does not run.
func TestHLSBadInput(t *testing.T) {
	ctx := testCtx(t, 60*time.Second)
	s := newSFU(t)
	h := s.NewHLS(media.HLSConfig{StartTimeout: time.Second})
	srv := hlsServer(t, h)
	for _, tc := range []struct {
		path string
		want int
	}{
		{"/hls/empty/x_video1_part3.mp4", http.StatusNotFound}, // no muxer: reload the playlist
		{"/hls/empty/..%2f..%2fetc%2fpasswd", http.StatusNotFound},
		{"/hls/empty/index.html", http.StatusNotFound},
		{"/hls/empty/a.b.m3u8", http.StatusNotFound},
		{"/hls/empty/index.m3u8", http.StatusServiceUnavailable}, // nothing published: no keyframe in time
	} {
		code, body := hlsGet(t, ctx, srv.URL+tc.path)
		if code != tc.want {
			t.Errorf("GET %s: got %d %s, want %d", tc.path, code, body, tc.want)
		}
		if !bytes.Contains(body, []byte(`"error"`)) {
			t.Errorf("GET %s: body %q, want a JSON error", tc.path, body)
		}
	}

	// A live room: a name that looks right but was never made is 404, not an
	// empty 200.
	startPublisher(t, ctx, s.SFU, "live1", "host")
	if code, body := hlsGet(t, ctx, srv.URL+"/hls/live1/index.m3u8"); code != http.StatusOK {
		t.Fatalf("index.m3u8: got %d %s", code, body)
	}
	if code, _ := hlsGet(t, ctx, srv.URL+"/hls/live1/nope_video1_seg99999.mp4"); code != http.StatusNotFound {
		t.Errorf("unknown segment: got %d, want 404", code)
	}
}

// TestHLSStopsWhenOffline: the host leaving ends the muxer (its waiting
// requests return) and the room's next playlist request is refused until a
// source is back.
func TestHLSStopsWhenOffline(t *testing.T) {
	ctx := testCtx(t, 60*time.Second)
	s := newSFU(t)
	pub, _ := startPublisher(t, ctx, s.SFU, "shop2", "host")
	h := s.NewHLS(media.HLSConfig{StartTimeout: 2 * time.Second})
	srv := hlsServer(t, h)
	if code, body := hlsGet(t, ctx, srv.URL+"/hls/shop2/index.m3u8"); code != http.StatusOK {
		t.Fatalf("index.m3u8: got %d %s", code, body)
	}
	_ = pub.Close()
	for h.Rooms() != 0 {
		if ctx.Err() != nil {
			t.Fatal("the muxer still runs after the host left")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if code, _ := hlsGet(t, ctx, srv.URL+"/hls/shop2/index.m3u8"); code != http.StatusServiceUnavailable {
		t.Errorf("playlist of an offline room: got %d, want 503", code)
	}
}

// TestHLSGoesOnAcrossHostReplacement: the host publishes again before its
// old session ended (the new source replaces the old one, the room never
// goes offline): the LL-HLS output is not stopped, and its playlist keeps
// growing with the new source's media.
func TestHLSGoesOnAcrossHostReplacement(t *testing.T) {
	ctx := testCtx(t, 60*time.Second)
	s := newSFU(t)
	first, _ := startPublisher(t, ctx, s.SFU, "shop5", "host")
	h := s.NewHLS(media.HLSConfig{StartTimeout: 2 * time.Second})
	srv := hlsServer(t, h)
	code, index := hlsGet(t, ctx, srv.URL+"/hls/shop5/index.m3u8")
	if code != http.StatusOK {
		t.Fatalf("index.m3u8: got %d %s", code, index)
	}
	var media string
	for _, line := range strings.Split(string(index), "\n") {
		if line != "" && !strings.HasPrefix(line, "#") {
			media = line
		}
	}
	msn := func() int {
		code, body := hlsGet(t, ctx, srv.URL+"/hls/shop5/"+media)
		if code != http.StatusOK {
			t.Fatalf("%s: got %d %s", media, code, body)
		}
		n := 0
		for _, line := range strings.Split(string(body), "\n") {
			if strings.HasPrefix(line, "#EXTINF:") {
				n++
			}
			if v, ok := strings.CutPrefix(line, "#EXT-X-MEDIA-SEQUENCE:"); ok {
				var seq int
				fmt.Sscan(v, &seq)
				n += seq
			}
		}
		return n // the number of the next segment
	}
	time.Sleep(1500 * time.Millisecond)
	before := msn()
	startPublisher(t, ctx, s.SFU, "shop5", "host") // replaces first
	_ = first.Close()
	time.Sleep(3 * time.Second)
	if h.Rooms() != 1 {
		t.Fatalf("muxers: %d after the host's new source took over, want 1 (not stopped)", h.Rooms())
	}
	if after := msn(); after < before+2 {
		t.Errorf("segments: %d before the switch-over, %d three seconds after; want the playlist to grow", before, after)
	}
}

// TestHLSIdleStops: without requests the muxer stops after Idle.
func TestHLSIdleStops(t *testing.T) {
	ctx := testCtx(t, 60*time.Second)
	s := newSFU(t)
	startPublisher(t, ctx, s.SFU, "shop3", "host")
	h := s.NewHLS(media.HLSConfig{Idle: 500 * time.Millisecond})
	srv := hlsServer(t, h)
	if code, body := hlsGet(t, ctx, srv.URL+"/hls/shop3/index.m3u8"); code != http.StatusOK {
		t.Fatalf("index.m3u8: got %d %s", code, body)
	}
	if h.Rooms() != 1 {
		t.Fatalf("rooms: got %d, want 1", h.Rooms())
	}
	for h.Rooms() != 0 {
		if ctx.Err() != nil {
			t.Fatal("the muxer still runs with nobody asking")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestHLSRoomCap: the node muxes at most MaxRooms rooms.
func TestHLSRoomCap(t *testing.T) {
	ctx := testCtx(t, 60*time.Second)
	s := newSFU(t)
	startPublisher(t, ctx, s.SFU, "a", "host")
	startPublisher(t, ctx, s.SFU, "b", "host")
	h := s.NewHLS(media.HLSConfig{MaxRooms: 1})
	srv := hlsServer(t, h)
	if code, body := hlsGet(t, ctx, srv.URL+"/hls/a/index.m3u8"); code != http.StatusOK {
		t.Fatalf("a: got %d %s", code, body)
	}
	code, body := hlsGet(t, ctx, srv.URL+"/hls/b/index.m3u8")
	if code != http.StatusServiceUnavailable || !bytes.Contains(body, []byte(`"busy"`)) {
		t.Errorf("second room over the cap: got %d %s, want 503 busy", code, body)
	}
}

// waitMediaPlaylist fetches a media playlist until it lists n full segments.
func waitMediaPlaylist(t *testing.T, ctx context.Context, url string, n int) *playlist.Media {
	t.Helper()
	for {
		code, body := hlsGet(t, ctx, url)
		if code != http.StatusOK {
			t.Fatalf("GET %s: %d %s", url, code, body)
		}
		pl, err := playlist.Unmarshal(body)
		if err != nil {
			t.Fatalf("parse %s: %v\n%s", url, err, body)
		}
		m, ok := pl.(*playlist.Media)
		if !ok {
			t.Fatalf("%s: got %T, want a media playlist", url, pl)
		}
		full := 0
		for _, s := range m.Segments {
			if !s.Gap {
				full++
			}
		}
		if full >= n {
			return m
		}
		if ctx.Err() != nil {
			t.Fatalf("%s: %d segments, want %d\n%s", url, full, n, body)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func lastFull(m *playlist.Media) *playlist.MediaSegment {
	for i := len(m.Segments) - 1; i >= 0; i-- {
		if !m.Segments[i].Gap {
			return m.Segments[i]
		}
	}
	panic(fmt.Sprintf("no segment in %+v", m))
}

// needTool finds a tool; missing, the test skips, or fails under CI=true.
func needTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is required under CI: %v", name, err)
		}
		t.Skipf("%s not found", name)
	}
	return p
}
