package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// TestSaleWorkload runs the sale workload against the real server binary:
// 50 buyers on a 10-unit sale get exactly 10 reservations and 40 sold_out,
// and with checkout the orders API lists the 10 orders.
func TestSaleWorkload(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and starts the server")
	}
	const adminKey = testAdminKey
	base := startServer(t)

	for _, checkout := range []bool{false, true} {
		t.Run(fmt.Sprintf("checkout=%v", checkout), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			cfg := saleConfig{
				ws:  wsFlags{baseURL: base, room: "flash", clients: 50, adminKey: adminKey, connectRate: 1000},
				sku: "tee", quantity: 10, qty: 1, perUser: 1, price: 500, duration: 60, checkout: checkout, sales: 1,
				timeout: 10 * time.Second,
			}
			if err := cfg.check(); err != nil {
				t.Fatal(err)
			}
			res, err := runSale(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Sales) != 1 {
				t.Fatalf("got %d sales, want 1", len(res.Sales))
			}
			r := res.Sales[0]
			if r.Accepted != 10 || r.AcceptedUnits != 10 || r.SoldOut != 40 || r.LimitReached != 0 || len(r.Other) != 0 {
				t.Fatalf("got %d accepted (%d units), %d sold_out, %d limit_reached, other %v; want 10, 10, 40, 0, none",
					r.Accepted, r.AcceptedUnits, r.SoldOut, r.LimitReached, r.Other)
			}
			if checkout && (res.OrdersConfirmed != 10 || r.OrdersListed != 10 || r.OrderUnitsListd != 10) {
				t.Fatalf("got %d orders confirmed, %d listed with %d units; want 10, 10, 10", res.OrdersConfirmed, r.OrdersListed, r.OrderUnitsListd)
			}
			if len(res.Problems) != 0 || len(r.lat) != 50 {
				t.Fatalf("problems %v, %d latencies; want none, 50", res.Problems, len(r.lat))
			}
		})
	}
}

// testAdminKey is the admin key of servers started by startServer.
const testAdminKey = "load-test-admin-key-0123456789"

// startServer builds the real server binary and runs it on free loopback
// ports until the test ends; it returns the base URL.
func startServer(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "liveroom")
	if out, err := exec.Command("go", "build", "-o", bin, "liveroom/cmd/liveroom").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	base := fmt.Sprintf("http://127.0.0.1:%d", freeTCPPort(t))
	cmd := exec.Command(bin, "serve", "--http", base[len("http://"):], "--webrtc-port", fmt.Sprint(freeUDPTCPPort(t)),
		"--rtsp", fmt.Sprintf("127.0.0.1:%d", freeTCPPort(t)), "--rtsp-udp", "0", "--data-dir", filepath.Join(dir, "data"))
	cmd.Env = append(os.Environ(), "LIVEROOM_ADMIN_KEY="+testAdminKey, "LIVEROOM_JWT_SECRET=load-test-jwt-secret-0123456789",
		"LIVEROOM_MAX_CONNS_PER_IP=0", "LIVEROOM_REDIS_URL=")
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if testing.Verbose() {
		cmd.Stderr = os.Stderr
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	waitHealthy(t, base)
	return base
}

func waitHealthy(t *testing.T, base string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(base + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("server at %s did not become healthy", base)
}

func freeTCPPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// freeUDPTCPPort finds a port free for UDP and TCP both (the WebRTC port
// serves ICE over each).
func freeUDPTCPPort(t *testing.T) int {
	t.Helper()
	for range 50 {
		c, err := net.ListenPacket("udp", ":0")
		if err != nil {
			t.Fatal(err)
		}
		port := c.LocalAddr().(*net.UDPAddr).Port
		l, err := net.Listen("tcp", fmt.Sprintf(":%d", port))
		c.Close()
		if err == nil {
			l.Close()
			return port
		}
	}
	t.Fatal("no port free for both UDP and TCP")
	return 0
}
