package room_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/gorilla/websocket"

	"liveroom/room"
	"liveroom/room/roomtest"
)

// echo registers test.say: a viewer+ kind that publishes what it is given.
func echo(h *room.Hub, _ *roomtest.Server) error {
	h.Handle("test.say", room.RoleViewer, func(ctx context.Context, req *room.Request) error {
		var b struct {
			Text *string `json:"text"`
		}
		if err := req.Decode(&b); err != nil {
			return err
		}
		if b.Text == nil {
			return room.Errorf(room.CodeBadRequest, "text is required")
		}
		_, err := req.Hub().Publish(ctx, req.Room, room.MustEvent("test.said", map[string]any{"text": *b.Text, "by": req.From.ID}))
		return err
	})
	h.Handle("test.whisper", room.RoleGuest, func(ctx context.Context, req *room.Request) error {
		req.Reply(room.MustEvent("test.whispered", map[string]any{"you": req.From.ID}))
		return nil
	})
	h.Handle("test.panic", room.RoleGuest, func(ctx context.Context, req *room.Request) error {
		panic("handler bug")
	})
	h.Handle("test.mod", room.RoleModerator, func(ctx context.Context, req *room.Request) error { return nil })
	return nil
}

func cfgWith(f func(*room.HubConfig)) *room.HubConfig {
	c := room.DefaultHubConfig()
	c.MaxConnsPerIP = 0
	f(&c)
	return &c
}

func signed(t *testing.T, method jwt.SigningMethod, key any, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(method, claims).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestTokensRefused(t *testing.T) {
	s := roomtest.New(t, roomtest.Options{})
	good := func() jwt.MapClaims {
		return jwt.MapClaims{"sub": "u1", "name": "U", "role": "viewer", "room": "demo", "exp": time.Now().Add(time.Hour).Unix()}
	}
	with := func(k string, v any) jwt.MapClaims { c := good(); c[k] = v; return c }
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	none := signed(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, good())
	cases := []struct {
		name, room, token string
	}{
		{"forged", "demo", signed(t, jwt.SigningMethodHS256, []byte("some-other-secret-0123456"), good())},
		{"expired", "demo", signed(t, jwt.SigningMethodHS256, []byte(roomtest.Secret), with("exp", time.Now().Add(-time.Minute).Unix()))},
		{"no exp", "demo", signed(t, jwt.SigningMethodHS256, []byte(roomtest.Secret), jwt.MapClaims{"sub": "u1", "role": "viewer", "room": "demo"})},
		{"alg none", "demo", none},
		{"HS512", "demo", signed(t, jwt.SigningMethodHS512, []byte(roomtest.Secret), good())},
		{"RS256", "demo", signed(t, jwt.SigningMethodRS256, rsaKey, good())},
		{"other room", "demo", signed(t, jwt.SigningMethodHS256, []byte(roomtest.Secret), with("room", "other"))},
		{"bad role", "demo", signed(t, jwt.SigningMethodHS256, []byte(roomtest.Secret), with("role", "guest"))},
		{"garbage", "demo", "not.a.jwt"},
		{"private room, no token", "priv", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, _, err := s.DialRaw(tc.room, tc.token, nil, nil)
			if err != nil {
				t.Fatalf("dial: got %v, want an upgrade then an error", err)
			}
			defer c.Close()
			ev := c.Next(t, func(room.Event) bool { return true })
			if ev.Type != "error" || roomtest.Field[string](t, ev, "code") != room.CodeUnauthorized {
				t.Fatalf("first event: got %s, want error unauthorized", ev.AppendJSON(nil))
			}
			if got := c.ExpectClose(t); got != room.CloseUnauthorized {
				t.Fatalf("close code: got %d, want %d", got, room.CloseUnauthorized)
			}
		})
	}
	t.Run("star room token accepted", func(t *testing.T) {
		c := s.Dial(t, "demo", s.Token(t, "a1", room.RoleAdmin, "*"))
		defer c.Close()
	})
}

