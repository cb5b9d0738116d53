package cart

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/redis/go-redis/v9"

	"liveroom/room"
	"liveroom/room/roomtest"
)

// BenchmarkWSAuctionBids measures auction.bid through the WebSocket: a real
// hub with the cart attached, -ws-buyers gorilla clients, each its own
// bidder, in a closed loop on one auction: bid the next minimum the client
// last heard of, wait for the answer (the private auction.bid, or an
// error: bid_too_low when another bid got there first), again. b.N counts
// bids sent; accepted/s counts the ones that took the lead. The ladder
// allows about 1,100 accepted bids up to $10M, so the auction is stopped and
// a new one started when the price gets there. The /redis variant runs
// redis-benchmark on the bid script on the same redis-server first:
//
//	go test -run '^$' -bench BenchmarkWSAuctionBids -benchtime 20000x ./cart
func BenchmarkWSAuctionBids(b *testing.B) {
	for _, st := range stores {
		b.Run(st.name, func(b *testing.B) {
			var ref redisRef
			if st.name == "redis" {
				ref = auctionRedisRef(b)
			}
			store := st.open(b, testConfig())
			srv, _ := newWSBench(b, store)
			as := store.(AuctionStore)
			ctx := context.Background()
			if _, err := store.PutProduct(ctx, "bench", Product{SKU: "lamp", Title: "Lamp", PriceCents: 100, Currency: "USD", Stock: 1}); err != nil {
				b.Fatal(err)
			}
			var mu sync.Mutex
			var cur atomic.Value // auction id
			startNew := func(old string) {
				mu.Lock()
				defer mu.Unlock()
				if cur.Load() != old {
					return
				}
				if old != "" {
					_, _ = as.StopAuction(ctx, "bench", old)
				}
				a, err := as.StartAuction(ctx, "bench", AuctionParams{Host: "host", SKU: "lamp", StartCents: 100, DurationS: MaxAuctionDuration})
				if err != nil {
					b.Error(err)
					return
				}
				cur.Store(a.ID)
			}
			cur.Store("")
			startNew("")
			workers := *wsBenchBuyers
			conns := make([]*websocket.Conn, workers)
			for i := range conns {
				tok := srv.Token(b, fmt.Sprintf("bidder-%d", i), room.RoleViewer, "bench")
				ws, _, err := websocket.DefaultDialer.Dial(srv.URL("bench", tok), nil)
				if err != nil {
					b.Fatal(err)
				}
				conns[i] = ws
				if _, _, err := ws.ReadMessage(); err != nil {
					b.Fatal(err)
				}
			}
			defer func() {
				for _, ws := range conns {
					ws.Close()
				}
			}()
			var sent, accepted atomic.Int64
			var highest atomic.Int64 // the highest next_cents any answer told
			highest.Store(100)
			lats := make([][]time.Duration, workers)
			var wg sync.WaitGroup
			b.ResetTimer()
			for w, ws := range conns {
				wg.Go(func() {
					for k := 0; sent.Add(1) <= int64(b.N); k++ {
						id := cur.Load().(string)
						amount := highest.Load()
						if amount > 1_000_000_000 {
							startNew(id)
							highest.Store(100)
							continue
						}
						key := fmt.Sprintf("b%d-%d", w, k)
						t0 := time.Now()
						ev, err := wsCall(ws, map[string]any{"type": "auction.bid", "auction_id": id, "amount_cents": amount, "key": key, "ref": key})
						lats[w] = append(lats[w], time.Since(t0))
						if err == nil {
							accepted.Add(1)
						}
						var next int64
						if _, ferr := ev.Field("next_cents", &next); ferr == nil && next > 0 {
							for h := highest.Load(); next > h && !highest.CompareAndSwap(h, next); h = highest.Load() {
							}
						} else if err != nil && strings.Contains(err.Error(), "at least") {
							var body struct {
								Message string `json:"message"`
							}
							_ = json.Unmarshal(ev.Body, &body)
							if i := strings.LastIndexByte(body.Message, ' '); i >= 0 {
								if n, perr := strconv.ParseInt(body.Message[i+1:], 10, 64); perr == nil {
									for h := highest.Load(); n > h && !highest.CompareAndSwap(h, n); h = highest.Load() {
									}
								}
							}
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
			secs := b.Elapsed().Seconds()
			b.ReportMetric(float64(len(all))/secs, "bids/s")
			b.ReportMetric(float64(accepted.Load())/secs, "accepted/s")
			b.ReportMetric(msOf(all[len(all)*50/100]), "p50-ms")
			b.ReportMetric(msOf(all[min(len(all)-1, len(all)*99/100)]), "p99-ms")
			b.ReportMetric(0, "ns/op")
			if ref.rps > 0 {
				b.ReportMetric(ref.rps, "redis-bench-evalsha/s")
				b.ReportMetric(float64(len(all))/secs/ref.rps, "ratio")
			}
		})
	}
}

var auctionRefOnce struct {
	sync.Once
	ref redisRef
	err error
}

// auctionRedisRef is redis-benchmark of the bid script on the test
// redis-server: random bidders bidding random amounts up to $10M on one
// auction (so, like the WebSocket loop, most calls are refused as too low
// once the price is up; the accepted count is reported).
func auctionRedisRef(b *testing.B) redisRef {
	b.Helper()
	redisClient(b)
	auctionRefOnce.Do(func() { auctionRefOnce.ref, auctionRefOnce.err = runAuctionRedisRef() })
	if auctionRefOnce.err != nil {
		b.Fatal(auctionRefOnce.err)
	}
	r := auctionRefOnce.ref
	b.Logf("reference: %s\n  -> %.0f EVALSHA/s, p50 %.3f ms, p99 %.3f ms; %d of %d calls took the lead",
		r.command, r.rps, r.p50, r.p99, r.valid, r.requests)
	return r
}

func runAuctionRedisRef() (redisRef, error) {
	bin, err := exec.LookPath("redis-benchmark")
	if err != nil {
		return redisRef{}, fmt.Errorf("redis-benchmark not installed: %w", err)
	}
	ctx := context.Background()
	rdb := redis.NewClient(&redis.Options{Addr: testRedis.addr, DB: refDB})
	defer rdb.Close()
	defer rdb.FlushDB(ctx)
	cfg := testConfig()
	cfg.RedisPrefix = "aref:"
	s, err := NewRedisStore(rdb, cfg)
	if err != nil {
		return redisRef{}, err
	}
	if _, err := s.PutProduct(ctx, "bench", Product{SKU: "lamp", Title: "Lamp", PriceCents: 100, Currency: "USD", Stock: 1}); err != nil {
		return redisRef{}, err
	}
	a, err := s.StartAuction(ctx, "bench", AuctionParams{Host: "host", SKU: "lamp", StartCents: 100, DurationS: MaxAuctionDuration})
	if err != nil {
		return redisRef{}, err
	}
	// The bid script with its refusals answered as values, not errors:
	// redis-benchmark stops at the first error reply.
	sc := redis.NewScript(luaPrelude + luaAuctionPrelude + "local function fail(c) return {c} end\n" + luaAuctionBidBody)
	sha, err := sc.Load(ctx, rdb).Result()
	if err != nil {
		return redisRef{}, err
	}
	// Bid's call: KEYS = {P.."auc:ID"}; ARGV = P id user name kind cents key max-sets.
	p := s.prefix("bench")
	args := []string{"EVALSHA", sha, "1", p + "auc:" + a.ID, p, a.ID, "u__rand_int__", "U", "bid", "__rand_int__", "k__rand_int__", "50"}
	host, port, _ := net.SplitHostPort(testRedis.addr)
	flags := []string{"-h", host, "-p", port, "--dbnum", strconv.Itoa(refDB), "-n", strconv.Itoa(refRequests),
		"-c", strconv.Itoa(refClients), "-P", "1", "-r", "1000000000", "--csv"}
	out, err := exec.Command(bin, append(flags, args...)...).CombinedOutput()
	if err != nil {
		return redisRef{}, fmt.Errorf("redis-benchmark: %v\n%s", err, out)
	}
	ref := redisRef{requests: refRequests, command: "redis-benchmark " + strings.Join(flags, " ") + " " + quoteArgs(args)}
	if ref.rps, ref.p50, ref.p99, err = parseRedisBenchmarkCSV(string(out)); err != nil {
		return redisRef{}, err
	}
	after, err := s.Auction(ctx, "bench", a.ID)
	if err != nil {
		return redisRef{}, err
	}
	ref.valid = after.Version
	if after.Version < 5 {
		return redisRef{}, fmt.Errorf("only %d redis-benchmark calls took the lead: the reference is not measuring Bid", after.Version)
	}
	return ref, nil
}

// BenchmarkWSAuctionAccepted measures accepted bids: -ws-buyers/2 rooms,
// each with one auction and two bidders who take turns, each bidding the
// next minimum the other's answer told (so every bid is accepted and
// published to the room). b.N counts accepted bids over all rooms:
//
//	go test -run '^$' -bench BenchmarkWSAuctionAccepted -benchtime 20000x ./cart
func BenchmarkWSAuctionAccepted(b *testing.B) {
	for _, st := range stores {
		b.Run(st.name, func(b *testing.B) {
			store := st.open(b, testConfig())
			pairs := max(1, *wsBenchBuyers/2)
			rooms := make([]room.Room, pairs)
			for i := range rooms {
				rooms[i] = room.Room{ID: fmt.Sprintf("bench%d", i), Title: "Bench"}
			}
			hc := room.DefaultHubConfig()
			hc.MaxConnsPerIP = 0
			hc.FrameRate, hc.FrameBurst = 1e6, 1e6
			var svc *Service
			srv := roomtest.New(b, roomtest.Options{Hub: &hc, Rooms: rooms, Setup: func(h *room.Hub, s *roomtest.Server) error {
				var err error
				if svc, err = NewService(store, testConfig(), ServiceOptions{Log: quietLog}); err != nil {
					return err
				}
				AttachWS(h, svc, quietLog)
				return nil
			}})
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { _ = svc.Run(ctx); close(done) }()
			b.Cleanup(func() { cancel(); <-done })
			as := store.(AuctionStore)
			type pair struct {
				id    string
				conns [2]*websocket.Conn
			}
			ps := make([]pair, pairs)
			for i, rm := range rooms {
				if _, err := store.PutProduct(ctx, rm.ID, Product{SKU: "lamp", Title: "Lamp", PriceCents: 100, Currency: "USD", Stock: 1}); err != nil {
					b.Fatal(err)
				}
				a, err := as.StartAuction(ctx, rm.ID, AuctionParams{Host: "host", SKU: "lamp", StartCents: 100, DurationS: MaxAuctionDuration})
				if err != nil {
					b.Fatal(err)
				}
				ps[i].id = a.ID
				for j := range 2 {
					tok := srv.Token(b, fmt.Sprintf("p%d-%d", i, j), room.RoleViewer, rm.ID)
					ws, _, err := websocket.DefaultDialer.Dial(srv.URL(rm.ID, tok), nil)
					if err != nil {
						b.Fatal(err)
					}
					b.Cleanup(func() { ws.Close() })
					if _, _, err := ws.ReadMessage(); err != nil {
						b.Fatal(err)
					}
					ps[i].conns[j] = ws
				}
			}
			var next atomic.Int64
			lats := make([][]time.Duration, pairs)
			var wg sync.WaitGroup
			b.ResetTimer()
			for i := range ps {
				wg.Go(func() {
					amount := int64(100)
					for k := 0; next.Add(1) <= int64(b.N); k++ {
						key := fmt.Sprintf("a%d-%d", i, k)
						t0 := time.Now()
						ev, err := wsCall(ps[i].conns[k%2], map[string]any{"type": "auction.bid", "auction_id": ps[i].id, "amount_cents": amount, "key": key, "ref": key})
						if err != nil {
							b.Error(err)
							return
						}
						lats[i] = append(lats[i], time.Since(t0))
						if _, err := ev.Field("next_cents", &amount); err != nil {
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
			b.ReportMetric(float64(len(all))/b.Elapsed().Seconds(), "accepted/s")
			b.ReportMetric(msOf(all[len(all)*50/100]), "p50-ms")
			b.ReportMetric(msOf(all[min(len(all)-1, len(all)*99/100)]), "p99-ms")
			b.ReportMetric(0, "ns/op")
		})
	}
}
