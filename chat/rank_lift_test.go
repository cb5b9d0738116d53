package chat_test

import (
	"context"
	"testing"
	"time"

	"liveroom/chat"
	"liveroom/room"
)

// A ban or running timeout stays its actor's: someone of lower role can
// neither lift it (mod.unban, mod.timeout 0), shorten it, nor re-issue it
// under their own rank; an equal or higher role can.
func TestRankLiftSanction(t *testing.T) {
	ctx := context.Background()
	state := chat.NewMemoryState(50, 200)
	e := newEnv(t, opts{state: state})
	host := e.join(t, "demo", "h1", room.RoleHost)
	mod := e.join(t, "demo", "m1", room.RoleModerator)
	mod2 := e.join(t, "demo", "m2", room.RoleModerator)
	hostActor := chat.Actor{ID: "h1", Role: room.RoleHost}

	host.Send(t, map[string]any{"type": "mod.ban", "user_id": "v1"})
	host.Expect(t, "user.banned")
	host.Send(t, map[string]any{"type": "mod.timeout", "user_id": "v2", "seconds": 600})
	host.Expect(t, "user.timeout")
	before, err := state.Standing(ctx, "demo", "v2")
	if err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name  string
		frame map[string]any
	}{
		{"unban a host's ban", map[string]any{"type": "mod.unban", "user_id": "v1", "ref": "r"}},
		{"re-ban under a moderator's rank", map[string]any{"type": "mod.ban", "user_id": "v1", "ref": "r"}},
		{"lift a host's timeout", map[string]any{"type": "mod.timeout", "user_id": "v2", "seconds": 0, "ref": "r"}},
		{"shorten a host's timeout", map[string]any{"type": "mod.timeout", "user_id": "v2", "seconds": 1, "ref": "r"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mod.Send(t, tc.frame)
			if ev := mod.ExpectError(t, room.CodeForbidden); ev.Ref != "r" {
				t.Errorf("ref: got %q, want r", ev.Ref)
			}
		})
	}
	if st, err := state.Standing(ctx, "demo", "v1"); err != nil || !st.Banned || st.BannedBy != hostActor {
		t.Fatalf("v1 after refused actions: got %+v %v, want banned by %+v", st, err, hostActor)
	}
	if st, err := state.Standing(ctx, "demo", "v2"); err != nil || !st.MutedUntil.Equal(before.MutedUntil) || st.MutedBy != hostActor {
		t.Fatalf("v2 after refused actions: got %+v %v, want %+v", st, err, before)
	}
	if got := quietOf(t, mod, "user.unbanned", "user.banned", "user.timeout"); len(got) != 0 {
		t.Fatalf("events after refused actions: %v", got)
	}

	t.Run("an equal lifts a moderator's ban", func(t *testing.T) {
		mod.Send(t, map[string]any{"type": "mod.ban", "user_id": "v3"})
		mod.Expect(t, "user.banned")
		mod2.Send(t, map[string]any{"type": "mod.unban", "user_id": "v3"})
		mod2.Expect(t, "user.unbanned")
	})
	t.Run("a host lifts a host's ban", func(t *testing.T) {
		other := e.join(t, "demo", "h2", room.RoleHost)
		other.Send(t, map[string]any{"type": "mod.unban", "user_id": "v1"})
		other.Expect(t, "user.unbanned")
	})
	t.Run("an expired host's timeout is anyone's", func(t *testing.T) {
		e.clock.Add(601 * time.Second)
		mod.Send(t, map[string]any{"type": "mod.timeout", "user_id": "v2", "seconds": 60})
		mod.Expect(t, "user.timeout")
	})
}
