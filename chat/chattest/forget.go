package chattest

import (
	"context"
	"testing"
	"time"

	"liveroom/chat"
	"liveroom/room"
)

// testForgetState: forgetting a room incarnation's scope removes its
// history, held messages, bans, timeouts, ranks and rules (after a restart
// too) and leaves every other scope's.
func testForgetState(t *testing.T, kept Kept, open func(t *testing.T, history, held int) Handles[State]) {
	ctx := context.Background()
	h := open(t, 10, 10)
	forget := forgetter(h)
	if forget == nil {
		t.Skip("the implementation cannot forget a scope")
	}
	const gone, other = "shop~aaaa1111", "shop~bbbb2222"
	mod := chat.Actor{ID: "mod", Role: room.RoleModerator}
	until := inAnHour()
	for _, scope := range []string{gone, other} {
		a := h.A
		if err := a.Add(ctx, scope, msg("m1")); err != nil {
			t.Fatal(err)
		}
		if err := a.Hold(ctx, scope, held("h1")); err != nil {
			t.Fatal(err)
		}
		if err := a.Ban(ctx, scope, "u1", mod); err != nil {
			t.Fatal(err)
		}
		if err := a.Mute(ctx, scope, "u2", until, mod); err != nil {
			t.Fatal(err)
		}
		if err := a.SetSlow(ctx, scope, 5); err != nil {
			t.Fatal(err)
		}
		if _, err := a.UpdateTerms(ctx, scope, []string{"scam"}, nil, 10); err != nil {
			t.Fatal(err)
		}
		if err := a.SeeRank(ctx, scope, "m9", room.RoleModerator, time.Now(), chat.RankKeep{Max: 10, TTL: time.Hour}); err != nil {
			t.Fatal(err)
		}
	}
	if err := forget(ctx, gone); err != nil {
		t.Fatal(err)
	}
	states := []State{h.B}
	if kept != (Kept{}) {
		states = append(states, reopen(t, h))
	}
	for _, s := range states {
		if got, err := s.Recent(ctx, gone); err != nil || len(got) != 0 {
			t.Fatalf("forgotten scope: history %v (%v), want none", ids(got), err)
		}
		if got, err := s.List(ctx, gone); err != nil || len(got) != 0 {
			t.Fatalf("forgotten scope: held %v (%v), want none", ids(got), err)
		}
		checkStanding(t, s, gone, map[string]chat.Standing{"u1": {}, "u2": {}})
		if slow, err := s.Slow(ctx, gone); err != nil || slow != 0 {
			t.Fatalf("forgotten scope: slow %d (%v), want 0", slow, err)
		}
		checkTerms(t, s, gone, nil)
		checkRank(t, s, gone, "m9", time.Now(), room.RoleGuest, false)
		// The other scope keeps what this implementation keeps.
		if st, err := s.Standing(ctx, other, "u1"); err != nil || !st.Banned {
			t.Fatalf("other scope: u1 %+v (%v), want banned", st, err)
		}
		checkRank(t, s, other, "m9", time.Now(), room.RoleModerator, true)
	}
}
