package room

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestFileStoreSurvivesRestart(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := OpenFileStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	r, err := NewRoom(Room{ID: "spring", Title: "Spring edit"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Create(ctx, r); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Create(ctx, r); !errors.Is(err, ErrExists) {
		t.Fatalf("second create: got %v, want ErrExists", err)
	}
	if _, err := s.Update(ctx, "spring", func(r *Room) error { r.Title = "Renamed"; return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Update(ctx, "spring", func(r *Room) error { r.Title = ""; return nil }); err == nil {
		t.Fatal("update to an empty title: got nil error")
	}

	s2, err := OpenFileStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	got, err := s2.Get(ctx, "spring")
	if err != nil {
		t.Fatal(err)
	}
	if got.Title != "Renamed" || got.StreamKey != r.StreamKey || got.Status != StatusScheduled {
		t.Fatalf("after reopen: got %+v, want title Renamed, same stream key, scheduled", got)
	}
	if err := s2.Delete(ctx, "spring"); err != nil {
		t.Fatal(err)
	}
	s3, _ := OpenFileStore(dir)
	if _, err := s3.Get(ctx, "spring"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("after delete and reopen: got %v, want ErrNotFound", err)
	}
}

func TestRoomValidate(t *testing.T) {
	tests := []struct {
		name  string
		room  Room
		field string
	}{
		{"ok", Room{ID: "a-1", Title: "t", Status: StatusLive}, ""},
		{"upper id", Room{ID: "Abc", Title: "t", Status: StatusLive}, "id"},
		{"slash id", Room{ID: "a/b", Title: "t", Status: StatusLive}, "id"},
		{"empty title", Room{ID: "a", Status: StatusLive}, "title"},
		{"bad status", Room{ID: "a", Title: "t", Status: "paused"}, "status"},
		{"http source", Room{ID: "a", Title: "t", Status: StatusLive, Source: "http://cam/x"}, "source"},
		{"rtsp source", Room{ID: "a", Title: "t", Status: StatusLive, Source: "rtsp://cam:554/x"}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.room.Validate()
			var ve *ValidationError
			switch {
			case tc.field == "" && err != nil:
				t.Fatalf("got %v, want nil", err)
			case tc.field != "" && (!errors.As(err, &ve) || ve.Field != tc.field):
				t.Fatalf("got %v, want a ValidationError on %q", err, tc.field)
			}
		})
	}
}
