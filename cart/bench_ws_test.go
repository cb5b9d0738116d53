package cart

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"liveroom/room"
	"liveroom/room/roomtest"
)

var wsBenchBuyers = flag.Int("ws-buyers", 50, "BenchmarkWSReserve: WebSocket buyers in the closed loop")

// BenchmarkWSReserve measures cart.add through the WebSocket: a real hub
// with the cart attached behind a loopback httptest server, and
// -ws-buyers real gorilla clients, each its own user, in a closed loop on
// one big sale (never sells out, no per-user limit): cart.add with a fresh
// key, wait for the `cart` answer with its ref, then cart.remove of that
// reservation (so that every cart stays one item long and the answer does
// not grow), wait for its answer, again. b.N counts reservations; latency is
// cart.add's, send to answer. The /redis variant also runs redis-benchmark
// on the reserve script in the same process (once) and reports ours ÷ its
// rate:
//
//	go test -run '^$' -bench BenchmarkWSReserve -benchtime 10s ./cart
func BenchmarkWSReserve(b *testing.B) {
	for _, st := range stores {
		b.Run(st.name, func(b *testing.B) {
			var ref redisRef
			if st.name == "redis" {
				ref = redisBenchmarkRef(b)
			}
			store := st.open(b, testConfig())
			srv, saleID := newWSBench(b, store)
			buyers := *wsBenchBuyers
			conns := make([]*websocket.Conn, buyers)
			for i := range conns {
				tok := srv.Token(b, fmt.Sprintf("wsb-%d", i), room.RoleViewer, "bench")
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

			var next atomic.Int64
			lats := make([][]time.Duration, buyers)
			var wg sync.WaitGroup
			b.ResetTimer()
			for i, ws := range conns {
				wg.Go(func() {
					var cl leanClient // bench_ws_storm_test.go
					for n := next.Add(1); n <= int64(b.N); n = next.Add(1) {
						key := "k" + strconv.FormatInt(n, 10)
						sent := time.Now()
						f, err := cl.add(ws, saleID, key)
						if err != nil {
							b.Error(err)
							return
						}
						lats[i] = append(lats[i], time.Since(sent))
						id := onlyReservation(f)
						if id == "" {
							b.Errorf("cart.add %s answered %s, want a cart of that one item", key, f)
							return
						}
						if err := cl.remove(ws, id, "rm"+key); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			b.StopTimer()
			all := slices.Concat(lats...)
			slices.Sort(all)
			if len(all) == 0 {
				return
			}
			rate := float64(len(all)) / b.Elapsed().Seconds()
			b.ReportMetric(rate, "reservations/s")
			b.ReportMetric(msOf(all[len(all)*50/100]), "p50-ms")
			b.ReportMetric(msOf(all[min(len(all)-1, len(all)*99/100)]), "p99-ms")
			b.ReportMetric(0, "ns/op") // a closed loop of many clients: per-op time says nothing
			if ref.rps > 0 {
				b.ReportMetric(ref.rps, "redis-bench-evalsha/s")
				b.ReportMetric(rate/ref.rps, "ratio")
			}
		})
	}
}

func msOf(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// wsCall sends one request and reads until the frame that echoes its ref.
func wsCall(ws *websocket.Conn, req map[string]any) (room.Event, error) {
	ref := req["ref"].(string)
	frame, _ := json.Marshal(req)
	if err := ws.WriteMessage(websocket.TextMessage, frame); err != nil {
		return room.Event{}, err
	}
	_ = ws.SetReadDeadline(time.Now().Add(roomtest.Wait))
	for {
		_, data, err := ws.ReadMessage()
		if err != nil {
			return room.Event{}, fmt.Errorf("%s %s: %w", req["type"], ref, err)
		}
		var ev room.Event
		if err := json.Unmarshal(data, &ev); err != nil {
			return room.Event{}, err
		}
		if ev.Ref != ref {
			continue // sale.stock, viewers
		}
		if ev.Type == "error" {
			return ev, fmt.Errorf("%s %s: %s", req["type"], ref, data)
		}
		return ev, nil
	}
}

// newWSBench serves room "bench" with the cart on store and a sale that the
// benchmark cannot sell out; it returns the server and the sale id.
func newWSBench(b *testing.B, store Store) (*roomtest.Server, string) {
	b.Helper()
	hc := room.DefaultHubConfig()
	hc.MaxConnsPerIP = 0
	hc.FrameRate, hc.FrameBurst = 1e6, 1e6 // a closed loop is not a flood
	var svc *Service
	srv := roomtest.New(b, roomtest.Options{Hub: &hc, Rooms: []room.Room{{ID: "bench", Title: "Bench"}},
		Setup: func(h *room.Hub, s *roomtest.Server) error {
			m, err := NewMetrics(s.Registry)
			if err != nil {
				return err
			}
			if svc, err = NewService(store, testConfig(), ServiceOptions{Metrics: m, Log: quietLog}); err != nil {
				return err
			}
			AttachWS(h, svc, quietLog)
			return nil
		}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = svc.Run(ctx); close(done) }()
	b.Cleanup(func() { cancel(); <-done })
	if _, err := store.PutProduct(ctx, "bench", Product{SKU: "tee", Title: "Tee", PriceCents: 100, Currency: "USD", Stock: MaxSaleQuantity}); err != nil {
		b.Fatal(err)
	}
	sale, err := svc.StartSale(ctx, "bench", SaleParams{SKU: "tee", PriceCents: 50, Quantity: MaxSaleQuantity, DurationS: MaxDuration})
	if err != nil {
		b.Fatal(err)
	}
	return srv, sale.ID
}
