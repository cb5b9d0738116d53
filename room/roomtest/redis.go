package roomtest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisServer is a real redis-server on a free loopback port, owned by one
// test: it is killed when the test ends. Stop and Start restart it on the
// same port (empty: it keeps nothing on disk); Pause and Resume freeze it.
type RedisServer struct {
	Addr string

	bin  string
	port int
	dir  string // with an append-only file here, a restart keeps the data
	mu   sync.Mutex
	cmd  *exec.Cmd
}

var prefixes atomic.Int64

// StartRedis starts a redis-server for t. Without one installed the test
// is skipped, or fails under CI=true.
func StartRedis(t testing.TB) *RedisServer { t.Helper(); return startRedis(t, "") }

// StartPersistentRedis is StartRedis with an append-only file written on
// every command (appendfsync always): Stop is a crash that loses nothing
// Redis acknowledged, and Start brings the data back.
func StartPersistentRedis(t testing.TB) *RedisServer {
	t.Helper()
	return startRedis(t, t.TempDir())
}

func startRedis(t testing.TB, dir string) *RedisServer {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("redis-server not installed: %v", err)
		}
		t.Skipf("redis-server not installed: %v", err)
	}
	for range 3 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		s := &RedisServer{Addr: "127.0.0.1:" + strconv.Itoa(port), bin: bin, port: port, dir: dir}
		if err := s.Start(); err != nil {
			t.Logf("redis-server on port %d: %v", port, err)
			continue
		}
		t.Cleanup(s.Stop)
		return s
	}
	t.Fatal("could not start redis-server")
	return nil
}

// Start runs the server (again) on its port and waits until it answers.
func (s *RedisServer) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return nil
	}
	args := []string{"--bind", "127.0.0.1", "--port", strconv.Itoa(s.port), "--save", "", "--appendonly", "no"}
	if s.dir != "" {
		args = []string{"--bind", "127.0.0.1", "--port", strconv.Itoa(s.port), "--save", "", "--dir", s.dir,
			"--appendonly", "yes", "--appendfsync", "always"}
	}
	cmd := exec.Command(s.bin, args...)
	if err := cmd.Start(); err != nil {
		return err
	}
	rdb := redis.NewClient(&redis.Options{Addr: s.Addr, MaxRetries: -1})
	defer rdb.Close()
	var err error
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if err = rdb.Ping(context.Background()).Err(); err == nil {
			s.cmd = cmd
			return nil
		}
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	return fmt.Errorf("redis-server did not answer: %w", err)
}

// Stop kills the server (SIGKILL): its data is lost unless it persists.
func (s *RedisServer) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGCONT) // in case it was paused
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
	s.cmd = nil
}

// Pause freezes the server (SIGSTOP): connections stay open, nothing answers.
func (s *RedisServer) Pause() { s.signal(syscall.SIGSTOP) }

// Resume undoes Pause.
func (s *RedisServer) Resume() { s.signal(syscall.SIGCONT) }

func (s *RedisServer) signal(sig syscall.Signal) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		_ = s.cmd.Process.Signal(sig)
	}
}

// URL is the server's redis:// URL.
func (s *RedisServer) URL() string { return "redis://" + s.Addr + "/0" }

// Client returns a client closed when the test ends.
func (s *RedisServer) Client(t testing.TB) *redis.Client {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: s.Addr, PoolSize: 32})
	t.Cleanup(func() { rdb.Close() })
	return rdb
}

// Prefix returns a key prefix no other caller in this process gets, so
// tests sharing one server do not see each other's keys.
func Prefix() string { return fmt.Sprintf("t%d:", prefixes.Add(1)) }
