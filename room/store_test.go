package room_test

import (
	"errors"
	"testing"

	"liveroom/room"
	"liveroom/room/roomtest"
)

func TestFileStoreSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	roomtest.TestStore(t, false, func() room.Store {
		s, err := room.OpenFileStore(dir)
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestRoomValidate(t *testing.T) {
	tests := []struct {
		name  string
		room  room.Room
		field string
	}{
		{"ok", room.Room{ID: "a-1", Title: "t", Status: room.StatusLive}, ""},
		{"upper id", room.Room{ID: "Abc", Title: "t", Status: room.StatusLive}, "id"},
		{"slash id", room.Room{ID: "a/b", Title: "t", Status: room.StatusLive}, "id"},
		{"empty title", room.Room{ID: "a", Status: room.StatusLive}, "title"},
		{"bad status", room.Room{ID: "a", Title: "t", Status: "paused"}, "status"},
		{"http source", room.Room{ID: "a", Title: "t", Status: room.StatusLive, Source: "http://cam/x"}, "source"},
		{"rtsp source", room.Room{ID: "a", Title: "t", Status: room.StatusLive, Source: "rtsp://cam:554/x"}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.room.Validate()
			var ve *room.ValidationError
			switch {
			case tc.field == "" && err != nil:
				t.Fatalf("got %v, want nil", err)
			case tc.field != "" && (!errors.As(err, &ve) || ve.Field != tc.field):
				t.Fatalf("got %v, want a ValidationError on %q", err, tc.field)
			}
		})
	}
}
