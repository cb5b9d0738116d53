package room_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"liveroom/room"
	"liveroom/room/roomtest"
)

func TestRedisOrigins(t *testing.T) {
	srv := roomtest.StartRedis(t)
	p := roomtest.Prefix()
	a, b := room.NewRedisOrigins(srv.Client(t), p), room.NewRedisOrigins(srv.Client(t), p)
	ctx := context.Background()
	must := func(ok bool, err error) bool {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	get := func(o room.Origins) string {
		t.Helper()
		v, err := o.Get(ctx, "r1")
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	if got := get(a); got != "" {
		t.Fatalf("no origin yet: got %q", got)
	}
	if !must(a.ClaimFree(ctx, "r1", "A", time.Minute)) {
		t.Fatal("ClaimFree of a free room failed")
	}
	if must(b.ClaimFree(ctx, "r1", "B", time.Minute)) {
		t.Fatal("ClaimFree of a held room succeeded")
	}
	if got := get(b); got != "A" {
		t.Fatalf("origin %q, want A", got)
	}
	// The host moves to B: B claims over A; A's renewal and release fail
	// and leave B in place.
	if err := b.Claim(ctx, "r1", "B", time.Minute); err != nil {
		t.Fatal(err)
	}
	if must(a.Renew(ctx, "r1", "A", time.Minute)) {
		t.Fatal("A renewed a lease B holds")
	}
	if must(a.Release(ctx, "r1", "A")) {
		t.Fatal("A released a lease B holds")
	}
	if got := get(a); got != "B" {
		t.Fatalf("origin %q, want B", got)
	}
	if !must(b.Renew(ctx, "r1", "B", time.Minute)) {
		t.Fatal("B could not renew its lease")
	}
	if !must(b.Release(ctx, "r1", "B")) || get(a) != "" {
		t.Fatal("B's release did not free the room")
	}
	if !must(a.Release(ctx, "r1", "A")) {
		t.Fatal("releasing a free room should report true")
	}
	// A lease that is not renewed expires.
	if err := a.Claim(ctx, "r1", "A", 150*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for get(b) != "" {
		if time.Now().After(deadline) {
			t.Fatal("lease did not expire")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if must(a.Renew(ctx, "r1", "A", time.Minute)) {
		t.Fatal("renewed an expired lease")
	}
}

func TestClusterToken(t *testing.T) {
	secret := []byte("cluster-secret-0123456789")
	now := time.Unix(1_800_000_000, 0)
	tok := room.ClusterToken(secret, "node.a", "show", now)
	if node, err := room.VerifyClusterToken(secret, tok, "show", now.Add(30*time.Second)); err != nil || node != "node.a" {
		t.Fatalf("verify: %q %v", node, err)
	}
	bad := map[string]struct {
		secret []byte
		tok    string
		room   string
		at     time.Time
	}{
		"other room":   {secret, tok, "other", now},
		"other secret": {[]byte("another-secret"), tok, "show", now},
		"expired":      {secret, tok, "show", now.Add(2 * time.Minute)},
		"future":       {secret, tok, "show", now.Add(-2 * time.Minute)},
		"no secret":    {nil, tok, "show", now},
		"node changed": {secret, strings.Replace(tok, "node.a", "node.b", 1), "show", now},
		"empty":        {secret, "", "show", now},
		"garbage":      {secret, "a.b.c", "show", now},
	}
	for name, c := range bad {
		if _, err := room.VerifyClusterToken(c.secret, c.tok, c.room, c.at); err == nil {
			t.Errorf("%s: verified", name)
		}
	}
}

func FuzzVerifyClusterToken(f *testing.F) {
	secret := []byte("cluster-secret-0123456789")
	now := time.Unix(1_800_000_000, 0)
	f.Add(room.ClusterToken(secret, "a", "show", now), "show")
	f.Add("..", "")
	f.Add("a.1800000000.", "show")
	f.Fuzz(func(t *testing.T, tok, roomID string) {
		node, err := room.VerifyClusterToken(secret, tok, roomID, now)
		if err == nil && room.ClusterToken(secret, node, roomID, now) != tok {
			// Only the exact signed form may pass.
			t.Fatalf("accepted %q for node %q", tok, node)
		}
	})
}
