package chat_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"liveroom/chat"
	"liveroom/chat/chattest"
	"liveroom/room"
	"liveroom/room/roomtest"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type env struct {
	*roomtest.Server
	chat  *chat.Service
	clock *clock
}

type opts struct {
	chat  func(*chat.Config)
	hub   func(*room.HubConfig)
	audit chat.AuditLog
	state chattest.State // nil: chat's own memory state
	bus   room.Bus       // nil: a memory bus
	clock *clock         // nil: a new one
}

func newEnv(t *testing.T, o opts) *env {
	t.Helper()
	e := &env{clock: o.clock}
	if e.clock == nil {
		e.clock = &clock{t: time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)}
	}
	hc := room.DefaultHubConfig()
	hc.MaxConnsPerIP = 0
	hc.FrameBurst = 1000
	hc.LikesInterval = 50 * time.Millisecond
	if o.hub != nil {
		o.hub(&hc)
	}
	cc := chat.DefaultConfig()
	cc.ChatBurst = 1000
	cc.LikeBurst = 1000
	if o.chat != nil {
		o.chat(&cc)
	}
	e.Server = roomtest.New(t, roomtest.Options{Hub: &hc, Bus: o.bus, Setup: func(h *room.Hub, s *roomtest.Server) error {
		d := chat.Deps{Hub: h, Rooms: s.Rooms, Audit: o.audit, Now: e.clock.Now, Metrics: s.Registry}
		if o.state != nil {
			d.History, d.Held, d.Sanctions, d.Rules, d.Ranks = o.state, o.state, o.state, o.state, o.state
		}
		svc, err := chat.New(cc, d)
		e.chat = svc
		return err
	}})
	return e
}

func (e *env) join(t *testing.T, roomID, user string, role room.Role) *roomtest.Client {
	t.Helper()
	tok := ""
	if role != room.RoleGuest {
		tok = e.Token(t, user, role, roomID)
	}
	c := e.Dial(t, roomID, tok)
	t.Cleanup(c.Close)
	return c
}

func say(t *testing.T, c *roomtest.Client, text, ref string) {
	t.Helper()
	c.Send(t, map[string]any{"type": "chat.send", "text": text, "ref": ref})
}

type msg struct {
	ID   string `json:"id"`
	Text string `json:"text"`
	User struct {
		ID, Name, Role string
	} `json:"user"`
	Reason string `json:"reason"`
}

func message(t *testing.T, ev room.Event) msg {
	t.Helper()
	return roomtest.Field[msg](t, ev, "message")
}

// nextMessage returns the next chat.message.
func nextMessage(t *testing.T, c *roomtest.Client) (room.Event, msg) {
	t.Helper()
	ev := c.Expect(t, "chat.message")
	return ev, message(t, ev)
}

// quietOf reports events of the given types a client received before a probe.
func quietOf(t *testing.T, c *roomtest.Client, kinds ...string) []room.Event {
	t.Helper()
	var out []room.Event
	for _, ev := range c.Quiet(t, "probe") {
		for _, k := range kinds {
			if ev.Type == k {
				out = append(out, ev)
			}
		}
	}
	return out
}

func TestChatReachesEveryoneInOrder(t *testing.T) {
	e := newEnv(t, opts{})
	v1 := e.join(t, "demo", "v1", room.RoleViewer)
	v2 := e.join(t, "demo", "v2", room.RoleViewer)
	mod := e.join(t, "demo", "m1", room.RoleModerator)
	senders := []*roomtest.Client{v1, v2, mod}
	const n = 30
	for i := range n {
		say(t, senders[i%3], fmt.Sprintf("hello %d", i), "")
	}
	var reference []string
	for ci, c := range senders {
		var got []string
		var last uint64
		perSender := map[string]int{}
		for range n {
			ev, m := nextMessage(t, c)
			if ev.Seq <= last {
				t.Fatalf("client %d: seq %d after %d", ci, ev.Seq, last)
			}
			last = ev.Seq
			if m.ID == "" || m.User.ID == "" || m.User.Role == "" {
				t.Fatalf("incomplete message: %+v", m)
			}
			// Each sender's messages arrive in the order sent.
			var k int
			fmt.Sscanf(m.Text, "hello %d", &k)
			if prev, ok := perSender[m.User.ID]; ok && k <= prev {
				t.Fatalf("client %d: %s's message %d after %d", ci, m.User.ID, k, prev)
			}
			perSender[m.User.ID] = k
			got = append(got, m.ID)
		}
		if ci == 0 {
			reference = got
		} else if strings.Join(got, ",") != strings.Join(reference, ",") {
			t.Fatalf("client %d saw another order", ci)
		}
	}
}

