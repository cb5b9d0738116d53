package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"liveroom/room/roomtest"
)

// startRecordingCluster starts nodes a, b, c on one redis-server, each
// recording into its own data_dir (segments of 1 s).
func startRecordingCluster(t *testing.T) []*inNode {
	t.Helper()
	srv := roomtest.StartRedis(t)
	var nodes []*inNode
	for _, id := range []string{"a", "b", "c"} {
		cfg := testConfig(t)
		cfg.Node.ID = id
		cfg.Hub.MaxConnsPerIP = 0
		cfg.Redis.URL = srv.URL()
		cfg.Record.Segment = time.Second
		cfg.Record.MinFreeBytes = 1
		b, err := openBackends(cfg, quietLog())
		if err != nil {
			t.Fatal(err)
		}
		n, err := wireNode(cfg, prometheus.NewRegistry(), quietLog(), b)
		if err != nil {
			t.Fatal(err)
		}
		nodes = append(nodes, serveInProcess(t, n))
	}
	return nodes
}

// TestRecordClusterHostMoves: the host publishes over WHIP on a with
// recording on, a pin is made through b's hub and a price edit through c's
// admin API (the recording node learns of both through the bus), the host moves to b and ends the show there. The
// cluster has one show, its segments on a and on b; c, which recorded
// nothing, serves its playlist and every segment (the same bytes as the
// holder's disk), and ffprobe reads it through c without a gap.
func TestRecordClusterHostMoves(t *testing.T) {
	needTool(t, "ffmpeg")
	needTool(t, "ffprobe")
	nodes := startRecordingCluster(t)
	a, b, c := nodes[0], nodes[1], nodes[2]
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	if status, body := adminDo(t, "POST", a.p.Base+"/api/v1/rooms", map[string]any{"id": "tour", "title": "Tour", "record": true}); status != 201 {
		t.Fatalf("create room: %d %s", status, body)
	}
	if status, body := adminDo(t, "PUT", a.p.Base+"/api/v1/rooms/tour/products/shirt", map[string]any{"title": "Washed linen shirt", "price_cents": 4900, "currency": "EUR", "stock": 100}); status != 200 {
		t.Fatalf("put product: %d %s", status, body)
	}
	hostToken := mintToken(t, a.p.Base, "host", "host", "tour")
	pub := publishTo(t, ctx, a.p, "tour", hostToken)
	time.Sleep(3 * time.Second)
	// The pin goes through b's hub while the show is recorded on a.
	host := dialWS(t, b.p.Base, "tour", hostToken)
	if host.await("welcome", 5*time.Second) == nil {
		t.Fatal("host on b: no welcome")
	}
	_ = host.send(map[string]any{"type": "product.pin", "ref": "p1", "sku": "shirt"})
	if host.await("product.pinned", 5*time.Second) == nil {
		t.Fatal("no product.pinned")
	}
	// A price edit through c's admin API is an event too (product.updated).
	if status, body := adminDo(t, "PUT", c.p.Base+"/api/v1/rooms/tour/products/shirt", map[string]any{"title": "Washed linen shirt", "price_cents": 3900, "currency": "EUR", "stock": 100}); status != 200 {
		t.Fatalf("edit product: %d %s", status, body)
	}
	if host.await("product.updated", 5*time.Second) == nil {
		t.Fatal("no product.updated")
	}
	time.Sleep(1500 * time.Millisecond)

	// The host moves to b.
	_ = pub.Close()
	time.Sleep(1500 * time.Millisecond)
	pub = publishTo(t, ctx, b.p, "tour", hostToken)
	time.Sleep(4 * time.Second)
	_ = pub.Close()
	if status, body := adminDo(t, "PATCH", a.p.Base+"/api/v1/rooms/tour", map[string]any{"status": "ended"}); status != 200 {
		t.Fatalf("end: %d %s", status, body)
	}

	sh := waitShow(t, c.p.Base, "tour", 20*time.Second, func(s showJSON) bool { return s.Ended })
	if shows := listShows(t, c.p.Base, "tour"); len(shows) != 1 {
		t.Fatalf("want one show across the move, got %+v", shows)
	}
	t.Logf("show %s: %.1f s, chapters %+v", sh.ID, sh.DurationS, sh.Chapters)
	if len(sh.Chapters) != 1 || sh.Chapters[0].Product.SKU != "shirt" {
		t.Errorf("chapters %+v, want the pin made through b", sh.Chapters)
	}
	if sh.DurationS < 7 || sh.DurationS > 13 {
		t.Errorf("duration %.1f s, want about 10 (a's part and b's, without the pause)", sh.DurationS)
	}

	// Every file the playlist names, through c: the holder's bytes.
	code, pl := adminDo(t, "GET", c.p.Base+sh.Playlist, nil)
	if code != 200 || !strings.Contains(string(pl), "#EXT-X-ENDLIST") {
		t.Fatalf("playlist on c: %d\n%s", code, pl)
	}
	names := []string{}
	for _, line := range strings.Split(string(pl), "\n") {
		if strings.HasPrefix(line, "seg-") {
			names = append(names, line)
		}
		if v, ok := strings.CutPrefix(line, "#EXT-X-MAP:URI=\""); ok {
			names = append(names, strings.TrimSuffix(v, "\""))
		}
	}
	held, total := map[string]int{}, 0
	for _, name := range names {
		var holder string
		var want []byte
		for _, n := range nodes {
			if b, err := os.ReadFile(filepath.Join(n.cfg.Record.Dir, "tour", sh.ID, name)); err == nil {
				holder, want = n.cfg.Node.ID, b
				break
			}
		}
		if holder == "" {
			t.Errorf("%s: on no node's disk", name)
			continue
		}
		held[holder]++
		total += len(want)
		resp, err := http.Get(c.p.Base + "/replay/tour/" + sh.ID + "/" + name)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !bytes.Equal(got, want) {
			t.Errorf("%s through c: %d, %d bytes; want the %d bytes on %s", name, resp.StatusCode, len(got), len(want), holder)
		}
	}
	for _, n := range nodes {
		ents, _ := os.ReadDir(filepath.Join(n.cfg.Record.Dir, "tour", sh.ID))
		var ls []string
		for _, e := range ents {
			ls = append(ls, e.Name())
		}
		t.Logf("node %s holds %v", n.cfg.Node.ID, ls)
	}
	t.Logf("files by holder %v", held)
	if sh.Bytes < int64(total) {
		t.Errorf("show of %d bytes, want at least its media files' %d (a's part and b's)", sh.Bytes, total)
	}
	if held["a"] == 0 || held["b"] == 0 || held["c"] != 0 {
		t.Errorf("files by holder %v, want some on a and some on b, none on c", held)
	}
	// A range request passes through too.
	req, _ := http.NewRequest("GET", c.p.Base+"/replay/tour/"+sh.ID+"/seg-00001.m4s", nil)
	req.Header.Set("Range", "bytes=0-99")
	if resp, err := http.DefaultClient.Do(req); err != nil {
		t.Fatal(err)
	} else {
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 206 || len(got) != 100 {
			t.Errorf("range through c: %d, %d bytes; want 206, 100", resp.StatusCode, len(got))
		}
	}
	// The internal route wants a cluster token.
	if resp, err := http.Get(a.p.Base + "/internal/v1/replay/tour/" + sh.ID + "/seg-00001.m4s"); err != nil {
		t.Fatal(err)
	} else {
		resp.Body.Close()
		if resp.StatusCode != 401 {
			t.Errorf("internal replay without a token: %d, want 401", resp.StatusCode)
		}
	}

	// The product script, from c.
	status, body := adminDo(t, "GET", c.p.Base+"/api/v1/rooms/tour/shows/"+sh.ID, nil)
	var full showJSON
	if status != 200 || json.Unmarshal(body, &full) != nil {
		t.Fatalf("get show on c: %d %s", status, body)
	}
	if len(full.Script) != 2 || full.Script[0].Type != "product.pinned" || full.Script[0].T < 2 ||
		full.Script[1].Type != "product.updated" || full.Script[1].T < full.Script[0].T {
		t.Errorf("script %+v, want the pin at ~3 s, then the price edit", full.Script)
	}
	if !strings.Contains(string(body), `"price_cents":3900`) {
		t.Errorf("script has no edited price: %s", body)
	}

	// Private now: c hands out signed URLs, and a signed segment held on
	// a comes through c (the signature checked by c, the hop with a
	// cluster token); unsigned, it is refused.
	if status, body := adminDo(t, "PATCH", a.p.Base+"/api/v1/rooms/tour", map[string]any{"private": true}); status != 200 {
		t.Fatalf("make private: %d %s", status, body)
	}
	getAuth := func(u, tok string) (int, []byte) {
		req, _ := http.NewRequest("GET", u, nil)
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	code, body = getAuth(c.p.Base+"/api/v1/rooms/tour/shows", mintToken(t, a.p.Base, "v", "viewer", "tour"))
	var priv struct{ Shows []showJSON }
	if code != 200 || json.Unmarshal(body, &priv) != nil || len(priv.Shows) != 1 || !strings.Contains(priv.Shows[0].Playlist, "sig=") {
		t.Fatalf("private shows on c: %d %s", code, body)
	}
	code, body = getAuth(c.p.Base+priv.Shows[0].Playlist, "")
	signedSeg := ""
	for _, line := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(line, "seg-00001.m4s?") {
			signedSeg = line
		}
	}
	if code != 200 || signedSeg == "" {
		t.Fatalf("signed playlist on c: %d\n%s", code, body)
	}
	wantSeg, _ := os.ReadFile(filepath.Join(a.cfg.Record.Dir, "tour", sh.ID, "seg-00001.m4s"))
	if code, got := getAuth(c.p.Base+"/replay/tour/"+sh.ID+"/"+signedSeg, ""); code != 200 || !bytes.Equal(got, wantSeg) {
		t.Errorf("signed segment of a through c: %d, %d bytes; want a's %d", code, len(got), len(wantSeg))
	}
	if code, _ := getAuth(c.p.Base+"/replay/tour/"+sh.ID+"/seg-00001.m4s", ""); code != 403 {
		t.Errorf("unsigned private segment through c: %d, want 403", code)
	}

	defer func() {
		// With a gone, c still lists the show and serves b's part; a's
		// files are a clear 502, not a hang or a 404.
		a.leave()
		if code, _ := getAuth(c.p.Base+"/replay/tour/"+sh.ID+"/"+signedSeg, ""); code != 502 {
			t.Errorf("a's segment through c with a gone: %d, want 502", code)
		}
		if code, body := getAuth(c.p.Base+priv.Shows[0].Playlist, ""); code != 200 || !strings.Contains(string(body), "#EXT-X-ENDLIST") {
			t.Errorf("playlist on c with a gone: %d %s", code, body)
		}
	}()

	pr := probe(t, c.p.Base+priv.Shows[0].Playlist)
	t.Logf("ffprobe via c: %v, %d video and %d audio packets, max video gap %.3f s, max audio gap %.3f s",
		pr.codecs, len(pr.video), len(pr.audio), maxGap(pr.video), maxGap(pr.audio))
	if pr.codecs["video"] != "h264" || len(pr.video) < 150 {
		t.Errorf("streams %v, %d video packets; want h264 for the whole show", pr.codecs, len(pr.video))
	}
	for i := 1; i < len(pr.video); i++ {
		if pr.video[i] < pr.video[i-1] {
			t.Errorf("video pts goes back at packet %d: %.3f after %.3f", i, pr.video[i], pr.video[i-1])
			break
		}
	}
	if g := maxGap(pr.video); g > 0.5 {
		t.Errorf("video gap of %.3f s (the move must not leave one)", g)
	}
}
