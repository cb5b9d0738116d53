package roomtest

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"liveroom/room"
)

// TestStore is the conformance suite of room.Store. open returns the store
// again over the same backing data (a restart, or another node when shared
// is true: then concurrent updates through several instances must all land).
func TestStore(t *testing.T, shared bool, open func() room.Store) {
	ctx := context.Background()
	s := open()
	r, err := room.NewRoom(room.Room{ID: "spring", Title: "Spring edit"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Create(ctx, r); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Create(ctx, r); !errors.Is(err, room.ErrExists) {
		t.Fatalf("second create: got %v, want room.ErrExists", err)
	}
	if r.Incarnation == "" {
		t.Fatal("NewRoom gave no incarnation")
	}
	upd, err := s.Update(ctx, "spring", func(r *room.Room) error {
		r.Title, r.ID, r.Incarnation = "Renamed", "other", "forged"
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if upd.Incarnation != r.Incarnation {
		t.Fatalf("update changed the incarnation: got %q, want %q", upd.Incarnation, r.Incarnation)
	}
	if _, err := s.Update(ctx, "spring", func(r *room.Room) error { r.Title = ""; return nil }); err == nil {
		t.Fatal("update to an empty title: got nil error")
	}
	if _, err := s.Update(ctx, "nope", func(r *room.Room) error { return nil }); !errors.Is(err, room.ErrNotFound) {
		t.Fatalf("update a missing room: got %v, want room.ErrNotFound", err)
	}
	later, _ := room.NewRoom(room.Room{ID: "autumn", Title: "Autumn"}, time.Now().Add(time.Second))
	if _, err := s.Create(ctx, later); err != nil {
		t.Fatal(err)
	}

	s2 := open()
	got, err := s2.Get(ctx, "spring")
	if err != nil {
		t.Fatal(err)
	}
	if got.Title != "Renamed" || got.StreamKey != r.StreamKey || got.Status != room.StatusScheduled || got.ID != "spring" || got.Incarnation != r.Incarnation {
		t.Fatalf("after reopen: got %+v, want title Renamed, same id and stream key, scheduled", got)
	}
	if list, err := s2.List(ctx); err != nil || len(list) != 2 || list[0].ID != "spring" || list[1].ID != "autumn" {
		t.Fatalf("list: got %+v %v, want spring then autumn", list, err)
	}
	if err := s2.Delete(ctx, "spring"); err != nil {
		t.Fatal(err)
	}
	if err := s2.Delete(ctx, "spring"); !errors.Is(err, room.ErrNotFound) {
		t.Fatalf("second delete: got %v, want room.ErrNotFound", err)
	}
	s3 := open()
	if _, err := s3.Get(ctx, "spring"); !errors.Is(err, room.ErrNotFound) {
		t.Fatalf("after delete and reopen: got %v, want room.ErrNotFound", err)
	}
	// The same id created again is a new incarnation: a new data scope.
	again, _ := room.NewRoom(room.Room{ID: "spring", Title: "Spring again"}, time.Now())
	if _, err := s3.Create(ctx, again); err != nil {
		t.Fatal(err)
	}
	if got, err := s3.Get(ctx, "spring"); err != nil || got.Scope() == r.Scope() || got.Scope() != again.Scope() {
		t.Fatalf("recreated room: got scope %q (%v), want %q, not the old %q", got.Scope(), err, again.Scope(), r.Scope())
	}
	if err := s3.Delete(ctx, "spring"); err != nil {
		t.Fatal(err)
	}
	// Both deleted incarnations are retired, durably, until forgotten.
	if rs, ok := open().(room.RetiredStore); ok {
		list, err := rs.Retired(ctx)
		var incs []string
		for _, x := range list {
			if x.ID == "spring" && !x.DeletedAt.IsZero() {
				incs = append(incs, x.Incarnation)
			}
		}
		if err != nil || len(incs) != 2 || !slices.Contains(incs, r.Incarnation) || !slices.Contains(incs, again.Incarnation) {
			t.Fatalf("retired: got %+v %v, want both incarnations of spring", list, err)
		}
		if err := rs.ForgetRetired(ctx, r.Scope()); err != nil {
			t.Fatal(err)
		}
		rs2 := open().(room.RetiredStore)
		if list, err := rs2.Retired(ctx); err != nil || len(list) != 1 || list[0].Scope() != again.Scope() {
			t.Fatalf("retired after forgetting one: got %+v %v, want only %s", list, err, again.Scope())
		}
	}

	// Concurrent updates from several "nodes" all land.
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st := s3
			if shared {
				st = open()
			}
			if _, err := st.Update(ctx, "autumn", func(r *room.Room) error { r.Title += "+"; return nil }); err != nil {
				t.Errorf("update %d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	if got, _ := s3.Get(ctx, "autumn"); got.Title != "Autumn++++++++" {
		t.Fatalf("after 8 concurrent updates: got title %q", got.Title)
	}
}
