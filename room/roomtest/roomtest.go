// Package roomtest runs a real hub behind an httptest server and drives it
// with real gorilla clients over loopback, for the tests of room and of the
// packages that plug into the hub (chat, cart).
package roomtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"liveroom/room"
)

// Wait bounds every wait for an event; a test that hits it has failed.
const Wait = 5 * time.Second

// Secret is the JWT secret of every test server.
const Secret = "roomtest-secret-0123456789"

// Options configure a test server.
type Options struct {
	Hub   *room.HubConfig // nil: defaults with no per-address limit
	Bus   room.Bus        // nil: a fresh memory bus (share one to model a cluster)
	Rooms []room.Room     // nil: "demo" (public), "open" (guest chat), "priv" (private), "other"; kept without an incarnation unless set
	// Setup registers handlers on the hub before it serves (e.g. chat.New).
	Setup func(h *room.Hub, s *Server) error
	// NoRun leaves the hub's timers off (no pings, viewers, likes).
	NoRun bool
}

// Server is a hub serving GET /ws/{room} on a loopback httptest server.
type Server struct {
	Hub      *room.Hub
	Auth     *room.Auth
	Rooms    room.Store
	Bus      room.Bus
	Registry *prometheus.Registry
	HTTP     *httptest.Server
	Config   room.HubConfig
}

