package chattest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"liveroom/chat"
	"liveroom/room"
)

// testRanks checks chat.Ranks: the kept role only rises, entries expire
// after their TTL, and a room keeps at most Max users, forgetting expired
// ones first, then the lowest role seen longest ago.
func testRanks(t *testing.T, open func(t *testing.T, history, held int) Handles[State]) {
	ctx := context.Background()
	now := time.UnixMilli(time.Now().UnixMilli())
	keep := chat.RankKeep{Max: 4, TTL: time.Hour}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}

	t.Run("highest role, per room, across nodes", func(t *testing.T) {
		h := open(t, 3, 2)
		a, b := h.A, h.B
		checkRank(t, b, "r", "h1", now, 0, false)
		must(a.SeeRank(ctx, "r", "h1", room.RoleHost, now, keep))
		checkRank(t, b, "r", "h1", now, room.RoleHost, true)
		must(b.SeeRank(ctx, "r", "h1", room.RoleModerator, now.Add(time.Minute), keep)) // a lower role later
		checkRank(t, a, "r", "h1", now.Add(time.Minute), room.RoleHost, true)
		must(b.SeeRank(ctx, "r", "h1", room.RoleAdmin, now.Add(2*time.Minute), keep))
		checkRank(t, a, "r", "h1", now.Add(2*time.Minute), room.RoleAdmin, true)
		checkRank(t, a, "other", "h1", now, 0, false)
	})

	t.Run("expires ttl after the last sighting", func(t *testing.T) {
		h := open(t, 3, 2)
		a, b := h.A, h.B
		must(a.SeeRank(ctx, "r", "h1", room.RoleHost, now, keep))
		must(a.SeeRank(ctx, "r", "h1", room.RoleHost, now.Add(30*time.Minute), keep))
		checkRank(t, b, "r", "h1", now.Add(80*time.Minute), room.RoleHost, true)
		checkRank(t, b, "r", "h1", now.Add(90*time.Minute), 0, false)
		// Once expired, a lower role replaces it.
		must(b.SeeRank(ctx, "r", "h1", room.RoleModerator, now.Add(2*time.Hour), keep))
		checkRank(t, a, "r", "h1", now.Add(2*time.Hour), room.RoleModerator, true)
	})

	t.Run("cap: expired first, then the lowest role seen longest ago", func(t *testing.T) {
		h := open(t, 3, 2)
		a, b := h.A, h.B
		at := func(min int) time.Time { return now.Add(time.Duration(min) * time.Minute) }
		must(a.SeeRank(ctx, "r", "old-admin", room.RoleAdmin, at(-61), keep)) // expired at at(-1)
		must(a.SeeRank(ctx, "r", "h1", room.RoleHost, at(0), keep))
		must(b.SeeRank(ctx, "r", "m1", room.RoleModerator, at(1), keep))
		must(a.SeeRank(ctx, "r", "m2", room.RoleModerator, at(2), keep))
		must(b.SeeRank(ctx, "r", "m3", room.RoleModerator, at(3), keep)) // 5 > 4: old-admin goes
		checkRank(t, a, "r", "old-admin", at(-62), 0, false)
		for _, u := range []string{"h1", "m1", "m2", "m3"} {
			if _, ok, _ := a.Rank(ctx, "r", u, at(3)); !ok {
				t.Errorf("%s forgotten while an expired entry was kept", u)
			}
		}
		must(a.SeeRank(ctx, "r", "m4", room.RoleModerator, at(4), keep)) // m1: lowest role, seen longest ago
		checkRank(t, b, "r", "m1", at(4), 0, false)
		checkRank(t, b, "r", "h1", at(4), room.RoleHost, true)
		// A flood of moderators never pushes out the host, and the room
		// stays at its cap.
		for i := range 50 {
			must([]State{a, b}[i%2].SeeRank(ctx, "r", fmt.Sprint("flood", i), room.RoleModerator, at(5+i), keep))
		}
		checkRank(t, a, "r", "h1", at(55), room.RoleHost, true)
		n := 0
		for i := range 50 {
			if _, ok, _ := b.Rank(ctx, "r", fmt.Sprint("flood", i), at(55)); ok {
				n++
			}
		}
		if _, ok, _ := b.Rank(ctx, "r", "m4", at(55)); ok {
			n++
		}
		if n != 3 {
			t.Errorf("moderators kept after the flood: got %d, want 3 (the cap, 4, minus the host)", n)
		}
		for i := 47; i < 50; i++ { // the last three seen
			checkRank(t, a, "r", fmt.Sprint("flood", i), at(55), room.RoleModerator, true)
		}
	})
}
