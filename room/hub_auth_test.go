package room_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/gorilla/websocket"

	"liveroom/chat"
	"liveroom/room"
	"liveroom/room/roomtest"
)

const roomtestAdminKey = "roomtest-admin-key-0123456789"

// untilClose collects every event up to the close and returns them with
// the close code.
func untilClose(t *testing.T, c *roomtest.Client) ([]room.Event, int) {
	t.Helper()
	var evs []room.Event
	done := make(chan int)
	go func() {
		for {
			_, data, err := c.WS.ReadMessage()
			if err != nil {
				code := 0
				if ce, ok := err.(*websocket.CloseError); ok {
					code = ce.Code
				}
				done <- code
				return
			}
			var ev room.Event
			if err := ev.UnmarshalJSON(data); err == nil {
				evs = append(evs, ev)
			}
		}
	}()
	select {
	case code := <-done:
		return evs, code
	case <-time.After(roomtest.Wait):
		t.Fatalf("connection still open after %s", roomtest.Wait)
		return nil, 0
	}
}

// rawDial dials without roomtest's reader, for untilClose.
func rawDial(t *testing.T, s *roomtest.Server, query string, header http.Header) *roomtest.Client {
	t.Helper()
	u := "ws" + strings.TrimPrefix(s.HTTP.URL, "http") + "/ws/demo" + query
	ws, _, err := websocket.DefaultDialer.Dial(u, header)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { ws.Close() })
	return &roomtest.Client{WS: ws}
}

// The auth frame admits as a token or query string would.
func TestAuthFrame(t *testing.T) {
	s := roomtest.New(t, roomtest.Options{})
	tests := []struct {
		name, frame, wantRole string
	}{
		{"viewer", `{"type":"auth","token":"` + s.Token(t, "v1", room.RoleViewer, "demo") + `"}`, "viewer"},
		{"host", `{"type":"auth","token":"` + s.Token(t, "h1", room.RoleHost, "demo") + `","ref":"a1"}`, "host"},
		{"guest", `{"type":"auth"}`, "guest"},
		{"guest with an empty token", `{"type":"auth","token":""}`, "guest"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := s.DialFrame(t, "demo", []byte(tc.frame))
			defer c.Close()
			w := c.Next(t, func(room.Event) bool { return true })
			if w.Type != "welcome" {
				t.Fatalf("first event: got %s, want welcome", w.AppendJSON(nil))
			}
			if got := roomtest.Field[map[string]any](t, w, "you")["role"]; got != tc.wantRole {
				t.Fatalf("role: got %v, want %s", got, tc.wantRole)
			}
			// The connection works as any other afterwards.
			c.Quiet(t, "probe")
		})
	}
}

// A wrong, late or misplaced auth frame gets one error and a 4001 close,
// and nothing else.
func TestAuthFrameRefused(t *testing.T) {
	cfg := room.DefaultHubConfig()
	cfg.MaxConnsPerIP = 0
	cfg.AuthTimeout = 300 * time.Millisecond
	s := roomtest.New(t, roomtest.Options{Hub: &cfg})
	demo, err := s.Rooms.Get(context.Background(), "demo")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		frame  string // "" = send nothing
		binary bool
	}{
		{"nothing in time", "", false},
		{"garbage", "hello", false},
		{"another type", `{"type":"chat.send","text":"hi"}`, false},
		{"binary", `{"type":"auth"}`, true},
		{"bad token", `{"type":"auth","token":"not.a.jwt"}`, false},
		{"token not a string", `{"type":"auth","token":42}`, false},
		{"stream key", `{"type":"auth","token":"` + demo.StreamKey + `"}`, false},
		{"admin key", `{"type":"auth","token":"` + roomtestAdminKey + `"}`, false},
		{"too big", `{"type":"auth","token":"` + strings.Repeat("x", cfg.ReadLimit) + `"}`, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := rawDial(t, s, "?auth=frame", nil)
			switch {
			case tc.binary:
				_ = c.WS.WriteMessage(websocket.BinaryMessage, []byte(tc.frame))
			case tc.frame != "":
				_ = c.WS.WriteMessage(websocket.TextMessage, []byte(tc.frame))
			}
			evs, code := untilClose(t, c)
			if len(evs) != 1 || evs[0].Type != "error" || roomtest.Field[string](t, evs[0], "code") != room.CodeUnauthorized {
				t.Fatalf("events: got %d (%v), want one unauthorized error", len(evs), evs)
			}
			if code != room.CloseUnauthorized {
				t.Fatalf("close code: got %d, want %d", code, room.CloseUnauthorized)
			}
		})
	}
}

