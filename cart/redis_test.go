package cart

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// One redis-server for the package's tests, started on first use on a free
// loopback port; each store gets its own key prefix.
var testRedis struct {
	once sync.Once
	addr string
	cmd  *exec.Cmd
	err  error
}

var redisPrefixes atomic.Int64

func TestMain(m *testing.M) {
	code := m.Run()
	if testRedis.cmd != nil {
		_ = testRedis.cmd.Process.Kill()
		_ = testRedis.cmd.Wait()
	}
	os.Exit(code)
}

func startRedis() {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		testRedis.err = fmt.Errorf("redis-server not installed: %w", err)
		return
	}
	for range 3 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			testRedis.err = err
			return
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		cmd := exec.Command(bin, "--bind", "127.0.0.1", "--port", strconv.Itoa(port), "--save", "", "--appendonly", "no")
		if err := cmd.Start(); err != nil {
			testRedis.err = err
			return
		}
		addr := "127.0.0.1:" + strconv.Itoa(port)
		rdb := redis.NewClient(&redis.Options{Addr: addr})
		deadline := time.Now().Add(5 * time.Second)
		for time.Now().Before(deadline) {
			if err = rdb.Ping(context.Background()).Err(); err == nil {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		rdb.Close()
		if err == nil {
			testRedis.addr, testRedis.cmd = addr, cmd
			return
		}
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		testRedis.err = fmt.Errorf("redis-server on %s did not answer: %w", addr, err)
	}
}

// redisClient returns a client of the test redis-server, or skips the test
// when there is none (fails under CI=true).
func redisClient(t testing.TB) *redis.Client {
	t.Helper()
	testRedis.once.Do(startRedis)
	if testRedis.err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal(testRedis.err)
		}
		t.Skip(testRedis.err)
	}
	// No retries, as in production (room/redis_config.go): a retried script
	// may run twice. A loaded machine gets a long read timeout instead.
	rdb := redis.NewClient(&redis.Options{Addr: testRedis.addr, PoolSize: 64, MaxRetries: -1, ReadTimeout: 15 * time.Second})
	t.Cleanup(func() { rdb.Close() })
	return rdb
}

func testConfig() Config {
	var c Config
	c.SetDefaults()
	return c
}

func newTestRedisStore(t testing.TB, cfg Config) *RedisStore {
	t.Helper()
	cfg.RedisPrefix = fmt.Sprintf("t%d:", redisPrefixes.Add(1))
	s, err := NewRedisStore(redisClient(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func newTestLocalStore(t testing.TB, cfg Config) *LocalStore {
	t.Helper()
	s, err := OpenLocal(t.TempDir(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// stores are the two backends every conformance and property test runs on.
var stores = []struct {
	name string
	open func(t testing.TB, cfg Config) Store
}{
	{"local", func(t testing.TB, cfg Config) Store { return newTestLocalStore(t, cfg) }},
	{"redis", func(t testing.TB, cfg Config) Store { return newTestRedisStore(t, cfg) }},
}
