package cart

import (
	"context"
	"encoding/csv"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// redisRef is redis-benchmark's figure for the reserve script on the test
// redis-server: Redis's own limit for one reservation, no Go client and no
// WebSocket in the way.
type redisRef struct {
	rps      float64
	p50, p99 float64 // ms, as redis-benchmark reports them
	valid    int64   // calls that took a unit (the script's stock went down)
	requests int
	command  string
}

var redisRefOnce struct {
	sync.Once
	ref redisRef
	err error
}

// Keep in step with redis-benchmark's own defaults that the doc quotes:
// 50 clients (= -ws-buyers' default), no pipelining.
const (
	refRequests = 200_000
	refClients  = 50
	refDB       = 1 // its own database, flushed after: no clutter for the store under test
)

// redisBenchmarkRef runs redis-benchmark once per test process, on the
// redis-server of the package's tests. It skips the benchmark if
// redis-benchmark is not installed.
func redisBenchmarkRef(b *testing.B) redisRef {
	b.Helper()
	redisClient(b) // starts the server, or skips
	first := false
	redisRefOnce.Do(func() { redisRefOnce.ref, redisRefOnce.err = runRedisRef(); first = true })
	if redisRefOnce.err != nil {
		b.Fatal(redisRefOnce.err)
	}
	r := redisRefOnce.ref
	if !first {
		return r
	}
	b.Logf("reference: %s\n  -> %.0f EVALSHA/s, p50 %.3f ms, p99 %.3f ms; %d of %d calls reserved a unit",
		r.command, r.rps, r.p50, r.p99, r.valid, r.requests)
	return r
}

func runRedisRef() (redisRef, error) {
	bin, err := exec.LookPath("redis-benchmark")
	if err != nil {
		return redisRef{}, fmt.Errorf("redis-benchmark not installed: %w", err)
	}
	ctx := context.Background()
	rdb := redis.NewClient(&redis.Options{Addr: testRedis.addr, DB: refDB})
	defer rdb.Close()
	defer rdb.FlushDB(ctx)
	// The sale comes from the store itself, so the script finds exactly
	// what it finds in production.
	cfg := testConfig()
	cfg.RedisPrefix = "ref:"
	s, err := NewRedisStore(rdb, cfg)
	if err != nil {
		return redisRef{}, err
	}
	now := time.Now()
	if _, err := s.PutProduct(ctx, "bench", Product{SKU: "tee", Title: "Tee", PriceCents: 100, Currency: "USD", Stock: MaxSaleQuantity}); err != nil {
		return redisRef{}, err
	}
	sale, err := s.StartSale(ctx, "bench", SaleParams{SKU: "tee", PriceCents: 50, Quantity: MaxSaleQuantity, DurationS: MaxDuration}, now)
	if err != nil {
		return redisRef{}, err
	}
	sha, err := luaReserve.Load(ctx, rdb).Result()
	if err != nil {
		return redisRef{}, err
	}
	// Reserve's call: KEYS = {P.."exp"}; ARGV = P user key sale sku qty now
	// exp newid max-holds max-units list-limit keep, sku empty when a sale is named. User, key and reservation id
	// are random per call (12-digit __rand_int__ out of 1e9).
	p := s.prefix("bench")
	ms := toMS(now.Add(time.Second))
	args := []string{"EVALSHA", sha, "1", p + "exp", p, "u__rand_int__", "k__rand_int__", sale.ID, "", "1",
		strconv.FormatInt(ms, 10), strconv.FormatInt(ms+cfg.Hold.Milliseconds(), 10), "r_x__rand_int__",
		strconv.Itoa(cfg.MaxHolds), strconv.Itoa(cfg.MaxHeldUnits), strconv.Itoa(cfg.ListPriceLimit),
		strconv.FormatInt(cfg.KeyRetention.Milliseconds(), 10)}
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
	after, err := s.Sale(ctx, "bench", sale.ID, now)
	if err != nil {
		return redisRef{}, err
	}
	ref.valid = int64(MaxSaleQuantity - after.Remaining)
	// Anything but a reservation (an error reply, a replayed key) leaves the
	// stock alone; a few replays of a repeated random user+key are fine.
	if ref.valid < refRequests*99/100 {
		return redisRef{}, fmt.Errorf("only %d of %d redis-benchmark calls reserved a unit: the reference is not measuring Reserve", ref.valid, refRequests)
	}
	return ref, nil
}

// parseRedisBenchmarkCSV reads redis-benchmark --csv: a header, then
// "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms".
func parseRedisBenchmarkCSV(out string) (rps, p50, p99 float64, err error) {
	rows, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil || len(rows) < 2 || len(rows[0]) < 7 || len(rows[1]) < 7 || rows[0][1] != "rps" || rows[0][4] != "p50_latency_ms" || rows[0][6] != "p99_latency_ms" {
		return 0, 0, 0, fmt.Errorf("redis-benchmark: unexpected output %q (%v)", out, err)
	}
	f := func(s string) float64 { v, _ := strconv.ParseFloat(s, 64); return v }
	return f(rows[1][1]), f(rows[1][4]), f(rows[1][6]), nil
}

func quoteArgs(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		if a == "" || strings.ContainsAny(a, " {}'\"") {
			a = "'" + a + "'"
		}
		q[i] = a
	}
	return strings.Join(q, " ")
}
