package chat_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"liveroom/chat"
	"liveroom/room/roomtest"
)

// state is every chat state interface at once, as both implementations are.
type state interface {
	chat.History
	chat.Held
	chat.Sanctions
	chat.Rules
}

func TestMemoryState(t *testing.T) {
	testState(t, func(t *testing.T, history, held int) (state, state) {
		s := chat.NewMemoryState(history, held)
		return s, s
	})
}

func TestRedisState(t *testing.T) {
	srv := roomtest.StartRedis(t)
	testState(t, func(t *testing.T, history, held int) (state, state) {
		p := roomtest.Prefix()
		return chat.NewRedisState(srv.Client(t), p, history, held), chat.NewRedisState(srv.Client(t), p, history, held)
	})
}

func TestRedisAudit(t *testing.T) {
	srv := roomtest.StartRedis(t)
	ctx := context.Background()
	p := roomtest.Prefix()
	a := chat.NewRedisState(srv.Client(t), p, 10, 10).Audit()
	b := chat.NewRedisState(srv.Client(t), p, 10, 10).Audit()
	for i := range 5 {
		log := []*chat.RedisAudit{a, b}[i%2]
		e, err := log.Append(ctx, chat.AuditEntry{Room: "r", Action: "ban", UserID: fmt.Sprint("u", i), At: time.Now()})
		if err != nil || e.ID != uint64(i+1) {
			t.Fatalf("append %d: got id %d %v, want %d", i, e.ID, err, i+1)
		}
	}
	got, err := b.Recent(ctx, "r", 2)
	if err != nil || len(got) != 2 || got[0].ID != 4 || got[1].UserID != "u4" {
		t.Fatalf("recent 2: got %+v %v", got, err)
	}
	if all, _ := a.Recent(ctx, "r", 0); len(all) != 5 {
		t.Fatalf("recent all: got %d entries, want 5", len(all))
	}
}

