package cart

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"liveroom/room"
	"liveroom/room/roomtest"
)

var wsStormBuyers = flag.Int("ws-storm-buyers", 2000, "BenchmarkWSReserveStorm: distinct buyers (connections)")

// BenchmarkWSReserveStorm is a flash sale's shape: many distinct buyers,
// each adding to a small cart. -ws-storm-buyers connections, each its own
// user, are opened before the clock starts; -ws-buyers workers (the closed
// loop's concurrency) each own a slice of them and send cart.add with a
// fresh key on one buyer after the other, waiting for the `cart` answer.
// Nothing is removed, so every reservation costs the store one call; a
// buyer's cart grows by one per round over the buyers (b.N / buyers
// rounds: with -benchtime 20000x and 2000 buyers, at most 10 items).
//
// Besides reservations/s and cart.add latency it reports the CPU per
// reservation of this process (the hub and cart, and the gorilla clients:
// they cannot be told apart in one process) and, for the Redis store, of
// redis-server (from INFO cpu), and redis-benchmark's rate for the reserve
// script on the same redis-server in the same run:
//
//	go test -run '^$' -bench BenchmarkWSReserveStorm -benchtime 20000x ./cart
func BenchmarkWSReserveStorm(b *testing.B) {
	for _, st := range stores {
		b.Run(st.name, func(b *testing.B) {
			var ref redisRef
			if st.name == "redis" {
				ref = redisBenchmarkRef(b)
			}
			store := st.open(b, testConfig())
			srv, saleID := newWSBench(b, store)
			workers := *wsBenchBuyers
			buyers := max(workers, min(b.N, *wsStormBuyers))
			conns := make([]*websocket.Conn, buyers)
			for i := range conns {
				tok := srv.Token(b, fmt.Sprintf("storm-%d", i), room.RoleViewer, "bench")
				ws, _, err := websocket.DefaultDialer.Dial(srv.URL("bench", tok), nil)
				if err != nil {
					b.Fatal(err)
				}
				conns[i] = ws
				if _, _, err := ws.ReadMessage(); err != nil { // welcome
					b.Fatal(err)
				}
			}
			defer func() {
				for _, ws := range conns {
					ws.Close()
				}
			}()
			var redisCPU0 float64
			if st.name == "redis" {
				redisCPU0 = redisServerCPU(b)
			}

			lats := make([][]time.Duration, workers)
			var wg sync.WaitGroup
			cpu0 := processCPU()
			b.ResetTimer()
			for w := range workers {
				wg.Go(func() {
					var cl leanClient
					mine := b.N / workers
					if w < b.N%workers {
						mine++
					}
					for k := range mine {
						ws := conns[(w+k*workers)%buyers]
						key := "k" + strconv.Itoa(w) + "-" + strconv.Itoa(k)
						sent := time.Now()
						if _, err := cl.add(ws, saleID, key); err != nil {
							b.Error(err)
							return
						}
						lats[w] = append(lats[w], time.Since(sent))
					}
				})
			}
			wg.Wait()
			b.StopTimer()
			cpu := processCPU() - cpu0
			all := slices.Concat(lats...)
			slices.Sort(all)
			if len(all) == 0 {
				return
			}
			n := float64(len(all))
			rate := n / b.Elapsed().Seconds()
			b.ReportMetric(rate, "reservations/s")
			b.ReportMetric(msOf(all[len(all)*50/100]), "p50-ms")
			b.ReportMetric(msOf(all[min(len(all)-1, len(all)*99/100)]), "p99-ms")
			b.ReportMetric(float64(cpu.Microseconds())/n, "process-cpu-us/reservation")
			b.ReportMetric(0, "ns/op") // a closed loop of many clients: per-op time says nothing
			if st.name == "redis" {
				b.ReportMetric((redisServerCPU(b)-redisCPU0)*1e6/n, "redis-cpu-us/reservation")
			}
			if ref.rps > 0 {
				b.ReportMetric(ref.rps, "redis-bench-evalsha/s")
				b.ReportMetric(rate/ref.rps, "ratio")
			}
		})
	}
}

