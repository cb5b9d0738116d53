package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"liveroom/cmd/internal/proctest"
	"liveroom/media/mediatest"
)

// needTool fails under CI when a tool the test needs is missing, else skips.
func needTool(t *testing.T, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s not found: %v", name, err)
		}
		t.Skipf("%s not found", name)
	}
}

// recordServer starts a node that records (segments of 1 s, a short grace).
func recordServer(t *testing.T, dir string, extra string) (*proctest.Server, string) {
	t.Helper()
	cfgPath := filepath.Join(dir, "liveroom.yaml")
	cfgText := fmt.Sprintf("auth:\n  jwt_secret: %s\n  admin_key: %s\nrecord:\n  segment: 1s\n  grace: 3s\n  min_free_bytes: 1\n%s",
		crashSecret, crashAdminKey, extra)
	if err := os.WriteFile(cfgPath, []byte(cfgText), 0o600); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "data")
	return startServer(t, data, "--config", cfgPath), cfgPath
}

type showJSON struct {
	ID        string  `json:"id"`
	DurationS float64 `json:"duration_s"`
	Bytes     int64   `json:"bytes"`
	Playlist  string  `json:"playlist"`
	Ended     bool    `json:"ended"`
	Stopped   string  `json:"stopped"`
	Chapters  []struct {
		T       float64 `json:"t"`
		Title   string  `json:"title"`
		Product struct {
			SKU string `json:"sku"`
		} `json:"product"`
	} `json:"chapters"`
	Script []struct {
		T    float64 `json:"t"`
		Type string  `json:"type"`
	} `json:"script"`
	Chat []json.RawMessage `json:"chat"`
}

func listShows(t *testing.T, base, roomID string) []showJSON {
	t.Helper()
	status, b := adminDo(t, "GET", base+"/api/v1/rooms/"+roomID+"/shows", nil)
	var out struct{ Shows []showJSON }
	if status != 200 || json.Unmarshal(b, &out) != nil {
		t.Fatalf("list shows: %d %s", status, b)
	}
	return out.Shows
}

// waitShow waits until roomID has a show that cond accepts.
func waitShow(t *testing.T, base, roomID string, d time.Duration, cond func(showJSON) bool) showJSON {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		shows := listShows(t, base, roomID)
		for _, s := range shows {
			if cond(s) {
				return s
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no show as wanted in %v: %+v", d, shows)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func publishFor(t *testing.T, ctx context.Context, p *proctest.Server, roomID, token string) *mediatest.Publisher {
	t.Helper()
	return publishTo(t, ctx, p, roomID, token)
}

// probePackets runs ffprobe over a playlist and returns each stream's codec
// and its packets' times.
type probed struct {
	codecs map[string]string // "video"/"audio" -> codec
	width  int
	video  []float64 // pts_time of video packets
	audio  []float64
}

func probe(t *testing.T, url string) probed {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-show_entries", "stream=codec_type,codec_name,width:packet=codec_type,pts_time",
		"-of", "json", url).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", url, err)
	}
	var r struct {
		Streams []struct {
			CodecType string `json:"codec_type"`
			CodecName string `json:"codec_name"`
			Width     int    `json:"width"`
		}
		Packets []struct {
			CodecType string `json:"codec_type"`
			PTS       string `json:"pts_time"`
		}
	}
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatal(err)
	}
	p := probed{codecs: map[string]string{}}
	for _, s := range r.Streams {
		p.codecs[s.CodecType] = s.CodecName
		if s.CodecType == "video" {
			p.width = s.Width
		}
	}
	for _, pk := range r.Packets {
		f, err := strconv.ParseFloat(pk.PTS, 64)
		if err != nil {
			continue
		}
		if pk.CodecType == "video" {
			p.video = append(p.video, f)
		} else {
			p.audio = append(p.audio, f)
		}
	}
	return p
}

func maxGap(ts []float64) float64 {
	g := 0.0
	for i := 1; i < len(ts); i++ {
		g = max(g, ts[i]-ts[i-1])
	}
	return g
}

