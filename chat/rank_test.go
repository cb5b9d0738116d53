package chat_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"liveroom/chat"
	"liveroom/room"
	"liveroom/room/roomtest"
)

// userActions are the moderator frames aimed at a user.
func userActions(userID string) map[string]map[string]any {
	return map[string]map[string]any{
		"ban":     {"type": "mod.ban", "user_id": userID, "ref": "ban"},
		"timeout": {"type": "mod.timeout", "user_id": userID, "seconds": 60, "ref": "timeout"},
	}
}

// refused checks that every action on userID is refused as forbidden and
// leaves no sanction behind.
func refused(t *testing.T, c *roomtest.Client, s chat.Sanctions, roomID, userID string) {
	t.Helper()
	for name, frame := range userActions(userID) {
		c.Send(t, frame)
		if ev := c.ExpectError(t, room.CodeForbidden); ev.Ref != frame["ref"] {
			t.Errorf("%s %s: ref %q", name, userID, ev.Ref)
		}
	}
	st, err := s.Standing(context.Background(), roomID, userID)
	if err != nil || st.Banned || !st.MutedUntil.IsZero() {
		t.Errorf("%s after refused actions: got %+v %v, want no sanction", userID, st, err)
	}
}

// waitGone waits until the hub has no connection of userID left.
func waitGone(t *testing.T, h *room.Hub, roomID, userID string) {
	t.Helper()
	deadline := time.Now().Add(roomtest.Wait)
	for {
		if _, ok := h.RoleOf(roomID, userID); !ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still connected after %s", userID, roomtest.Wait)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// The admin key's identity and the stream-key host are known by their
// form, never seen or not: a moderator cannot touch them, an admin can.
func TestRankReservedIdentities(t *testing.T) {
	state := chat.NewMemoryState(50, 200)
	e := newEnv(t, opts{state: state})
	mod := e.join(t, "demo", "m1", room.RoleModerator)
	host := e.join(t, "demo", "h1", room.RoleHost)
	for _, who := range []string{"admin", "host:demo"} {
		refused(t, mod, state, "demo", who)
	}
	refused(t, host, state, "demo", "host:demo") // a host's equal
	refused(t, host, state, "demo", "admin")
	admin := e.join(t, "demo", "root", room.RoleAdmin)
	admin.Send(t, map[string]any{"type": "mod.timeout", "user_id": "host:demo", "seconds": 60})
	admin.Expect(t, "user.timeout")
	// Another room's stream-key host is nobody special here.
	mod.Send(t, map[string]any{"type": "mod.timeout", "user_id": "host:other", "seconds": 60})
	mod.Expect(t, "user.timeout")
}

// A host who came, chatted and left is still known: a moderator can
// neither ban, time out, nor delete their message.
func TestRankOfflineHost(t *testing.T) {
	state := chat.NewMemoryState(50, 200)
	e := newEnv(t, opts{state: state})
	mod := e.join(t, "demo", "m1", room.RoleModerator)
	host := e.join(t, "demo", "h1", room.RoleHost)
	say(t, host, "welcome everyone", "")
	_, m := nextMessage(t, mod)
	host.Close()
	waitGone(t, e.Hub, "demo", "h1")

	refused(t, mod, state, "demo", "h1")
	mod.Send(t, map[string]any{"type": "mod.delete", "message_id": m.ID, "ref": "del"})
	mod.ExpectError(t, room.CodeForbidden)
	late := e.join(t, "demo", "v1", room.RoleViewer)
	if hist := roomtest.Field[[]room.Event](t, late.Welcome, "history"); len(hist) != 1 || message(t, hist[0]).ID != m.ID {
		t.Fatalf("history after a refused delete: got %v, want the host's message", hist)
	}
	if got := quietOf(t, mod, "chat.deleted"); len(got) != 0 {
		t.Fatalf("chat.deleted after a refused delete: %v", got)
	}
	entries, err := e.chat.ModerationLog(context.Background(), "demo", 10)
	if err != nil || len(entries) != 0 {
		t.Fatalf("audit log after refused actions: got %+v %v, want none", entries, err)
	}
}

// mod.delete checks the author's stored role: below the actor's only.
func TestRankDelete(t *testing.T) {
	e := newEnv(t, opts{})
	v := e.join(t, "demo", "v1", room.RoleViewer)
	m1 := e.join(t, "demo", "m1", room.RoleModerator)
	m2 := e.join(t, "demo", "m2", room.RoleModerator)
	host := e.join(t, "demo", "h1", room.RoleHost)
	post := func(c *roomtest.Client, text string) string {
		say(t, c, text, "")
		for {
			if _, m := nextMessage(t, host); m.Text == text {
				return m.ID
			}
		}
	}
	for _, tc := range []struct {
		name   string
		author *roomtest.Client
		actor  *roomtest.Client
		ok     bool
	}{
		{"moderator deletes a viewer's", v, m1, true},
		{"moderator deletes another moderator's", m2, m1, false},
		{"moderator deletes their own", m1, m1, false},
		{"moderator deletes the host's", host, m1, false},
		{"host deletes a moderator's", m2, host, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := post(tc.author, tc.name)
			tc.actor.Send(t, map[string]any{"type": "mod.delete", "message_id": id, "ref": "del"})
			if !tc.ok {
				tc.actor.ExpectError(t, room.CodeForbidden)
				return
			}
			if got := roomtest.Field[string](t, tc.actor.Expect(t, "chat.deleted"), "message_id"); got != id {
				t.Fatalf("chat.deleted: got %s, want %s", got, id)
			}
		})
	}
}

// A sanction binds only those whose current role is below its actor's: a
// host a moderator banned and timed out while their role was unknown
// still gets in and chats; the same ban keeps a viewer with that id out.
func TestRankIgnoredWhenEnforced(t *testing.T) {
	state := chat.NewMemoryState(50, 200)
	e := newEnv(t, opts{state: state})
	mod := e.join(t, "demo", "m1", room.RoleModerator)
	mod.Send(t, map[string]any{"type": "mod.ban", "user_id": "h9"})
	mod.Expect(t, "user.banned")
	mod.Send(t, map[string]any{"type": "mod.timeout", "user_id": "h9", "seconds": 600})
	mod.Expect(t, "user.timeout")
	st, err := state.Standing(context.Background(), "demo", "h9")
	if want := (chat.Actor{ID: "m1", Role: room.RoleModerator}); err != nil || !st.Banned || st.BannedBy != want || st.MutedBy != want {
		t.Fatalf("standing: got %+v %v, want banned and muted by %+v", st, err, want)
	}

	banned, _, err := e.DialRaw("demo", e.Token(t, "h9", room.RoleViewer, "demo"), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	banned.ExpectError(t, room.CodeBanned)

	host := e.join(t, "demo", "h9", room.RoleHost)
	var until int64
	if ok, _ := host.Welcome.Field("muted_until", &until); ok {
		t.Errorf("welcome: muted_until for a host a moderator timed out")
	}
	say(t, host, "I am the host", "")
	if _, m := nextMessage(t, mod); m.User.ID != "h9" || m.User.Role != "host" {
		t.Fatalf("message: got %+v, want the host's", m.User)
	}
	// Now known, the host is protected when issued too.
	mod.Send(t, map[string]any{"type": "mod.ban", "user_id": "h9"})
	mod.ExpectError(t, room.CodeForbidden)

	t.Run("a host's ban binds a moderator", func(t *testing.T) {
		host.Send(t, map[string]any{"type": "mod.ban", "user_id": "m1"})
		mod.ExpectError(t, room.CodeBanned)
		if got := mod.ExpectClose(t); got != room.CloseBanned {
			t.Fatalf("moderator close: got %d, want %d", got, room.CloseBanned)
		}
		c, _, err := e.DialRaw("demo", e.Token(t, "m1", room.RoleModerator, "demo"), nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		c.ExpectError(t, room.CodeBanned)
		// A moderator's ban of a viewer id does not bind it as a moderator.
		other := e.join(t, "demo", "m2", room.RoleModerator)
		other.Send(t, map[string]any{"type": "mod.ban", "user_id": "m3"})
		other.Expect(t, "user.banned")
		e.join(t, "demo", "m3", room.RoleModerator)
	})
}

// newRedisCluster is two nodes sharing one redis-server for their bus and
// chat state, and a third handle on that state to inspect it.
func newRedisCluster(t *testing.T) (a, b *env, state *chat.RedisState) {
	srv := roomtest.StartRedis(t)
	p := roomtest.Prefix()
	clk := &clock{t: time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)}
	node := func() *env {
		bus := room.NewRedisBus(srv.Client(t), room.RedisBusConfig{Prefix: p, History: 256})
		t.Cleanup(func() { bus.Close() })
		return newEnv(t, opts{state: chat.NewRedisState(srv.Client(t), p, 50, 200), bus: bus, clock: clk})
	}
	return node(), node(), chat.NewRedisState(srv.Client(t), p, 50, 200)
}

// A host connected to node b, or who left b earlier, is protected from a
// moderator on node a, which never saw them; the moderator can still ban a
// viewer on b, and the host on b can ban the moderator on a.
func TestRankAcrossNodes(t *testing.T) {
	a, b, state := newRedisCluster(t)
	mod := a.join(t, "demo", "m1", room.RoleModerator)
	host := b.join(t, "demo", "h1", room.RoleHost)
	if _, ok := a.Hub.RoleOf("demo", "h1"); ok {
		t.Fatal("node a has a connection of the host; the test needs it on b only")
	}
	refused(t, mod, state, "demo", "h1")
	say(t, host, "hello from b", "")
	_, m := nextMessage(t, mod)
	mod.Send(t, map[string]any{"type": "mod.delete", "message_id": m.ID})
	mod.ExpectError(t, room.CodeForbidden)
	if hist, _ := state.Recent(context.Background(), "demo"); len(hist) != 1 || hist[0].ID != m.ID {
		t.Fatalf("history after a refused delete: got %+v", hist)
	}

	t.Run("offline host from an earlier session", func(t *testing.T) {
		earlier := b.join(t, "demo", "h2", room.RoleHost)
		earlier.Close()
		waitGone(t, b.Hub, "demo", "h2")
		refused(t, mod, state, "demo", "h2")
	})
	t.Run("a moderator bans a viewer on another node", func(t *testing.T) {
		v := b.join(t, "demo", "v1", room.RoleViewer)
		mod.Send(t, map[string]any{"type": "mod.ban", "user_id": "v1"})
		v.ExpectError(t, room.CodeBanned)
		if got := v.ExpectClose(t); got != room.CloseBanned {
			t.Fatalf("viewer close: got %d, want %d", got, room.CloseBanned)
		}
	})
	t.Run("the host bans the moderator on another node", func(t *testing.T) {
		host.Send(t, map[string]any{"type": "mod.ban", "user_id": "m1"})
		mod.ExpectError(t, room.CodeBanned)
		if got := mod.ExpectClose(t); got != room.CloseBanned {
			t.Fatalf("moderator close: got %d, want %d", got, room.CloseBanned)
		}
		st, err := state.Standing(context.Background(), "demo", "m1")
		if want := (chat.Actor{ID: "h1", Role: room.RoleHost}); err != nil || !st.Banned || st.BannedBy != want {
			t.Fatalf("standing: got %+v %v, want banned by %+v", st, err, want)
		}
	})
}

func TestConfigKnownRoles(t *testing.T) {
	for _, tc := range []struct {
		set  func(*chat.Config)
		want string // in the error; "" = valid
	}{
		{func(*chat.Config) {}, ""},
		{func(c *chat.Config) { c.KnownRolesMax = 0 }, "chat.known_roles_max"},
		{func(c *chat.Config) { c.KnownRolesMax = 100001 }, "chat.known_roles_max"},
		{func(c *chat.Config) { c.KnownRolesTTL = time.Second }, "chat.known_roles_ttl"},
	} {
		c := chat.DefaultConfig()
		tc.set(&c)
		err := c.Validate()
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%+v: got %v, want %q", c, err, tc.want)
		}
	}
}

// Bans and timeouts stored before their actor's role was have none: they
// count as a moderator's, binding guests and viewers only.
func TestRankSanctionsFromBefore(t *testing.T) {
	ctx := context.Background()
	until := time.Now().Add(time.Hour).Truncate(time.Millisecond)
	check := func(t *testing.T, s chat.Sanctions) {
		t.Helper()
		st, err := s.Standing(ctx, "demo", "u1")
		if err != nil || !st.Banned || !st.MutedUntil.Equal(until) {
			t.Fatalf("standing: got %+v %v, want banned and muted until %v", st, err, until)
		}
		for role, want := range map[room.Role]bool{room.RoleGuest: true, room.RoleViewer: true, room.RoleModerator: false, room.RoleHost: false} {
			if got := st.BannedBy.Binds(role); got != want {
				t.Errorf("ban binds a %s: got %v, want %v", role, got, want)
			}
			if got := st.MutedBy.Binds(role); got != want {
				t.Errorf("timeout binds a %s: got %v, want %v", role, got, want)
			}
		}
	}
	t.Run("file", func(t *testing.T) {
		dir := t.TempDir()
		old := fmt.Sprintf(`{"rooms":{"demo":{"bans":{"u1":true},"mutes":{"u1":%q}}}}`, until.Format(time.RFC3339Nano))
		if err := os.WriteFile(filepath.Join(dir, "moderation.json"), []byte(old), 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := chat.OpenFileState(dir, 50, 200)
		if err != nil {
			t.Fatal(err)
		}
		check(t, s)
	})
	t.Run("redis", func(t *testing.T) {
		srv := roomtest.StartRedis(t)
		rdb := srv.Client(t)
		p := roomtest.Prefix()
		if err := rdb.SAdd(ctx, p+"{room:demo}:chat:bans", "u1").Err(); err != nil {
			t.Fatal(err)
		}
		if err := rdb.HSet(ctx, p+"{room:demo}:chat:mutes", "u1", until.UnixMilli()).Err(); err != nil {
			t.Fatal(err)
		}
		check(t, chat.NewRedisState(rdb, p, 50, 200))
	})
}

// Only roles that can protect their holder are remembered: guests and
// viewers, however many ids they come with, take no room in the ranks.
func TestRankOnlyModeratorsRemembered(t *testing.T) {
	state := chat.NewMemoryState(50, 200)
	e := newEnv(t, opts{state: state})
	var guests []string
	for i := range 5 {
		g := e.join(t, "open", "", room.RoleGuest)
		say(t, g, fmt.Sprint("guest ", i), "")
		_, m := nextMessage(t, g)
		guests = append(guests, m.User.ID)
	}
	v := e.join(t, "open", "v1", room.RoleViewer)
	say(t, v, "viewer", "")
	nextMessage(t, v)
	e.join(t, "open", "m1", room.RoleModerator)
	e.join(t, "open", "h1", room.RoleHost)
	now := e.clock.Now()
	for _, u := range append(guests, "v1") {
		if r, ok, err := state.Rank(context.Background(), "open", u, now); ok || err != nil {
			t.Errorf("%s remembered as %s (%v), want nothing", u, r, err)
		}
	}
	for u, want := range map[string]room.Role{"m1": room.RoleModerator, "h1": room.RoleHost} {
		if r, ok, err := state.Rank(context.Background(), "open", u, now); !ok || r != want || err != nil {
			t.Errorf("%s: got %s %v %v, want %s", u, r, ok, err, want)
		}
	}
}