func TestGuests(t *testing.T) {
	e := newEnv(t, opts{})
	t.Run("cannot send", func(t *testing.T) {
		g := e.join(t, "demo", "", room.RoleGuest)
		v := e.join(t, "demo", "v1", room.RoleViewer)
		say(t, g, "hi", "g1")
		if ev := g.ExpectError(t, room.CodeUnauthorized); ev.Ref != "g1" {
			t.Errorf("ref: got %q, want g1", ev.Ref)
		}
		if got := quietOf(t, v, "chat.message"); len(got) != 0 {
			t.Errorf("viewer got %d messages, want 0", len(got))
		}
	})
	t.Run("may send where the room allows", func(t *testing.T) {
		g := e.join(t, "open", "", room.RoleGuest)
		say(t, g, "hi from a guest", "")
		if _, m := nextMessage(t, g); m.User.Role != "guest" || !strings.HasPrefix(m.User.ID, "guest-") {
			t.Errorf("guest message user: got %+v", m.User)
		}
	})
	t.Run("may like", func(t *testing.T) {
		g := e.join(t, "demo", "", room.RoleGuest)
		g.Send(t, map[string]any{"type": "like", "count": 3})
		if got := roomtest.Field[int](t, g.Expect(t, "likes"), "total"); got < 3 {
			t.Errorf("likes total: got %d, want ≥ 3", got)
		}
	})
}

func TestViewerCannotModerate(t *testing.T) {
	e := newEnv(t, opts{})
	v := e.join(t, "demo", "v1", room.RoleViewer)
	for _, kind := range []string{"mod.delete", "mod.timeout", "mod.ban", "mod.unban", "mod.slow", "mod.terms", "mod.approve", "mod.reject"} {
		t.Run(kind, func(t *testing.T) {
			v.Send(t, map[string]any{"type": kind, "ref": kind, "user_id": "v2", "message_id": "x", "seconds": 5})
			if ev := v.ExpectError(t, room.CodeForbidden); ev.Ref != kind {
				t.Errorf("ref: got %q, want %q", ev.Ref, kind)
			}
		})
	}
	entries, err := e.chat.ModerationLog(context.Background(), "demo", 100)
	if err != nil {
		t.Fatal(err)
	}
	if got := len(entries); got != 0 {
		t.Errorf("audit entries: got %d, want 0", got)
	}
}