// TestRecordShowOverWHIP: a show published over WHIP, with two pins and a
// flash sale, and a host reconnect in the middle, is recorded: after the
// host ends it, the shows API lists it with one chapter per pin, ffprobe
// reads the HLS VOD as H264 + AAC without a gap at the reconnect, and the
// replay files refuse bad input.
func TestRecordShowOverWHIP(t *testing.T) {
	needTool(t, "ffmpeg")
	needTool(t, "ffprobe")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	p, _ := recordServer(t, t.TempDir(), "")
	base := p.Base
	if status, b := adminDo(t, "POST", base+"/api/v1/rooms", map[string]any{"id": "shop", "title": "Shop", "record": true}); status != 201 {
		t.Fatalf("create room: %d %s", status, b)
	}
	for sku, title := range map[string]string{"shirt": "Washed linen shirt", "bag": "Canvas bag"} {
		if status, b := adminDo(t, "PUT", base+"/api/v1/rooms/shop/products/"+sku, map[string]any{"title": title, "price_cents": 4900, "currency": "EUR", "stock": 100}); status != 200 {
			t.Fatalf("put product: %d %s", status, b)
		}
	}
	hostToken := mintToken(t, base, "host", "host", "shop")
	host := dialWS(t, base, "shop", hostToken)
	if host.await("welcome", 5*time.Second) == nil {
		t.Fatal("host: no welcome")
	}
	pub := publishFor(t, ctx, p, "shop", hostToken)
	time.Sleep(2500 * time.Millisecond)
	_ = host.send(map[string]any{"type": "product.pin", "ref": "p1", "sku": "shirt"})
	if host.await("product.pinned", 5*time.Second) == nil {
		t.Fatal("no product.pinned")
	}
	_ = host.send(map[string]any{"type": "sale.start", "ref": "s", "sku": "bag", "price_cents": 2900, "quantity": 10, "per_user_limit": 2, "starts_in_s": 0, "duration_s": 600})
	if host.await("sale.started", 5*time.Second) == nil {
		t.Fatal("no sale.started")
	}
	_ = host.send(map[string]any{"type": "chat.send", "ref": "c", "text": "welcome to the show"})
	time.Sleep(2 * time.Second)

	// The host reconnects: the same show goes on.
	_ = pub.Close()
	time.Sleep(1500 * time.Millisecond)
	pub = publishFor(t, ctx, p, "shop", hostToken)
	time.Sleep(2500 * time.Millisecond)
	_ = host.send(map[string]any{"type": "product.pin", "ref": "p2", "sku": "bag"})
	if host.await("product.pinned", 5*time.Second) == nil {
		t.Fatal("no second product.pinned")
	}
	time.Sleep(2 * time.Second)
	_ = pub.Close()
	if status, b := adminDo(t, "PATCH", base+"/api/v1/rooms/shop", map[string]any{"status": "ended"}); status != 200 {
		t.Fatalf("end: %d %s", status, b)
	}

	sh := waitShow(t, base, "shop", 20*time.Second, func(s showJSON) bool { return s.Ended })
	if len(listShows(t, base, "shop")) != 1 {
		t.Fatalf("want one show across the reconnect, got %+v", listShows(t, base, "shop"))
	}
	t.Logf("show %s: %.1f s, %d bytes, stopped %q, chapters %+v", sh.ID, sh.DurationS, sh.Bytes, sh.Stopped, sh.Chapters)
	if sh.Stopped != "" {
		t.Errorf("stopped %q, want a show that simply ended", sh.Stopped)
	}
	if sh.DurationS < 8 || sh.DurationS > 14 {
		t.Errorf("duration %.1f s, want about 11 (published time without the offline pause)", sh.DurationS)
	}
	if len(sh.Chapters) != 2 || sh.Chapters[0].Product.SKU != "shirt" || sh.Chapters[1].Product.SKU != "bag" ||
		sh.Chapters[0].Title != "Washed linen shirt" || !(sh.Chapters[0].T > 1 && sh.Chapters[1].T > sh.Chapters[0].T+4) {
		t.Errorf("chapters %+v, want shirt at ~2.5 s then bag ~6 s later", sh.Chapters)
	}

	status, b := adminDo(t, "GET", base+"/api/v1/rooms/shop/shows/"+sh.ID, nil)
	var full showJSON
	if status != 200 || json.Unmarshal(b, &full) != nil {
		t.Fatalf("get show: %d %s", status, b)
	}
	kinds := map[string]int{}
	for _, e := range full.Script {
		kinds[e.Type]++
	}
	if kinds["product.pinned"] != 2 || kinds["sale.started"] != 1 {
		t.Errorf("script kinds %v, want 2 pins and a sale", kinds)
	}
	if len(full.Chat) != 1 {
		t.Errorf("chat log %d messages, want 1", len(full.Chat))
	}

	// The playlist's durations: each segment at most 4 targets, together the show.
	code0, plBody := adminDo(t, "GET", base+sh.Playlist, nil)
	var sum float64
	for _, line := range strings.Split(string(plBody), "\n") {
		if v, ok := strings.CutPrefix(line, "#EXTINF:"); ok {
			d, _ := strconv.ParseFloat(strings.TrimSuffix(v, ","), 64)
			if d <= 0 || d > 4.01 {
				t.Errorf("segment of %.3f s, want (0, 4] (segment: 1s)", d)
			}
			sum += d
		}
	}
	if code0 != 200 || sum < sh.DurationS-0.01 || sum > sh.DurationS+0.01 || !strings.Contains(string(plBody), "#EXT-X-ENDLIST") {
		t.Errorf("playlist %d: segments add up to %.3f s, show %.3f s:\n%s", code0, sum, sh.DurationS, plBody)
	}

	pr := probe(t, base+sh.Playlist)
	t.Logf("ffprobe: %v, width %d, %d video and %d audio packets, max video gap %.3f s, max audio gap %.3f s",
		pr.codecs, pr.width, len(pr.video), len(pr.audio), maxGap(pr.video), maxGap(pr.audio))
	if pr.codecs["video"] != "h264" || pr.codecs["audio"] != "aac" || pr.width != 640 {
		t.Errorf("streams %v width %d, want h264 640 wide + aac", pr.codecs, pr.width)
	}
	if len(pr.video) < 200 {
		t.Errorf("%d video packets, want ~30 fps for the show", len(pr.video))
	}
	if g := maxGap(pr.video); g > 0.5 {
		t.Errorf("video gap of %.3f s (the reconnect must not leave one)", g)
	}
	if g := maxGap(pr.audio); g > 0.5 {
		t.Errorf("audio gap of %.3f s", g)
	}

	// Bad input on the replay files.
	get := func(path string, hdr map[string]string) (int, http.Header, []byte) {
		req, _ := http.NewRequest("GET", base+path, nil)
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, body
	}
	code, hdr, body := get("/replay/shop/"+sh.ID+"/seg-00001.m4s", map[string]string{"Range": "bytes=0-99"})
	if code != 206 || len(body) != 100 || !strings.HasPrefix(hdr.Get("Content-Range"), "bytes 0-99/") {
		t.Errorf("range request: %d %v, %d bytes", code, hdr, len(body))
	}
	for _, path := range []string{
		"/replay/shop/nosuchshow/index.m3u8",
		"/replay/shop/" + sh.ID + "/meta.json",
		"/replay/shop/" + sh.ID + "/..%2fmeta.json",
		"/replay/shop/..%2f..%2f/index.m3u8",
		"/replay/shop/" + sh.ID + "/seg-99999.m4s",
		"/api/v1/rooms/shop/shows/nosuchshow",
	} {
		code, hdr, body := get(path, nil)
		if code != 404 || !strings.Contains(hdr.Get("Content-Type"), "json") {
			t.Errorf("GET %s: %d %s %s, want 404 JSON", path, code, hdr.Get("Content-Type"), body)
		}
	}
	viewerTok := mintToken(t, base, "v1", "viewer", "shop")
	req, _ := http.NewRequest("DELETE", base+"/api/v1/rooms/shop/shows/"+sh.ID, nil)
	req.Header.Set("Authorization", "Bearer "+viewerTok)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 403 {
		t.Fatalf("viewer DELETE: %v %v, want 403", resp, err)
	}
	req, _ = http.NewRequest("DELETE", base+"/api/v1/rooms/shop/shows/"+sh.ID, nil)
	req.Header.Set("Authorization", "Bearer "+hostToken)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 204 {
		t.Fatalf("host DELETE: %v %v, want 204", resp, err)
	}
	for _, path := range []string{"/replay/shop/" + sh.ID + "/index.m3u8", "/replay/shop/" + sh.ID + "/seg-00001.m4s", "/api/v1/rooms/shop/shows/" + sh.ID} {
		if code, _, _ := get(path, nil); code != 404 {
			t.Errorf("GET %s after delete: %d, want 404", path, code)
		}
	}
	p.Stop(t, 5*time.Second)
}
