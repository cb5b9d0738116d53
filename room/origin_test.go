package room_test

import (
	"strings"
	"testing"
	"time"

	"liveroom/room"
	"liveroom/room/roomtest"
)

func TestMemoryOrigins(t *testing.T) {
	roomtest.TestOrigins(t, func(t *testing.T) (room.Origins, room.Origins) {
		o := room.NewMemoryOrigins()
		return o, o
	})
}

func TestRedisOrigins(t *testing.T) {
	srv := roomtest.StartRedis(t)
	roomtest.TestOrigins(t, func(t *testing.T) (room.Origins, room.Origins) {
		p := roomtest.Prefix()
		return room.NewRedisOrigins(srv.Client(t), p), room.NewRedisOrigins(srv.Client(t), p)
	})
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