func TestTimeout(t *testing.T) {
	e := newEnv(t, opts{})
	v1 := e.join(t, "demo", "v1", room.RoleViewer)
	v2 := e.join(t, "demo", "v2", room.RoleViewer)
	mod := e.join(t, "demo", "m1", room.RoleModerator)

	mod.Send(t, map[string]any{"type": "mod.timeout", "user_id": "v1", "seconds": 60})
	for _, c := range []*roomtest.Client{v1, v2, mod} {
		ev := c.Expect(t, "user.timeout")
		if roomtest.Field[string](t, ev, "user_id") != "v1" || roomtest.Field[int64](t, ev, "until") != e.clock.Now().Add(time.Minute).UnixMilli() {
			t.Fatalf("user.timeout: got %s", ev.AppendJSON(nil))
		}
	}
	say(t, v1, "am I muted?", "t1")
	v1.ExpectError(t, room.CodeMuted)
	if got := quietOf(t, v2, "chat.message"); len(got) != 0 {
		t.Fatalf("a muted user's message reached others: %v", got)
	}
	say(t, v2, "others still talk", "")
	for _, c := range []*roomtest.Client{v1, v2} {
		if _, m := nextMessage(t, c); m.User.ID != "v2" {
			t.Fatalf("got message from %s, want v2", m.User.ID)
		}
	}

	e.clock.Add(61 * time.Second)
	say(t, v1, "back again", "")
	if _, m := nextMessage(t, v2); m.Text != "back again" {
		t.Fatalf("after the timeout: got %q", m.Text)
	}

	t.Run("seconds 0 lifts it early", func(t *testing.T) {
		mod.Send(t, map[string]any{"type": "mod.timeout", "user_id": "v1", "seconds": 600})
		v1.Expect(t, "user.timeout")
		mod.Send(t, map[string]any{"type": "mod.timeout", "user_id": "v1", "seconds": 0})
		v1.Expect(t, "user.timeout")
		say(t, v1, "freed", "")
		if _, m := nextMessage(t, v2); m.Text != "freed" {
			t.Fatalf("got %q", m.Text)
		}
	})
	t.Run("bad requests", func(t *testing.T) {
		for _, f := range []map[string]any{
			{"type": "mod.timeout", "user_id": "v1"},
			{"type": "mod.timeout", "seconds": 5},
			{"type": "mod.timeout", "user_id": "v1", "seconds": -1},
			{"type": "mod.timeout", "user_id": "v1", "seconds": 86401},
			{"type": "mod.timeout", "user_id": "v1", "seconds": 9223372037}, // overflows a Duration
			{"type": "mod.timeout", "user_id": "v1", "seconds": "5"},
		} {
			mod.Send(t, f)
			mod.ExpectError(t, room.CodeBadRequest)
		}
	})
	t.Run("not on equals or yourself", func(t *testing.T) {
		e.join(t, "demo", "m2", room.RoleModerator)
		for _, who := range []string{"m1", "m2"} {
			mod.Send(t, map[string]any{"type": "mod.timeout", "user_id": who, "seconds": 5})
			mod.ExpectError(t, room.CodeForbidden)
		}
	})
}

