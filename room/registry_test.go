package room_test

import (
	"testing"

	"liveroom/room"
	"liveroom/room/roomtest"
)

func TestMemoryRegistry(t *testing.T) {
	roomtest.TestRegistry(t, func(t *testing.T) (room.Registry, room.Registry) {
		r := room.NewMemoryRegistry()
		return r, r
	})
}

func TestRedisRegistry(t *testing.T) {
	srv := roomtest.StartRedis(t)
	roomtest.TestRegistry(t, func(t *testing.T) (room.Registry, room.Registry) {
		p := roomtest.Prefix()
		return room.NewRedisRegistry(srv.Client(t), p), room.NewRedisRegistry(srv.Client(t), p)
	})
}
