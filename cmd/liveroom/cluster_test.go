package main

import (
	"context"
	"encoding/json"
	"fmt"
	"liveroom/cmd/internal/proctest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"liveroom/cart"
	"liveroom/room"
	"liveroom/room/roomtest"
)

// startCluster runs three real nodes sharing one redis-server.
func startCluster(t *testing.T) (*roomtest.RedisServer, []*proctest.Server) {
	t.Helper()
	srv := roomtest.StartPersistentRedis(t)
	t.Setenv("LIVEROOM_MAX_CONNS_PER_IP", "0")
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "cluster.yaml")
	cfgText := fmt.Sprintf("auth:\n  jwt_secret: %s\n  admin_key: %s\n", crashSecret, crashAdminKey)
	if err := os.WriteFile(cfgPath, []byte(cfgText), 0o600); err != nil {
		t.Fatal(err)
	}
	var nodes []*proctest.Server
	for _, id := range []string{"a", "b", "c"} {
		nodes = append(nodes, startServer(t, filepath.Join(dir, id), "--config", cfgPath, "--redis", srv.URL(), "--node-id", id))
	}
	t.Cleanup(func() {
		if t.Failed() && !testing.Verbose() {
			for i, p := range nodes {
				t.Logf("node %c log tail:\n%s", 'a'+i, logTail(p.Log(), 40))
			}
		}
	})
	return srv, nodes
}

// next returns the next event of one of kinds, or nil.
func (c *wsClient) next(d time.Duration, kinds ...string) map[string]any {
	return c.until(d, func(m map[string]any) bool { return slices.Contains(kinds, m["type"].(string)) })
}

func TestClusterChatAndModeration(t *testing.T) {
	_, nodes := startCluster(t)
	a, b, c := nodes[0], nodes[1], nodes[2]
	if status, body := adminDo(t, "POST", a.Base+"/api/v1/rooms", map[string]any{"id": "show", "title": "Show"}); status != 201 {
		t.Fatalf("create room on a: %d %s", status, body)
	}
	// The room made on a exists on c.
	if status, _ := adminDo(t, "GET", c.Base+"/api/v1/rooms/show", nil); status != 200 {
		t.Fatalf("room on c: got %d, want 200", status)
	}
	watch := map[string]*wsClient{
		"a": dialWS(t, a.Base, "show", mintToken(t, a.Base, "wa", "viewer", "show")),
		"b": dialWS(t, b.Base, "show", mintToken(t, a.Base, "wb", "viewer", "show")),
		"c": dialWS(t, c.Base, "show", mintToken(t, a.Base, "wc", "viewer", "show")),
	}
	for n, w := range watch {
		if w.await("welcome", 5*time.Second) == nil {
			t.Fatalf("viewer on %s: no welcome", n)
		}
	}
	const senders, each = 4, 3
	var wg sync.WaitGroup
	for i := range senders {
		s := dialWS(t, a.Base, "show", mintToken(t, a.Base, fmt.Sprint("s", i), "viewer", "show"))
		if s.await("welcome", 5*time.Second) == nil {
			t.Fatal("sender: no welcome")
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range each {
				_ = s.send(map[string]any{"type": "chat.send", "text": fmt.Sprintf("hello %d-%d", i, j)})
				time.Sleep(50 * time.Millisecond)
			}
		}()
	}
	wg.Wait()
	orders := map[string][]string{}
	for n, w := range watch {
		var last float64
		for len(orders[n]) < senders*each {
			m := w.await("chat.message", 5*time.Second)
			if m == nil {
				t.Fatalf("viewer on %s: got %d messages, want %d", n, len(orders[n]), senders*each)
			}
			seq := m["seq"].(float64)
			if seq <= last {
				t.Fatalf("viewer on %s: seq %v after %v", n, seq, last)
			}
			last = seq
			orders[n] = append(orders[n], m["message"].(map[string]any)["text"].(string))
		}
	}
	if !slices.Equal(orders["a"], orders["b"]) || !slices.Equal(orders["a"], orders["c"]) {
		t.Fatalf("orders differ:\na %v\nb %v\nc %v", orders["a"], orders["b"], orders["c"])
	}

	// A ban on a holds on b (the user's connection ends) and on c.
	spam := dialWS(t, b.Base, "show", mintToken(t, a.Base, "spam", "viewer", "show"))
	if spam.await("welcome", 5*time.Second) == nil {
		t.Fatal("spam: no welcome")
	}
	mod := dialWS(t, a.Base, "show", mintToken(t, a.Base, "mod", "moderator", "show"))
	if mod.await("welcome", 5*time.Second) == nil {
		t.Fatal("mod: no welcome")
	}
	_ = mod.send(map[string]any{"type": "mod.ban", "user_id": "spam", "ref": "ban"})
	if watch["c"].await("user.banned", 5*time.Second) == nil {
		t.Fatal("viewer on c: no user.banned")
	}
	if m := spam.next(5*time.Second, "error"); m == nil || m["code"] != "banned" {
		t.Fatalf("spam on b: got %v, want error banned", m)
	}
	if spam.await("never", 5*time.Second) != nil {
		t.Fatal("spam on b: connection still open")
	}
	again := dialWS(t, c.Base, "show", mintToken(t, a.Base, "spam", "viewer", "show"))
	if m := again.next(5*time.Second, "welcome", "error"); m != nil && m["type"] == "welcome" {
		_ = again.send(map[string]any{"type": "chat.send", "text": "buy here", "ref": "x"})
		if e := again.next(5*time.Second, "error"); e == nil || e["code"] != "banned" {
			t.Fatalf("banned user on c: got %v, want error banned", e)
		}
	}
}

