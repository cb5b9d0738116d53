package room_test

import (
	"context"
	"testing"
	"time"

	"liveroom/room"
	"liveroom/room/roomtest"
)

// TestRedisClockSkew: against a real redis-server on this machine the skew
// is about zero; a node clock two seconds fast reads as +2 s, one slow as
// -2 s; a Redis that is gone is an error.
func TestRedisClockSkew(t *testing.T) {
	srv := roomtest.StartRedis(t)
	rdb := srv.Client(t)
	ctx := context.Background()
	for _, shift := range []time.Duration{0, 2 * time.Second, -2 * time.Second} {
		skew, rtt, err := room.RedisClockSkew(ctx, rdb, func() time.Time { return time.Now().Add(shift) })
		if err != nil {
			t.Fatal(err)
		}
		// Redis TIME has microseconds; the error is at most half the
		// round trip (loose: a busy machine).
		if d := skew - shift; d < -rtt-50*time.Millisecond || d > rtt+50*time.Millisecond {
			t.Errorf("node clock %+v: skew %v (round trip %v)", shift, skew, rtt)
		}
	}
	srv.Stop()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if _, _, err := room.RedisClockSkew(ctx, rdb, time.Now); err == nil {
		t.Error("Redis stopped: got no error")
	}
}
