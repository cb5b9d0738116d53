package web

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/golang-jwt/jwt/v5"
	"github.com/gorilla/websocket"

	"liveroom/cart"
	"liveroom/media"
	"liveroom/media/mediatest"
	"liveroom/room"
)

// newAccessNode is a test node with the room WebSocket and the commerce
// store wired, as the binary wires them.
func newAccessNode(t *testing.T) *testNode {
	t.Helper()
	return newTestNode(t, func(d *Deps) {
		cfg := room.DefaultHubConfig()
		cfg.MaxConnsPerIP = 0
		hub, err := room.NewHub(cfg, room.HubDeps{Auth: d.Auth, Rooms: d.Rooms, Bus: room.NewMemoryBus(100)})
		if err != nil {
			t.Fatal(err)
		}
		store, err := cart.OpenLocal(t.TempDir(), cart.Config{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { store.Close() })
		d.Hub, d.Catalog = hub, store
	})
}

// wsRefused dials the room WebSocket with cred (as ?token=, as a bearer,
// and in an auth frame) and wants one unauthorized error and a 4001 close
// each time.
func wsRefused(t *testing.T, n *testNode, roomID, cred string) {
	t.Helper()
	base := "ws" + strings.TrimPrefix(n.srv.URL, "http") + "/ws/" + roomID
	for _, how := range []string{"query", "bearer", "frame"} {
		u, h := base+"?token="+cred, http.Header(nil)
		switch how {
		case "bearer":
			u, h = base, http.Header{"Authorization": {"Bearer " + cred}}
		case "frame":
			u = base + "?auth=frame"
		}
		ws, _, err := websocket.DefaultDialer.Dial(u, h)
		if err != nil {
			t.Fatalf("%s: dial: %v", how, err)
		}
		if how == "frame" {
			b, _ := json.Marshal(map[string]string{"type": "auth", "token": cred})
			_ = ws.WriteMessage(websocket.TextMessage, b)
		}
		_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
		var frames []string
		var err2 error
		for {
			var data []byte
			if _, data, err2 = ws.ReadMessage(); err2 != nil {
				break
			}
			frames = append(frames, string(data))
		}
		ws.Close()
		var ce *websocket.CloseError
		if len(frames) != 1 || !strings.Contains(frames[0], `"code":"unauthorized"`) ||
			!errors.As(err2, &ce) || ce.Code != room.CloseUnauthorized {
			t.Fatalf("%s: got frames %q, end %v; want one unauthorized error, then close 4001", how, frames, err2)
		}
	}
}

// The stream key only publishes: refused on the WebSocket, the orders,
// PATCH, the room GET and WHEP; accepted by WHIP (a pion publisher).
func TestStreamKeyOnlyPublishes(t *testing.T) {
	n := newAccessNode(t)
	rm := n.createRoom("shop", false)
	if status, _, b := n.do("PATCH", "/api/v1/rooms/shop", testAdminKey, "application/json",
		[]byte(`{"source":"rtsp://cam:camPass@127.0.0.1:1/live"}`)); status != 200 {
		t.Fatalf("set source: %d %s", status, b)
	}
	host := n.token("h1", room.RoleHost, "shop")
	sk := rm.StreamKey

	t.Run("websocket", func(t *testing.T) { wsRefused(t, n, "shop", sk) })

	for _, tc := range []struct {
		name, method, path, body string
		hostStatus               int
	}{
		{"orders", "GET", "/api/v1/rooms/shop/orders", "", 200},
		{"patch", "PATCH", "/api/v1/rooms/shop", `{"status":"ended"}`, 200},
		{"room", "GET", "/api/v1/rooms/shop", "", 200},
		{"moderation log", "GET", "/api/v1/rooms/shop/moderation/log", "", 503}, // no log here: past the check
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, _, b := n.do(tc.method, tc.path, sk, "application/json", []byte(tc.body))
			if status != http.StatusUnauthorized || errorCode(t, b) != "unauthorized" || strings.Contains(string(b), sk) {
				t.Fatalf("stream key: got %d %s, want 401 unauthorized", status, b)
			}
			if status, _, b := n.do(tc.method, tc.path, host, "application/json", []byte(tc.body)); status != tc.hostStatus {
				t.Fatalf("host token: got %d %s, want %d", status, b, tc.hostStatus)
			}
		})
	}
	if got, _ := n.rooms.Get(context.Background(), "shop"); got.Status != room.StatusEnded {
		t.Fatalf("status after the host's PATCH: got %s, want ended", got.Status)
	}

	// The source's password: the host sees the source without it, only an
	// admin sees it whole.
	for who, cred := range map[string]string{"host": host, "viewer": n.token("v1", room.RoleViewer, "shop"), "nobody": ""} {
		_, _, b := n.do("GET", "/api/v1/rooms/shop", cred, "", nil)
		if strings.Contains(string(b), "camPass") || strings.Contains(string(b), "cam:") {
			t.Errorf("%s sees the source's credentials: %s", who, b)
		}
	}
	_, _, b := n.do("GET", "/api/v1/rooms/shop", host, "", nil)
	if !strings.Contains(string(b), `"source":"rtsp://127.0.0.1:1/live"`) || !strings.Contains(string(b), sk) {
		t.Errorf("host view: got %s, want the source without credentials and the stream key", b)
	}
	if _, _, b := n.do("GET", "/api/v1/rooms/shop", testAdminKey, "", nil); !strings.Contains(string(b), "camPass") {
		t.Errorf("admin view lacks the source: %s", b)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	live := n.createRoom("live", false)
	_, err := mediatest.NewViewer(ctx, mediatest.WHEP(n.srv.URL+"/whep/live", live.StreamKey).Signal, mediatest.ViewerOptions{})
	var se *mediatest.StatusError
	if !errors.As(err, &se) || se.Code != http.StatusUnauthorized {
		t.Fatalf("WHEP with the stream key: got %v, want 401", err)
	}
	pub, err := mediatest.NewPublisher(ctx, mediatest.WHIP(n.srv.URL+"/whip/live", live.StreamKey).Signal, mediatest.PublisherOptions{})
	if err != nil {
		t.Fatalf("WHIP with the stream key: %v", err)
	}
	defer pub.Close()
	if err := pub.WaitConnected(ctx); err != nil {
		t.Fatalf("WHIP publisher: %v", err)
	}
	if _, err := mediatest.NewPublisher(ctx, mediatest.WHIP(n.srv.URL+"/whip/live", rm.StreamKey).Signal, mediatest.PublisherOptions{}); !errors.As(err, &se) || se.Code != http.StatusUnauthorized {
		t.Fatalf("WHIP with another room's key: got %v, want 401", err)
	}
}

