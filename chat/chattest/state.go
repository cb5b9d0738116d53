package chattest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"liveroom/chat"
	"liveroom/room"
)

// Kept says what a state keeps across a restart (Handles.Reopen).
type Kept struct {
	Moderation bool // bans, timeouts, slow mode, blocked terms
	Messages   bool // history (with seq) and held messages
	Posts      bool // slow mode: when each user last posted
	Ranks      bool // the highest role each user was seen with
}

// TestState is the conformance suite of chat.History, Held, Sanctions,
// Rules and Ranks. open returns a fresh state keeping history messages and held
// ones per room; kept is what its Reopen promises to keep.
func TestState(t *testing.T, kept Kept, open func(t *testing.T, history, held int) Handles[State]) {
	ctx := context.Background()

	t.Run("history keeps the last n, with seq", func(t *testing.T) {
		h := open(t, 3, 2)
		a, b := h.A, h.B
		for _, id := range []string{"m1", "m2", "m3", "m4"} {
			if err := a.Add(ctx, "r", msg(id)); err != nil {
				t.Fatal(err)
			}
		}
		if err := b.Published(ctx, "r", "m4", 42, 1000); err != nil {
			t.Fatal(err)
		}
		if err := b.Published(ctx, "r", "m1", 7, 7); err != nil { // evicted: nothing to mark
			t.Fatal(err)
		}
		got, err := b.Recent(ctx, "r")
		if err != nil || !slices.Equal(ids(got), []string{"m2", "m3", "m4"}) {
			t.Fatalf("recent: got %v %v, want m2 m3 m4", ids(got), err)
		}
		if got[2] != published(msg("m4"), 42, 1000) || got[0] != msg("m2") {
			t.Fatalf("messages: got %+v", got)
		}
		if m, ok, err := a.Remove(ctx, "r", "m4"); err != nil || !ok || m != published(msg("m4"), 42, 1000) {
			t.Fatalf("remove m4: got %+v %v %v, want it with its seq", m, ok, err)
		}
		if _, ok, _ := b.Remove(ctx, "r", "m1"); ok {
			t.Fatal("remove an evicted message: got ok")
		}
		if _, ok, _ := b.Remove(ctx, "other", "m2"); ok {
			t.Fatal("remove from another room: got ok")
		}
		if got, _ := b.Recent(ctx, "r"); !slices.Equal(ids(got), []string{"m2", "m3"}) {
			t.Fatalf("after remove: got %v", ids(got))
		}
		if got, _ := b.Recent(ctx, "other"); len(got) != 0 {
			t.Fatalf("another room: got %v", ids(got))
		}
	})

	t.Run("held queue", func(t *testing.T) {
		h := open(t, 3, 2)
		a, b := h.A, h.B
		for _, id := range []string{"h1", "h2", "h3"} {
			if err := a.Hold(ctx, "r", held(id)); err != nil {
				t.Fatal(err)
			}
		}
		got, _ := b.List(ctx, "r")
		if !slices.Equal(ids(got), []string{"h2", "h3"}) || got[0] != held("h2") {
			t.Fatalf("held: got %+v, want h2 h3 with reason", got)
		}
		if m, ok, err := b.Take(ctx, "r", "h2"); !ok || err != nil || m != held("h2") {
			t.Fatalf("take h2: got %+v %v %v", m, ok, err)
		}
		if _, ok, _ := a.Take(ctx, "r", "h2"); ok {
			t.Fatal("take h2 twice: got ok")
		}
		if got, _ := a.Recent(ctx, "r"); len(got) != 0 {
			t.Fatalf("held messages in the history: got %v", ids(got))
		}
	})

	t.Run("a message is taken once under contention", func(t *testing.T) {
		h := open(t, 3, 2)
		_ = h.A.Hold(ctx, "r", msg("x"))
		var wg sync.WaitGroup
		var mu sync.Mutex
		n := 0
		for i := range 10 {
			wg.Go(func() {
				if _, ok, _ := []State{h.A, h.B}[i%2].Take(ctx, "r", "x"); ok {
					mu.Lock()
					n++
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if n != 1 {
			t.Fatalf("got %d takes, want 1", n)
		}
	})

	t.Run("sanctions", func(t *testing.T) {
		h := open(t, 3, 2)
		a, b := h.A, h.B
		if err := a.Ban(ctx, "r", "u1", mod); err != nil {
			t.Fatal(err)
		}
		until := inAnHour()
		if err := a.Mute(ctx, "r", "u2", until, host); err != nil {
			t.Fatal(err)
		}
		checkStanding(t, b, "r", map[string]chat.Standing{"u1": {Banned: true, BannedBy: mod}, "u2": {MutedUntil: until, MutedBy: host}})
		checkStanding(t, b, "other", map[string]chat.Standing{"u1": {}, "u2": {}})
		if was, err := b.Unban(ctx, "r", "u1"); !was || err != nil {
			t.Fatalf("unban: got %v %v, want true", was, err)
		}
		if was, _ := a.Unban(ctx, "r", "u1"); was {
			t.Fatal("second unban: got true")
		}
		_ = b.Mute(ctx, "r", "u2", time.Time{}, mod)
		checkStanding(t, a, "r", map[string]chat.Standing{"u1": {}, "u2": {}})
		// A second ban or timeout records its own actor.
		_ = b.Ban(ctx, "r", "u1", host)
		_ = b.Ban(ctx, "r", "u1", mod)
		_ = a.Mute(ctx, "r", "u2", until, mod)
		_ = a.Mute(ctx, "r", "u2", until, host)
		checkStanding(t, b, "r", map[string]chat.Standing{"u1": {Banned: true, BannedBy: mod}, "u2": {MutedUntil: until, MutedBy: host}})
	})

	t.Run("slow mode and posts", func(t *testing.T) {
		h := open(t, 3, 2)
		a, b := h.A, h.B
		if n, err := b.Slow(ctx, "r"); err != nil || n != 0 {
			t.Fatalf("default slow: got %d %v", n, err)
		}
		_ = a.SetSlow(ctx, "r", 30)
		if n, _ := b.Slow(ctx, "r"); n != 30 {
			t.Fatalf("slow: got %d, want 30", n)
		}
		now := time.UnixMilli(time.Now().UnixMilli())
		gap := 30 * time.Second
		if ok, _, err := a.Post(ctx, "r", "u", now, gap); !ok || err != nil {
			t.Fatalf("first post: got %v %v", ok, err)
		}
		ok, next, _ := b.Post(ctx, "r", "u", now.Add(10*time.Second), gap)
		if ok || !next.Equal(now.Add(gap)) {
			t.Fatalf("second post: got %v %v, want refused until %v", ok, next, now.Add(gap))
		}
		if ok, _, _ := b.Post(ctx, "r", "other", now.Add(10*time.Second), gap); !ok {
			t.Fatal("another user: refused")
		}
		if ok, _, _ := b.Post(ctx, "r2", "u", now.Add(10*time.Second), gap); !ok {
			t.Fatal("another room: refused")
		}
		if ok, _, _ := a.Post(ctx, "r", "u", now.Add(gap), gap); !ok {
			t.Fatal("post after the gap: refused")
		}
		for i := range 2 { // no slow mode: every post goes
			if ok, _, _ := []State{a, b}[i].Post(ctx, "r", "u", now.Add(gap), 0); !ok {
				t.Fatalf("post %d without a gap: refused", i)
			}
		}
		_ = b.SetSlow(ctx, "r", 0)
		if n, _ := a.Slow(ctx, "r"); n != 0 {
			t.Fatalf("slow mode off: got %d", n)
		}
	})

	t.Run("terms", func(t *testing.T) {
		h := open(t, 3, 2)
		a, b := h.A, h.B
		_, v0, _ := b.Terms(ctx, "r")
		got, err := a.UpdateTerms(ctx, "r", []string{" WhatsApp ", "telegram", "whatsapp", "  ", "!!"}, nil, 5)
		if err != nil || !slices.Equal(got, []string{"WhatsApp", "telegram"}) {
			t.Fatalf("add: got %q %v", got, err)
		}
		v1 := checkTerms(t, b, "r", got)
		if v1 == v0 {
			t.Fatal("version did not change")
		}
		if got, _ := b.UpdateTerms(ctx, "r", []string{"cash"}, []string{"WHATSAPP"}, 5); !slices.Equal(got, []string{"telegram", "cash"}) {
			t.Fatalf("remove and add: got %q", got)
		}
		if v2 := checkTerms(t, a, "r", []string{"telegram", "cash"}); v2 == v1 {
			t.Fatal("version did not change")
		}
		if _, err := a.UpdateTerms(ctx, "r", []string{"a1", "a2", "a3", "a4"}, nil, 5); !errors.Is(err, chat.ErrTooManyTerms) {
			t.Fatalf("more than max terms: got %v, want chat.ErrTooManyTerms", err)
		}
		if terms, _, _ := b.Terms(ctx, "r"); !slices.Equal(terms, []string{"telegram", "cash"}) {
			t.Fatalf("after a refused update: got %q", terms)
		}
		if terms, _, _ := b.Terms(ctx, "other"); len(terms) != 0 {
			t.Fatalf("another room: got %q", terms)
		}
		var wg sync.WaitGroup
		for i := range 6 {
			wg.Go(func() {
				if _, err := []State{a, b}[i%2].UpdateTerms(ctx, "r2", []string{fmt.Sprint("term", i)}, nil, 100); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if terms, _, _ := b.Terms(ctx, "r2"); len(terms) != 6 {
			t.Fatalf("concurrent additions: got %q, want 6 terms", terms)
		}
	})

	t.Run("ranks", func(t *testing.T) { testRanks(t, open) })
	t.Run("forget a scope", func(t *testing.T) { testForgetState(t, kept, open) })

	if kept != (Kept{}) {
		t.Run("restart", func(t *testing.T) { testRestart(t, kept, open) })
	}
}

// testRestart writes every kind of state, restarts, and checks what kept
// promises; moderation changed after the restart must survive the next.
func testRestart(t *testing.T, kept Kept, open func(t *testing.T, history, held int) Handles[State]) {
	ctx := context.Background()
	h := open(t, 3, 2)
	s := h.A
	until := inAnHour()
	now := time.UnixMilli(time.Now().UnixMilli())
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(s.Ban(ctx, "r", "spammer", mod))
	must(s.Ban(ctx, "r", "forgiven", mod))
	_, err := s.Unban(ctx, "r", "forgiven")
	must(err)
	must(s.Mute(ctx, "r", "loud", until, host))
	keep := chat.RankKeep{Max: 10, TTL: time.Hour}
	must(s.SeeRank(ctx, "r", "h1", room.RoleHost, now, keep))
	must(s.SetSlow(ctx, "r", 10))
	_, err = s.UpdateTerms(ctx, "r", []string{"fake deal", "scam"}, nil, 100)
	must(err)
	must(s.Add(ctx, "r", msg("m1")))
	must(s.Add(ctx, "r", msg("m2")))
	must(s.Published(ctx, "r", "m2", 5, 500))
	must(s.Hold(ctx, "r", held("h1")))
	_, _, err = s.Post(ctx, "r", "poster", now, time.Hour)
	must(err)

	s = reopen(t, h)
	if kept.Moderation {
		checkStanding(t, s, "r", map[string]chat.Standing{"spammer": {Banned: true, BannedBy: mod}, "forgiven": {}, "loud": {MutedUntil: until, MutedBy: host}, "someone": {}})
		if slow, _ := s.Slow(ctx, "r"); slow != 10 {
			t.Errorf("slow mode: got %d, want 10", slow)
		}
		v := checkTerms(t, s, "r", []string{"fake deal", "scam"})
		// Changes after the restart are kept by the next one.
		_, err := s.Unban(ctx, "r", "spammer")
		must(err)
		must(s.Mute(ctx, "r", "loud", time.Time{}, mod))
		must(s.Ban(ctx, "r2", "other", host))
		must(s.SetSlow(ctx, "r", 0))
		_, err = s.UpdateTerms(ctx, "r", []string{"cash"}, []string{"SCAM"}, 100)
		must(err)
		if checkTerms(t, s, "r", []string{"fake deal", "cash"}) == v {
			t.Error("version did not change after the restart")
		}
		s = reopen(t, h)
		checkStanding(t, s, "r", map[string]chat.Standing{"spammer": {}, "loud": {}})
		checkStanding(t, s, "r2", map[string]chat.Standing{"other": {Banned: true, BannedBy: host}})
		if slow, _ := s.Slow(ctx, "r"); slow != 0 {
			t.Errorf("slow mode after the second restart: got %d, want 0", slow)
		}
		checkTerms(t, s, "r", []string{"fake deal", "cash"})
	}
	if kept.Messages {
		if got, err := s.Recent(ctx, "r"); err != nil || !slices.Equal(got, []chat.Message{msg("m1"), published(msg("m2"), 5, 500)}) {
			t.Errorf("history: got %+v %v", got, err)
		}
		if got, err := s.List(ctx, "r"); err != nil || !slices.Equal(got, []chat.Message{held("h1")}) {
			t.Errorf("held: got %+v %v", got, err)
		}
	}
	if kept.Ranks {
		checkRank(t, s, "r", "h1", now, room.RoleHost, true)
		// A rank first seen after the restart is kept by the next one.
		must(s.SeeRank(ctx, "r", "m1", room.RoleModerator, now, keep))
		s = reopen(t, h)
		checkRank(t, s, "r", "h1", now, room.RoleHost, true)
		checkRank(t, s, "r", "m1", now, room.RoleModerator, true)
	}
	if kept.Posts {
		if ok, _, err := s.Post(ctx, "r", "poster", now.Add(time.Second), time.Hour); ok || err != nil {
			t.Errorf("a post within the gap of one before the restart: got %v %v, want refused", ok, err)
		}
	}
}

var (
	mod  = chat.Actor{ID: "m1", Role: room.RoleModerator}
	host = chat.Actor{ID: "h1", Role: room.RoleHost}
)

func checkRank(t *testing.T, s chat.Ranks, roomID, userID string, now time.Time, want room.Role, wantOK bool) {
	t.Helper()
	r, ok, err := s.Rank(context.Background(), roomID, userID, now)
	if err != nil || ok != wantOK || ok && r != want {
		t.Errorf("rank of %s in %s: got %v %v %v, want %v %v", userID, roomID, r, ok, err, want, wantOK)
	}
}

// msg is a message as chat stores it: accepted (TS), not yet published.
func msg(id string) chat.Message {
	return chat.Message{ID: id, User: chat.User{ID: "u-" + id, Name: "Ñame \"q\"", Role: "viewer"},
		Text: "hi <b>" + id + "</b> ✓", TS: 1_700_000_000_000 + int64(len(id))}
}

func held(id string) chat.Message {
	m := msg(id)
	m.Reason = "selling"
	return m
}

func published(m chat.Message, seq uint64, ts int64) chat.Message {
	m.Seq, m.TS = seq, ts
	return m
}

func ids(ms []chat.Message) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.ID)
	}
	return out
}

// inAnHour is a timeout's end, in whole milliseconds (what Redis keeps).
func inAnHour() time.Time { return time.UnixMilli(time.Now().Add(time.Hour).UnixMilli()) }

func checkStanding(t *testing.T, s chat.Sanctions, roomID string, want map[string]chat.Standing) {
	t.Helper()
	for user, w := range want {
		st, err := s.Standing(context.Background(), roomID, user)
		if err != nil || st.Banned != w.Banned || !st.MutedUntil.Equal(w.MutedUntil) {
			t.Errorf("%s in %s: got %+v %v, want %+v", user, roomID, st, err, w)
		}
	}
}

// checkTerms checks the room's terms and returns their version.
func checkTerms(t *testing.T, s chat.Rules, roomID string, want []string) uint64 {
	t.Helper()
	terms, v, err := s.Terms(context.Background(), roomID)
	if err != nil || !slices.Equal(terms, want) {
		t.Errorf("terms of %s: got %q %v, want %q", roomID, terms, err, want)
	}
	return v
}