func TestBan(t *testing.T) {
	e := newEnv(t, opts{})
	v1 := e.join(t, "demo", "v1", room.RoleViewer)
	v1tab2 := e.join(t, "demo", "v1", room.RoleViewer)
	v2 := e.join(t, "demo", "v2", room.RoleViewer)
	mod := e.join(t, "demo", "m1", room.RoleModerator)

	mod.Send(t, map[string]any{"type": "mod.ban", "user_id": "v1"})
	if got := roomtest.Field[string](t, v2.Expect(t, "user.banned"), "user_id"); got != "v1" {
		t.Fatalf("user.banned: got %s", got)
	}
	for i, c := range []*roomtest.Client{v1, v1tab2} {
		c.ExpectError(t, room.CodeBanned)
		if got := c.ExpectClose(t); got != room.CloseBanned {
			t.Fatalf("tab %d close: got %d, want %d", i, got, room.CloseBanned)
		}
	}
	// Rejoining is refused the same way.
	c, _, err := e.DialRaw("demo", e.Token(t, "v1", room.RoleViewer, "demo"), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	c.ExpectError(t, room.CodeBanned)
	if got := c.ExpectClose(t); got != room.CloseBanned {
		t.Fatalf("rejoin close: got %d, want %d", got, room.CloseBanned)
	}
	// Other rooms are not affected.
	e.join(t, "other", "v1", room.RoleViewer)

	mod.Send(t, map[string]any{"type": "mod.unban", "user_id": "v1"})
	v2.Expect(t, "user.unbanned")
	back := e.join(t, "demo", "v1", room.RoleViewer)
	say(t, back, "thanks", "")
	if _, m := nextMessage(t, v2); m.User.ID != "v1" {
		t.Fatalf("after unban: message from %s", m.User.ID)
	}
}

func TestSlowMode(t *testing.T) {
	e := newEnv(t, opts{})
	v1 := e.join(t, "demo", "v1", room.RoleViewer)
	mod := e.join(t, "demo", "m1", room.RoleModerator)
	mod.Send(t, map[string]any{"type": "mod.slow", "seconds": 10})
	if got := roomtest.Field[int](t, v1.Expect(t, "room.slow"), "seconds"); got != 10 {
		t.Fatalf("room.slow: got %d, want 10", got)
	}
	late := e.join(t, "demo", "v2", room.RoleViewer)
	if got := roomtest.Field[map[string]any](t, late.Welcome, "room")["slow_s"]; got != float64(10) {
		t.Fatalf("welcome slow_s: got %v, want 10", got)
	}

	steps := []struct {
		who     *roomtest.Client
		advance time.Duration
		wantErr string
	}{
		{v1, 0, ""},
		{v1, 5 * time.Second, room.CodeSlowMode},
		{mod, 0, ""}, // moderators are exempt
		{mod, 0, ""},
		{v1, 5 * time.Second, ""},
	}
	for i, st := range steps {
		e.clock.Add(st.advance)
		say(t, st.who, fmt.Sprint("step ", i), fmt.Sprint(i))
		if st.wantErr != "" {
			st.who.ExpectError(t, st.wantErr)
			continue
		}
		if _, m := nextMessage(t, late); m.Text != fmt.Sprint("step ", i) {
			t.Fatalf("step %d: got %q", i, m.Text)
		}
	}
	mod.Send(t, map[string]any{"type": "mod.slow", "seconds": 0})
	v1.Expect(t, "room.slow")
	say(t, v1, "fast again", "")
	say(t, v1, "and again", "")
	nextMessage(t, late)
	if _, m := nextMessage(t, late); m.Text != "and again" {
		t.Fatalf("slow mode off: got %q", m.Text)
	}
}

func TestBlockedTerms(t *testing.T) {
	e := newEnv(t, opts{})
	v := e.join(t, "demo", "v1", room.RoleViewer)
	host := e.join(t, "demo", "h1", room.RoleHost)
	mod := e.join(t, "demo", "m1", room.RoleModerator)
	mod.Send(t, map[string]any{"type": "mod.terms", "add": []string{"Darn", "bad word", "café"}})
	if got := roomtest.Field[[]string](t, mod.Expect(t, "room.terms"), "terms"); len(got) != 3 {
		t.Fatalf("room.terms: got %v", got)
	}
	if got := quietOf(t, v, "room.terms"); len(got) != 0 {
		t.Fatalf("a viewer saw the terms")
	}
	tests := []struct {
		text    string
		blocked bool
	}{
		{"darn it", true},
		{"DARN!", true},
		{"Dárn", true},
		{"ＤＡＲＮ", true},
		{"darnit", false}, // word boundaries
		{"undarned", false},
		{"this is a BAD   word", true},
		{"bad-word", true},
		{"badword", false},
		{"a bad day, word", false},
		{"CAFE time", true},
		{"cafe\u0301", true}, // decomposed accent
		{"cafeteria", false},
		{"nice dress", false},
	}
	for i, tc := range tests {
		t.Run(tc.text, func(t *testing.T) {
			ref := fmt.Sprint("bt", i)
			say(t, v, tc.text, ref)
			if tc.blocked {
				if ev := v.ExpectError(t, room.CodeForbidden); ev.Ref != ref {
					t.Fatalf("ref: got %q", ev.Ref)
				}
				return
			}
			if _, m := nextMessage(t, host); m.Text != tc.text {
				t.Fatalf("got %q, want %q", m.Text, tc.text)
			}
		})
	}
	t.Run("moderators are exempt", func(t *testing.T) {
		say(t, mod, "darn", "")
		nextMessage(t, host)
	})
	t.Run("remove", func(t *testing.T) {
		mod.Send(t, map[string]any{"type": "mod.terms", "remove": []string{"DARN"}})
		if got := roomtest.Field[[]string](t, mod.Expect(t, "room.terms"), "terms"); len(got) != 2 {
			t.Fatalf("after remove: got %v", got)
		}
		say(t, v, "darn", "")
		if _, m := nextMessage(t, host); m.Text != "darn" {
			t.Fatalf("got %q", m.Text)
		}
	})
}

func TestLinks(t *testing.T) {
	e := newEnv(t, opts{})
	v := e.join(t, "demo", "v1", room.RoleViewer)
	host := e.join(t, "demo", "h1", room.RoleHost)
	mod := e.join(t, "demo", "m1", room.RoleModerator)
	tests := []struct {
		who     *roomtest.Client
		text    string
		allowed bool
	}{
		{v, "see https://example.com/deal", false},
		{v, "go to www.example.org", false},
		{v, "cheap at example.shop/x", false},
		{v, "bit.ly/abc", false},
		{v, "only 3.50 today", true},
		{v, "is it size 10.5?", true},
		{v, "e.g. this one", true},
		{host, "buy at https://shop.example.com/p/1", true},
		{mod, "rules: example.com/rules", true},
	}
	for i, tc := range tests {
		t.Run(tc.text, func(t *testing.T) {
			say(t, tc.who, tc.text, fmt.Sprint(i))
			if !tc.allowed {
				tc.who.ExpectError(t, room.CodeForbidden)
				return
			}
			if _, m := nextMessage(t, v); m.Text != tc.text {
				t.Fatalf("got %q, want %q", m.Text, tc.text)
			}
		})
	}
}

func TestReviewQueue(t *testing.T) {
	e := newEnv(t, opts{})
	author := e.join(t, "demo", "v1", room.RoleViewer)
	other := e.join(t, "demo", "v2", room.RoleViewer)
	mod := e.join(t, "demo", "m1", room.RoleModerator)
	mod2 := e.join(t, "demo", "m2", room.RoleModerator)

	tests := []struct {
		text   string
		reason string // "" = posted
	}{
		{"call me +1 (555) 123-4567", "phone number"},
		{"text 555.123.4567 for a deal", "phone number"},
		{"DM me for the price", "off-platform contact"},
		{"pay with venmo, cheaper", "payment handle"},
		{"send to $cashking", "payment handle"},
		{"Pay Pal accepted", "payment handle"},
		{"mail me at deals@example.com", "email address"},
		{"whatsapp only", "off-platform contact"},
		{"$25 is a steal", ""},
		{"I bought 2 of these", ""},
		{"order 1234567 arrived?", "phone number"},
	}
	for i, tc := range tests {
		t.Run(tc.text, func(t *testing.T) {
			ref := fmt.Sprint("h", i)
			say(t, author, tc.text, ref)
			if tc.reason == "" {
				if _, m := nextMessage(t, other); m.Text != tc.text {
					t.Fatalf("got %q", m.Text)
				}
				return
			}
			ev := author.Expect(t, "chat.held")
			if ev.Ref != ref {
				t.Errorf("author's chat.held ref: got %q, want %q", ev.Ref, ref)
			}
			for _, m := range []*roomtest.Client{mod, mod2} {
				if got := message(t, m.Expect(t, "chat.held")); got.Text != tc.text || got.Reason != tc.reason {
					t.Errorf("held: got %+v, want reason %q", got, tc.reason)
				}
			}
			if got := quietOf(t, other, "chat.held", "chat.message"); len(got) != 0 {
				t.Fatalf("another viewer saw a held message: %v", got)
			}
		})
	}

	t.Run("approve shows it to everyone", func(t *testing.T) {
		say(t, author, "whatsapp me", "a")
		id := message(t, mod.Expect(t, "chat.held")).ID
		mod2.Expect(t, "chat.held")
		late := e.join(t, "demo", "m3", room.RoleModerator)
		if held := roomtest.Field[[]msg](t, late.Welcome, "held"); len(held) == 0 || held[len(held)-1].ID != id {
			t.Fatalf("welcome held: got %v, want it to end with %s", held, id)
		}
		mod.Send(t, map[string]any{"type": "mod.approve", "message_id": id})
		for _, c := range []*roomtest.Client{author, other, mod, mod2} {
			if _, m := nextMessage(t, c); m.ID != id || m.Text != "whatsapp me" || m.Reason != "" {
				t.Fatalf("approved message: got %+v", m)
			}
		}
		mod2.Send(t, map[string]any{"type": "mod.approve", "message_id": id, "ref": "again"})
		mod2.ExpectError(t, room.CodeNotFound)
	})
	t.Run("reject shows it to nobody", func(t *testing.T) {
		say(t, author, "telegram me", "r")
		id := message(t, mod.Expect(t, "chat.held")).ID
		mod.Send(t, map[string]any{"type": "mod.reject", "message_id": id})
		for _, m := range []*roomtest.Client{mod, mod2} {
			ev := m.Expect(t, "chat.deleted")
			if roomtest.Field[string](t, ev, "message_id") != id || ev.Seq != 0 {
				t.Fatalf("moderators' chat.deleted: got %s", ev.AppendJSON(nil))
			}
		}
		if got := quietOf(t, other, "chat.deleted", "chat.message"); len(got) != 0 {
			t.Fatalf("a viewer heard of a rejected message: %v", got)
		}
	})
	t.Run("hosts and moderators are not held", func(t *testing.T) {
		say(t, mod, "DM me with questions", "")
		if _, m := nextMessage(t, other); m.Text != "DM me with questions" {
			t.Fatalf("got %q", m.Text)
		}
	})
}

func TestDelete(t *testing.T) {
	e := newEnv(t, opts{})
	v := e.join(t, "demo", "v1", room.RoleViewer)
	mod := e.join(t, "demo", "m1", room.RoleModerator)
	say(t, v, "oops", "")
	_, m := nextMessage(t, mod)
	say(t, v, "keep me", "")
	nextMessage(t, mod)
	mod.Send(t, map[string]any{"type": "mod.delete", "message_id": m.ID})
	for _, c := range []*roomtest.Client{v, mod} {
		ev := c.Expect(t, "chat.deleted")
		if roomtest.Field[string](t, ev, "message_id") != m.ID || ev.Seq == 0 {
			t.Fatalf("chat.deleted: got %s", ev.AppendJSON(nil))
		}
	}
	late := e.join(t, "demo", "v2", room.RoleViewer)
	hist := roomtest.Field[[]room.Event](t, late.Welcome, "history")
	if len(hist) != 1 || message(t, hist[0]).Text != "keep me" {
		t.Fatalf("history after delete: got %v", hist)
	}
	mod.Send(t, map[string]any{"type": "mod.delete"})
	mod.ExpectError(t, room.CodeBadRequest)
}

func TestAuditLog(t *testing.T) {
	dir := t.TempDir()
	audit, err := chat.OpenFileAudit(dir)
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, opts{audit: audit})
	v := e.join(t, "demo", "v1", room.RoleViewer)
	mod := e.join(t, "demo", "m1", room.RoleModerator)
	say(t, v, "to delete", "")
	_, m := nextMessage(t, mod)
	say(t, v, "call 555 123 4567", "")
	held := message(t, mod.Expect(t, "chat.held"))

	actions := []struct {
		frame map[string]any
		wait  string
		want  chat.AuditEntry
	}{
		{map[string]any{"type": "mod.delete", "message_id": m.ID}, "chat.deleted", chat.AuditEntry{Action: "delete", MessageID: m.ID, UserID: "v1", Text: "to delete"}},
		{map[string]any{"type": "mod.timeout", "user_id": "v1", "seconds": 30}, "user.timeout", chat.AuditEntry{Action: "timeout", UserID: "v1"}},
		{map[string]any{"type": "mod.slow", "seconds": 5}, "room.slow", chat.AuditEntry{Action: "slow"}},
		{map[string]any{"type": "mod.terms", "add": []string{"x1"}}, "room.terms", chat.AuditEntry{Action: "terms"}},
		{map[string]any{"type": "mod.reject", "message_id": held.ID}, "chat.deleted", chat.AuditEntry{Action: "reject", MessageID: held.ID, UserID: "v1", Text: "call 555 123 4567"}},
		{map[string]any{"type": "mod.ban", "user_id": "v9"}, "user.banned", chat.AuditEntry{Action: "ban", UserID: "v9"}},
		{map[string]any{"type": "mod.unban", "user_id": "v9"}, "user.unbanned", chat.AuditEntry{Action: "unban", UserID: "v9"}},
	}
	for _, a := range actions {
		mod.Send(t, a.frame)
		mod.Expect(t, a.wait)
	}
	check := func(t *testing.T, log chat.AuditLog) {
		t.Helper()
		got, err := log.Recent(context.Background(), "demo", 100)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(actions) {
			t.Fatalf("entries: got %d, want %d", len(got), len(actions))
		}
		for i, a := range actions {
			g := got[i]
			if g.ID != uint64(i+1) || g.Action != a.want.Action || g.UserID != a.want.UserID || g.MessageID != a.want.MessageID ||
				g.Text != a.want.Text || g.Actor.ID != "m1" || g.Actor.Role != "moderator" || g.Room != "demo" || g.At.IsZero() {
				t.Errorf("entry %d: got %+v, want %+v by m1", i, g, a.want)
			}
		}
	}
	check(t, audit)
	t.Run("survives a restart", func(t *testing.T) {
		reopened, err := chat.OpenFileAudit(dir)
		if err != nil {
			t.Fatal(err)
		}
		check(t, reopened)
		next, err := reopened.Append(context.Background(), chat.AuditEntry{Room: "demo", Action: "slow"})
		if err != nil || next.ID != uint64(len(actions)+1) {
			t.Fatalf("append after reopen: id %d, err %v", next.ID, err)
		}
	})
	t.Run("web view", func(t *testing.T) {
		got, err := e.chat.ModerationLog(context.Background(), "demo", 2)
		if err != nil {
			t.Fatal(err)
		}
		if es := got; len(es) != 2 || es[1].Action != "slow" {
			t.Fatalf("last 2: got %+v", es)
		}
	})
}

