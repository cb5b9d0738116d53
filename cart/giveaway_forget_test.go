package cart

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// TestGiveawayForgetScope: retiring a room incarnation drops its giveaways
// (running and ended), its chatters and, in Redis, its place in the due
// index, and leaves the other incarnation's giveaway to end as usual.
func TestGiveawayForgetScope(t *testing.T) {
	for _, st := range giveawayStores {
		t.Run(st.name, func(t *testing.T) {
			ctx := context.Background()
			clock := &testClock{t: t0}
			cs, gs := st.open(t, GiveawayOptions{Now: clock.Now})
			const gone, kept = "shop~aaaa1111", "shop~bbbb2222"
			start := func(scope string, rule GiveawayRule, entryS int) Giveaway {
				t.Helper()
				g, err := gs.StartGiveaway(ctx, scope, GiveawayParams{Prize: Prize{Text: "a hug"}, Rule: rule, EntryS: entryS, Host: "host"})
				if err != nil {
					t.Fatal(err)
				}
				return g
			}
			endedOne := start(gone, RuleSignedIn, 1)
			clock.Add(2 * time.Second)
			if e, err := gs.EndDue(ctx); err != nil || len(e) != 1 {
				t.Fatalf("EndDue = %v, %v; want 1", e, err)
			}
			running := start(gone, RuleSignedIn, 60)
			other := start(kept, RuleSignedIn, 60)
			for _, scope := range []string{gone, kept} {
				if err := gs.NoteChat(ctx, scope, "chatty"); err != nil {
					t.Fatal(err)
				}
			}
			forgetScope(t, cs, gone)

			for _, id := range []string{endedOne.ID, running.ID} {
				if _, err := gs.Giveaway(ctx, gone, id); ErrorCode(err) != CodeNotFound {
					t.Fatalf("forgotten giveaway %s: err %v, want not_found", id, err)
				}
			}
			if _, ok, err := gs.RunningGiveaway(ctx, gone); err != nil || ok {
				t.Fatalf("forgotten scope still runs a giveaway (%v, %v)", ok, err)
			}
			if rs, ok := cs.(*RedisStore); ok {
				if err := rs.rdb.ZScore(ctx, rs.gwDueIndex(), gone+"\n"+running.ID).Err(); err != redis.Nil {
					t.Fatalf("due index still lists the forgotten giveaway (err %v)", err)
				}
			}
			// The chatter list went too: a chatted-only giveaway in the
			// forgotten scope does not know them; the kept scope does.
			clock.Add(61 * time.Second)
			if e, err := gs.EndDue(ctx); err != nil || len(e) != 1 || e[0].Giveaway.ID != other.ID {
				t.Fatalf("EndDue after forgetting = %+v, %v; want only %s", e, err, other.ID)
			}
			for scope, want := range map[string]Code{gone: CodeNotAllowed, kept: ""} {
				g := start(scope, RuleChatted, 60)
				if _, err := gs.EnterGiveaway(ctx, scope, g.ID, Entrant{User: "chatty"}); ErrorCode(err) != want {
					t.Fatalf("%s: chatter enters a chatted giveaway: err %v, want %q", scope, err, want)
				}
			}
		})
	}
}