// New starts a server; it stops when the test ends.
func New(t testing.TB, opt Options) *Server {
	t.Helper()
	cfg := room.DefaultHubConfig()
	cfg.MaxConnsPerIP = 0
	if opt.Hub != nil {
		cfg = *opt.Hub
	}
	auth, err := room.NewAuth(room.AuthConfig{JWTSecret: Secret, AdminKey: "roomtest-admin-key-0123456789"})
	if err != nil {
		t.Fatal(err)
	}
	store, err := room.OpenFileStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	rooms := opt.Rooms
	if rooms == nil {
		rooms = []room.Room{
			{ID: "demo", Title: "Demo"},
			{ID: "open", Title: "Open", GuestChat: true},
			{ID: "priv", Title: "Private", Private: true},
			{ID: "other", Title: "Other"},
		}
	}
	for _, r := range rooms {
		// A room keeps the incarnation the test gives it; none (the
		// default rooms) makes it a room stored before incarnations, whose
		// data scope is its id, so tests can name its state by the id.
		inc := r.Incarnation
		r, err := room.NewRoom(r, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		r.Incarnation = inc
		if _, err := store.Create(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
	bus := opt.Bus
	if bus == nil {
		bus = room.NewMemoryBus(cfg.HistorySize)
	}
	reg := prometheus.NewRegistry()
	hub, err := room.NewHub(cfg, room.HubDeps{Auth: auth, Rooms: store, Bus: bus, Metrics: reg})
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{Hub: hub, Auth: auth, Rooms: store, Bus: bus, Registry: reg, Config: cfg}
	if opt.Setup != nil {
		if err := opt.Setup(hub, s); err != nil {
			t.Fatal(err)
		}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ws/{room}", func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("room")
		if _, err := store.Get(r.Context(), id); err != nil {
			http.Error(w, "no such room", http.StatusNotFound)
			return
		}
		hub.ServeWS(w, r, id)
	})
	s.HTTP = httptest.NewServer(mux)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	if opt.NoRun {
		close(done)
	} else {
		go func() { _ = hub.Run(ctx); close(done) }()
	}
	t.Cleanup(func() {
		cancel()
		<-done
		s.HTTP.Close()
	})
	return s
}

// Token mints a token for sub with role in roomID.
func (s *Server) Token(t testing.TB, sub string, role room.Role, roomID string) string {
	t.Helper()
	tok, err := s.Auth.Mint(room.Identity{ID: sub, Name: sub, Role: role, Room: roomID}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// URL is the WebSocket URL of a room with a token ("" for a guest).
func (s *Server) URL(roomID, token string) string {
	u := "ws" + strings.TrimPrefix(s.HTTP.URL, "http") + "/ws/" + roomID
	if token != "" {
		u += "?token=" + token
	}
	return u
}

// Dial connects and waits for the welcome; it fails the test otherwise.
func (s *Server) Dial(t testing.TB, roomID, token string) *Client {
	t.Helper()
	c, _, err := s.DialRaw(roomID, token, nil, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", roomID, err)
	}
	ev := c.Next(t, func(e room.Event) bool { return true })
	if ev.Type != "welcome" {
		t.Fatalf("first event: got %s, want welcome (%s)", ev.Type, ev.AppendJSON(nil))
	}
	c.Welcome = ev
	return c
}

// DialRaw connects without waiting for anything.
func (s *Server) DialRaw(roomID, token string, header http.Header, d *websocket.Dialer) (*Client, *http.Response, error) {
	if d == nil {
		d = websocket.DefaultDialer
	}
	ws, resp, err := d.Dial(s.URL(roomID, token), header)
	if err != nil {
		return nil, resp, err
	}
	c := &Client{WS: ws, events: make(chan room.Event, 4096), done: make(chan struct{})}
	go c.read()
	return c, resp, nil
}

// Client is a gorilla client that collects the events it receives.
type Client struct {
	WS      *websocket.Conn
	Welcome room.Event

	events chan room.Event
	done   chan struct{}
	err    error // the error that ended reading; valid after done
}

func (c *Client) read() {
	defer close(c.done)
	for {
		_, data, err := c.WS.ReadMessage()
		if err != nil {
			c.err = err
			return
		}
		var ev room.Event
		if err := json.Unmarshal(data, &ev); err != nil {
			c.err = fmt.Errorf("bad frame %q: %w", data, err)
			return
		}
		c.events <- ev
	}
}

// Send writes one frame built from fields.
func (c *Client) Send(t testing.TB, fields map[string]any) {
	t.Helper()
	b, err := json.Marshal(fields)
	if err != nil {
		t.Fatal(err)
	}
	c.SendRaw(t, b)
}

// SendRaw writes one text frame as is.
func (c *Client) SendRaw(t testing.TB, b []byte) {
	t.Helper()
	if err := c.WS.WriteMessage(websocket.TextMessage, b); err != nil {
		t.Fatalf("send: %v", err)
	}
}

// Next returns the next event that matches, skipping others; it fails the
// test if none arrives within Wait or the connection ends.
func (c *Client) Next(t testing.TB, match func(room.Event) bool) room.Event {
	t.Helper()
	timer := time.NewTimer(Wait)
	defer timer.Stop()
	for {
		select {
		case ev := <-c.events:
			if match(ev) {
				return ev
			}
		case <-c.done:
			// Drain what was read before the end.
		drain:
			for {
				select {
				case ev := <-c.events:
					if match(ev) {
						return ev
					}
				default:
					break drain
				}
			}
			t.Fatalf("connection ended while waiting: %v", c.err)
		case <-timer.C:
			t.Fatalf("no matching event within %s", Wait)
		}
	}
}

// Expect returns the next event of type kind.
func (c *Client) Expect(t testing.TB, kind string) room.Event {
	t.Helper()
	return c.Next(t, func(e room.Event) bool { return e.Type == kind })
}

// ExpectError returns the next error event and checks its code.
func (c *Client) ExpectError(t testing.TB, code string) room.Event {
	t.Helper()
	ev := c.Expect(t, "error")
	if got := Field[string](t, ev, "code"); got != code {
		t.Fatalf("error code: got %q, want %q (%s)", got, code, ev.AppendJSON(nil))
	}
	return ev
}

// Quiet sends a probe frame with ref and waits for its error reply, then
// reports the events that came before it (the server answers in order, so
// everything caused by earlier frames has been queued by then).
func (c *Client) Quiet(t testing.TB, ref string) []room.Event {
	t.Helper()
	c.Send(t, map[string]any{"type": "roomtest.probe", "ref": ref})
	var before []room.Event
	c.Next(t, func(e room.Event) bool {
		if e.Type == "error" && e.Ref == ref {
			return true
		}
		before = append(before, e)
		return false
	})
	return before
}

// ExpectClose waits for the connection to end and returns the close code
// (0 if it ended without a close frame).
func (c *Client) ExpectClose(t testing.TB) int {
	t.Helper()
	timer := time.NewTimer(Wait)
	defer timer.Stop()
	for open := true; open; {
		select {
		case <-c.events: // keep the reader unblocked
		case <-c.done:
			open = false
		case <-timer.C:
			t.Fatalf("connection still open after %s", Wait)
		}
	}
	var ce *websocket.CloseError
	if errors.As(c.err, &ce) {
		return ce.Code
	}
	return 0
}

// Close closes the connection.
func (c *Client) Close() { c.WS.Close() }

// Field decodes one body field of an event.
func Field[T any](t testing.TB, ev room.Event, name string) T {
	t.Helper()
	var v T
	ok, err := ev.Field(name, &v)
	if err != nil || !ok {
		t.Fatalf("event %s: field %s: ok=%v err=%v (%s)", ev.Type, name, ok, err, ev.AppendJSON(nil))
	}
	return v
}

// Not matches events whose type is not one of kinds (to skip counters).
func Not(kinds ...string) func(room.Event) bool {
	return func(e room.Event) bool {
		for _, k := range kinds {
			if e.Type == k {
				return false
			}
		}
		return true
	}
}