func TestLikes(t *testing.T) {
	e := newEnv(t, opts{chat: func(c *chat.Config) { c.LikeBurst = 3 }})
	v := e.join(t, "demo", "v1", room.RoleViewer)
	for range 3 {
		v.Send(t, map[string]any{"type": "like", "count": 5})
	}
	// Aggregated: some likes events, the last of which says 15.
	for {
		if roomtest.Field[int](t, v.Expect(t, "likes"), "total") == 15 {
			break
		}
	}
	v.Send(t, map[string]any{"type": "like", "count": 5, "ref": "limit"})
	v.ExpectError(t, room.CodeRateLimited)
	for _, n := range []any{0, 51, "many"} {
		v.Send(t, map[string]any{"type": "like", "count": n})
		v.ExpectError(t, room.CodeBadRequest)
	}
	late := e.join(t, "demo", "v2", room.RoleViewer)
	if got := roomtest.Field[map[string]any](t, late.Welcome, "room")["likes"]; got != float64(15) {
		t.Fatalf("welcome likes: got %v, want 15", got)
	}
}

func TestChatRateLimit(t *testing.T) {
	e := newEnv(t, opts{chat: func(c *chat.Config) { c.ChatBurst = 3; c.ChatRate = 1 }})
	v := e.join(t, "demo", "v1", room.RoleViewer)
	for i := range 3 {
		say(t, v, fmt.Sprint("m", i), "")
		nextMessage(t, v)
	}
	say(t, v, "one too many", "rl")
	if ev := v.ExpectError(t, room.CodeRateLimited); ev.Ref != "rl" {
		t.Errorf("ref: got %q", ev.Ref)
	}
	e.clock.Add(time.Second)
	say(t, v, "refilled", "")
	if _, m := nextMessage(t, v); m.Text != "refilled" {
		t.Fatalf("got %q", m.Text)
	}
}

