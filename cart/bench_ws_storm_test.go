package cart

import (
	"context"
	"flag"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"liveroom/room"
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
					mine := b.N / workers
					if w < b.N%workers {
						mine++
					}
					for k := range mine {
						ws := conns[(w+k*workers)%buyers]
						key := fmt.Sprintf("k%d-%d", w, k)
						sent := time.Now()
						ev, err := wsCall(ws, map[string]any{"type": "cart.add", "sale_id": saleID, "qty": 1, "key": key, "ref": key})
						if err != nil {
							b.Error(err)
							return
						}
						lats[w] = append(lats[w], time.Since(sent))
						var items []cartItem
						if _, err := ev.Field("items", &items); err != nil || ev.Type != "cart" ||
							!slices.ContainsFunc(items, func(it cartItem) bool { return it.Key == key }) {
							b.Errorf("cart.add %s answered %s", key, ev.AppendJSON(nil))
							return
						}
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
