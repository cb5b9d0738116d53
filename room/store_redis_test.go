package room_test

import (
	"testing"

	"liveroom/room"
	"liveroom/room/roomtest"
)

func TestRedisStore(t *testing.T) {
	srv := roomtest.StartRedis(t)
	prefix := roomtest.Prefix()
	roomtest.TestStore(t, true, func() room.Store { return room.NewRedisStore(srv.Client(t), prefix) })
}
