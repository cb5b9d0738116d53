package main

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

const (
	crashAdminKey = "crash-admin-key-0123456789"
	crashSecret   = "crash-jwt-secret-0123456789"
	hookSecret    = "webhook-secret-0123456789"
)

// wsClient is a real WebSocket client of a running node.
type wsClient struct {
	t    *testing.T
	conn *websocket.Conn
	in   chan map[string]any
}

func dialWS(t *testing.T, base, roomID, token string) *wsClient {
	t.Helper()
	u := strings.Replace(base, "http://", "ws://", 1) + "/ws/" + roomID + "?token=" + token
	conn, resp, err := websocket.DefaultDialer.Dial(u, nil)
	if err != nil {
		t.Fatalf("dial %s: %v %v", u, err, resp)
	}
	c := newWSClient(t, conn, 256)
	t.Cleanup(func() { conn.Close() })
	return c
}

// newWSClient starts conn's reader, which passes the events on through in
// (buffer of them may wait) and closes it when the connection ends.
func newWSClient(t *testing.T, conn *websocket.Conn, buffer int) *wsClient {
	c := &wsClient{t: t, conn: conn, in: make(chan map[string]any, buffer)}
	go func() {
		defer close(c.in)
		for {
			_, b, err := conn.ReadMessage()
			if err != nil {
				return
			}
			var m map[string]any
			if json.Unmarshal(b, &m) == nil {
				c.in <- m
			}
		}
	}()
	return c
}

func (c *wsClient) send(m map[string]any) error { return c.conn.WriteJSON(m) }

// await returns the first event of type kind (skipping others), or nil
// when the connection ends or the wait runs out.
func (c *wsClient) await(kind string, d time.Duration) map[string]any {
	return c.until(d, func(m map[string]any) bool {
		if m["type"] == kind {
			return true
		}
		if m["type"] == "error" {
			c.t.Logf("error event while waiting for %s: %v", kind, m)
		}
		return false
	})
}

// until returns the first event match accepts (skipping others), or nil
// when the connection ends or the wait runs out.
func (c *wsClient) until(d time.Duration, match func(m map[string]any) bool) map[string]any {
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		select {
		case m, ok := <-c.in:
			if !ok {
				return nil
			}
			if match(m) {
				return m
			}
		case <-timer.C:
			return nil
		}
	}
}

// hookReceiver records webhook deliveries whose signature checks out.
type hookReceiver struct {
	mu  sync.Mutex
	got map[string]int // order id → deliveries
	bad int
}

