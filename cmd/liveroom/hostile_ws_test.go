package main

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// dialFrom opens a room WebSocket from a given loopback source address
// (127.0.0.x stands for a distinct client) and reads nothing yet.
func dialFrom(t *testing.T, base, src, roomID, token string) *websocket.Conn {
	t.Helper()
	nd := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	d := &websocket.Dialer{NetDialContext: nd.DialContext, HandshakeTimeout: 5 * time.Second}
	u := strings.Replace(base, "http://", "ws://", 1) + "/ws/" + roomID + "?token=" + token
	conn, resp, err := d.Dial(u, nil)
	if err != nil {
		t.Fatalf("dial %s from %s: %v %v", u, src, err, resp)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// clientFrom is dialFrom with a reader, as dialWS.
func clientFrom(t *testing.T, base, src, roomID, token string) *wsClient {
	t.Helper()
	conn := dialFrom(t, base, src, roomID, token)
	return newWSClient(t, conn, 1024)
}

// awaitRef returns the first event answering ref (or nil).
func (c *wsClient) awaitRef(ref string, d time.Duration) map[string]any {
	return c.until(d, func(m map[string]any) bool { return m["ref"] == ref })
}

// rssKB is the resident set of a process, in KiB.
func rssKB(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatalf("rss: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
			return n
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

// TestHostileWebSocketClient: through the real binary, a signed-in client
// from 127.0.0.7 sends resume and cart.add as fast as it can and reads
// nothing. It is closed (flood 4009, or slow consumer 4008), the server's
// memory and goroutines stay bounded, its holds stay within the caps, and a
// viewer (127.0.0.8) and a buyer (127.0.0.9) in the same room chat and buy
// meanwhile. The buyer, trying to hold more than the caps, gets a clear
// limit_reached error, and the sale is never oversold.
func TestHostileWebSocketClient(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "liveroom.yaml")
	cfgText := fmt.Sprintf("auth:\n  jwt_secret: %s\n  admin_key: %s\ncart:\n  max_holds: 4\n  list_price_limit: 3\n",
		crashSecret, crashAdminKey)
	if err := os.WriteFile(cfgPath, []byte(cfgText), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startServer(t, filepath.Join(dir, "data"), "--config", cfgPath)
	if status, b := adminDo(t, "POST", p.Base+"/api/v1/rooms", map[string]any{"id": "shop", "title": "Shop"}); status != 201 {
		t.Fatalf("create room: %d %s", status, b)
	}
	for _, sku := range []string{"tee", "cap", "mug"} {
		if status, b := adminDo(t, "PUT", p.Base+"/api/v1/rooms/shop/products/"+sku, map[string]any{"title": sku, "price_cents": 1500, "currency": "EUR", "stock": 100}); status != 200 {
			t.Fatalf("put product: %d %s", status, b)
		}
	}
	host := clientFrom(t, p.Base, "127.0.0.5", "shop", mintToken(t, p.Base, "host", "host", "shop"))
	if host.await("welcome", 5*time.Second) == nil {
		t.Fatal("host: no welcome")
	}
	_ = host.send(map[string]any{"type": "sale.start", "ref": "s", "sku": "tee", "price_cents": 900, "quantity": 20, "per_user_limit": 2, "duration_s": 600})
	started := host.await("sale.started", 5*time.Second)
	if started == nil {
		t.Fatal("no sale.started")
	}
	saleID := started["sale"].(map[string]any)["id"].(string)

	viewer := clientFrom(t, p.Base, "127.0.0.8", "shop", mintToken(t, p.Base, "vic", "viewer", "shop"))
	buyer := clientFrom(t, p.Base, "127.0.0.9", "shop", mintToken(t, p.Base, "bea", "viewer", "shop"))
	for _, c := range []*wsClient{viewer, buyer} {
		if c.await("welcome", 5*time.Second) == nil {
			t.Fatal("no welcome")
		}
	}
	time.Sleep(200 * time.Millisecond) // let the start-up settle before the baseline
	rss0, gor0 := rssKB(t, p.PID()), metric(t, p, "go_goroutines")

	// The hostile client: resume and cart.add back to back, never reading.
	hostile := dialFrom(t, p.Base, "127.0.0.7", "shop", mintToken(t, p.Base, "mal", "viewer", "shop"))
	flooded := make(chan int, 1)
	go func() {
		sent := 0
		defer func() { flooded <- sent }()
		stop := time.Now().Add(20 * time.Second)
		for i := 0; time.Now().Before(stop); i++ {
			var frame []byte
			if i%2 == 0 {
				frame = []byte(`{"type":"resume","after_seq":0,"ref":"r"}`)
			} else {
				frame = fmt.Appendf(nil, `{"type":"cart.add","sku":"cap","qty":1,"key":"m%d","ref":"a"}`, i)
			}
			_ = hostile.SetWriteDeadline(time.Now().Add(2 * time.Second))
			if err := hostile.WriteMessage(websocket.TextMessage, frame); err != nil {
				return // closed by the server
			}
			sent++
		}
	}()

	// Meanwhile the viewer chats and the buyer buys, from other addresses.
	_ = viewer.send(map[string]any{"type": "chat.send", "ref": "c1", "text": "is the tee cotton?"})
	if viewer.await("chat.message", 10*time.Second) == nil {
		t.Fatal("viewer: chat.message did not arrive during the flood")
	}
	_ = buyer.send(map[string]any{"type": "cart.add", "ref": "b1", "sale_id": saleID, "qty": 2, "key": "b1"})
	if m := buyer.awaitRef("b1", 10*time.Second); m == nil || m["type"] != "cart" {
		t.Fatalf("buyer: cart.add during the flood answered %v", m)
	}
	_ = buyer.send(map[string]any{"type": "cart.checkout", "ref": "b2", "key": "pay-1"})
	if m := buyer.await("order.confirmed", 10*time.Second); m == nil {
		t.Fatal("buyer: no order.confirmed during the flood")
	}

	// The buyer tries to hold more than the caps: clear errors, nothing held.
	_ = buyer.send(map[string]any{"type": "cart.add", "ref": "b3", "sku": "mug", "qty": 4, "key": "b3"})
	if m := buyer.awaitRef("b3", 5*time.Second); m == nil || m["type"] != "error" || m["code"] != "limit_reached" ||
		!strings.Contains(fmt.Sprint(m["message"]), "list price") {
		t.Fatalf("4 mugs over list_price_limit 3: got %v, want limit_reached naming the list-price cap", m)
	}
	for i, sku := range []string{"mug", "cap", "mug", "cap"} {
		ref := fmt.Sprintf("h%d", i)
		_ = buyer.send(map[string]any{"type": "cart.add", "ref": ref, "sku": sku, "qty": 1, "key": ref})
		if m := buyer.awaitRef(ref, 5*time.Second); m == nil || m["type"] != "cart" {
			t.Fatalf("hold %d: got %v", i, m)
		}
	}
	_ = buyer.send(map[string]any{"type": "cart.add", "ref": "h5", "sku": "tee", "qty": 1, "key": "h5"})
	if m := buyer.awaitRef("h5", 5*time.Second); m == nil || m["type"] != "error" || m["code"] != "limit_reached" ||
		!strings.Contains(fmt.Sprint(m["message"]), "at most 4 items") {
		t.Fatalf("a fifth hold over max_holds 4: got %v, want limit_reached naming the cap", m)
	}

	// The hostile client was cut off.
	var sent int
	select {
	case sent = <-flooded:
	case <-time.After(30 * time.Second):
		t.Fatal("the hostile client is still writing after 30 s")
	}
	_ = hostile.SetReadDeadline(time.Now().Add(10 * time.Second))
	code := 0
	for {
		if _, _, err := hostile.ReadMessage(); err != nil {
			if ce, ok := err.(*websocket.CloseError); ok {
				code = ce.Code
			}
			break
		}
	}
	if code != 4009 && code != 4008 {
		t.Fatalf("hostile client after %d frames: close code %d, want 4009 (flood) or 4008 (slow consumer)", sent, code)
	}
	t.Logf("hostile client: closed with %d after %d frames", code, sent)

	// Memory and goroutines stay bounded; they come back once it is gone.
	rss1 := rssKB(t, p.PID())
	if growth := rss1 - rss0; growth > 100<<10 {
		t.Errorf("RSS grew %d MiB during the flood, want under 100", growth>>10)
	}
	deadline := time.Now().Add(10 * time.Second)
	for metric(t, p, "go_goroutines") > gor0+20 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if g := metric(t, p, "go_goroutines"); g > gor0+20 {
		t.Errorf("goroutines %v after the flood, %v before", g, gor0)
	}
	t.Logf("RSS %d → %d KiB, goroutines %v → %v", rss0, rss1, gor0, metric(t, p, "go_goroutines"))

	// Stock: the hostile buyer held at most its caps of caps; the sale is
	// not oversold.
	status, b := adminDo(t, "GET", p.Base+"/api/v1/rooms/shop/products/cap", nil)
	var capP struct {
		Stock int `json:"stock"`
	}
	if status != 200 || json.Unmarshal(b, &capP) != nil {
		t.Fatalf("get cap: %d %s", status, b)
	}
	if capP.Stock < 100-3-2 { // mal: list_price_limit 3; bea: 2 held
		t.Errorf("cap stock %d: more held than the caps allow", capP.Stock)
	}
	_ = host.send(map[string]any{"type": "sale.stop", "ref": "stop", "sale_id": saleID})
	ended := host.await("sale.ended", 5*time.Second)
	if ended == nil {
		t.Fatal("no sale.ended")
	}
	if sold := ended["sold"].(float64); sold != 2 {
		t.Errorf("sold %v of the sale, want the buyer's 2", sold)
	}
}