// The stream key and the admin key open no WebSocket, through any channel;
// neither does a token for a reserved subject signed with our secret.
func TestWebSocketRefusesKeys(t *testing.T) {
	s := roomtest.New(t, roomtest.Options{})
	demo, err := s.Rooms.Get(context.Background(), "demo")
	if err != nil {
		t.Fatal(err)
	}
	reserved := signed(t, jwt.SigningMethodHS256, []byte(roomtest.Secret), jwt.MapClaims{
		"sub": "host:demo", "role": "host", "room": "demo", "exp": time.Now().Add(time.Hour).Unix()})
	for name, cred := range map[string]string{"stream key": demo.StreamKey, "admin key": roomtestAdminKey, "reserved subject": reserved} {
		t.Run(name+" as ?token=", func(t *testing.T) {
			evs, code := untilClose(t, rawDial(t, s, "?token="+cred, nil))
			if len(evs) != 1 || roomtest.Field[string](t, evs[0], "code") != room.CodeUnauthorized || code != room.CloseUnauthorized {
				t.Fatalf("got %v close %d, want one unauthorized error and 4001", evs, code)
			}
		})
		t.Run(name+" as bearer", func(t *testing.T) {
			evs, code := untilClose(t, rawDial(t, s, "", http.Header{"Authorization": {"Bearer " + cred}}))
			if len(evs) != 1 || roomtest.Field[string](t, evs[0], "code") != room.CodeUnauthorized || code != room.CloseUnauthorized {
				t.Fatalf("got %v close %d, want one unauthorized error and 4001", evs, code)
			}
		})
	}
}

// A guest keeps its id across reconnects with the guest token its welcome
// carried; a forged guest token gets a fresh guest (and a fresh token).
func TestGuestKeepsItsID(t *testing.T) {
	s := roomtest.New(t, roomtest.Options{})
	first := s.Dial(t, "demo", "") // an old client: no token, no auth frame
	id := roomtest.Field[map[string]any](t, first.Welcome, "you")["id"].(string)
	gt := roomtest.Field[string](t, first.Welcome, "guest_token")
	first.Close()
	if !strings.HasPrefix(id, "guest-") || gt == "" {
		t.Fatalf("guest welcome: id %q token %q", id, gt)
	}
	for range 2 {
		c := s.DialFrame(t, "demo", []byte(`{"type":"auth","guest":"`+gt+`"}`))
		w := c.Expect(t, "welcome")
		if got := roomtest.Field[map[string]any](t, w, "you")["id"]; got != id {
			t.Fatalf("reconnect with the guest token: got id %v, want %s", got, id)
		}
		c.Close()
	}
	forged := gt[:len(gt)-2] + "AA"
	c := s.DialFrame(t, "demo", []byte(`{"type":"auth","guest":"`+forged+`"}`))
	defer c.Close()
	w := c.Expect(t, "welcome")
	if got := roomtest.Field[map[string]any](t, w, "you")["id"]; got == id {
		t.Fatalf("forged guest token kept the id %v", got)
	}
	if got := roomtest.Field[string](t, w, "guest_token"); got == gt || got == forged {
		t.Fatalf("forged guest token: welcome's guest_token is %q, want a fresh one", got)
	}
	// A signed-in user gets no guest token.
	u := s.Dial(t, "demo", s.Token(t, "v1", room.RoleViewer, "demo"))
	defer u.Close()
	if ok, _ := u.Welcome.Field("guest_token", new(string)); ok {
		t.Fatal("a viewer's welcome has a guest_token")
	}
}

// A banned guest stays banned when it comes back with its guest token.
func TestGuestBanHoldsAcrossReconnects(t *testing.T) {
	hc := room.DefaultHubConfig()
	hc.MaxConnsPerIP = 0
	s := roomtest.New(t, roomtest.Options{Hub: &hc, Setup: func(h *room.Hub, s *roomtest.Server) error {
		_, err := chat.New(chat.DefaultConfig(), chat.Deps{Hub: h, Rooms: s.Rooms, Audit: chat.NewMemoryAudit(), Metrics: s.Registry})
		return err
	}})
	g := s.Dial(t, "demo", "")
	id := roomtest.Field[map[string]any](t, g.Welcome, "you")["id"].(string)
	gt := roomtest.Field[string](t, g.Welcome, "guest_token")
	mod := s.Dial(t, "demo", s.Token(t, "m1", room.RoleModerator, "demo"))
	defer mod.Close()
	mod.Send(t, map[string]any{"type": "mod.ban", "user_id": id})
	mod.Expect(t, "user.banned")
	g.ExpectError(t, room.CodeBanned)
	g.Close()

	c := s.DialFrame(t, "demo", []byte(`{"type":"auth","guest":"`+gt+`"}`))
	defer c.Close()
	c.ExpectError(t, room.CodeBanned)
	if code := c.ExpectClose(t); code != room.CloseBanned {
		t.Fatalf("close code: got %d, want %d", code, room.CloseBanned)
	}
}
