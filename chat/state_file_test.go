package chat

import (
	"context"
	"testing"
	"time"
)

// Moderation outlives a restart of a single node: a banned user stays
// banned, a timeout runs to its end, slow mode and blocked terms stay.
func TestFileStateSurvivesRestart(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := OpenFileState(dir, 50, 10)
	if err != nil {
		t.Fatal(err)
	}
	until := time.Now().Add(time.Hour).Truncate(time.Millisecond)
	if err := s.Ban(ctx, "r", "spammer"); err != nil {
		t.Fatal(err)
	}
	if err := s.Ban(ctx, "r", "forgiven"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Unban(ctx, "r", "forgiven"); err != nil {
		t.Fatal(err)
	}
	if err := s.Mute(ctx, "r", "loud", until); err != nil {
		t.Fatal(err)
	}
	if err := s.SetSlow(ctx, "r", 10); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UpdateTerms(ctx, "r", []string{"fake deal", "scam"}, nil, 100); err != nil {
		t.Fatal(err)
	}

	s2, err := OpenFileState(dir, 50, 10)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		user       string
		banned     bool
		mutedUntil time.Time
	}{
		{"spammer", true, time.Time{}},
		{"forgiven", false, time.Time{}},
		{"loud", false, until},
		{"someone", false, time.Time{}},
	}
	for _, tc := range tests {
		st, err := s2.Standing(ctx, "r", tc.user)
		if err != nil {
			t.Fatal(err)
		}
		if st.Banned != tc.banned || !st.MutedUntil.Equal(tc.mutedUntil) {
			t.Errorf("%s after restart: got banned=%v muted until %v, want %v, %v", tc.user, st.Banned, st.MutedUntil, tc.banned, tc.mutedUntil)
		}
	}
	if slow, _ := s2.Slow(ctx, "r"); slow != 10 {
		t.Errorf("slow mode after restart: got %d, want 10", slow)
	}
	if terms, _, _ := s2.Terms(ctx, "r"); len(terms) != 2 {
		t.Errorf("terms after restart: got %v, want 2 terms", terms)
	}
}
