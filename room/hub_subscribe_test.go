package room_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"liveroom/room"
	"liveroom/room/roomtest"
)

// flakyBus fails the first Subscribe calls, as a Redis bus does while Redis
// is away for a moment.
type flakyBus struct {
	room.Bus
	failures atomic.Int32
}

func (b *flakyBus) Subscribe(ctx context.Context, roomID string, fn func(room.Delivery)) (func(), error) {
	if b.failures.Add(-1) >= 0 {
		return nil, errors.New("bus unavailable")
	}
	return b.Bus.Subscribe(ctx, roomID, fn)
}

// A failed subscription answers unavailable, and the next joiner of the
// room subscribes again instead of inheriting the failure.
func TestJoinRetriesAFailedSubscription(t *testing.T) {
	bus := &flakyBus{Bus: room.NewMemoryBus(64)}
	bus.failures.Store(1)
	s := roomtest.New(t, roomtest.Options{Bus: bus})
	first, _, err := s.DialRaw("demo", s.Token(t, "v1", room.RoleViewer, "demo"), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	first.ExpectError(t, room.CodeUnavailable)
	s.Dial(t, "demo", s.Token(t, "v2", room.RoleViewer, "demo")) // fails the test without a welcome
}