// leanClient is a buyer's side of the WebSocket benchmarks, written to
// cost the shared CPUs little (the clients are in the server's process,
// and a real load generator would not be on its cores): requests are
// built by appending rather than json.Marshal, and answers are checked
// without a JSON decoder. The checks are wsCall's and Field's: the frame
// with the request's ref must be a `cart` event (listing an item with the
// key, for an add); an `error` with the ref fails; frames without the ref
// (sale.stock) are skipped.
type leanClient struct {
	req, frame []byte
}

// add sends cart.add of one unit of saleID with key (also the ref) and
// returns the `cart` answer, which lists key; it is valid until the next
// call.
func (c *leanClient) add(ws *websocket.Conn, saleID, key string) ([]byte, error) {
	c.req = append(c.req[:0], `{"type":"cart.add","sale_id":"`...)
	c.req = append(c.req, saleID...)
	c.req = append(c.req, `","qty":1,"key":"`...)
	c.req = append(c.req, key...)
	c.req = append(c.req, `","ref":"`...)
	c.req = append(c.req, key...)
	c.req = append(c.req, `"}`...)
	f, err := c.call(ws, key)
	if err == nil && !bytes.Contains(f, []byte(`"key":"`+key+`"`)) {
		err = fmt.Errorf("cart.add %s answered %s", key, f)
	}
	return f, err
}

// remove sends cart.remove of reservation id with ref and waits for the
// `cart` answer.
func (c *leanClient) remove(ws *websocket.Conn, id, ref string) error {
	c.req = append(c.req[:0], `{"type":"cart.remove","reservation_id":"`...)
	c.req = append(c.req, id...)
	c.req = append(c.req, `","ref":"`...)
	c.req = append(c.req, ref...)
	c.req = append(c.req, `"}`...)
	_, err := c.call(ws, ref)
	return err
}

// call writes c.req and reads until the frame with ref, which must be a
// `cart` event.
func (c *leanClient) call(ws *websocket.Conn, ref string) ([]byte, error) {
	if err := ws.WriteMessage(websocket.TextMessage, c.req); err != nil {
		return nil, err
	}
	_ = ws.SetReadDeadline(time.Now().Add(roomtest.Wait))
	refField := []byte(`"ref":"` + ref + `"`)
	for {
		_, r, err := ws.NextReader()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", ref, err)
		}
		c.frame = c.frame[:0]
		for {
			if len(c.frame) == cap(c.frame) {
				c.frame = append(c.frame, 0)[:len(c.frame)]
			}
			n, err := r.Read(c.frame[len(c.frame):cap(c.frame)])
			c.frame = c.frame[:len(c.frame)+n]
			if err == io.EOF {
				break
			}
			if err != nil {
				return nil, fmt.Errorf("%s: %w", ref, err)
			}
		}
		if !bytes.Contains(c.frame, refField) {
			continue // sale.stock, viewers
		}
		if !bytes.HasPrefix(c.frame, []byte(`{"type":"cart",`)) {
			return nil, fmt.Errorf("%s answered %s", ref, c.frame)
		}
		return c.frame, nil
	}
}

// onlyReservation is the id of the one item of a `cart` answer, or "" if
// it lists more or fewer.
func onlyReservation(frame []byte) string {
	const field = `"reservation_id":"`
	if bytes.Count(frame, []byte(field)) != 1 {
		return ""
	}
	_, rest, _ := bytes.Cut(frame, []byte(field))
	id, _, ok := bytes.Cut(rest, []byte(`"`))
	if !ok {
		return ""
	}
	return string(id)
}

// processCPU is this process's user + system CPU time so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// redisServerCPU is the test redis-server's CPU seconds so far.
func redisServerCPU(b *testing.B) float64 {
	info, err := redisClient(b).Info(context.Background(), "cpu").Result()
	if err != nil {
		b.Fatal(err)
	}
	total := 0.0
	for _, line := range strings.Split(info, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if ok && (k == "used_cpu_sys" || k == "used_cpu_user") {
			f, _ := strconv.ParseFloat(v, 64)
			total += f
		}
	}
	return total
}
