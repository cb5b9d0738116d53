package room_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"liveroom/room"
	"liveroom/room/roomtest"
)

// rawClient is a minimal WebSocket client for benchmarks: a hand-made
// handshake and a reader that only walks frame headers, so the client side
// costs as little as possible in the same process.
type rawClient struct {
	conn   net.Conn
	frames atomic.Int64
}

func dialRaw(tb testing.TB, wsURL string, read bool) *rawClient {
	tb.Helper()
	u, _ := url.Parse(wsURL)
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		tb.Fatal(err)
	}
	fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", u.RequestURI(), u.Host)
	br := bufio.NewReaderSize(conn, 512)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		tb.Fatalf("handshake: %v %v", resp, err)
	}
	c := &rawClient{conn: conn}
	if read {
		pending := make([]byte, br.Buffered())
		_, _ = br.Read(pending)
		go c.read(pending)
	}
	return c
}

func (c *rawClient) read(first []byte) {
	var hdr []byte
	var skip uint64
	buf := make([]byte, 32<<10)
	feed := func(b []byte) {
		for len(b) > 0 {
			if skip > 0 {
				n := min(uint64(len(b)), skip)
				skip -= n
				b = b[n:]
				continue
			}
			hdr = append(hdr, b[0])
			b = b[1:]
			if len(hdr) < 2 {
				continue
			}
			need := map[byte]int{126: 4, 127: 10}[hdr[1]&0x7f]
			if need == 0 {
				need = 2
			}
			if len(hdr) < need {
				continue
			}
			switch need {
			case 2:
				skip = uint64(hdr[1] & 0x7f)
			case 4:
				skip = uint64(binary.BigEndian.Uint16(hdr[2:]))
			default:
				skip = binary.BigEndian.Uint64(hdr[2:])
			}
			if hdr[0]&0x0f == 1 {
				c.frames.Add(1)
			}
			hdr = hdr[:0]
		}
	}
	feed(first)
	for {
		n, err := c.conn.Read(buf)
		feed(buf[:n])
		if err != nil {
			return
		}
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkFanout publishes events to one room with N connected clients and
// waits until every client has read every event. It reports deliveries per
// second and the process's CPU per 1,000 deliveries (server and the cheap
// in-process clients together).
func BenchmarkFanout(b *testing.B) {
	for _, n := range []int{100, 1000, 5000} {
		b.Run(fmt.Sprint("clients=", n), func(b *testing.B) {
			cfg := room.DefaultHubConfig()
			cfg.MaxConnsPerIP, cfg.SendQueue = 0, 65536
			s := roomtest.New(b, roomtest.Options{Hub: &cfg, NoRun: true})
			clients := make([]*rawClient, n)
			for i := range clients {
				clients[i] = dialRaw(b, s.URL("demo", ""), true)
			}
			b.Cleanup(func() {
				for _, c := range clients {
					c.conn.Close()
				}
			})
			waitFrames(b, clients, 1) // welcome
			ev := room.MustEvent("chat.message", map[string]any{"message": map[string]any{
				"id": "m1", "user": map[string]any{"id": "u1", "name": "Someone", "role": "viewer"},
				"text": strings.Repeat("lovely dress! ", 4)}})
			ctx := context.Background()
			b.ResetTimer()
			cpu0, t0 := cpuTime(), time.Now()
			for range b.N {
				if _, err := s.Hub.Publish(ctx, "demo", ev); err != nil {
					b.Fatal(err)
				}
			}
			waitFrames(b, clients, int64(b.N)+1)
			elapsed, cpu := time.Since(t0), cpuTime()-cpu0
			b.StopTimer()
			deliveries := float64(b.N) * float64(n)
			b.ReportMetric(deliveries/elapsed.Seconds(), "deliveries/s")
			b.ReportMetric(float64(cpu)/1e6/(deliveries/1000), "cpu-ms/1000-deliveries")
		})
	}
}

func waitFrames(tb testing.TB, clients []*rawClient, want int64) {
	tb.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for _, c := range clients {
		for c.frames.Load() < want {
			if time.Now().After(deadline) {
				tb.Fatalf("client got %d frames, want %d", c.frames.Load(), want)
			}
			time.Sleep(time.Millisecond)
		}
	}
}

// BenchmarkIdleConnMemory connects N idle clients and reports the Go heap
// and stack the server holds per connection after a GC, once the room is
// quiet (it takes ~8 s). The clients are
// bare sockets (no goroutine, no buffers) in the same process; their share
// (a net.Conn each) is included, so the figure slightly overstates the
// server's.
func BenchmarkIdleConnMemory(b *testing.B) {
	const n = 2000
	cfg := room.DefaultHubConfig()
	cfg.MaxConnsPerIP, cfg.ViewersInterval = 0, 200*time.Millisecond
	s := roomtest.New(b, roomtest.Options{Hub: &cfg})
	warm := dialRaw(b, s.URL("demo", ""), false) // first-use allocations out of the way
	defer warm.conn.Close()
	time.Sleep(100 * time.Millisecond)
	before, bs := memInUse2()
	g0 := runtime.NumGoroutine()
	clients := make([]*rawClient, n)
	for i := range clients {
		clients[i] = dialRaw(b, s.URL("demo", ""), false)
	}
	defer func() {
		for _, c := range clients {
			c.conn.Close()
		}
	}()
	waitConns(b, s, n+1)
	// Idle: the last viewers count goes out, then the write pumps linger
	// (5 s) and retire.
	time.Sleep(7 * time.Second)
	after, as := memInUse2()
	b.ReportMetric(float64(runtime.NumGoroutine()-g0)/n, "goroutines/conn")
	b.ReportMetric(float64(after-before)/n/1024, "KiB/conn")
	b.ReportMetric(float64(as-bs)/n/1024, "stack-KiB/conn")
	var mu sync.Mutex
	for range b.N {
		mu.Lock() // nothing to repeat: the measurement is the setup
		mu.Unlock()
	}
}

// memInUse2 returns heap+stack in use and the stack part, after a GC.
func memInUse2() (uint64, uint64) {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse + ms.StackInuse, ms.StackInuse
}

func waitConns(tb testing.TB, s *roomtest.Server, want int) {
	tb.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		mfs, _ := s.Registry.Gather()
		for _, mf := range mfs {
			if mf.GetName() == "liveroom_ws_connections" && int(mf.GetMetric()[0].GetGauge().GetValue()) >= want {
				return
			}
		}
		if time.Now().After(deadline) {
			tb.Fatalf("fewer than %d connections after a minute", want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