func TestWelcome(t *testing.T) {
	s := roomtest.New(t, roomtest.Options{})
	tests := []struct {
		name, token, wantRole string
	}{
		{"guest", "", "guest"},
		{"viewer", s.Token(t, "v1", room.RoleViewer, "demo"), "viewer"},
		{"host", s.Token(t, "h1", room.RoleHost, "demo"), "host"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := s.Dial(t, "demo", tc.token)
			defer c.Close()
			you := roomtest.Field[map[string]any](t, c.Welcome, "you")
			if you["role"] != tc.wantRole {
				t.Errorf("you.role: got %v, want %s", you["role"], tc.wantRole)
			}
			if tc.wantRole == "guest" && !strings.HasPrefix(fmt.Sprint(you["id"]), "guest-") {
				t.Errorf("guest id: got %v, want guest-…", you["id"])
			}
			rm := roomtest.Field[map[string]any](t, c.Welcome, "room")
			for _, k := range []string{"id", "title", "live", "viewers", "likes", "pinned", "sale", "slow_s"} {
				if _, ok := rm[k]; !ok {
					t.Errorf("welcome.room lacks %s: %v", k, rm)
				}
			}
			if rm["id"] != "demo" || rm["live"] != false || rm["pinned"] != nil {
				t.Errorf("welcome.room: got %v", rm)
			}
			if c.Welcome.Seq != 0 {
				t.Errorf("welcome seq in a fresh room: got %d, want 0", c.Welcome.Seq)
			}
			for _, k := range []string{"history", "epoch", "server_time"} {
				if ok, _ := c.Welcome.Field(k, new(any)); !ok {
					t.Errorf("welcome lacks %s", k)
				}
			}
		})
	}
}

func TestOrigin(t *testing.T) {
	s := roomtest.New(t, roomtest.Options{Hub: cfgWith(func(c *room.HubConfig) {
		c.AllowedOrigins = []string{"https://shop.example.com"}
	})})
	host := strings.TrimPrefix(s.HTTP.URL, "http://")
	tests := []struct {
		origin   string
		wantCode int // HTTP status of the handshake
	}{
		{"", http.StatusSwitchingProtocols},
		{"http://" + host, http.StatusSwitchingProtocols},
		{"https://shop.example.com", http.StatusSwitchingProtocols},
		{"https://evil.example.com", http.StatusForbidden},
		{"null", http.StatusForbidden},
	}
	for _, tc := range tests {
		t.Run(tc.origin, func(t *testing.T) {
			h := http.Header{}
			if tc.origin != "" {
				h.Set("Origin", tc.origin)
			}
			c, resp, err := s.DialRaw("demo", "", h, nil)
			if c != nil {
				c.Close()
			}
			if resp == nil {
				t.Fatalf("no response: %v", err)
			}
			if resp.StatusCode != tc.wantCode {
				t.Fatalf("status: got %d, want %d", resp.StatusCode, tc.wantCode)
			}
		})
	}
}

