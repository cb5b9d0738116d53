package record

import (
	"context"
	"log/slog"
	"slices"
	"testing"
	"time"

	"liveroom/room/roomtest"
)

// A show deleted on one node (a DELETE or its retention sweep) leaves a
// tombstone in the manifest, and every other node holding part of it
// removes its files at its next sweep; shows without a tombstone, and the
// one being recorded, stay.
func TestDeletedShowLeavesEveryNode(t *testing.T) {
	srv := roomtest.StartRedis(t)
	man := NewRedisManifest(srv.Client(t), "t:")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	now := time.Now().UTC().Add(-time.Hour)

	// Node a recorded the start of s1, b its end (the host moved); both
	// hold s2, b also s3 (being recorded) and s4.
	dirA, dirB := t.TempDir(), t.TempDir()
	for _, id := range []string{"s1", "s2"} {
		putShow(t, dirA, "r", id, now, 100, true, "")
	}
	for _, id := range []string{"s1", "s2", "s3", "s4"} {
		putShow(t, dirB, "r", id, now, 100, id != "s3", "")
	}
	for _, id := range []string{"s1", "s2", "s3", "s4"} {
		st := ShowState{Meta: Meta{ID: id, Room: "r", Scope: "r", StartedAt: now}, Node: "b", Inits: map[int]string{}}
		if err := man.Save(ctx, st, []SegmentRef{{Node: "b", Name: "seg-00001.m4s", Init: 1, Dur: time.Second}}); err != nil {
			t.Fatal(err)
		}
	}
	libA := NewLibrary(dirA)
	cl := NewClusterLibrary(libA, man, "a", nil)
	if err := cl.Delete("r", "s1"); err != nil {
		t.Fatal(err)
	}
	// s3 is deleted from the manifest while b still records it (an
	// operator's DELETE of a live show): b keeps writing it.
	if err := man.Delete(ctx, "r", "s3"); err != nil {
		t.Fatal(err)
	}
	if got := ids(t, libA, "r"); !slices.Equal(got, []string{"s2"}) {
		t.Fatalf("node a after DELETE s1: %v, want [s2]", got)
	}
	libB := NewLibrary(dirB)
	b := &Recorder{lib: libB, man: man, log: slog.New(slog.DiscardHandler), shows: map[string]*show{
		"r": {meta: Meta{ID: "s3", Room: "r"}},
	}}
	if got := ids(t, libB, "r"); !slices.Equal(got, []string{"s1", "s2", "s3", "s4"}) {
		t.Fatalf("node b before its sweep: %v", got)
	}
	b.sweepDeleted()
	if got := ids(t, libB, "r"); !slices.Equal(got, []string{"s2", "s3", "s4"}) {
		t.Fatalf("node b after its sweep: %v, want [s2 s3 s4] (s1 deleted on a, s3 being recorded)", got)
	}
	gone, err := man.Deleted(ctx, []string{"r/s1", "r/s2", "r/s3", "r/nope"})
	if err != nil || !gone["r/s1"] || gone["r/s2"] || !gone["r/s3"] || gone["r/nope"] {
		t.Fatalf("tombstones %v %v, want r/s1 and r/s3", gone, err)
	}
}
