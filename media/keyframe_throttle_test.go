package media

import (
	"testing"
	"time"
)

func TestKeyframeThrottle(t *testing.T) {
	ms := func(n int) int64 { return int64(n) * int64(time.Millisecond) }
	type step struct {
		at   int  // ms
		key  bool // a keyframe starts at this time (instead of a request)
		want bool // request sent
	}
	cases := []struct {
		name  string
		steps []step
	}{
		{"first request goes at once", []step{{at: 1, want: true}}},
		{"outstanding request absorbs askers", []step{
			{at: 1, want: true}, {at: 20}, {at: 60}, {at: 150},
		}},
		{"after the keyframe started, ask again at once", []step{
			{at: 1, want: true}, {at: 30, key: true}, {at: 60, want: true},
		}},
		{"but never closer than the minimum gap", []step{
			{at: 1, want: true}, {at: 10, key: true}, {at: 30}, {at: 52, want: true},
		}},
		{"unanswered request is repeated after pending", []step{
			{at: 1, want: true}, {at: 199}, {at: 202, want: true}, {at: 300}, {at: 403, want: true},
		}},
		{"a keyframe before the request does not answer it", []step{
			{at: 1, key: true}, {at: 2, want: true}, {at: 100},
		}},
		{"a storm is paced after the burst", []step{
			{at: 1, want: true}, {at: 2, key: true},
			{at: 60, want: true}, {at: 61, key: true}, // burst of 2
			{at: 120}, {at: 200},
			{at: 202, want: true}, {at: 203, key: true}, // then one per 200 ms
			{at: 300}, {at: 400},
			{at: 401, want: true},
		}},
		{"a quiet spell refills the burst", []step{
			{at: 1, want: true}, {at: 2, key: true},
			{at: 60, want: true}, {at: 61, key: true},
			{at: 1000, want: true}, {at: 1001, key: true},
			{at: 1060, want: true},
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var k keyframeThrottle
			k.pending = 200 * time.Millisecond
			for _, s := range c.steps {
				if s.key {
					k.keyframe(ms(s.at))
					continue
				}
				if got := k.request(ms(s.at)); got != s.want {
					t.Fatalf("request at %d ms: got %v, want %v", s.at, got, s.want)
				}
			}
		})
	}
}

func TestKeyframeThrottleReset(t *testing.T) {
	var k keyframeThrottle
	k.pending = time.Second
	if !k.request(1) {
		t.Fatal("first request: got false, want true")
	}
	if k.request(2) {
		t.Fatal("second request: got true, want false")
	}
	k.reset()
	if !k.request(3) {
		t.Fatal("request after reset: got false, want true")
	}
}