func TestConnectionsPerAddress(t *testing.T) {
	s := roomtest.New(t, roomtest.Options{Hub: cfgWith(func(c *room.HubConfig) { c.MaxConnsPerIP = 2 })})
	a := s.Dial(t, "demo", "")
	b := s.Dial(t, "other", "")
	defer b.Close()
	c, _, err := s.DialRaw("demo", "", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	c.ExpectError(t, room.CodeTooManyConns)
	if got := c.ExpectClose(t); got != room.CloseTooManyConns {
		t.Fatalf("close: got %d, want %d", got, room.CloseTooManyConns)
	}
	// Once one leaves, its slot is free again (teardown is asynchronous).
	a.Close()
	deadline := time.Now().Add(roomtest.Wait)
	for {
		d, _, err := s.DialRaw("demo", "", nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		ev := d.Next(t, func(room.Event) bool { return true })
		d.Close()
		if ev.Type == "welcome" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("slot never freed: last event %s", ev.AppendJSON(nil))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestBadFrames(t *testing.T) {
	s := roomtest.New(t, roomtest.Options{Setup: echo, Hub: cfgWith(func(c *room.HubConfig) { c.ReadLimit = 1024 })})
	c := s.Dial(t, "demo", s.Token(t, "v1", room.RoleViewer, "demo"))
	defer c.Close()
	g := s.Dial(t, "demo", "")
	defer g.Close()
	tests := []struct {
		name     string
		client   *roomtest.Client
		frame    string
		wantCode string
		wantRef  string
	}{
		{"malformed", c, `{"type":`, room.CodeBadRequest, ""},
		{"not an object", c, `["chat.send"]`, room.CodeBadRequest, ""},
		{"string", c, `"hello"`, room.CodeBadRequest, ""},
		{"no type", c, `{"ref":"r1"}`, room.CodeBadRequest, "r1"},
		{"type not string", c, `{"type":5,"ref":"r2"}`, room.CodeBadRequest, "r2"},
		{"empty type", c, `{"type":"","ref":"r3"}`, room.CodeBadRequest, "r3"},
		{"ref not string", c, `{"type":"test.say","ref":7}`, room.CodeBadRequest, ""},
		{"unknown type", c, `{"type":"nope","ref":"r4"}`, room.CodeBadRequest, "r4"},
		{"missing field", c, `{"type":"test.say","ref":"r5"}`, room.CodeBadRequest, "r5"},
		{"wrong field type", c, `{"type":"test.say","text":1,"ref":"r6"}`, room.CodeBadRequest, "r6"},
		{"oversize", c, `{"type":"test.say","ref":"r7","text":"` + strings.Repeat("x", 2000) + `"}`, room.CodeTooLong, "r7"},
		{"resume without after_seq", c, `{"type":"resume","ref":"r8"}`, room.CodeBadRequest, "r8"},
		{"guest needs sign-in", g, `{"type":"test.say","text":"hi","ref":"r9"}`, room.CodeUnauthorized, "r9"},
		{"viewer cannot moderate", c, `{"type":"test.mod","ref":"r10"}`, room.CodeForbidden, "r10"},
		{"handler panic", c, `{"type":"test.panic","ref":"r11"}`, room.CodeUnavailable, "r11"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.client.SendRaw(t, []byte(tc.frame))
			ev := tc.client.Expect(t, "error")
			if got := roomtest.Field[string](t, ev, "code"); got != tc.wantCode {
				t.Errorf("code: got %q, want %q", got, tc.wantCode)
			}
			if ev.Ref != tc.wantRef {
				t.Errorf("ref: got %q, want %q", ev.Ref, tc.wantRef)
			}
			if msg := roomtest.Field[string](t, ev, "message"); msg == "" {
				t.Errorf("empty message")
			}
			// Nothing else happened: the next thing we hear is our probe's answer.
			for _, ev := range tc.client.Quiet(t, "probe-"+tc.name) {
				if ev.Type != "viewers" && ev.Type != "likes" { // counters come and go
					t.Errorf("extra event: %s", ev.AppendJSON(nil))
				}
			}
		})
	}
	t.Run("binary", func(t *testing.T) {
		if err := c.WS.WriteMessage(websocket.BinaryMessage, []byte{1, 2, 3}); err != nil {
			t.Fatal(err)
		}
		c.ExpectError(t, room.CodeBadRequest)
	})
}

func TestOversizeAboveHardLimitCloses(t *testing.T) {
	s := roomtest.New(t, roomtest.Options{Hub: cfgWith(func(c *room.HubConfig) { c.ReadLimit = 1024; c.MaxFrame = 4096 })})
	c := s.Dial(t, "demo", "")
	c.SendRaw(t, []byte(`{"type":"x","pad":"`+strings.Repeat("y", 8000)+`"}`))
	if got := c.ExpectClose(t); got != websocket.CloseMessageTooBig {
		t.Fatalf("close: got %d, want %d", got, websocket.CloseMessageTooBig)
	}
}

func TestRoomEventsInOrder(t *testing.T) {
	s := roomtest.New(t, roomtest.Options{Setup: echo})
	var clients []*roomtest.Client
	for i := range 3 {
		c := s.Dial(t, "demo", s.Token(t, fmt.Sprintf("u%d", i), room.RoleViewer, "demo"))
		defer c.Close()
		clients = append(clients, c)
	}
	const n = 30
	for i := range n {
		clients[i%3].Send(t, map[string]any{"type": "test.say", "text": fmt.Sprint(i)})
	}
	// Every client sees the same n events with strictly increasing seq; each
	// sender's own messages keep their order.
	var first []string
	for ci, c := range clients {
		var got []string
		var last uint64
		for range n {
			ev := c.Expect(t, "test.said")
			if ev.Seq <= last || ev.TS == 0 {
				t.Fatalf("client %d: seq %d after %d (ts %d)", ci, ev.Seq, last, ev.TS)
			}
			last = ev.Seq
			got = append(got, roomtest.Field[string](t, ev, "text"))
		}
		if ci == 0 {
			first = got
		} else if strings.Join(got, ",") != strings.Join(first, ",") {
			t.Fatalf("client %d order: got %v, want %v", ci, got, first)
		}
	}
}

func TestPrivateEvents(t *testing.T) {
	s := roomtest.New(t, roomtest.Options{Setup: echo})
	tok := s.Token(t, "buyer", room.RoleViewer, "demo")
	tab1, tab2 := s.Dial(t, "demo", tok), s.Dial(t, "demo", tok)
	other := s.Dial(t, "demo", s.Token(t, "someone", room.RoleViewer, "demo"))
	mod := s.Dial(t, "demo", s.Token(t, "m", room.RoleModerator, "demo"))
	for _, c := range []*roomtest.Client{tab1, tab2, other, mod} {
		defer c.Close()
	}
	ctx := context.Background()
	if err := s.Hub.SendUser(ctx, "demo", "buyer", room.MustEvent("cart", map[string]any{"items": []any{}})); err != nil {
		t.Fatal(err)
	}
	if err := s.Hub.SendRole(ctx, "demo", room.RoleModerator, room.MustEvent("mod.note", map[string]any{"n": 1})); err != nil {
		t.Fatal(err)
	}
	for i, c := range []*roomtest.Client{tab1, tab2} {
		if ev := c.Expect(t, "cart"); ev.Seq != 0 {
			t.Errorf("tab %d: private event has seq %d", i, ev.Seq)
		}
	}
	mod.Expect(t, "mod.note")
	for name, c := range map[string]*roomtest.Client{"other": other, "tab1": tab1} {
		for _, ev := range c.Quiet(t, "p") {
			if ev.Type == "cart" || ev.Type == "mod.note" {
				t.Errorf("%s got %s", name, ev.Type)
			}
		}
	}
	// Reply goes to the sending connection only, with its ref.
	tab1.Send(t, map[string]any{"type": "test.whisper", "ref": "w1"})
	if ev := tab1.Expect(t, "test.whispered"); ev.Ref != "w1" {
		t.Errorf("reply ref: got %q, want w1", ev.Ref)
	}
	for _, ev := range tab2.Quiet(t, "p2") {
		if ev.Type == "test.whispered" {
			t.Errorf("tab2 got another tab's reply")
		}
	}

	// The hub finds a user's connections by id: once one tab has left, the
	// other still gets the user's events and other users still do not.
	tab1.Close()
	for deadline := time.Now().Add(5 * time.Second); s.Hub.Conns() != 3; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("connections: got %d, want 3 after a tab closed", s.Hub.Conns())
		}
	}
	if err := s.Hub.SendUser(ctx, "demo", "buyer", room.MustEvent("cart", map[string]any{"items": []any{}})); err != nil {
		t.Fatal(err)
	}
	tab2.Expect(t, "cart")
	for _, ev := range other.Quiet(t, "p3") {
		if ev.Type == "cart" {
			t.Errorf("other got the buyer's cart")
		}
	}
}

func TestResume(t *testing.T) {
	s := roomtest.New(t, roomtest.Options{Setup: echo, Hub: cfgWith(func(c *room.HubConfig) { c.HistorySize, c.ResumeRate = 20, 100 })})
	ctx := context.Background()
	say := func(text string) {
		if _, err := s.Hub.Publish(ctx, "demo", room.MustEvent("test.said", map[string]any{"text": text})); err != nil {
			t.Fatal(err)
		}
	}
	tok := s.Token(t, "v", room.RoleViewer, "demo")
	c := s.Dial(t, "demo", tok)
	say("before")
	lastSeq := c.Expect(t, "test.said").Seq
	epoch := roomtest.Field[string](t, c.Welcome, "epoch")
	c.Close()

	var want []string
	for i := range 10 {
		want = append(want, fmt.Sprint("missed-", i))
		say(want[i])
		// Transient counters in between must not be replayed.
		if _, err := s.Hub.Publish(ctx, "demo", room.Event{Type: "viewers", Body: []byte(`{"count":3}`), Transient: true}); err != nil {
			t.Fatal(err)
		}
	}

	c = s.Dial(t, "demo", tok)
	defer c.Close()
	c.Send(t, map[string]any{"type": "resume", "after_seq": lastSeq, "epoch": epoch, "ref": "res"})
	w := c.Expect(t, "welcome")
	if w.Ref != "res" || !roomtest.Field[bool](t, w, "resumed") {
		t.Fatalf("resume reply: got %s", w.AppendJSON(nil))
	}
	var got []string
	prev := lastSeq
	for _, ev := range roomtest.Field[[]room.Event](t, w, "missed") {
		if ev.Seq <= prev {
			t.Fatalf("missed out of order: %d after %d", ev.Seq, prev)
		}
		prev = ev.Seq
		if ev.Type == "viewers" {
			t.Fatalf("transient event replayed")
		}
		var text string
		if _, err := ev.Field("text", &text); err != nil {
			t.Fatal(err)
		}
		got = append(got, text)
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("missed: got %v, want %v", got, want)
	}
	if seq := w.Seq; seq < prev {
		t.Fatalf("welcome seq %d below last missed %d", seq, prev)
	}
	// Live events continue after the resume point.
	say("live")
	if ev := c.Expect(t, "test.said"); roomtest.Field[string](t, ev, "text") != "live" {
		t.Fatalf("after resume: got %s", ev.AppendJSON(nil))
	}

	t.Run("gap too old", func(t *testing.T) {
		for i := range 30 {
			say(fmt.Sprint("flood-", i))
		}
		c.Send(t, map[string]any{"type": "resume", "after_seq": lastSeq, "ref": "old"})
		if ev := c.ExpectError(t, room.CodeExpired); ev.Ref != "old" {
			t.Errorf("expired ref: got %q", ev.Ref)
		}
		w := c.Expect(t, "welcome")
		if roomtest.Field[bool](t, w, "resumed") {
			t.Fatalf("resumed: got true, want false")
		}
	})
	t.Run("other epoch", func(t *testing.T) {
		c.Send(t, map[string]any{"type": "resume", "after_seq": 1, "epoch": "not-this-one"})
		c.ExpectError(t, room.CodeExpired)
		c.Expect(t, "welcome")
	})
	t.Run("ahead of the room", func(t *testing.T) {
		c.Send(t, map[string]any{"type": "resume", "after_seq": 1 << 40})
		c.ExpectError(t, room.CodeExpired)
		c.Expect(t, "welcome")
	})
}

// A client that stops reading is cut off with 4008; the others get every
// event.
func TestSlowConsumer(t *testing.T) {
	s := roomtest.New(t, roomtest.Options{Hub: cfgWith(func(c *room.HubConfig) { c.SendQueue = 16 })})
	// A raw client with a fixed receive buffer (no autotuning) that reads
	// nothing for a while. (Much smaller stalls loopback TCP: its 64 KiB
	// segments no longer fit.)
	d := &websocket.Dialer{NetDial: func(network, addr string) (net.Conn, error) {
		c, err := net.Dial(network, addr)
		if err == nil {
			_ = c.(*net.TCPConn).SetReadBuffer(256 << 10)
		}
		return c, err
	}}
	slow, _, err := d.Dial(s.URL("demo", ""), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	if _, msg, err := slow.ReadMessage(); err != nil || !strings.Contains(string(msg), `"welcome"`) {
		t.Fatalf("welcome: %s %v", msg, err)
	}
	fast := s.Dial(t, "demo", "")
	defer fast.Close()

	// Publish in steps the fast client keeps up with (its queue is small
	// too) until the kernel buffers of the slow one are full and its queue
	// overflows; it reads nothing meanwhile.
	const n = 6000
	pad := strings.Repeat("z", 4096)
	for i := 0; i < n && (i%8 != 0 || gatherCounter(t, s, "liveroom_ws_drops_total", "reason", "queue_full") == 0); i++ {
		if _, err := s.Hub.Publish(context.Background(), "demo", room.MustEvent("test.big", map[string]any{"i": i, "pad": pad})); err != nil {
			t.Fatal(err)
		}
		if i%8 == 7 {
			for j := i - 7; j <= i; j++ {
				if got := roomtest.Field[int](t, fast.Expect(t, "test.big"), "i"); got != j {
					t.Fatalf("fast client: got event %d, want %d", got, j)
				}
			}
		}
	}
	if got := gatherCounter(t, s, "liveroom_ws_drops_total", "reason", "queue_full"); got < 1 {
		t.Fatalf("queue_full drops: got %v, want ≥ 1", got)
	}
	// Now read: some events, the slow_consumer error, then the close.
	_ = slow.SetReadDeadline(time.Now().Add(roomtest.Wait))
	sawError := false
	for {
		_, msg, err := slow.ReadMessage()
		if err != nil {
			if !websocket.IsCloseError(err, room.CloseSlowConsumer) {
				t.Fatalf("slow client: got %v, want close %d", err, room.CloseSlowConsumer)
			}
			break
		}
		if strings.Contains(string(msg), `"slow_consumer"`) {
			sawError = true
		}
	}
	if !sawError {
		t.Errorf("slow client never got the slow_consumer error")
	}
	// The server tears down once it has the client's close reply.
	waitFor(t, "disconnects{slow_consumer} = 1", func() bool {
		return gatherCounter(t, s, "liveroom_ws_disconnects_total", "reason", "slow_consumer") == 1
	})
}

func gatherCounter(t *testing.T, s *roomtest.Server, name, label, value string) float64 {
	t.Helper()
	mfs, err := s.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	total := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if label == "" || (lp.GetName() == label && lp.GetValue() == value) {
					total += m.GetCounter().GetValue()
				}
			}
			if label == "" && len(m.GetLabel()) == 0 {
				total += m.GetCounter().GetValue()
			}
		}
	}
	return total
}

// waitFor polls cond until it holds, failing after roomtest.Wait.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(roomtest.Wait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("still not true after %s: %s", roomtest.Wait, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