// RTSP publish takes the stream key (as the password or ?key=), through a
// real RTSP client; RTSP read does not.
func TestStreamKeyRTSPPublish(t *testing.T) {
	n := newAccessNode(t)
	rm := n.createRoom("cam", false)
	srv, err := n.sfu.ServeRTSP(media.RTSPConfig{Listen: "127.0.0.1:0"}, media.RTSPDeps{Auth: NewRTSPAuth(n.auth, n.rooms)})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	addr := srv.Addr().String()
	desc := func() *description.Session {
		return &description.Session{Medias: []*description.Media{{
			Type:    description.MediaTypeVideo,
			Formats: []format.Format{&format.H264{PayloadTyp: 96, PacketizationMode: 1}},
		}}}
	}
	record := func(u string) error {
		c := gortsplib.Client{}
		defer c.Close()
		return c.StartRecording(u, desc())
	}
	for name, u := range map[string]string{
		"password": "rtsp://host:" + rm.StreamKey + "@" + addr + "/cam",
		"key":      "rtsp://" + addr + "/cam?key=" + rm.StreamKey,
	} {
		if err := record(u); err != nil {
			t.Errorf("publish with the stream key as %s: %v", name, err)
		}
	}
	if err := record("rtsp://host:sk_wrong@" + addr + "/cam"); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("publish with a wrong key: got %v, want 401", err)
	}
	if err := NewRTSPAuth(n.auth, n.rooms).AuthorizeRead(context.Background(), "cam", media.RTSPCredentials{Password: rm.StreamKey}); err == nil {
		t.Error("RTSP read with the stream key: admitted, want a refusal")
	}
}

// The admin key opens no WebSocket (it is for the HTTP APIs).
func TestAdminKeyRefusedOnWebSocket(t *testing.T) {
	n := newAccessNode(t)
	n.createRoom("r1", false)
	wsRefused(t, n, "r1", testAdminKey)
}

// No token names a reserved subject: the API refuses to mint one, and one
// signed elsewhere with the same secret is refused on the API and the
// WebSocket.
func TestReservedSubjectsRefused(t *testing.T) {
	n := newAccessNode(t)
	n.createRoom("r1", false)
	for _, sub := range []string{"admin", "host:r1", "rtsp-pull", "edge:node-2", "guest-00aa11bb"} {
		body, _ := json.Marshal(map[string]string{"sub": sub, "role": "host", "room": "r1"})
		if status, _, b := n.do("POST", "/api/v1/tokens", testAdminKey, "application/json", body); status != 400 || errorCode(t, b) != "bad_request" {
			t.Errorf("mint %q: got %d %s, want 400 bad_request", sub, status, b)
		}
		tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
			"sub": sub, "role": "admin", "room": "*", "exp": time.Now().Add(time.Hour).Unix(),
		}).SignedString([]byte("test-secret-0123456789abcdef"))
		if err != nil {
			t.Fatal(err)
		}
		if status, _, b := n.do("GET", "/api/v1/rooms/r1/orders", tok, "", nil); status != 401 {
			t.Errorf("%q signed elsewhere, on the API: got %d %s, want 401", sub, status, b)
		}
		wsRefused(t, n, "r1", tok)
	}
	if status, _, b := n.do("POST", "/api/v1/tokens", testAdminKey, "application/json", []byte(`{"sub":"u1","role":"host","room":"r1"}`)); status != 201 {
		t.Fatalf("mint an ordinary subject: got %d %s, want 201", status, b)
	}
}
