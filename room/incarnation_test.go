package room_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"liveroom/room"
	"liveroom/room/roomtest"
)

func TestScope(t *testing.T) {
	for _, tc := range []struct {
		id, inc, scope string
	}{
		{"shop1", "", "shop1"}, // a room stored before incarnations: its keys stay
		{"shop1", "a1b2c3d4e5f60718", "shop1~a1b2c3d4e5f60718"},
	} {
		if got := room.Scope(tc.id, tc.inc); got != tc.scope {
			t.Errorf("Scope(%q, %q): got %q, want %q", tc.id, tc.inc, got, tc.scope)
		}
		if id, inc := room.SplitScope(tc.scope); id != tc.id || inc != tc.inc {
			t.Errorf("SplitScope(%q): got %q %q, want %q %q", tc.scope, id, inc, tc.id, tc.inc)
		}
		if !room.ValidScope(tc.scope) {
			t.Errorf("ValidScope(%q): got false", tc.scope)
		}
	}
	for _, bad := range []string{"", "shop1~", "~abc", "shop1~a/b", "shop1~a~b", "Shop1", "shop1~*", "shop1~abc}"} {
		if room.ValidScope(bad) {
			t.Errorf("ValidScope(%q): got true, want false", bad)
		}
	}
	r1, _ := room.NewRoom(room.Room{ID: "shop1", Title: "One"}, time.Now())
	r2, _ := room.NewRoom(room.Room{ID: "shop1", Title: "Two"}, time.Now())
	if !room.ValidScope(r1.Scope()) || r1.Scope() == r2.Scope() || room.ScopeRoom(r1.Scope()) != "shop1" {
		t.Fatalf("two rooms of one id: scopes %q %q, want valid, distinct, of shop1", r1.Scope(), r2.Scope())
	}
}

// The sweep removes an incarnation only once its retention has passed,
// from every backend, and keeps one whose removal failed for the next.
func TestRetiredSweeper(t *testing.T) {
	ctx := context.Background()
	store, err := room.OpenFileStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var rooms []room.Room
	for _, id := range []string{"a", "b"} {
		r, _ := room.NewRoom(room.Room{ID: id, Title: id}, time.Now())
		if _, err := store.Create(ctx, r); err != nil {
			t.Fatal(err)
		}
		if err := store.Delete(ctx, id); err != nil {
			t.Fatal(err)
		}
		rooms = append(rooms, r)
	}
	var forgotten []string
	failB := true
	now := time.Now()
	s := &room.RetiredSweeper{Rooms: store, Retention: time.Hour, Now: func() time.Time { return now },
		Forget: []func(context.Context, string) error{
			func(_ context.Context, scope string) error { forgotten = append(forgotten, scope); return nil },
			func(_ context.Context, scope string) error {
				if failB && scope == rooms[1].Scope() {
					return errors.New("backend away")
				}
				return nil
			},
		}}
	if n, err := s.Sweep(ctx); n != 0 || err != nil || len(forgotten) != 0 {
		t.Fatalf("within the retention: removed %d, forgot %v (%v), want nothing", n, forgotten, err)
	}
	now = now.Add(time.Hour + time.Minute)
	if n, err := s.Sweep(ctx); n != 1 || err == nil {
		t.Fatalf("after the retention, b failing: removed %d (%v), want 1 and an error", n, err)
	}
	if list, _ := store.Retired(ctx); len(list) != 1 || list[0].Scope() != rooms[1].Scope() {
		t.Fatalf("retired after one failure: got %+v, want only b", list)
	}
	failB = false
	if n, err := s.Sweep(ctx); n != 1 || err != nil {
		t.Fatalf("next sweep: removed %d (%v), want 1", n, err)
	}
	if list, _ := store.Retired(ctx); len(list) != 0 {
		t.Fatalf("retired after the sweeps: got %+v, want none", list)
	}
	if !slices.Contains(forgotten, rooms[0].Scope()) || !slices.Contains(forgotten, rooms[1].Scope()) {
		t.Fatalf("forgotten scopes: got %v, want both", forgotten)
	}
}

