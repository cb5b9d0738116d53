package main

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"liveroom/cmd/internal/proctest"
	"liveroom/room/roomtest"
)

// The CI smoke of the auction storm: a few hundred bidders over real
// WebSockets against the real server binary, on one node (local store) and
// on two nodes sharing one redis-server (Redis store and bus); then the
// node that ran the auction is killed halfway. Thousands of bidders are the
// same workload run by hand (docs/benchmarks.md).

func auctionTestConfig(base string, bidURLs []string, bidders int) auctionConfig {
	return auctionConfig{
		ws:      wsFlags{baseURL: base, room: "auction", clients: bidders, adminKey: testAdminKey, connectRate: 2000},
		bidURLs: bidURLs, sku: "lamp", start: 1000, duration: 3, extend: 1, proxies: 0.2, bids: 1,
		flood: time.Second, timeout: 20 * time.Second,
	}
}

func checkAuction(t *testing.T, res *auctionResult, bidders int) {
	t.Helper()
	if len(res.Problems) > 0 {
		t.Fatalf("problems: %v", res.Problems)
	}
	if res.Winner == "" || res.Orders != 1 || res.Versions < 2 {
		t.Fatalf("winner %q, %d orders, %d lead changes; want a winner, 1 order, some bidding", res.Winner, res.Orders, res.Versions)
	}
	if res.Sent < bidders*2 {
		t.Fatalf("bids sent: got %d, want at least %d", res.Sent, bidders*2)
	}
	if res.Extensions == 0 {
		t.Fatalf("the last-second flood extended nothing: %+v", res)
	}
}

func TestAuctionWorkload(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and starts the server")
	}
	base := startServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cfg := auctionTestConfig(base, nil, 300)
	if err := cfg.check(); err != nil {
		t.Fatal(err)
	}
	res, err := runAuction(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	checkAuction(t, res, 300)
}

// startRedisNodes runs n real nodes on one redis-server.
func startRedisNodes(t *testing.T, n int) []*proctest.Server {
	t.Helper()
	redis := roomtest.StartRedis(t)
	dir := t.TempDir()
	var nodes []*proctest.Server
	for i := range n {
		nodes = append(nodes, proctest.Start(t, proctest.Options{DataDir: filepath.Join(dir, string(rune('a'+i))),
			Env: []string{"LIVEROOM_ADMIN_KEY=" + testAdminKey, "LIVEROOM_JWT_SECRET=load-test-jwt-secret-0123456789",
				"LIVEROOM_MAX_CONNS_PER_IP=0", "LIVEROOM_REDIS_URL=" + redis.URL()}}))
	}
	return nodes
}

func TestAuctionWorkloadTwoNodes(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and starts the server")
	}
	nodes := startRedisNodes(t, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cfg := auctionTestConfig(nodes[0].Base, []string{nodes[0].Base, nodes[1].Base}, 300)
	if err := cfg.check(); err != nil {
		t.Fatal(err)
	}
	res, err := runAuction(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	checkAuction(t, res, 300)
}

// TestAuctionNodeKilled: the node the host started the auction on dies
// (SIGKILL) halfway; the other node's closer ends it once, on time, with the
// right winner and one order.
func TestAuctionNodeKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and starts the server")
	}
	nodes := startRedisNodes(t, 2)
	a, b := nodes[0], nodes[1]
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cfg := auctionTestConfig(a.Base, []string{b.Base}, 100)
	cfg.duration = 4
	if err := cfg.check(); err != nil {
		t.Fatal(err)
	}
	cfg.midway = a.Kill
	// the orders are listed through the surviving node
	res, err := runAuctionListingOn(ctx, cfg, b.Base)
	if err != nil {
		t.Fatal(err)
	}
	checkAuction(t, res, 100)
	// On time: the end came from Redis' clock, within a loose bound of
	// the closers' period and the bus.
	if late := res.EndedSeenAt.Sub(res.FinalEnd); late < 0 || late > 3*time.Second {
		t.Fatalf("auction.ended seen %s after the end", late)
	}
}

// runAuctionListingOn is runAuction with the orders read from base.
func runAuctionListingOn(ctx context.Context, cfg auctionConfig, base string) (*auctionResult, error) {
	cfg.ordersURL = base
	return runAuction(ctx, cfg)
}
