package room

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// Seeds live in testdata/fuzz/<Target>; these are the same shapes, so a
// plain `go test` covers them even without the corpus files.
var frameSeeds = []string{
	`{"type":"chat.send","text":"hi","ref":"1"}`,
	`{"type":"resume","after_seq":3,"epoch":"abc"}`,
	`{"type":"like","count":5}`,
	`{"type":"mod.terms","add":["a","b"],"remove":[]}`,
	`{"type":5}`, `{"ref":{"x":1}}`, `{"type":"x","ref":null}`, `[]`, `"s"`, `null`, `{`, ``,
	`{"type":"\u0000","ref":"\ud800"}`, `{"type":"test.echo","text":123}`,
	`{"type":"resume","after_seq":-1}`, `{"type":"resume","after_seq":1e30}`,
}

func FuzzParseFrame(f *testing.F) {
	for _, s := range frameSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		h, err := parseFrame(data)
		if err == nil {
			if h.Type == "" {
				t.Fatalf("accepted a frame without type: %q", data)
			}
			if !json.Valid(data) {
				t.Fatalf("accepted invalid JSON: %q", data)
			}
		} else if err.Code != CodeBadRequest || err.Message == "" {
			t.Fatalf("error: got %+v", err)
		}
		// The error event for it always encodes to valid JSON.
		if ev := errorEvent(h.Ref, CodeBadRequest, "x"); !json.Valid(ev.AppendJSON(nil)) {
			t.Fatalf("error event not JSON for ref %q", h.Ref)
		}
		_ = refOf(data)
	})
}

// FuzzDispatch runs frames through the real dispatcher (table, role
// checks, handlers, resume) on a connection without a socket: whatever the
// frame, nothing panics, the sender gets at most one error, and every
// queued frame is valid JSON.
func FuzzDispatch(f *testing.F) {
	for _, s := range frameSeeds {
		f.Add([]byte(s), uint8(RoleViewer))
	}
	h, c := fuzzHub(f)
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, data []byte, role uint8) {
		c.id.Role = Role(role % uint8(RoleAdmin+1))
		c.mu.Lock()
		c.queue, c.closing = nil, false
		c.mu.Unlock()
		h.dispatch(ctx, c, data)
		c.mu.Lock()
		queued := c.queue
		c.mu.Unlock()
		errs := 0
		for _, it := range queued {
			var ev Event
			b := preparedBytes(t, it)
			if err := json.Unmarshal(b, &ev); err != nil {
				t.Fatalf("queued frame is not an event: %q", b)
			}
			if ev.Type == "error" {
				errs++
			}
		}
		if errs > 1 {
			t.Fatalf("%d errors for one frame %q", errs, data)
		}
		if _, err := parseFrame(data); err != nil && errs != 1 {
			t.Fatalf("bad frame %q: got %d errors, want 1", data, errs)
		}
	})
}

func fuzzHub(tb testing.TB) (*Hub, *conn) {
	auth, err := NewAuth(AuthConfig{JWTSecret: "fuzz-secret-0123456789", AdminKey: "fuzz-admin-key-0123456789"})
	if err != nil {
		tb.Fatal(err)
	}
	store, err := OpenFileStore(tb.TempDir())
	if err != nil {
		tb.Fatal(err)
	}
	r, _ := NewRoom(Room{ID: "demo", Title: "Demo"}, time.Now())
	if _, err := store.Create(context.Background(), r); err != nil {
		tb.Fatal(err)
	}
	cfg := DefaultHubConfig()
	cfg.SendQueue = 65536
	h, err := NewHub(cfg, HubDeps{Auth: auth, Rooms: store, Bus: NewMemoryBus(64)})
	if err != nil {
		tb.Fatal(err)
	}
	h.Handle("test.echo", RoleViewer, func(ctx context.Context, req *Request) error {
		var b struct {
			Text string `json:"text"`
		}
		if err := req.Decode(&b); err != nil {
			return err
		}
		_, err := req.Hub().Publish(ctx, req.Room, MustEvent("test.echoed", map[string]any{"text": b.Text}))
		return err
	})
	c := newConn(h, nil, Identity{ID: "u", Name: "u", Role: RoleViewer}, "127.0.0.1")
	c.pumping = true // no socket: pretend a pump runs, so none starts and the queue stays for inspection
	if _, err := h.join(context.Background(), r.Scope(), c); err != nil {
		tb.Fatal(err)
	}
	c.release(qitem{}, 0)
	return h, c
}

// preparedBytes recovers the payload of a queued frame by writing its
// bytes on the server side of a loopback WebSocket pair and reading them
// with gorilla's client: the frame must parse as one text message.
func preparedBytes(t *testing.T, it qitem) []byte {
	t.Helper()
	wirePair.once.Do(func() {
		up := websocket.Upgrader{}
		ready := make(chan *websocket.Conn, 1)
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ws, err := up.Upgrade(w, r, nil)
			if err == nil {
				ready <- ws
			}
		}))
		cl, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http"), nil)
		if err != nil {
			panic(err)
		}
		wirePair.server, wirePair.client = <-ready, cl
	})
	if _, err := wirePair.server.UnderlyingConn().Write(it.f); err != nil {
		t.Fatal(err)
	}
	mt, b, err := wirePair.client.ReadMessage()
	if err == nil && mt != websocket.TextMessage {
		t.Fatalf("message type %d, want text", mt)
	}
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var wirePair struct {
	once           sync.Once
	server, client *websocket.Conn
}
