package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"liveroom/room/roomtest"
)

// idReceiver counts webhook deliveries by webhook-id (what a receiver
// deduplicates by) and checks their signature.
type idReceiver struct {
	mu  sync.Mutex
	got map[string]int
	bad int
}

func (h *idReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	h.mu.Lock()
	defer h.mu.Unlock()
	var p struct {
		Type           string `json:"type"`
		IdempotencyKey string `json:"idempotency_key"`
	}
	id := r.Header.Get("webhook-id")
	if json.Unmarshal(body, &p) != nil || id == "" || p.IdempotencyKey != id || p.Type == "" {
		h.bad++
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	h.got[id]++
}

func (h *idReceiver) count(id string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.got[id]
}

type orderListing struct {
	Orders []struct {
		ID           string `json:"id"`
		State        string `json:"state"`
		CancelReason string `json:"cancel_reason"`
	} `json:"orders"`
}

func listOrders(t *testing.T, base, query string) orderListing {
	t.Helper()
	status, b := adminDo(t, "GET", base+"/api/v1/rooms/flash/orders?limit=500"+query, nil)
	var page orderListing
	if status != 200 || json.Unmarshal(b, &page) != nil {
		t.Fatalf("list orders: %d %s", status, b)
	}
	return page
}

// TestOrderLapseSurvivesKill9: unpaid orders lapse a few at a time; the
// server is killed with SIGKILL while they do. After the restart every
// unpaid order is lapsed exactly once, its units back on the sale once
// (sold + remaining = quantity, sold = the paid ones), and every
// transition reached the webhook under its own id.
func TestOrderLapseSurvivesKill9(t *testing.T) {
	t.Run("local", func(t *testing.T) { orderLapseKill9(t, nil) })
	// Two nodes on one Redis: node a is killed mid-lapse while node b
	// keeps sweeping; the Lua script is the authority either way.
	t.Run("redis", func(t *testing.T) {
		srv := roomtest.StartPersistentRedis(t)
		t.Setenv("LIVEROOM_MAX_CONNS_PER_IP", "0")
		orderLapseKill9(t, func(id string) []string { return []string{"--redis", srv.URL(), "--node-id", id} })
	})
}

// orderLapseKill9 runs the test on one node's data directory, or (cluster
// set) on nodes a and b sharing Redis, b running throughout.
func orderLapseKill9(t *testing.T, cluster func(id string) []string) {
	hooks := &idReceiver{got: map[string]int{}}
	hookSrv := httptest.NewServer(hooks)
	defer hookSrv.Close()

	yaml := fmt.Sprintf("cart:\n  pay_within: 2s\n  sweep_interval: 30ms\nwebhooks:\n  orders_url: %s\n  secret: %s\n  timeout: 2s\n  retry_min: 100ms\n  retry_max: 1s\n  poll_interval: 100ms\n",
		hookSrv.URL, hookSecret)
	node := newCrashNode(t, yaml)
	var args []string
	if cluster != nil {
		args = cluster("a")
		b := newCrashNode(t, yaml).start(cluster("b")...)
		defer b.Stop(t, 5*time.Second)
	}
	p := node.start(args...)
	seedRoom(t, p.Base, "flash", "Flash", "bag", map[string]any{"title": "Bag", "price_cents": 4900, "currency": "EUR", "stock": 200})
	host := joinWS(t, p.Base, "flash", mintToken(t, p.Base, "host", "host", "flash"), "host")
	const quantity = 150
	saleID := startSale(t, host, map[string]any{"sku": "bag", "price_cents": 2900, "quantity": quantity, "starts_in_s": 0, "duration_s": 600})

	// 10 buyers check out 10 orders each, one unit apiece.
	const buyers, each = 10, 10
	var mu sync.Mutex
	var ids []string
	var wg sync.WaitGroup
	for i := range buyers {
		c := dialWS(t, p.Base, "flash", mintToken(t, p.Base, fmt.Sprintf("buyer-%d", i), "viewer", "flash"))
		wg.Go(func() {
			if c.await("welcome", 5*time.Second) == nil {
				t.Errorf("buyer %d: no welcome", i)
				return
			}
			for j := range each {
				_ = c.send(map[string]any{"type": "cart.add", "sale_id": saleID, "qty": 1, "key": fmt.Sprintf("a%d", j)})
				if c.await("cart", 5*time.Second) == nil {
					t.Errorf("buyer %d: no cart", i)
					return
				}
				_ = c.send(map[string]any{"type": "cart.checkout", "key": fmt.Sprintf("c%d", j)})
				m := c.await("order.confirmed", 5*time.Second)
				if m == nil {
					t.Errorf("buyer %d: no order.confirmed", i)
					return
				}
				o := m["order"].(map[string]any)
				if o["state"] != "awaiting_payment" {
					t.Errorf("order.confirmed %v: want awaiting_payment", o)
				}
				mu.Lock()
				ids = append(ids, o["id"].(string))
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	// The merchant reports 20 payments (before their window ends).
	paid := map[string]bool{}
	for _, id := range ids[:20] {
		if status, b := adminDo(t, "POST", p.Base+"/api/v1/rooms/flash/orders/"+id+"/paid", nil); status != 200 {
			t.Fatalf("paid %s: %d %s", id, status, b)
		}
		paid[id] = true
	}
	// Kill once the lapse has begun and before it is over.
	deadline := time.Now().Add(15 * time.Second)
	var before int
	for {
		before = len(listOrders(t, p.Base, "&state=cancelled").Orders)
		if before > 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	p.Kill()
	t.Logf("killed the server with %d of %d unpaid orders lapsed", before, len(ids)-len(paid))
	if before == 0 {
		t.Fatal("no order lapsed before the deadline")
	}

	p2 := node.start(args...)
	deadline = time.Now().Add(20 * time.Second)
	for len(listOrders(t, p2.Base, "&state=awaiting_payment").Orders) > 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	all := listOrders(t, p2.Base, "")
	if len(all.Orders) != len(ids) {
		t.Fatalf("%d orders listed, want %d", len(all.Orders), len(ids))
	}
	for _, o := range all.Orders {
		want := "cancelled"
		if paid[o.ID] {
			want = "paid"
		}
		if o.State != want || (want == "cancelled" && o.CancelReason != "lapse") {
			t.Fatalf("order %s: %s (%s), want %s", o.ID, o.State, o.CancelReason, want)
		}
	}
	// Units came back once: the sale adds up with the paid ones sold.
	viewer := dialWS(t, p2.Base, "flash", mintToken(t, p2.Base, "late", "viewer", "flash"))
	w := viewer.await("welcome", 5*time.Second)
	if w == nil {
		t.Fatal("no welcome after the restart")
	}
	sale := w["room"].(map[string]any)["sale"].(map[string]any)
	if sold, rem := sale["sold"].(float64), sale["remaining"].(float64); int(sold) != len(paid) || int(rem) != quantity-len(paid) {
		t.Fatalf("sale after the restart: sold %v, remaining %v; want %d and %d", sold, rem, len(paid), quantity-len(paid))
	}
	// Every transition reached the webhook (at least once: the receiver
	// deduplicates by webhook-id; a delivery the killed node had claimed
	// waits for its lease, 2 × webhooks.timeout + 5s).
	deadline = time.Now().Add(20 * time.Second)
	missing := func() []string {
		var out []string
		for _, id := range ids {
			ev := id + ".cancelled"
			if paid[id] {
				ev = id + ".paid"
			}
			for _, d := range []string{id, ev} {
				if hooks.count(d) == 0 {
					out = append(out, d)
				}
			}
		}
		return out
	}
	for len(missing()) > 0 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if m := missing(); len(m) > 0 {
		t.Fatalf("%d deliveries never arrived: %v", len(m), m)
	}
	hooks.mu.Lock()
	if hooks.bad > 0 || len(hooks.got) != 2*len(ids) {
		t.Fatalf("%d bad deliveries, %d distinct ids; want 0 and %d", hooks.bad, len(hooks.got), 2*len(ids))
	}
	hooks.mu.Unlock()
	p2.Stop(t, 5*time.Second)
}
