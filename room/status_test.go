package room_test

import (
	"errors"
	"testing"

	"liveroom/room"
)

func TestStreamStatus(t *testing.T) {
	tests := []struct {
		cur  room.Status
		live bool
		want room.Status
	}{
		{room.StatusScheduled, true, room.StatusLive},
		{room.StatusLive, true, room.StatusLive},
		{room.StatusEnded, true, room.StatusLive},
		{room.StatusLive, false, room.StatusScheduled},
		{room.StatusScheduled, false, room.StatusScheduled},
		{room.StatusEnded, false, room.StatusEnded},
	}
	for _, tc := range tests {
		if got := room.StreamStatus(tc.cur, tc.live); got != tc.want {
			t.Errorf("StreamStatus(%s, live=%v): got %s, want %s", tc.cur, tc.live, got, tc.want)
		}
	}
}

func TestRequestStatus(t *testing.T) {
	for _, s := range []room.Status{room.StatusScheduled, room.StatusEnded} {
		if err := room.RequestStatus(s); err != nil {
			t.Errorf("RequestStatus(%s): got %v, want nil", s, err)
		}
	}
	var ve *room.ValidationError
	if err := room.RequestStatus(room.StatusLive); !errors.As(err, &ve) || ve.Field != "status" {
		t.Errorf("RequestStatus(live): got %v, want a ValidationError on status", err)
	}
}
