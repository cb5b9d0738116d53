package web

import (
	"context"
	"errors"
	"testing"

	"liveroom/media"
)

// The ingests' authorizer: a room's stream key publishes to that room by id
// or alone (OBS "Custom"); a wrong or other room's key does not.
func TestIngestAuth(t *testing.T) {
	n := newAccessNode(t)
	cam := n.createRoom("cam", false)
	other := n.createRoom("other", false)
	a := NewIngestAuth(n.auth, n.rooms)
	ctx := context.Background()

	host, err := a.AuthorizePublish(ctx, "cam", cam.StreamKey)
	if err != nil || host == "" {
		t.Fatalf("AuthorizePublish with the key: %q, %v", host, err)
	}
	if _, err := a.AuthorizePublish(ctx, "cam", other.StreamKey); err == nil {
		t.Errorf("another room's key published")
	}
	if _, err := a.AuthorizePublish(ctx, "nope", cam.StreamKey); !errors.Is(err, media.ErrRoomNotFound) {
		t.Errorf("unknown room: %v, want ErrRoomNotFound", err)
	}
	roomID, host2, err := a.FindPublish(ctx, cam.StreamKey)
	if err != nil || roomID != "cam" || host2 != host {
		t.Errorf("FindPublish: %q %q %v, want cam %q", roomID, host2, err, host)
	}
	for _, key := range []string{"", "sk_wrong", cam.StreamKey + "x"} {
		if _, _, err := a.FindPublish(ctx, key); !errors.Is(err, media.ErrRoomNotFound) {
			t.Errorf("FindPublish(%q): %v, want ErrRoomNotFound", key, err)
		}
	}
}
