package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gorilla/websocket"

	"liveroom/room"
)

// wsFlags are the flags the WebSocket workloads (chat, idle) share.
type wsFlags struct {
	baseURL     string
	room        string
	clients     int
	secret      string
	adminKey    string
	connectRate int
	sourceIPs   int
	json        bool
}

func (c *wsFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&c.baseURL, "url", "http://127.0.0.1:8080", "server base URL (its /metrics is scraped too)")
	fs.StringVar(&c.room, "room", "demo", "room id")
	fs.IntVar(&c.clients, "clients", 100, "WebSocket clients")
	fs.StringVar(&c.secret, "token-secret", "", "JWT secret: mint tokens locally")
	fs.StringVar(&c.adminKey, "admin-key", "", "admin key: mint tokens through POST /api/v1/tokens")
	fs.IntVar(&c.connectRate, "connect-rate", 1000, "new connections per second")
	fs.IntVar(&c.sourceIPs, "source-ips", 0, "spread clients over 127.0.0.1..N (loopback servers; per-address limits)")
	fs.BoolVar(&c.json, "json", false, "print JSON")
}

func (c *wsFlags) check() error {
	u, err := url.Parse(c.baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("--url: want http(s)://host:port, got %q", c.baseURL)
	}
	c.baseURL = strings.TrimSuffix(c.baseURL, "/")
	if c.clients < 1 {
		return errors.New("--clients: must be at least 1")
	}
	if c.secret == "" && c.adminKey == "" {
		return errors.New("--token-secret or --admin-key is required")
	}
	if c.connectRate < 1 {
		return errors.New("--connect-rate: must be at least 1")
	}
	return nil
}

func (c *wsFlags) wsURL(token string) string {
	u := "ws" + strings.TrimPrefix(c.baseURL, "http") + "/ws/" + url.PathEscape(c.room)
	if token != "" {
		u += "?token=" + url.QueryEscape(token)
	}
	return u
}

// minter makes tokens, locally with the secret or through the admin API.
type minter struct {
	c    *wsFlags
	auth *room.Auth
}

func newMinter(c *wsFlags) (*minter, error) {
	m := &minter{c: c}
	if c.secret != "" {
		a, err := room.NewAuth(room.AuthConfig{JWTSecret: c.secret, AdminKey: "unused-admin-key-" + room.RandomID(8)})
		if err != nil {
			return nil, fmt.Errorf("--token-secret: %w", err)
		}
		m.auth = a
	}
	return m, nil
}

func (m *minter) token(ctx context.Context, sub string, role room.Role) (string, error) {
	if m.auth != nil {
		return m.auth.Mint(room.Identity{ID: sub, Name: sub, Role: role, Room: m.c.room}, 6*time.Hour)
	}
	body, _ := json.Marshal(map[string]string{"sub": sub, "name": sub, "role": role.String(), "room": m.c.room, "ttl": "6h"})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, m.c.baseURL+"/api/v1/tokens", bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Authorization", "Bearer "+m.c.adminKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode/100 != 2 {
		return "", fmt.Errorf("POST /api/v1/tokens: %s: %s", resp.Status, b)
	}
	var out struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal(b, &out); err != nil || out.Token == "" {
		return "", fmt.Errorf("POST /api/v1/tokens: no token in %s", b)
	}
	return out.Token, nil
}

// dialer builds a gorilla dialer, optionally spreading source addresses
// over the loopback range.
func (c *wsFlags) dialer() *websocket.Dialer {
	d := &websocket.Dialer{HandshakeTimeout: 30 * time.Second, ReadBufferSize: 4096, WriteBufferSize: 1024}
	if c.sourceIPs > 1 {
		d.NetDialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			return c.netDialer().DialContext(ctx, network, addr)
		}
	}
	return d
}

var sourceSeq atomic.Uint32

// netDialer picks the next source address when --source-ips is set.
func (c *wsFlags) netDialer() *net.Dialer {
	if c.sourceIPs <= 1 {
		return &net.Dialer{}
	}
	i := sourceSeq.Add(1) % uint32(c.sourceIPs)
	return &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, byte(i>>8), byte(i&0xff)+1)}}
}

// connectAll dials n clients at the configured rate (64 handshakes in
// flight at most) and returns how many failed and the first error.
func (c *wsFlags) connectAll(ctx context.Context, n int, dial func(ctx context.Context, i int) error) (int, error) {
	var wg sync.WaitGroup
	var failed, done atomic.Int64
	var firstErr error
	var errOnce sync.Once
	interval := time.Second / time.Duration(c.connectRate)
	sem := make(chan struct{}, 64)
	next, lastReport := time.Now(), time.Now()
	for i := range n {
		if ctx.Err() != nil {
			break
		}
		if d := time.Until(next); d > 0 {
			time.Sleep(d)
		}
		next = next.Add(interval)
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := dial(ctx, i); err != nil {
				failed.Add(1)
				errOnce.Do(func() { firstErr = err })
			}
			done.Add(1)
		}()
		if time.Since(lastReport) >= 2*time.Second {
			lastReport = time.Now()
			fmt.Fprintf(os.Stderr, "connecting: %d/%d (%d failed)\n", done.Load(), n, failed.Load())
		}
	}
	wg.Wait()
	fmt.Fprintf(os.Stderr, "connected: %d/%d (%d failed)\n", int64(n)-failed.Load(), n, failed.Load())
	return int(failed.Load()), firstErr
}

// raiseFileLimit lifts the soft RLIMIT_NOFILE to the hard limit: thousands
// of sockets need it, and raising our own soft limit needs no privilege.
func raiseFileLimit(need int) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return
	}
	if rl.Cur < rl.Max {
		rl.Cur = rl.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl)
	}
	if int(rl.Cur) < need+64 {
		fmt.Fprintf(os.Stderr, "warning: open-file limit %d is below the %d sockets this run needs (raise the hard limit: ulimit -Hn)\n", rl.Cur, need)
	}
}

// serverStats are the process figures read from the server's /metrics.
type serverStats struct {
	CPUSeconds float64 `json:"cpu_seconds"`
	RSS        float64 `json:"rss_bytes"`
	HeapInuse  float64 `json:"heap_inuse_bytes"`
	StackInuse float64 `json:"stack_inuse_bytes"`
	Goroutines float64 `json:"goroutines"`
	Deliveries float64 `json:"ws_deliveries"`
	Drops      float64 `json:"ws_drops"`
}

func scrapeServer(ctx context.Context, base string) (serverStats, error) {
	m, err := scrapeMetrics(ctx, base)
	if err != nil {
		return serverStats{}, err
	}
	if _, ok := m["process_cpu_seconds_total"]; !ok {
		return serverStats{}, fmt.Errorf("%s/metrics has no process_cpu_seconds_total", base)
	}
	return serverStats{
		CPUSeconds: m.get("process_cpu_seconds_total"),
		RSS:        m.get("process_resident_memory_bytes"),
		HeapInuse:  m.get("go_memstats_heap_inuse_bytes"),
		StackInuse: m.get("go_memstats_stack_inuse_bytes"),
		Goroutines: m.get("go_goroutines"),
		Deliveries: m.get("liveroom_ws_deliveries_total"),
		Drops:      m.get("liveroom_ws_drops_total"),
	}, nil
}

func mib(b float64) string { return fmt.Sprintf("%.1f MiB", b/(1<<20)) }