func (h *hookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	m := hmac.New(sha256.New, []byte(hookSecret))
	m.Write(body)
	want := "sha256=" + hex.EncodeToString(m.Sum(nil))
	var p struct {
		IdempotencyKey string `json:"idempotency_key"`
		Order          struct {
			ID string `json:"id"`
		} `json:"order"`
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if r.Header.Get("X-Liveroom-Signature") != want || json.Unmarshal(body, &p) != nil || p.Order.ID == "" || p.IdempotencyKey == "" {
		h.bad++
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	h.got[p.Order.ID]++
	w.WriteHeader(http.StatusOK)
}

func (h *hookReceiver) has(ids []string) (missing []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, id := range ids {
		if h.got[id] == 0 {
			missing = append(missing, id)
		}
	}
	return missing
}

func adminDo(t *testing.T, method, url string, body any) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, url, rd)
	req.Header.Set("Authorization", "Bearer "+crashAdminKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func mintToken(t *testing.T, base, sub, role, roomID string) string {
	t.Helper()
	status, b := adminDo(t, "POST", base+"/api/v1/tokens", map[string]string{"sub": sub, "name": sub, "role": role, "room": roomID})
	var out struct{ Token string }
	if status != 201 || json.Unmarshal(b, &out) != nil {
		t.Fatalf("mint token: %d %s", status, b)
	}
	return out.Token
}

// TestConfirmedOrdersSurviveKill9: buyers check out in a flash sale, the
// server process is killed with SIGKILL right after the first
// confirmations, and after a restart every order a buyer was told about is
// listed and reaches the merchant's webhook.
func TestConfirmedOrdersSurviveKill9(t *testing.T) {
	hooks := &hookReceiver{got: map[string]int{}}
	hookSrv := httptest.NewServer(hooks)
	defer hookSrv.Close()

	node := newCrashNode(t, fmt.Sprintf("webhooks:\n  orders_url: %s\n  secret: %s\n  retry_min: 100ms\n  retry_max: 1s\n  poll_interval: 200ms\n",
		hookSrv.URL, hookSecret))
	p := node.start()

	seedRoom(t, p.Base, "flash", "Flash", "bag", map[string]any{"title": "Bag", "price_cents": 4900, "currency": "EUR", "stock": 100})
	host := joinWS(t, p.Base, "flash", mintToken(t, p.Base, "host", "host", "flash"), "host")
	saleID := startSale(t, host, map[string]any{"sku": "bag", "price_cents": 2900, "quantity": 60, "per_user_limit": 2, "starts_in_s": 0, "duration_s": 600})

	const buyers = 30
	type confirmation struct{ order string }
	confirmed := make(chan confirmation, buyers)
	var wg sync.WaitGroup
	for i := 0; i < buyers; i++ {
		c := dialWS(t, p.Base, "flash", mintToken(t, p.Base, fmt.Sprintf("buyer-%d", i), "viewer", "flash"))
		wg.Add(1)
		go func(i int, c *wsClient) {
			defer wg.Done()
			if c.await("welcome", 5*time.Second) == nil {
				return
			}
			_ = c.send(map[string]any{"type": "cart.add", "ref": "a", "sale_id": saleID, "qty": 1, "key": fmt.Sprintf("add-%d", i)})
			if c.await("cart", 5*time.Second) == nil {
				return
			}
			_ = c.send(map[string]any{"type": "cart.checkout", "ref": "c", "key": fmt.Sprintf("pay-%d", i)})
			if m := c.await("order.confirmed", 5*time.Second); m != nil {
				confirmed <- confirmation{m["order"].(map[string]any)["id"].(string)}
			}
		}(i, c)
	}
	// Kill as soon as a third of the buyers have their confirmation: the
	// rest are mid-flight, which is the point.
	var ids []string
	for len(ids) < buyers/3 {
		select {
		case c := <-confirmed:
			ids = append(ids, c.order)
		case <-time.After(20 * time.Second):
			t.Fatalf("only %d confirmations", len(ids))
		}
	}
	p.Kill()
	wg.Wait()
	close(confirmed)
	for c := range confirmed { // confirmations that raced the kill count too
		ids = append(ids, c.order)
	}
	t.Logf("killed the server after %d confirmed orders", len(ids))

	p2 := node.start()
	status, b := adminDo(t, "GET", p2.Base+"/api/v1/rooms/flash/orders?limit=500", nil)
	var page struct {
		Orders []struct{ ID string } `json:"orders"`
	}
	if status != 200 || json.Unmarshal(b, &page) != nil {
		t.Fatalf("list orders: %d %s", status, b)
	}
	listed := map[string]bool{}
	for _, o := range page.Orders {
		listed[o.ID] = true
	}
	for _, id := range ids {
		if !listed[id] {
			t.Fatalf("confirmed order %s is missing after the restart (listed: %d)", id, len(page.Orders))
		}
	}
	// Stock still adds up: sold + remaining = quantity once holds are gone.
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) && len(hooks.has(ids)) > 0 {
		time.Sleep(100 * time.Millisecond)
	}
	if missing := hooks.has(ids); len(missing) > 0 {
		t.Fatalf("%d confirmed orders never reached the webhook: %v", len(missing), missing)
	}
	if hooks.bad > 0 {
		t.Fatalf("%d webhook deliveries had a bad signature or payload", hooks.bad)
	}
	p2.Stop(t, 5*time.Second)
}