// TestClusterFlashSale storms one sale through three nodes, then freezes
// Redis mid-sale, then kills and restarts it mid-sale: requests answer
// unavailable meanwhile, and once Redis is back the stock adds up and
// nothing is oversold.
func TestClusterFlashSale(t *testing.T) {
	srv, nodes := startCluster(t)
	a := nodes[0]
	if status, body := adminDo(t, "POST", a.Base+"/api/v1/rooms", map[string]any{"id": "flash", "title": "Flash"}); status != 201 {
		t.Fatalf("create room: %d %s", status, body)
	}
	for _, sku := range []string{"bag", "hat", "cap"} {
		if status, body := adminDo(t, "PUT", a.Base+"/api/v1/rooms/flash/products/"+sku, map[string]any{"title": sku, "price_cents": 4900, "currency": "EUR", "stock": 1000}); status != 200 {
			t.Fatalf("put product: %d %s", status, body)
		}
	}
	host := dialWS(t, a.Base, "flash", mintToken(t, a.Base, "host", "host", "flash"))
	if host.await("welcome", 5*time.Second) == nil {
		t.Fatal("host: no welcome")
	}
	startSale := func(sku string) string {
		_ = host.send(map[string]any{"type": "sale.start", "sku": sku, "price_cents": 2900, "quantity": 50, "per_user_limit": 1, "starts_in_s": 0, "duration_s": 600})
		m := host.await("sale.started", 5*time.Second)
		if m == nil {
			t.Fatal("no sale.started")
		}
		return m["sale"].(map[string]any)["id"].(string)
	}
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer rdb.Close()
	store, err := cart.NewRedisStore(rdb, cart.Config{})
	if err != nil {
		t.Fatal(err)
	}
	// The room's data lives under its incarnation's scope (room.Scope).
	var flashRoom room.Room
	if status, body := adminDo(t, "GET", a.Base+"/api/v1/rooms/flash", nil); status != 200 || json.Unmarshal(body, &flashRoom) != nil {
		t.Fatalf("get room: %d %s", status, body)
	}
	flashScope := flashRoom.Scope()
	checkStock := func(saleID string) cart.Sale {
		t.Helper()
		s, err := store.Sale(context.Background(), flashScope, saleID, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if s.Sold+s.Held+s.Remaining != s.Quantity || s.Quantity != 50 {
			t.Fatalf("sale %s: sold %d + held %d + remaining %d != quantity %d", saleID, s.Sold, s.Held, s.Remaining, s.Quantity)
		}
		return s
	}
	buyers := func(prefix string, n int) []*wsClient {
		out := make([]*wsClient, n)
		for i := range out {
			p := nodes[i%len(nodes)]
			out[i] = dialWS(t, p.Base, "flash", mintToken(t, a.Base, fmt.Sprintf("%s-%d", prefix, i), "viewer", "flash"))
		}
		for i, c := range out {
			if c.await("welcome", 10*time.Second) == nil {
				t.Fatalf("buyer %d: no welcome", i)
			}
		}
		return out
	}
	// add makes every buyer ask for one unit at once and counts the answers.
	add := func(cs []*wsClient, first int, saleID string) (ok, soldOut, unavailable, other int64) {
		var wg sync.WaitGroup
		for i, c := range cs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_ = c.send(map[string]any{"type": "cart.add", "ref": "add", "sale_id": saleID, "qty": 1, "key": fmt.Sprintf("%s-%d", saleID, first+i)})
				m := c.next(15*time.Second, "cart", "error")
				switch {
				case m == nil:
					atomic.AddInt64(&other, 1)
				case m["type"] == "cart":
					atomic.AddInt64(&ok, 1)
				case m["code"] == "sold_out":
					atomic.AddInt64(&soldOut, 1)
				case m["code"] == "unavailable":
					atomic.AddInt64(&unavailable, 1)
				default:
					atomic.AddInt64(&other, 1)
				}
			}()
		}
		wg.Wait()
		return
	}

	// 1. The storm: 300 buyers over three nodes, 50 units.
	bag := startSale("bag")
	ok, soldOut, unav, other := add(buyers("b", 300), 0, bag)
	if ok != 50 || soldOut != 250 {
		t.Fatalf("storm: %d accepted, %d sold out, %d unavailable, %d other; want exactly 50 accepted", ok, soldOut, unav, other)
	}
	if s := checkStock(bag); s.Held != 50 || s.Remaining != 0 {
		t.Fatalf("after the storm: got %+v, want 50 held", s)
	}

	// 2. Redis freezes mid-sale.
	hat := startSale("hat")
	cs := buyers("h", 90)
	ok1, _, _, _ := add(cs[:30], 0, hat)
	srv.Pause()
	_, _, unav, _ = add(cs[30:45], 30, hat)
	if unav == 0 {
		t.Fatal("while redis is frozen: no request answered unavailable")
	}
	srv.Resume()
	waitReady := func() {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for _, p := range nodes {
			for {
				status, _ := adminDo(t, "GET", p.Base+"/readyz", nil)
				if status == 200 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("%s not ready after redis came back: %d", p.Base, status)
				}
				time.Sleep(100 * time.Millisecond)
			}
		}
	}
	waitReady() // readiness recovers by itself
	// A request that timed out may still have reserved: retried with its
	// key, it gets the same reservation, so every held unit has an owner.
	retried, _, _, _ := add(cs[30:45], 30, hat)
	ok2, _, _, _ := add(cs[45:], 45, hat)
	s := checkStock(hat)
	if int64(s.Held+s.Sold) > 50 || ok1+retried+ok2 != int64(s.Held+s.Sold) {
		t.Fatalf("after recovery: %+v, but %d+%d+%d accepted", s, ok1, retried, ok2)
	}
	if ok1+ok2 == 0 {
		t.Fatal("no buyer got a unit")
	}
	t.Logf("hat: accepted %d before the freeze, %d retried, %d after; held %d sold %d", ok1, retried, ok2, s.Held, s.Sold)

	// 3. Redis is killed mid-sale (SIGKILL) and restarted from its
	// append-only file; the buyers' connections survive it.
	capSale := startSale("cap")
	cs = buyers("c", 90)
	ok1, _, _, _ = add(cs[:30], 0, capSale)
	srv.Stop()
	_, _, unav, _ = add(cs[30:45], 30, capSale)
	if unav == 0 {
		t.Fatal("while redis is down: no request answered unavailable")
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	waitReady()
	retried, so1, un1, ot1 := add(cs[30:45], 30, capSale)
	ok2, so2, un2, ot2 := add(cs[45:], 45, capSale)
	t.Logf("cap after restart: retried ok %d soldout %d unav %d other %d; new ok %d soldout %d unav %d other %d", retried, so1, un1, ot1, ok2, so2, un2, ot2)
	s = checkStock(capSale)
	if int64(s.Held+s.Sold) > 50 || ok1+retried+ok2 != int64(s.Held+s.Sold) {
		t.Fatalf("after the restart: %+v, but %d+%d+%d accepted", s, ok1, retried, ok2)
	}
	if ok2 == 0 {
		t.Fatal("no buyer got a unit after the restart")
	}
	t.Logf("cap: accepted %d before the kill, %d retried, %d after; held %d sold %d", ok1, retried, ok2, s.Held, s.Sold)
}

func TestClusterConfigValidates(t *testing.T) {
	cfg, err := parseServeFlags([]string{"--config", filepath.Join("..", "..", "configs", "cluster.yaml")}, os.Stderr, noEnv)
	if err != nil {
		t.Fatalf("got %v, want configs/cluster.yaml to validate", err)
	}
	if cfg.Redis.URL == "" || cfg.Cart.RedisPrefix == "" {
		t.Fatalf("got redis %q prefix %q, want both set", cfg.Redis.URL, cfg.Cart.RedisPrefix)
	}
}

func logTail(s string, lines int) string {
	all := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(all[max(0, len(all)-lines):], "\n")
}