func TestText(t *testing.T) {
	e := newEnv(t, opts{chat: func(c *chat.Config) { c.MaxLength = 20 }})
	v := e.join(t, "demo", "v1", room.RoleViewer)
	tests := []struct {
		in, want, code string
	}{
		{"<b>hi</b> & \"co\"", "<b>hi</b> & \"co\"", ""}, // stored raw
		{"he\x00llo\u202eworld", "helloworld", ""},
		{"line\none\ttab", "line one tab", ""},
		{"  padded  ", "padded", ""},
		{"👍🏽 ok", "👍🏽 ok", ""},
		{"\u200b\x07", "", room.CodeBadRequest},
		{"", "", room.CodeBadRequest},
		{strings.Repeat("é", 21), "", room.CodeTooLong},
		{strings.Repeat("é", 20), strings.Repeat("é", 20), ""},
	}
	for i, tc := range tests {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			say(t, v, tc.in, "")
			if tc.code != "" {
				v.ExpectError(t, tc.code)
				return
			}
			if _, m := nextMessage(t, v); m.Text != tc.want {
				t.Fatalf("got %q, want %q", m.Text, tc.want)
			}
		})
	}
	v.Send(t, map[string]any{"type": "chat.send", "ref": "nt"})
	v.ExpectError(t, room.CodeBadRequest)
}

