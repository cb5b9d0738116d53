package room

import (
	"testing"
	"time"
)

// The pause after a pass follows hub.write_delay's documented rule: in
// proportion to the connections written, the whole delay from 8,000 on,
// none when it would be too short to pack anything.
func TestPackPause(t *testing.T) {
	ms := time.Millisecond
	cases := []struct {
		max  time.Duration
		n    int
		want time.Duration
	}{
		{40 * ms, 0, 0},
		{40 * ms, 1, 0},
		{40 * ms, 39, 0}, // 195µs: not worth a sleep
		{40 * ms, 40, 200 * time.Microsecond},
		{40 * ms, 1000, 5 * ms},
		{40 * ms, 8000, 40 * ms},
		{40 * ms, 100_000, 40 * ms},
		{0, 100_000, 0},
		{ms, 4000, 500 * time.Microsecond},
	}
	for _, tc := range cases {
		if got := packPause(tc.max, tc.n); got != tc.want {
			t.Errorf("packPause(%s, %d) = %s, want %s", tc.max, tc.n, got, tc.want)
		}
	}
}