// ForgetRedisScope removes one scope's keys: not another incarnation's,
// not the room's origin (media's, keyed by room id).
func TestForgetRedisScope(t *testing.T) {
	srv := roomtest.StartRedis(t)
	rdb := srv.Client(t)
	prefix := roomtest.Prefix()
	ctx := context.Background()
	gone, kept := "shop~aaaa1111", "shop~bbbb2222"
	keys := []string{
		prefix + "{room:" + gone + "}:bus:stream", prefix + "{room:" + gone + "}:chat:history",
		prefix + "{room:" + kept + "}:chat:history", prefix + "{room:shop}:chat:history",
		prefix + "{room:" + gone + "}:origin",
	}
	for _, k := range keys {
		if err := rdb.Set(ctx, k, "x", 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	if err := room.ForgetRedisScope(rdb, prefix)(ctx, gone); err != nil {
		t.Fatal(err)
	}
	for i, k := range keys {
		n, err := rdb.Exists(ctx, k).Result()
		if want := int64(0); i >= 2 {
			want = 1
			if err != nil || n != want {
				t.Errorf("%s: exists %d (%v), want %d", k, n, err, want)
			}
		} else if err != nil || n != want {
			t.Errorf("%s: exists %d (%v), want %d", k, n, err, want)
		}
	}
	if err := room.ForgetRedisScope(rdb, prefix)(ctx, "shop*"); err == nil {
		t.Fatal("a glob as scope: got nil error")
	}
}

// A retired incarnation has no subscribers: its bus history goes; a scope
// still subscribed keeps it.
func TestMemoryBusForgetScope(t *testing.T) {
	ctx := context.Background()
	bus := room.NewMemoryBus(16)
	for _, scope := range []string{"a~x1", "b~x2"} {
		if _, err := bus.Publish(ctx, scope, room.MustEvent("x", map[string]any{})); err != nil {
			t.Fatal(err)
		}
	}
	unsub, err := bus.Subscribe(ctx, "b~x2", func(room.Delivery) {})
	if err != nil {
		t.Fatal(err)
	}
	defer unsub()
	for _, scope := range []string{"a~x1", "b~x2"} {
		if err := bus.ForgetScope(ctx, scope); err != nil {
			t.Fatal(err)
		}
	}
	if evs, _, _, err := bus.Since(ctx, "a~x1", 0); err != nil || len(evs) != 0 {
		t.Fatalf("forgotten scope: %d events (%v), want none", len(evs), err)
	}
	if evs, _, _, err := bus.Since(ctx, "b~x2", 0); err != nil || len(evs) != 1 {
		t.Fatalf("subscribed scope: %d events (%v), want 1", len(evs), err)
	}
}

// A token minted in one incarnation of a room is refused by the next one
// of the same id; a token bound to no incarnation works in both.
func TestTokenBoundToIncarnation(t *testing.T) {
	auth, err := room.NewAuth(room.AuthConfig{JWTSecret: "incarn-secret-0123456789", AdminKey: "incarn-admin-key-0123456789"})
	if err != nil {
		t.Fatal(err)
	}
	access := room.NewAccess(auth, nil)
	old, _ := room.NewRoom(room.Room{ID: "shop1", Title: "Old"}, time.Now())
	fresh, _ := room.NewRoom(room.Room{ID: "shop1", Title: "New"}, time.Now())
	bound, err := auth.Mint(room.Identity{ID: "h", Role: room.RoleHost, Room: "shop1", Incarnation: old.Incarnation}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	unbound, _ := auth.Mint(room.Identity{ID: "h", Role: room.RoleHost, Room: "shop1"}, time.Hour)
	for _, tc := range []struct {
		name  string
		token string
		rm    room.Room
		ok    bool
	}{
		{"bound, its incarnation", bound, old, true},
		{"bound, the next incarnation", bound, fresh, false},
		{"unbound, old", unbound, old, true},
		{"unbound, new", unbound, fresh, true},
	} {
		rm := tc.rm
		id, err := access.Check(room.AccessRequest{Action: room.ActRoom, Room: &rm, Credential: tc.token, MinRole: room.RoleHost})
		if (err == nil) != tc.ok {
			t.Errorf("%s: got %+v %v, want ok %v", tc.name, id, err, tc.ok)
		}
		if err != nil && room.Refusal(err).Code != room.CodeUnauthorized {
			t.Errorf("%s: got %v, want unauthorized", tc.name, err)
		}
	}
}