func TestWelcomeHistory(t *testing.T) {
	e := newEnv(t, opts{})
	v := e.join(t, "demo", "v1", room.RoleViewer)
	for i := range 60 {
		say(t, v, fmt.Sprint("n", i), "")
	}
	var lastSeq uint64
	for range 60 {
		ev, _ := nextMessage(t, v)
		lastSeq = ev.Seq
	}
	late := e.join(t, "demo", "v2", room.RoleViewer)
	hist := roomtest.Field[[]room.Event](t, late.Welcome, "history")
	if len(hist) != 50 {
		t.Fatalf("history: got %d, want 50", len(hist))
	}
	for i, ev := range hist {
		if want := fmt.Sprint("n", i+10); message(t, ev).Text != want || ev.Type != "chat.message" || ev.Seq == 0 {
			t.Fatalf("history[%d]: got %s, want %s", i, ev.AppendJSON(nil), want)
		}
	}
	if hist[49].Seq != lastSeq || late.Welcome.Seq < lastSeq {
		t.Fatalf("seqs: last history %d, welcome %d, want %d", hist[49].Seq, late.Welcome.Seq, lastSeq)
	}
}

// Reconnecting with resume loses no message within the history window.
func TestResumeLosesNothing(t *testing.T) {
	e := newEnv(t, opts{})
	tok := e.Token(t, "v1", room.RoleViewer, "demo")
	c := e.Dial(t, "demo", tok)
	other := e.join(t, "demo", "v2", room.RoleViewer)
	say(t, other, "before", "")
	last, _ := nextMessage(t, c)
	c.Close()
	var want []string
	for i := range 80 { // more than the welcome's 50
		want = append(want, fmt.Sprint("while away ", i))
		say(t, other, want[i], "")
	}
	for range 80 {
		nextMessage(t, other)
	}
	back := e.Dial(t, "demo", tok)
	defer back.Close()
	back.Send(t, map[string]any{"type": "resume", "after_seq": last.Seq, "epoch": roomtest.Field[string](t, back.Welcome, "epoch")})
	w := back.Expect(t, "welcome")
	if !roomtest.Field[bool](t, w, "resumed") {
		t.Fatalf("not resumed: %s", w.AppendJSON(nil))
	}
	var got []string
	for _, ev := range roomtest.Field[[]room.Event](t, w, "missed") {
		if ev.Type == "chat.message" {
			got = append(got, message(t, ev).Text)
		}
	}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("missed: got %d messages, want %d", len(got), len(want))
	}
}

// A flood from one client is rate-limited and does not stop others' chat.
func TestFlood(t *testing.T) {
	e := newEnv(t, opts{
		hub:  func(c *room.HubConfig) { c.FrameRate = 20; c.FrameBurst = 20 },
		chat: func(c *chat.Config) { c.ChatBurst = 5 },
	})
	flooder := e.join(t, "demo", "f", room.RoleViewer)
	a := e.join(t, "demo", "a", room.RoleViewer)
	b := e.join(t, "demo", "b", room.RoleViewer)
	frame := []byte(`{"type":"chat.send","text":"spam"}`)
	for range 3000 {
		if err := flooder.WS.WriteMessage(1, frame); err != nil {
			break // cut off: fine
		}
	}
	flooder.ExpectError(t, room.CodeRateLimited)
	say(t, a, "still here", "")
	spam := 0
	for {
		_, m := nextMessage(t, b)
		if m.Text == "still here" {
			break
		}
		spam++
	}
	if spam > 5 {
		t.Fatalf("flooder's messages delivered: got %d, want ≤ 5 (chat burst)", spam)
	}
}
