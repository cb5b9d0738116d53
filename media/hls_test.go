package media_test

import (
	"bytes"
	"context"
	"encoding/json"
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
// and ffprobe reads init + segment as H264 and Opus.
func TestHLSPlaylistAndSegments(t *testing.T) {
	ffprobe := needTool(t, "ffprobe")
	ctx := testCtx(t, 60*time.Second)
	s := newSFU(t)
	startPublisher(t, ctx, s.SFU, "shop1", "host")
	h := s.NewHLS(media.HLSConfig{})
	srv := hlsServer(t, h)
	base := srv.URL + "/hls/shop1/"

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
	if got := strings.Join(mv.Variants[0].Codecs, ","); !strings.Contains(got, "avc1") || !strings.Contains(got, "opus") {
		t.Errorf("variant codecs %q, want avc1 and opus", got)
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

	dir := t.TempDir()
	for name, pl := range map[string]*playlist.Media{"video": video, "audio": audio} {
		_, init := hlsGet(t, ctx, base+pl.Map.URI)
		code, data := hlsGet(t, ctx, base+lastFull(pl).URI)
		if code != http.StatusOK || len(data) == 0 {
			t.Fatalf("%s segment: got %d, %d bytes", name, code, len(data))
		}
		file := filepath.Join(dir, name+".mp4")
		if err := os.WriteFile(file, append(init, data...), 0o600); err != nil {
			t.Fatal(err)
		}
		out, err := exec.CommandContext(ctx, ffprobe, "-v", "error", "-show_entries", "stream=codec_name,width,height",
			"-of", "json", file).Output()
		if err != nil {
			t.Fatalf("ffprobe %s: %v", name, err)
		}
		var probe struct {
			Streams []struct {
				Codec  string `json:"codec_name"`
				Width  int    `json:"width"`
				Height int    `json:"height"`
			} `json:"streams"`
		}
		if err := json.Unmarshal(out, &probe); err != nil || len(probe.Streams) != 1 {
			t.Fatalf("ffprobe %s: %s (%v)", name, out, err)
		}
		want := map[string]string{"video": "h264", "audio": "opus"}[name]
		if got := probe.Streams[0]; got.Codec != want || name == "video" && got.Width == 0 {
			t.Errorf("%s: ffprobe says %+v, want codec %s", name, got, want)
		}
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
