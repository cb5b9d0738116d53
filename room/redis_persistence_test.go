package room_test

import (
	"context"
	"net"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"liveroom/room"
	"liveroom/room/roomtest"
)

// Each case is a real redis-server set up as an operator might have it;
// the check must read the same thing Redis says about itself.
func TestCheckRedisPersistence(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name string
		// setup returns a client of a server configured for the case.
		setup        func(t *testing.T) *redis.Client
		appendOnly   string
		fsync        string
		source       string
		verdict      string
		aofConfirmed bool
	}{
		{
			name:       "appendonly no",
			setup:      func(t *testing.T) *redis.Client { return roomtest.StartRedis(t).Client(t) },
			appendOnly: "no", fsync: "everysec", source: "CONFIG GET", verdict: room.PersistenceWeak,
		},
		{
			name:       "appendonly yes, appendfsync always",
			setup:      func(t *testing.T) *redis.Client { return roomtest.StartPersistentRedis(t).Client(t) },
			appendOnly: "yes", fsync: "always", source: "CONFIG GET", verdict: room.PersistenceDurable, aofConfirmed: true,
		},
		{
			name: "appendonly yes, appendfsync everysec",
			setup: func(t *testing.T) *redis.Client {
				return configured(t, roomtest.StartPersistentRedis(t).Client(t), "appendfsync", "everysec")
			},
			appendOnly: "yes", fsync: "everysec", source: "CONFIG GET", verdict: room.PersistenceDurable, aofConfirmed: true,
		},
		{
			name: "appendonly yes, appendfsync no",
			setup: func(t *testing.T) *redis.Client {
				return configured(t, roomtest.StartPersistentRedis(t).Client(t), "appendfsync", "no")
			},
			appendOnly: "yes", fsync: "no", source: "CONFIG GET", verdict: room.PersistenceWeak,
		},
		{
			// Managed Redis: INFO says AOF is on but not how often it syncs.
			name: "CONFIG forbidden by ACL, AOF on",
			setup: func(t *testing.T) *redis.Client {
				return acl(t, roomtest.StartPersistentRedis(t).Client(t), "-config")
			},
			appendOnly: "yes", source: "INFO persistence", verdict: room.PersistenceUnknown, aofConfirmed: true,
		},
		{
			name: "CONFIG forbidden by ACL, AOF off",
			setup: func(t *testing.T) *redis.Client {
				return acl(t, roomtest.StartRedis(t).Client(t), "-config")
			},
			appendOnly: "no", source: "INFO persistence", verdict: room.PersistenceWeak,
		},
		{
			name:       "CONFIG renamed, AOF on",
			setup:      func(t *testing.T) *redis.Client { return startRenamedConfig(t) },
			appendOnly: "yes", source: "INFO persistence", verdict: room.PersistenceUnknown, aofConfirmed: true,
		},
		{
			name: "CONFIG and INFO forbidden",
			setup: func(t *testing.T) *redis.Client {
				return acl(t, roomtest.StartPersistentRedis(t).Client(t), "-config", "-info")
			},
			verdict: room.PersistenceUnknown,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := room.CheckRedisPersistence(ctx, tc.setup(t))
			if p.AppendOnly != tc.appendOnly || p.AppendFsync != tc.fsync || p.Source != tc.source {
				t.Errorf("got appendonly %q, appendfsync %q from %q; want %q, %q from %q (%s)",
					p.AppendOnly, p.AppendFsync, p.Source, tc.appendOnly, tc.fsync, tc.source, p.Detail())
			}
			if got := p.Verdict(); got != tc.verdict {
				t.Errorf("verdict: got %s, want %s (%s)", got, tc.verdict, p.Detail())
			}
			if got := p.AOFConfirmed(); got != tc.aofConfirmed {
				t.Errorf("AOFConfirmed: got %v, want %v (%s)", got, tc.aofConfirmed, p.Detail())
			}
			if p.Unreachable {
				t.Errorf("Redis answered, but the check says unreachable: %s", p.Detail())
			}
			if (tc.source == "") != (p.Err != nil) {
				t.Errorf("err: got %v, want one only when nothing could be read", p.Err)
			}
		})
	}
}

// A node started while Redis is down says so, and asks again until Redis
// answers; an answer is kept until it is stale.
func TestPersistenceWatch(t *testing.T) {
	ctx := context.Background()
	srv := roomtest.StartPersistentRedis(t) // its files stay in a temp dir
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr, MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	t.Cleanup(func() { rdb.Close() })

	srv.Stop()
	first := room.CheckRedisPersistence(ctx, rdb)
	if !first.Unreachable || first.Verdict() != room.PersistenceUnknown {
		t.Fatalf("Redis down: got unreachable %v, verdict %s (%s); want unreachable, unknown", first.Unreachable, first.Verdict(), first.Detail())
	}
	w := room.NewPersistenceWatch(rdb, first, time.Hour)
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	if got := w.Report(ctx); got.Unreachable || got.AppendFsync != "always" {
		t.Fatalf("Redis back: got %s, want appendfsync always read again at once", got.Detail())
	}
	// Within `every`, the answer is the one kept, even though Redis changed.
	configured(t, rdb, "appendfsync", "no")
	if got := w.Report(ctx); got.AppendFsync != "always" {
		t.Errorf("within the hour: got %s, want the kept appendfsync always", got.Detail())
	}
	stale := room.NewPersistenceWatch(rdb, first, 0)
	if got := stale.Report(ctx); got.AppendFsync != "no" || got.Verdict() != room.PersistenceWeak {
		t.Errorf("stale: got %s (%s), want appendfsync no read again: not durable", got.Detail(), got.Verdict())
	}
}

func configured(t *testing.T, rdb *redis.Client, key, value string) *redis.Client {
	t.Helper()
	if err := rdb.ConfigSet(context.Background(), key, value).Err(); err != nil {
		t.Fatalf("CONFIG SET %s %s: %v", key, value, err)
	}
	return rdb
}

// acl takes commands away from the default user, as managed Redis does.
func acl(t *testing.T, rdb *redis.Client, rules ...string) *redis.Client {
	t.Helper()
	args := []any{"ACL", "SETUSER", "default"}
	for _, r := range rules {
		args = append(args, r)
	}
	if err := rdb.Do(context.Background(), args...).Err(); err != nil {
		t.Fatalf("ACL SETUSER default %v: %v", rules, err)
	}
	return rdb
}

// startRenamedConfig runs a redis-server with AOF on whose CONFIG command
// is renamed away (rename-command CONFIG ""), as some hosted Redis ship.
func startRenamedConfig(t *testing.T) *redis.Client {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("redis-server not installed: %v", err)
		}
		t.Skipf("redis-server not installed: %v", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cmd := exec.Command(bin, "--bind", "127.0.0.1", "--port", strconv.Itoa(port), "--save", "", "--dir", t.TempDir(),
		"--appendonly", "yes", "--rename-command", "CONFIG", "")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + strconv.Itoa(port), MaxRetries: -1})
	t.Cleanup(func() { rdb.Close() })
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if err = rdb.Ping(context.Background()).Err(); err == nil {
			return rdb
		}
		if time.Now().After(deadline) {
			t.Fatalf("redis-server with CONFIG renamed did not answer: %v", err)
		}
	}
}
