package chat_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"liveroom/chat"
	"liveroom/room"
)

// A moderation change whose file cannot be written is refused whole: the
// caller gets the error, memory is as before, and after the disk recovers
// (and after a restart) the state is what the successful changes made it.
func TestFileStateFailedSaveChangesNothing(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := chat.OpenFileState(dir, 50, 200)
	if err != nil {
		t.Fatal(err)
	}
	mod := chat.Actor{ID: "m1", Role: room.RoleModerator}
	if err := s.Ban(ctx, "r1", "kept", mod); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UpdateTerms(ctx, "r1", []string{"spam"}, nil, 10); err != nil {
		t.Fatal(err)
	}
	if err := s.SetSlow(ctx, "r1", 5); err != nil {
		t.Fatal(err)
	}
	// The rename onto moderation.json fails while a non-empty directory
	// sits there (root ignores permission bits, so not chmod).
	path := filepath.Join(dir, "moderation.json")
	saved, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path, path+".good"); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(path, "blocker"), 0o750); err != nil {
		t.Fatal(err)
	}
	until := time.Now().Add(time.Hour)
	fails := []struct {
		name string
		do   func() error
	}{
		{"ban", func() error { return s.Ban(ctx, "r1", "u2", mod) }},
		{"unban", func() error { _, err := s.Unban(ctx, "r1", "kept"); return err }},
		{"mute", func() error { return s.Mute(ctx, "r1", "u3", until, mod) }},
		{"slow", func() error { return s.SetSlow(ctx, "r1", 30) }},
		{"terms", func() error { _, err := s.UpdateTerms(ctx, "r1", []string{"scam"}, []string{"spam"}, 10); return err }},
		{"ban in a new room", func() error { return s.Ban(ctx, "r2", "u4", mod) }},
	}
	for _, f := range fails {
		if err := f.do(); err == nil {
			t.Fatalf("%s: no error with the file unwritable", f.name)
		}
	}
	check := func(s *chat.FileState, when string) {
		t.Helper()
		for _, c := range []struct {
			room, user string
			banned     bool
		}{{"r1", "kept", true}, {"r1", "u2", false}, {"r2", "u4", false}} {
			st, err := s.Standing(ctx, c.room, c.user)
			if err != nil || st.Banned != c.banned {
				t.Errorf("%s: %s/%s banned = %v (%v), want %v", when, c.room, c.user, st.Banned, err, c.banned)
			}
		}
		if st, _ := s.Standing(ctx, "r1", "u3"); !st.MutedUntil.IsZero() {
			t.Errorf("%s: u3 muted until %v after a failed mute", when, st.MutedUntil)
		}
		if slow, _ := s.Slow(ctx, "r1"); slow != 5 {
			t.Errorf("%s: slow = %d, want 5", when, slow)
		}
		if terms, _, _ := s.Terms(ctx, "r1"); !slices.Equal(terms, []string{"spam"}) {
			t.Errorf("%s: terms = %q, want [spam]", when, terms)
		}
	}
	check(s, "after the failed changes")

	// The disk recovers: the next change writes, and carries none of the
	// failed ones.
	if err := os.RemoveAll(path); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".good", path); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); string(b) != string(saved) {
		t.Fatal("the good file changed while unwritable")
	}
	if err := s.Ban(ctx, "r1", "u5", mod); err != nil {
		t.Fatal(err)
	}
	again, err := chat.OpenFileState(dir, 50, 200)
	if err != nil {
		t.Fatal(err)
	}
	check(again, "after a restart")
	if st, _ := again.Standing(ctx, "r1", "u5"); !st.Banned {
		t.Error("after a restart: the ban made after recovery is gone")
	}
}
