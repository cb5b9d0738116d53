package room_test

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"liveroom/room"
	"liveroom/room/roomtest"
)

// The hub's write goroutines are shared by many connections. A client whose
// socket is full must not hold up the others on its writer, and once it
// reads again it must get every byte, in order: the part of a batch the
// socket did not take, what its own write pump sent meanwhile, and what
// the shared writer sends after it caught up.
func TestStalledClientDoesNotHoldUpItsWriter(t *testing.T) {
	s := roomtest.New(t, roomtest.Options{Hub: cfgWith(func(c *room.HubConfig) {
		c.SendQueue, c.SendQueueBytes, c.WriteTimeout = 65536, 256<<20, time.Minute // stalled for long, but not cut off
	})})
	d := &websocket.Dialer{NetDial: func(network, addr string) (net.Conn, error) {
		c, err := net.Dial(network, addr)
		if err == nil {
			_ = c.(*net.TCPConn).SetReadBuffer(256 << 10)
		}
		return c, err
	}}
	slow, _, err := d.Dial(s.URL("demo", ""), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	if _, msg, err := slow.ReadMessage(); err != nil || !strings.Contains(string(msg), `"welcome"`) {
		t.Fatalf("welcome: %s %v", msg, err)
	}
	// Connections are spread round robin over the writers (one per two
	// CPUs, at least one): of GOMAXPROCS readers, one shares the slow
	// client's.
	fast := make([]*roomtest.Client, runtime.GOMAXPROCS(0))
	for i := range fast {
		fast[i] = s.Dial(t, "demo", "")
		defer fast[i].Close()
	}

	// More than the kernel can buffer between the server and the slow
	// client (its send buffer's ceiling plus the receive buffer), so part
	// of it must wait in the server while the slow client reads nothing.
	pad := strings.Repeat("z", 16<<10)
	n := 5 * (sendBufferMax(t) + 256<<10) / 4 / len(pad)
	publish := func(from, to int) {
		start := from
		for i := from; i < to; i++ {
			if _, err := s.Hub.Publish(context.Background(), "demo", room.MustEvent("test.big", map[string]any{"i": i, "pad": pad})); err != nil {
				t.Fatal(err)
			}
			if i%16 == 15 || i == to-1 {
				for _, c := range fast { // they keep up while the slow one is stalled
					for j := start; j <= i; j++ {
						if got := roomtest.Field[int](t, c.Expect(t, "test.big"), "i"); got != j {
							t.Fatalf("fast client: got event %d, want %d", got, j)
						}
					}
				}
				start = i + 1
			}
		}
	}
	publish(0, n)
	// Then the slow client reads everything, in order, and keeps up with
	// the events after.
	next := 0
	readUpTo := func(to int) {
		for next < to {
			_ = slow.SetReadDeadline(time.Now().Add(roomtest.Wait))
			_, msg, err := slow.ReadMessage()
			if err != nil {
				t.Fatalf("slow client after %d of %d events: %v", next, to, err)
			}
			var ev struct {
				Type string `json:"type"`
				I    int    `json:"i"`
				Pad  string `json:"pad"`
			}
			if err := json.Unmarshal(msg, &ev); err != nil {
				t.Fatalf("slow client: frame %d is not an event: %v", next, err)
			}
			if ev.Type != "test.big" {
				continue // viewers
			}
			if ev.I != next || ev.Pad != pad {
				t.Fatalf("slow client: got event %d (%d pad bytes), want %d", ev.I, len(ev.Pad), next)
			}
			next++
		}
	}
	readUpTo(n)
	publish(n, n+100)
	readUpTo(n + 100)
}

// sendBufferMax is the kernel's ceiling for a TCP send buffer.
func sendBufferMax(t *testing.T) int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/tcp_wmem")
	if err != nil {
		return 4 << 20
	}
	f := strings.Fields(string(b))
	if len(f) != 3 {
		t.Fatalf("tcp_wmem: %q", b)
	}
	n, err := strconv.Atoi(f[2])
	if err != nil {
		t.Fatal(err)
	}
	return n
}
