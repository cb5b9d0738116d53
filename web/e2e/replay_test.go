package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"liveroom/media/mediatest"
)

// TestBrowserReplay: a show published over WHIP with two pins and a flash
// sale is recorded; after the host ends it, the lobby and the room page
// link to its replay, and the replay page plays it in
// headless Chromium at 360 px (currentTime advances, videoWidth > 0), lists
// one chapter per pin, shows the bag's card (at its open sale's price) after
// seeking to the bag's chapter, and buying there places an order through the
// room's checkout.
func TestBrowserReplay(t *testing.T) {
	chromium, node := browserTools(t)
	artifacts := artifactsDir(t)
	cfg := filepath.Join(t.TempDir(), "record.yaml")
	if err := os.WriteFile(cfg, []byte("record:\n  segment: 1s\n  grace: 3s\n  min_free_bytes: 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := startNode(t, artifacts, nodeOptions{name: "replay", jwtSecret: randomString(t), adminKey: randomString(t), args: []string{"--config", cfg}})
	const rid = "replay"
	var created struct {
		StreamKey string `json:"stream_key"`
	}
	s.admin(t, "/api/v1/rooms", map[string]any{"id": rid, "title": "Replay", "record": true}, http.StatusCreated, &created)
	for sku, title := range map[string]string{"shirt": "Washed linen shirt", "bag": "Canvas bag"} {
		s.do(t, "PUT", "/api/v1/rooms/"+rid+"/products/"+sku, map[string]any{"title": title, "price_cents": 4900, "currency": "EUR", "stock": 100}, http.StatusOK, nil)
	}
	mint := func(sub, role string) string {
		var tok struct{ Token string }
		s.admin(t, "/api/v1/tokens", map[string]string{"sub": sub, "name": sub, "role": role, "room": rid}, http.StatusCreated, &tok)
		return tok.Token
	}
	hostWS := dialHost(t, s.base, rid, mint("host", "host"))

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	clip, err := mediatest.LoadClip("")
	if err != nil {
		t.Fatal(err)
	}
	pub, err := mediatest.NewPublisher(ctx, mediatest.WHIP(s.base+"/whip/"+rid, created.StreamKey).Signal, mediatest.PublisherOptions{Clip: clip})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	if err := pub.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)
	hostWS.request(t, "product.pin", map[string]any{"sku": "shirt"}, "product.pinned")
	hostWS.request(t, "sale.start", map[string]any{"sku": "bag", "price_cents": 2900, "quantity": 10, "per_user_limit": 2, "starts_in_s": 0, "duration_s": 600}, "sale.started")
	hostWS.request(t, "chat.send", map[string]any{"text": "hello replay"}, "chat.message")
	time.Sleep(4 * time.Second)
	hostWS.request(t, "product.pin", map[string]any{"sku": "bag"}, "product.pinned")
	time.Sleep(4 * time.Second)
	_ = pub.Close()
	s.do(t, "PATCH", "/api/v1/rooms/"+rid, map[string]any{"status": "ended"}, http.StatusOK, nil)

	var show struct {
		ID       string `json:"id"`
		Ended    bool   `json:"ended"`
		Chapters []struct {
			T     float64 `json:"t"`
			Title string  `json:"title"`
		} `json:"chapters"`
	}
	deadline := time.Now().Add(20 * time.Second)
	for !show.Ended {
		var list struct {
			Shows []json.RawMessage `json:"shows"`
		}
		s.do(t, "GET", "/api/v1/rooms/"+rid+"/shows", nil, http.StatusOK, &list)
		if len(list.Shows) > 0 {
			_ = json.Unmarshal(list.Shows[0], &show)
		}
		if time.Now().After(deadline) {
			t.Fatalf("the show did not end: %+v", show)
		}
		time.Sleep(200 * time.Millisecond)
	}

	var res struct {
		OK         bool     `json:"ok"`
		Step       string   `json:"step"`
		Error      string   `json:"error"`
		Logs       []string `json:"logs"`
		VideoWidth int      `json:"videoWidth"`
		Overflow   bool     `json:"overflow"`
		Chapters   []struct {
			T    float64 `json:"t"`
			Text string  `json:"text"`
		} `json:"chapters"`
		Card struct {
			SKU, Title, Price, Was string
			At                     float64
		} `json:"card"`
		Links  bool     `json:"links"`
		Poster string   `json:"poster"`
		Order  string   `json:"order"`
		Chat   []string `json:"chat"`
	}
	runScript(t, node, chromium, &res, "replay.mjs", "--base", s.base, "--room", rid, "--show", show.ID, "--token", mint("buyer", "viewer"), "--out", artifacts)
	for _, l := range res.Logs {
		t.Log("browser: " + l)
	}
	if !res.OK {
		t.Fatalf("browser run failed in step %q: %s", res.Step, res.Error)
	}
	t.Logf("replay: width %d, chapters %+v, card %+v, order %s, chat %q", res.VideoWidth, res.Chapters, res.Card, res.Order, res.Chat)
	if len(res.Chapters) != len(show.Chapters) || len(res.Chapters) != 2 ||
		!strings.Contains(res.Chapters[0].Text, "Washed linen shirt") || !strings.Contains(res.Chapters[1].Text, "Canvas bag") {
		t.Errorf("page chapters %+v, want the API's %+v (shirt, then bag)", res.Chapters, show.Chapters)
	}
	if res.Card.SKU != "bag" || !strings.Contains(res.Card.Price, "29") || !strings.Contains(res.Card.Was, "49") {
		t.Errorf("card after seeking to the bag's chapter: %+v, want the bag at its open sale's price", res.Card)
	}
	if !res.Links {
		t.Errorf("no replay link on the lobby and the room page")
	}
	if res.Overflow {
		t.Errorf("the replay page scrolls sideways at 360 px")
	}
	var orders struct {
		Orders []struct {
			ID string `json:"id"`
		} `json:"orders"`
	}
	s.do(t, "GET", "/api/v1/rooms/"+rid+"/orders", nil, http.StatusOK, &orders)
	found := false
	for _, o := range orders.Orders {
		found = found || o.ID == res.Order
	}
	if !found {
		t.Errorf("order %q from the replay is not listed: %+v", res.Order, orders)
	}
}

// hostConn is the host's room WebSocket.
type hostConn struct {
	c *websocket.Conn
	n int
}

func dialHost(t *testing.T, base, roomID, token string) *hostConn {
	t.Helper()
	u := strings.Replace(base, "http://", "ws://", 1) + "/ws/" + roomID + "?token=" + token
	c, _, err := websocket.DefaultDialer.Dial(u, nil)
	if err != nil {
		t.Fatalf("host ws: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	h := &hostConn{c: c}
	h.await(t, "welcome")
	return h
}

func (h *hostConn) await(t *testing.T, kind string) {
	t.Helper()
	_ = h.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		var m map[string]any
		if err := h.c.ReadJSON(&m); err != nil {
			t.Fatalf("host ws waiting for %s: %v", kind, err)
		}
		if m["type"] == kind {
			return
		}
		if m["type"] == "error" {
			t.Fatalf("host ws: %v", m)
		}
	}
}

func (h *hostConn) request(t *testing.T, kind string, body map[string]any, reply string) {
	t.Helper()
	h.n++
	m := map[string]any{"type": kind, "ref": kind + string(rune('a'+h.n))}
	for k, v := range body {
		m[k] = v
	}
	if err := h.c.WriteJSON(m); err != nil {
		t.Fatal(err)
	}
	h.await(t, reply)
}
