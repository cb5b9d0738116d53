package web

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"liveroom/cart"
	"liveroom/room"
)

// A receiver that always fails: the delivery is parked after max_attempts,
// listed by the admin API, retried through it, and delivered once the
// receiver is back.
func TestFailedWebhooksAdminAPI(t *testing.T) {
	var mu sync.Mutex
	status, posts, accepted := http.StatusServiceUnavailable, 0, map[string]int{}
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		mu.Lock()
		defer mu.Unlock()
		posts++
		if status == http.StatusOK {
			accepted[r.Header.Get("webhook-id")]++
		}
		w.WriteHeader(status)
	}))
	defer rcv.Close()

	ccfg := cart.Config{}
	ccfg.SetDefaults()
	store, err := cart.OpenLocal(t.TempDir(), ccfg)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	wcfg := cart.WebhookConfig{OrdersURL: rcv.URL, Secret: "0123456789abcdef-secret", RetryMin: 10 * time.Millisecond,
		RetryMax: 20 * time.Millisecond, PollInterval: 20 * time.Millisecond, MaxAttempts: 2}
	ob, err := cart.NewOutbox(store, wcfg, cart.OutboxOptions{Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ob.Run(ctx) }()
	var once sync.Once
	stop := func() { once.Do(func() { cancel(); <-done }) }
	defer stop()

	n := newTestNode(t, func(d *Deps) { d.Catalog, d.Webhooks = store, ob })
	n.createRoom("shop1", false)
	now := time.Now()
	if _, err := store.PutProduct(ctx, "shop1", cart.Product{SKU: "tee", Title: "Tee", PriceCents: 100, Currency: "USD", Stock: 5}); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Reserve(ctx, "shop1", cart.ReserveParams{User: "ann", SKU: "tee", Qty: 1, Key: "k1"}, now); err != nil {
		t.Fatal(err)
	}
	res, err := store.Checkout(ctx, "shop1", "ann", "pay1", now)
	if err != nil {
		t.Fatal(err)
	}
	ob.Wake()
	orderID := res.Order.ID

	var page cart.FailedPage
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		code, _, body := n.do("GET", "/api/v1/webhooks/failed", testAdminKey, "", nil)
		if code != http.StatusOK {
			t.Fatalf("list: %d %s", code, body)
		}
		page = cart.FailedPage{}
		if err := json.Unmarshal(body, &page); err != nil {
			t.Fatal(err)
		}
		if len(page.Deliveries) > 0 || time.Now().After(deadline) {
			break
		}
	}
	if len(page.Deliveries) != 1 || page.Deliveries[0].OrderID != orderID || page.Deliveries[0].Room != "shop1" || page.Deliveries[0].Attempts != 2 {
		t.Fatalf("listed %+v, want order %s parked after 2 attempts", page.Deliveries, orderID)
	}
	mu.Lock()
	if posts != 2 {
		t.Errorf("%d attempts before parking, want 2", posts)
	}
	status = http.StatusOK
	mu.Unlock()

	// Admins only; bad input is a 4xx JSON error.
	viewer := n.token("v1", room.RoleViewer, "shop1")
	hostTok := n.token("h1", room.RoleAdmin, "shop1") // an admin of one room is not a global admin
	for _, tc := range []struct {
		method, path, bearer string
		want                 int
	}{
		{"GET", "/api/v1/webhooks/failed", "", http.StatusUnauthorized},
		{"GET", "/api/v1/webhooks/failed", viewer, http.StatusForbidden},
		{"GET", "/api/v1/webhooks/failed", hostTok, http.StatusForbidden},
		{"POST", "/api/v1/webhooks/failed/shop1/" + orderID + "/retry", viewer, http.StatusForbidden},
		{"GET", "/api/v1/webhooks/failed?limit=0", testAdminKey, http.StatusBadRequest},
		{"GET", "/api/v1/webhooks/failed?cursor=garbage", testAdminKey, http.StatusBadRequest},
		{"POST", "/api/v1/webhooks/failed/shop1/o_000000000000/retry", testAdminKey, http.StatusNotFound},
		{"POST", "/api/v1/webhooks/failed/Shop!/" + orderID + "/retry", testAdminKey, http.StatusBadRequest},
	} {
		code, _, body := n.do(tc.method, tc.path, tc.bearer, "", nil)
		if code != tc.want {
			t.Errorf("%s %s: %d %s, want %d", tc.method, tc.path, code, body, tc.want)
		} else {
			errorCode(t, body)
		}
	}
	mu.Lock()
	if posts != 2 {
		t.Errorf("refused calls caused attempts: %d", posts)
	}
	mu.Unlock()

	code, _, body := n.do("POST", "/api/v1/webhooks/failed/shop1/"+orderID+"/retry", testAdminKey, "", nil)
	if code != http.StatusAccepted {
		t.Fatalf("retry: %d %s", code, body)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		mu.Lock()
		got := accepted[orderID]
		mu.Unlock()
		if got > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("not delivered 10s after the retry")
		}
	}
	if code, _, body := n.do("GET", "/api/v1/webhooks/failed", testAdminKey, "", nil); code != http.StatusOK || string(body) != "{\"deliveries\":[]}\n" {
		t.Errorf("after delivery: %d %s, want an empty list", code, body)
	}
	if code, _, _ := n.do("POST", "/api/v1/webhooks/failed/shop1/"+orderID+"/retry", testAdminKey, "", nil); code != http.StatusNotFound {
		t.Errorf("second retry: %d, want 404", code)
	}
	stop()
	mu.Lock()
	defer mu.Unlock()
	if accepted[orderID] != 1 || posts != 3 {
		t.Errorf("accepted %v after %d posts; want once, on the 3rd", accepted, posts)
	}
}
