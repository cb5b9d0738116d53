package web

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"liveroom/cart"
)

// BenchmarkAdminOrderTransitions measures POST …/orders/{id}/paid through
// the admin API (HTTP, auth, the room lookup, the store's compare-and-set,
// the outbox entry), parallel, next to the checkout that made the orders,
// on one node (bbolt) and on Redis (docs/benchmarks.md):
//
//	go test -run '^$' -bench BenchmarkAdminOrderTransitions -benchtime 2000x ./web
func BenchmarkAdminOrderTransitions(b *testing.B) {
	cfg := cart.Config{PayWithin: 10 * time.Minute}
	cfg.SetDefaults()
	for _, backend := range []string{"local", "redis"} {
		open := func(b *testing.B) cart.Store {
			if backend == "local" {
				s, err := cart.OpenLocal(b.TempDir(), cfg)
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { s.Close() })
				return s
			}
			c := cfg
			c.RedisPrefix = fmt.Sprintf("b%d:", time.Now().UnixNano())
			s, err := cart.NewRedisStore(benchRedis(b), c)
			if err != nil {
				b.Fatal(err)
			}
			return s
		}
		setup := func(b *testing.B) (*testNode, *cart.Service, string) {
			store := open(b)
			svc, err := cart.NewService(store, cfg, cart.ServiceOptions{Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
			if err != nil {
				b.Fatal(err)
			}
			n := newTestNode(b, func(d *Deps) { d.Catalog, d.Orders = store, svc })
			rm := n.createRoom("shop", false)
			if _, err := store.PutProduct(context.Background(), rm.Scope(), cart.Product{SKU: "tee", Title: "Tee", PriceCents: 100, Currency: "EUR", Stock: cart.MaxStock}); err != nil {
				b.Fatal(err)
			}
			return n, svc, rm.Scope()
		}
		checkout := func(b *testing.B, svc *cart.Service, scope, user string) string {
			ctx := context.Background()
			if _, err := svc.Add(ctx, scope, cart.ReserveParams{User: user, SKU: "tee", Qty: 1, Key: "k"}); err != nil {
				b.Fatal(err)
			}
			res, err := svc.Checkout(ctx, scope, user, "pay")
			if err != nil {
				b.Fatal(err)
			}
			return res.Order.ID
		}
		b.Run(backend+"/checkout", func(b *testing.B) {
			_, svc, scope := setup(b)
			var g atomic.Int64
			b.SetParallelism(8)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				me := g.Add(1)
				for i := 0; pb.Next(); i++ {
					checkout(b, svc, scope, fmt.Sprintf("g%d-u%d", me, i))
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "orders/s")
		})
		b.Run(backend+"/paid", func(b *testing.B) {
			n, svc, scope := setup(b)
			ids := make([]string, b.N)
			for i := range ids {
				ids[i] = checkout(b, svc, scope, fmt.Sprintf("u%d", i))
			}
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
			var next atomic.Int64
			b.SetParallelism(8)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					id := ids[next.Add(1)-1]
					req, _ := http.NewRequest("POST", n.srv.URL+"/api/v1/rooms/shop/orders/"+id+"/paid", nil)
					req.Header.Set("Authorization", "Bearer "+testAdminKey)
					resp, err := client.Do(req)
					if err != nil {
						b.Error(err)
						return
					}
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						b.Errorf("paid %s: %d", id, resp.StatusCode)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "transitions/s")
		})
	}
}

// benchRedis starts a redis-server for one benchmark (fails under CI=true
// when there is none).
func benchRedis(b *testing.B) *redis.Client {
	b.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") == "true" {
			b.Fatal("redis-server not installed")
		}
		b.Skip("redis-server not installed")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + strconv.Itoa(port), PoolSize: 64})
	b.Cleanup(func() { rdb.Close() })
	for range 100 {
		if rdb.Ping(context.Background()).Err() == nil {
			return rdb
		}
		time.Sleep(20 * time.Millisecond)
	}
	b.Fatal("redis-server did not answer")
	return nil
}
