package chattest

import (
	"context"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"liveroom/chat"
)

// TestAudit is the conformance suite of chat.AuditLog. open returns a
// fresh log; durable says its Reopen keeps every entry and the ids go on.
func TestAudit(t *testing.T, durable bool, open func(t *testing.T) Handles[chat.AuditLog]) {
	ctx := context.Background()
	t.Run("forget a scope", func(t *testing.T) { testForgetAudit(t, durable, open) })

	t.Run("ids per room, recent oldest first", func(t *testing.T) {
		h := open(t)
		var want []chat.AuditEntry
		for i := range 5 {
			e := entry(i)
			e.ID = 99 // the log numbers entries, not the caller
			got, err := []chat.AuditLog{h.A, h.B}[i%2].Append(ctx, e)
			e.ID = uint64(i + 1)
			if err != nil || !sameEntry(got, e) {
				t.Fatalf("append %d: got %+v %v, want %+v", i, got, err, e)
			}
			want = append(want, e)
		}
		if e, err := h.B.Append(ctx, chat.AuditEntry{Room: "r2", Action: "slow"}); err != nil || e.ID != 1 {
			t.Fatalf("first entry of another room: got id %d %v, want 1", e.ID, err)
		}
		for _, tc := range []struct{ limit, from int }{{0, 0}, {2, 3}, {5, 0}, {9, 0}} { // 0: all
			checkAudit(t, h.A, "r", tc.limit, want[tc.from:])
		}
		checkAudit(t, h.B, "r3", 10, nil)
	})

	t.Run("concurrent appends get distinct ids in order", func(t *testing.T) {
		h := open(t)
		const n = 20
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				if _, err := []chat.AuditLog{h.A, h.B}[i%2].Append(ctx, entry(i)); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		got, err := h.B.Recent(ctx, "r", 0)
		if err != nil || len(got) != n {
			t.Fatalf("recent: got %d entries %v, want %d", len(got), err, n)
		}
		users := map[string]bool{}
		for i, e := range got {
			if e.ID != uint64(i+1) {
				t.Fatalf("entry %d: got id %d, want %d", i, e.ID, i+1)
			}
			users[e.UserID] = true
		}
		if len(users) != n {
			t.Fatalf("got %d distinct entries, want %d", len(users), n)
		}
	})

	if !durable {
		return
	}
	t.Run("restart", func(t *testing.T) {
		h := open(t)
		var want []chat.AuditEntry
		for i := range 3 {
			e, err := h.A.Append(ctx, entry(i))
			if err != nil {
				t.Fatal(err)
			}
			want = append(want, e)
		}
		log := reopen(t, h)
		checkAudit(t, log, "r", 0, want)
		e, err := log.Append(ctx, entry(3))
		if err != nil || e.ID != 4 {
			t.Fatalf("append after the restart: got id %d %v, want 4", e.ID, err)
		}
		checkAudit(t, reopen(t, h), "r", 0, append(want, e))
	})
}

// entry is the ith moderator action in room "r", every field set.
// testForgetAudit: forgetting a room incarnation's scope empties its log
// (after a restart too) and leaves the others'.
func testForgetAudit(t *testing.T, durable bool, open func(t *testing.T) Handles[chat.AuditLog]) {
	ctx := context.Background()
	h := open(t)
	forget := forgetter(h)
	if forget == nil {
		t.Skip("the implementation cannot forget a scope")
	}
	const gone, kept = "shop~aaaa1111", "shop~bbbb2222"
	for _, scope := range []string{gone, kept} {
		e := entry(0)
		e.Room = scope
		if _, err := h.A.Append(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	if err := forget(ctx, gone); err != nil {
		t.Fatal(err)
	}
	logs := []chat.AuditLog{h.B}
	if durable {
		logs = append(logs, reopen(t, h))
	}
	for _, l := range logs {
		if got, err := l.Recent(ctx, gone, 10); err != nil || len(got) != 0 {
			t.Fatalf("forgotten scope: got %d entries (%v), want none", len(got), err)
		}
		if got, err := l.Recent(ctx, kept, 10); err != nil || len(got) != 1 {
			t.Fatalf("other scope: got %d entries (%v), want 1", len(got), err)
		}
	}
	// The scope can start again from id 1 (a new incarnation never reuses
	// it, but nothing stale may linger).
	e := entry(1)
	e.Room = gone
	if got, err := logs[len(logs)-1].Append(ctx, e); err != nil || got.ID != 1 {
		t.Fatalf("append after forget: got id %d (%v), want 1", got.ID, err)
	}
}

func entry(i int) chat.AuditEntry {
	secs := 30 + i
	return chat.AuditEntry{
		Room: "r", At: time.Date(2026, 5, 1, 12, 0, i, 123456789, time.UTC),
		Actor:  chat.User{ID: "mod", Name: "Mödé \"1\"", Role: "moderator"},
		Action: "terms", UserID: "u" + strconv.Itoa(i), MessageID: "m" + strconv.Itoa(i), Seconds: &secs,
		Text:  "line one\nline two {\"id\":1} \u2028 ✓",
		Added: []string{"fake deal", "t" + strconv.Itoa(i)}, Removed: []string{"scam"},
	}
}

func sameEntry(a, b chat.AuditEntry) bool {
	return a.ID == b.ID && a.Room == b.Room && a.At.Equal(b.At) && a.Actor == b.Actor && a.Action == b.Action &&
		a.UserID == b.UserID && a.MessageID == b.MessageID && (a.Seconds == nil) == (b.Seconds == nil) &&
		(a.Seconds == nil || *a.Seconds == *b.Seconds) && a.Text == b.Text &&
		slices.Equal(a.Added, b.Added) && slices.Equal(a.Removed, b.Removed)
}

func checkAudit(t *testing.T, log chat.AuditLog, roomID string, limit int, want []chat.AuditEntry) {
	t.Helper()
	got, err := log.Recent(context.Background(), roomID, limit)
	if err != nil || len(got) != len(want) {
		t.Fatalf("recent %d of %s: got %d entries %v, want %d", limit, roomID, len(got), err, len(want))
	}
	for i := range want {
		if !sameEntry(got[i], want[i]) {
			t.Errorf("recent %d of %s, entry %d: got %+v, want %+v", limit, roomID, i, got[i], want[i])
		}
	}
}
