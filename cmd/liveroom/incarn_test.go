package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"liveroom/chat"
	"liveroom/cmd/internal/proctest"
	"liveroom/room"
	"liveroom/room/roomtest"
)

// gatedHooks refuses deliveries (503) until opened, then lets the signed
// receiver count them.
type gatedHooks struct {
	open atomic.Bool
	hook *hookReceiver

	mu     sync.Mutex
	orders []struct{ Room, Incarnation string } // of the deliveries let through
}

func (g *gatedHooks) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !g.open.Load() {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	body, _ := io.ReadAll(r.Body)
	var p struct {
		Order struct{ Room, Incarnation string }
	}
	if json.Unmarshal(body, &p) == nil {
		g.mu.Lock()
		g.orders = append(g.orders, p.Order)
		g.mu.Unlock()
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	g.hook.ServeHTTP(w, r)
}

// startIncarnNodes starts nodes like startInProcess, delivering order
// webhooks to hookURL.
func startIncarnNodes(t *testing.T, open backendsFor, hookURL string, ids ...string) []*inNode {
	t.Helper()
	var nodes []*inNode
	for _, id := range ids {
		cfg := testConfig(t)
		cfg.Node.ID = id
		cfg.Hub.MaxConnsPerIP = 0
		cfg.Webhooks.OrdersURL, cfg.Webhooks.Secret = hookURL, hookSecret
		cfg.Webhooks.RetryMin, cfg.Webhooks.RetryMax, cfg.Webhooks.PollInterval = 50*time.Millisecond, 200*time.Millisecond, 100*time.Millisecond
		cfg.Webhooks.MaxAttempts = 1000 // never parked within the test
		n, err := wireNode(cfg, prometheus.NewRegistry(), quietLog(), open(t, cfg))
		if err != nil {
			t.Fatal(err)
		}
		nodes = append(nodes, serveInProcess(t, n))
	}
	return nodes
}

// getRoom reads a room through the admin API.
func getRoom(t *testing.T, base, id string) room.Room {
	t.Helper()
	var rm room.Room
	if status, body := adminDo(t, "GET", base+"/api/v1/rooms/"+id, nil); status != 200 || json.Unmarshal(body, &rm) != nil {
		t.Fatalf("get room %s: %d %s", id, status, body)
	}
	return rm
}

// listLen GETs url as admin and returns the length of the list under key.
func listLen(t *testing.T, url, key string) int {
	t.Helper()
	status, body := adminDo(t, "GET", url, nil)
	var m map[string]json.RawMessage
	var list []json.RawMessage
	if status != 200 || json.Unmarshal(body, &m) != nil || json.Unmarshal(m[key], &list) != nil {
		t.Fatalf("GET %s: %d %s", url, status, body)
	}
	return len(list)
}

// A room deleted and created again with the same id is a new incarnation:
// it starts empty (no products, sales, orders, bans, audit entries, chat
// history), a client of the old one is closed and cannot reach the new
// one, and the old one's confirmed order, whose webhook was still failing,
// is delivered once afterwards and stays visible to an admin. On two nodes
// sharing memory backends and sharing one redis-server (the room is
// deleted on the node the old clients are not on), and on one node with
// its own files (bbolt, audit files, moderation file).
func TestInProcessRoomIncarnations(t *testing.T) {
	cases := inProcessBackends()
	cases["files"] = func(*testing.T) (backendsFor, *roomtest.RedisServer) {
		return func(t *testing.T, cfg Config) *backends {
			b, err := openBackends(cfg, quietLog())
			if err != nil {
				t.Fatal(err)
			}
			return b
		}, nil
	}
	for name, open := range cases {
		t.Run(name, func(t *testing.T) {
			backends, redisSrv := open(t)
			gate := &gatedHooks{hook: &hookReceiver{got: map[string]int{}}}
			hooks := httptest.NewServer(gate)
			defer hooks.Close()
			ids := []string{"a", "b"}
			if name == "files" {
				ids = ids[:1] // the files are one node's
			}
			nodes := startIncarnNodes(t, backends, hooks.URL, ids...)
			testIncarnations(t, nodes, gate, redisSrv)
		})
	}
}

func testIncarnations(t *testing.T, nodes []*inNode, gate *gatedHooks, redisSrv *roomtest.RedisServer) {
	const id = "shop1"
	a, b := nodes[0].p, nodes[len(nodes)-1].p
	if status, body := adminDo(t, "POST", a.Base+"/api/v1/rooms", map[string]any{"id": id, "title": "Old owner"}); status != 201 {
		t.Fatalf("create room: %d %s", status, body)
	}
	old := getRoom(t, a.Base, id)
	if old.Incarnation == "" {
		t.Fatal("a new room has no incarnation")
	}
	if status, body := adminDo(t, "PUT", a.Base+"/api/v1/rooms/"+id+"/products/bag", map[string]any{"title": "Bag", "price_cents": 4900, "currency": "EUR", "stock": 10}); status != 200 {
		t.Fatalf("put product: %d %s", status, body)
	}

	// The old incarnation: a sale, an order (its webhook refused for now),
	// a chat message, a ban (an audit entry), a viewer who stays.
	oldHostToken := mintToken(t, a.Base, "host", "host", id)
	host := dialWS(t, a.Base, id, oldHostToken)
	if host.await("welcome", 5*time.Second) == nil {
		t.Fatal("host: no welcome")
	}
	_ = host.send(map[string]any{"type": "sale.start", "sku": "bag", "price_cents": 2900, "quantity": 5, "per_user_limit": 1, "starts_in_s": 0, "duration_s": 600})
	started := host.await("sale.started", 5*time.Second)
	if started == nil {
		t.Fatal("no sale.started")
	}
	saleID := started["sale"].(map[string]any)["id"].(string)
	buyer := dialWS(t, b.Base, id, mintToken(t, a.Base, "buyer", "viewer", id))
	if buyer.await("welcome", 5*time.Second) == nil {
		t.Fatal("buyer: no welcome")
	}
	_ = buyer.send(map[string]any{"type": "cart.add", "ref": "a", "sale_id": saleID, "qty": 1, "key": "add-1"})
	if buyer.await("cart", 5*time.Second) == nil {
		t.Fatal("buyer: no cart")
	}
	_ = buyer.send(map[string]any{"type": "cart.checkout", "ref": "c", "key": "pay-1"})
	confirmed := buyer.await("order.confirmed", 5*time.Second)
	if confirmed == nil {
		t.Fatal("buyer: no order.confirmed")
	}
	orderID := confirmed["order"].(map[string]any)["id"].(string)
	_ = buyer.send(map[string]any{"type": "chat.send", "text": "from the old room"})
	if host.await("chat.message", 5*time.Second) == nil {
		t.Fatal("host: no chat.message")
	}
	spam := dialWS(t, b.Base, id, mintToken(t, a.Base, "spam", "viewer", id))
	if spam.await("welcome", 5*time.Second) == nil {
		t.Fatal("spam: no welcome")
	}
	_ = host.send(map[string]any{"type": "mod.ban", "user_id": "spam"})
	if host.await("user.banned", 5*time.Second) == nil {
		t.Fatal("host: no user.banned")
	}
	var modlog struct{ Entries []struct{ Room string } }
	if status, body := adminDo(t, "GET", a.Base+"/api/v1/rooms/"+id+"/moderation/log", nil); status != 200 ||
		json.Unmarshal(body, &modlog) != nil || len(modlog.Entries) == 0 || modlog.Entries[0].Room != id {
		t.Fatalf("old room's moderation log: %d %s, want the ban, in room %s", status, body, id)
	}
	stale := dialWS(t, a.Base, id, mintToken(t, a.Base, "stale", "viewer", id))
	if stale.await("welcome", 5*time.Second) == nil {
		t.Fatal("stale: no welcome")
	}

	// Deleted on b, created again on a by someone else.
	if status, body := adminDo(t, "DELETE", b.Base+"/api/v1/rooms/"+id, nil); status != 204 {
		t.Fatalf("delete room: %d %s", status, body)
	}
	if m := stale.next(5*time.Second, "error"); m == nil || m["code"] != "room_closed" {
		t.Fatalf("old incarnation's client: got %v, want error room_closed", m)
	}
	if status, body := adminDo(t, "POST", a.Base+"/api/v1/rooms", map[string]any{"id": id, "title": "New owner"}); status != 201 {
		t.Fatalf("create room again: %d %s", status, body)
	}
	fresh := getRoom(t, b.Base, id)
	if fresh.Incarnation == "" || fresh.Incarnation == old.Incarnation {
		t.Fatalf("recreated room: incarnation %q, want a new one (old %q)", fresh.Incarnation, old.Incarnation)
	}

	// The new room starts empty, on both nodes.
	for _, n := range []*proctest.Server{a, b} {
		if got := listLen(t, n.Base+"/api/v1/rooms/"+id+"/products", "products"); got != 0 {
			t.Fatalf("new room on %s: %d products, want 0", n.Base, got)
		}
		if got := listLen(t, n.Base+"/api/v1/rooms/"+id+"/orders", "orders"); got != 0 {
			t.Fatalf("new room on %s: %d orders, want 0", n.Base, got)
		}
		if got := listLen(t, n.Base+"/api/v1/rooms/"+id+"/moderation/log", "entries"); got != 0 {
			t.Fatalf("new room on %s: %d audit entries, want 0", n.Base, got)
		}
	}
	viewer := dialWS(t, b.Base, id, mintToken(t, a.Base, "viewer", "viewer", id))
	w := viewer.await("welcome", 5*time.Second)
	if w == nil {
		t.Fatal("new viewer: no welcome")
	}
	rmv := w["room"].(map[string]any)
	if h, _ := w["history"].([]any); len(h) != 0 || rmv["sale"] != nil || rmv["id"] != id {
		t.Fatalf("new room's welcome: history %v, sale %v, id %v; want empty, none, %s", w["history"], rmv["sale"], rmv["id"], id)
	}
	// The old owner's token opens neither the new room's WebSocket nor its API.
	oldHost := dialWS(t, b.Base, id, oldHostToken)
	if m := oldHost.next(5*time.Second, "welcome", "error"); m == nil || m["code"] != "unauthorized" {
		t.Fatalf("the old host's token in the new room: got %v, want error unauthorized", m)
	}
	req, _ := http.NewRequest("GET", a.Base+"/api/v1/rooms/"+id+"/orders", nil)
	req.Header.Set("Authorization", "Bearer "+oldHostToken)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("the old host's token listing the new room's orders: got %v %v, want 401", resp, err)
	} else {
		resp.Body.Close()
	}
	// Banned in the old room, not in the new one.
	spam2 := dialWS(t, a.Base, id, mintToken(t, a.Base, "spam", "viewer", id))
	if m := spam2.next(5*time.Second, "welcome", "error"); m == nil || m["type"] != "welcome" {
		t.Fatalf("user banned in the old room: got %v, want a welcome in the new one", m)
	}
	_ = spam2.send(map[string]any{"type": "chat.send", "text": "hello new room"})
	if m := viewer.await("chat.message", 5*time.Second); m == nil || m["message"].(map[string]any)["text"] != "hello new room" {
		t.Fatalf("new room: got %v, want the new message", m)
	}
	// The old incarnation's clients are gone: what the buyer (still
	// connected when the room was deleted) sends never reaches the new room.
	_ = buyer.send(map[string]any{"type": "chat.send", "text": "from the old incarnation"})
	if m := viewer.next(500*time.Millisecond, "chat.message"); m != nil {
		t.Fatalf("new room got %v from a client of the old one", m)
	}

	// The old order is still owed: listed for an admin, refused to the new
	// host, and delivered once the receiver answers.
	oldOrders := a.Base + "/api/v1/rooms/" + id + "/orders?incarnation=" + old.Incarnation
	if got := listLen(t, oldOrders, "orders"); got != 1 {
		t.Fatalf("old incarnation's orders: %d, want 1", got)
	}
	req, _ = http.NewRequest("GET", oldOrders, nil)
	req.Header.Set("Authorization", "Bearer "+mintToken(t, a.Base, "host2", "host", id))
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("the new host listing the old orders: got %v %v, want 403", resp, err)
	} else {
		resp.Body.Close()
	}
	gate.open.Store(true)
	deadline := time.Now().Add(10 * time.Second)
	for len(gate.hook.has([]string{orderID})) > 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if missing := gate.hook.has([]string{orderID}); len(missing) > 0 {
		t.Fatalf("the old incarnation's order never reached the webhook")
	}
	time.Sleep(300 * time.Millisecond) // a second delivery would show here
	gate.hook.mu.Lock()
	n, bad := gate.hook.got[orderID], gate.hook.bad
	gate.hook.mu.Unlock()
	if n != 1 || bad != 0 {
		t.Fatalf("webhook: order delivered %d times (%d bad), want once", n, bad)
	}
	gate.mu.Lock()
	got := gate.orders
	gate.mu.Unlock()
	if len(got) != 1 || got[0].Room != id || got[0].Incarnation != old.Incarnation {
		t.Fatalf("webhook orders: got %+v, want one of room %s, incarnation %s", got, id, old.Incarnation)
	}

	// The deleted incarnation is listed for admins until its retention
	// passes; then the sweep removes its data, everywhere.
	var retired struct{ Rooms []room.Retired }
	if status, body := adminDo(t, "GET", a.Base+"/api/v1/retired_rooms", nil); status != 200 || json.Unmarshal(body, &retired) != nil ||
		len(retired.Rooms) != 1 || retired.Rooms[0].Incarnation != old.Incarnation {
		t.Fatalf("retired rooms: %d %s, want the old incarnation", status, body)
	}
	ctx := context.Background()
	auditFile := ""
	if _, ok := nodes[0].back.audit.(*chat.FileAudit); ok {
		auditFile = filepath.Join(nodes[0].cfg.DataDir, "audit", old.Scope()+".jsonl")
		if _, err := os.Stat(auditFile); err != nil {
			t.Fatalf("old incarnation's audit file before the sweep: %v", err)
		}
	}
	sweep := *nodes[len(nodes)-1].retired // a copy: its clock is the test's
	sweep.Now = func() time.Time { return time.Now().Add(sweep.Retention - time.Minute) }
	if n, err := sweep.Sweep(ctx); n != 0 || err != nil {
		t.Fatalf("sweep before the retention: removed %d (%v), want 0", n, err)
	}
	if got := listLen(t, oldOrders, "orders"); got != 1 {
		t.Fatalf("before the retention: %d old orders, want 1", got)
	}
	sweep.Now = func() time.Time { return time.Now().Add(sweep.Retention + time.Minute) }
	if n, err := sweep.Sweep(ctx); n != 1 || err != nil {
		t.Fatalf("sweep after the retention: removed %d (%v), want 1", n, err)
	}
	if got := listLen(t, oldOrders, "orders"); got != 0 {
		t.Fatalf("after the retention: %d old orders, want 0", got)
	}
	if got := listLen(t, a.Base+"/api/v1/retired_rooms", "rooms"); got != 0 {
		t.Fatalf("after the sweep: %d retired rooms listed, want 0", got)
	}
	if auditFile != "" {
		if _, err := os.Stat(auditFile); !os.IsNotExist(err) {
			t.Fatalf("old incarnation's audit file after the sweep: %v, want it gone", err)
		}
	}
	if redisSrv != nil {
		rdb := redis.NewClient(&redis.Options{Addr: redisSrv.Addr})
		defer rdb.Close()
		keys, err := rdb.Keys(ctx, "*{room:"+old.Scope()+"}*").Result()
		if err != nil || len(keys) != 0 {
			t.Fatalf("old incarnation's Redis keys after the sweep: %v %v, want none", keys, err)
		}
		if fresh, err := rdb.Keys(ctx, "*{room:"+fresh.Scope()+"}*").Result(); err != nil || len(fresh) == 0 {
			t.Fatalf("new incarnation's Redis keys: %v %v, want some (the sweep must spare them)", fresh, err)
		}
	}
	// The new room is untouched by the sweep.
	_ = spam2.send(map[string]any{"type": "chat.send", "text": "still here"})
	if m := viewer.await("chat.message", 5*time.Second); m == nil {
		t.Fatal("new room after the sweep: no chat.message")
	}
}
