package room_test

import (
	"testing"

	"liveroom/room"
	"liveroom/room/roomtest"
)

func TestMemoryBus(t *testing.T) {
	const history = 8
	roomtest.TestBus(t, history, func(t *testing.T) (room.Bus, room.Bus) {
		b := room.NewMemoryBus(history)
		return b, b // one process: both "nodes" share the bus
	})
}
