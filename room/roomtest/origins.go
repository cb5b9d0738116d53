package roomtest

import (
	"context"
	"testing"
	"time"

	"liveroom/room"
)

// TestOrigins is the conformance suite of room.Origins: newPair returns two
// handles on one directory (two nodes' views of it).
func TestOrigins(t *testing.T, newPair func(t *testing.T) (room.Origins, room.Origins)) {
	a, b := newPair(t)
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