// testState runs the chat state conformance suite; newState returns two
// handles on one state (two nodes of a cluster, or the same memory state).
func testState(t *testing.T, newState func(t *testing.T, history, held int) (state, state)) {
	ctx := context.Background()
	msg := func(id string) chat.Message {
		return chat.Message{ID: id, User: chat.User{ID: "u-" + id, Name: "N", Role: "viewer"}, Text: "hi <b>" + id}
	}
	ids := func(ms []chat.Message) []string {
		var out []string
		for _, m := range ms {
			out = append(out, m.ID)
		}
		return out
	}

	t.Run("history keeps the last n, with seq", func(t *testing.T) {
		a, b := newState(t, 3, 2)
		for _, id := range []string{"m1", "m2", "m3", "m4"} {
			if err := a.Add(ctx, "r", msg(id)); err != nil {
				t.Fatal(err)
			}
		}
		if err := b.Published(ctx, "r", "m4", 42, 1000); err != nil {
			t.Fatal(err)
		}
		got, err := b.Recent(ctx, "r")
		if err != nil || !slices.Equal(ids(got), []string{"m2", "m3", "m4"}) {
			t.Fatalf("recent: got %v %v, want m2 m3 m4", ids(got), err)
		}
		if got[2].Seq != 42 || got[2].TS != 1000 || got[2].Text != "hi <b>m4" || got[2].User.ID != "u-m4" {
			t.Fatalf("last message: got %+v", got[2])
		}
		if m, ok, err := a.Remove(ctx, "r", "m3"); err != nil || !ok || m.ID != "m3" {
			t.Fatalf("remove m3: got %v %v %v", m.ID, ok, err)
		}
		if _, ok, _ := b.Remove(ctx, "r", "m1"); ok {
			t.Fatal("remove an evicted message: got ok")
		}
		if got, _ := b.Recent(ctx, "r"); !slices.Equal(ids(got), []string{"m2", "m4"}) {
			t.Fatalf("after remove: got %v", ids(got))
		}
		if got, _ := b.Recent(ctx, "other"); len(got) != 0 {
			t.Fatalf("another room: got %v", ids(got))
		}
	})

	t.Run("held queue", func(t *testing.T) {
		a, b := newState(t, 3, 2)
		for _, id := range []string{"h1", "h2", "h3"} {
			m := msg(id)
			m.Reason = "selling"
			if err := a.Hold(ctx, "r", m); err != nil {
				t.Fatal(err)
			}
		}
		got, _ := b.List(ctx, "r")
		if !slices.Equal(ids(got), []string{"h2", "h3"}) || got[0].Reason != "selling" {
			t.Fatalf("held: got %+v, want h2 h3 with reason", got)
		}
		if m, ok, err := b.Take(ctx, "r", "h2"); !ok || err != nil || m.ID != "h2" {
			t.Fatalf("take h2: got %v %v %v", m.ID, ok, err)
		}
		if _, ok, _ := a.Take(ctx, "r", "h2"); ok {
			t.Fatal("take h2 twice: got ok")
		}
	})

	t.Run("a message is taken once under contention", func(t *testing.T) {
		a, b := newState(t, 3, 2)
		_ = a.Hold(ctx, "r", msg("x"))
		var wg sync.WaitGroup
		var mu sync.Mutex
		taken := 0
		for i := range 10 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, ok, _ := []state{a, b}[i%2].Take(ctx, "r", "x"); ok {
					mu.Lock()
					taken++
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if taken != 1 {
			t.Fatalf("got %d takes, want 1", taken)
		}
	})

	t.Run("sanctions", func(t *testing.T) {
		a, b := newState(t, 3, 2)
		if err := a.Ban(ctx, "r", "u1"); err != nil {
			t.Fatal(err)
		}
		until := time.UnixMilli(time.Now().Add(time.Minute).UnixMilli())
		if err := a.Mute(ctx, "r", "u2", until); err != nil {
			t.Fatal(err)
		}
		if st, err := b.Standing(ctx, "r", "u1"); err != nil || !st.Banned || !st.MutedUntil.IsZero() {
			t.Fatalf("u1: got %+v %v, want banned", st, err)
		}
		if st, _ := b.Standing(ctx, "r", "u2"); st.Banned || !st.MutedUntil.Equal(until) {
			t.Fatalf("u2: got %+v, want muted until %v", st, until)
		}
		if st, _ := b.Standing(ctx, "other", "u1"); st.Banned {
			t.Fatal("ban leaked to another room")
		}
		if was, err := b.Unban(ctx, "r", "u1"); !was || err != nil {
			t.Fatalf("unban: got %v %v, want true", was, err)
		}
		if was, _ := a.Unban(ctx, "r", "u1"); was {
			t.Fatal("second unban: got true")
		}
		_ = b.Mute(ctx, "r", "u2", time.Time{})
		if st, _ := a.Standing(ctx, "r", "u2"); st != (chat.Standing{}) {
			t.Fatalf("after lifting: got %+v", st)
		}
	})

	t.Run("slow mode and posts", func(t *testing.T) {
		a, b := newState(t, 3, 2)
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
		if ok, _, _ := a.Post(ctx, "r", "u", now.Add(gap), gap); !ok {
			t.Fatal("post after the gap: refused")
		}
	})

	t.Run("terms", func(t *testing.T) {
		a, b := newState(t, 3, 2)
		_, v0, _ := b.Terms(ctx, "r")
		got, err := a.UpdateTerms(ctx, "r", []string{" WhatsApp ", "telegram", "whatsapp"}, nil, 5)
		if err != nil || !slices.Equal(got, []string{"WhatsApp", "telegram"}) {
			t.Fatalf("add: got %v %v", got, err)
		}
		terms, v1, _ := b.Terms(ctx, "r")
		if !slices.Equal(terms, got) || v1 == v0 {
			t.Fatalf("terms: got %v v%d (before v%d)", terms, v1, v0)
		}
		if got, _ := b.UpdateTerms(ctx, "r", []string{"cash"}, []string{"WHATSAPP"}, 5); !slices.Equal(got, []string{"telegram", "cash"}) {
			t.Fatalf("remove and add: got %v", got)
		}
		if _, v2, _ := a.Terms(ctx, "r"); v2 == v1 {
			t.Fatal("version did not change")
		}
		if _, err := a.UpdateTerms(ctx, "r", []string{"a1", "a2", "a3", "a4"}, nil, 5); err == nil {
			t.Fatal("more than max terms: got nil error")
		}
		if terms, _, _ := a.Terms(ctx, "r"); len(terms) != 2 {
			t.Fatalf("after a refused update: got %v", terms)
		}
		var wg sync.WaitGroup
		for i := range 6 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := []state{a, b}[i%2].UpdateTerms(ctx, "r2", []string{fmt.Sprint("term", i)}, nil, 100); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		if terms, _, _ := b.Terms(ctx, "r2"); len(terms) != 6 {
			t.Fatalf("concurrent additions: got %v, want 6 terms", terms)
		}
	})
}
