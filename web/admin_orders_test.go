package web

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"liveroom/cart"
	"liveroom/room"
)

// TestAdminOrderTransitions drives the order life through the admin API:
// who may, what each answers, the 409s, the state filter and the summary.
func TestAdminOrderTransitions(t *testing.T) {
	ccfg := cart.Config{PayWithin: 10 * time.Minute}
	ccfg.SetDefaults()
	store, err := cart.OpenLocal(t.TempDir(), ccfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	svc, err := cart.NewService(store, ccfg, cart.ServiceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	n := newTestNode(t, func(d *Deps) { d.Catalog, d.Orders = store, svc })
	rm := n.createRoom("shop", false)
	ctx := context.Background()
	if _, err := store.PutProduct(ctx, rm.Scope(), cart.Product{SKU: "tee", Title: "Tee", PriceCents: 1500, Currency: "EUR", Stock: 10}); err != nil {
		t.Fatal(err)
	}
	order := func(user string) cart.Order {
		t.Helper()
		if _, err := svc.Add(ctx, rm.Scope(), cart.ReserveParams{User: user, SKU: "tee", Qty: 2, Key: user + "-add"}); err != nil {
			t.Fatal(err)
		}
		c, err := svc.Checkout(ctx, rm.Scope(), user, user+"-pay")
		if err != nil {
			t.Fatal(err)
		}
		if c.Order.State != cart.OrderAwaitingPayment {
			t.Fatalf("order state %q, want awaiting_payment", c.Order.State)
		}
		return c.Order
	}
	host := n.token("h", room.RoleHost, rm.ID)
	viewer := n.token("v", room.RoleViewer, rm.ID)
	post := func(id, action, bearer string, wantStatus int, wantState cart.OrderState, wantCode string) {
		t.Helper()
		status, _, body := n.do("POST", "/api/v1/rooms/shop/orders/"+id+"/"+action, bearer, "", nil)
		if status != wantStatus {
			t.Fatalf("POST %s/%s: got %d %s, want %d", id, action, status, body, wantStatus)
		}
		if wantCode != "" {
			if got := errorCode(t, body); got != wantCode {
				t.Fatalf("POST %s/%s: got code %q, want %q", id, action, got, wantCode)
			}
			return
		}
		var o cart.Order
		if err := json.Unmarshal(body, &o); err != nil || o.ID != id || o.State != wantState {
			t.Fatalf("POST %s/%s: got %s, want the order in state %q", id, action, body, wantState)
		}
	}
	a := order("alice")
	post(a.ID, "paid", "", http.StatusUnauthorized, "", "unauthorized")
	post(a.ID, "paid", viewer, http.StatusForbidden, "", "forbidden")
	post(a.ID, "fulfilled", host, http.StatusConflict, "", "order_not_paid")
	post(a.ID, "paid", host, http.StatusOK, cart.OrderPaid, "")
	post(a.ID, "paid", testAdminKey, http.StatusOK, cart.OrderPaid, "") // again: the same answer
	post(a.ID, "fulfilled", testAdminKey, http.StatusOK, cart.OrderFulfilled, "")
	post(a.ID, "cancel", host, http.StatusConflict, "", "order_fulfilled")
	b := order("bob")
	post(b.ID, "cancel", testAdminKey, http.StatusOK, cart.OrderCancelled, "")
	post(b.ID, "paid", host, http.StatusConflict, "", "order_cancelled")
	post("o_0123456789abcdef", "paid", host, http.StatusNotFound, "", "not_found")
	if p, _ := store.Product(ctx, rm.Scope(), "tee"); p.Stock != 8 {
		t.Fatalf("stock = %d, want 8 (bob's 2 back)", p.Stock)
	}
	order("carol")

	status, _, body := n.do("GET", "/api/v1/rooms/shop/orders?state=cancelled", host, "", nil)
	var page cart.OrderPage
	if status != http.StatusOK || json.Unmarshal(body, &page) != nil || len(page.Orders) != 1 || page.Orders[0].ID != b.ID {
		t.Fatalf("orders?state=cancelled: got %d %s, want bob's order only", status, body)
	}
	status, _, body = n.do("GET", "/api/v1/rooms/shop/orders?state=lost", host, "", nil)
	if status != http.StatusBadRequest || errorCode(t, body) != "bad_request" {
		t.Fatalf("orders?state=lost: got %d %s, want 400", status, body)
	}
	status, _, body = n.do("GET", "/api/v1/rooms/shop/orders/summary", host, "", nil)
	var sum struct {
		States map[string]stateSummary `json:"states"`
	}
	if status != http.StatusOK || json.Unmarshal(body, &sum) != nil {
		t.Fatalf("summary: got %d %s", status, body)
	}
	for st, want := range map[string]int{"awaiting_payment": 1, "fulfilled": 1, "cancelled": 1, "paid": 0} {
		if got := sum.States[st]; got.Count != want || (want == 1 && got.TotalCents["EUR"] != 3000) {
			t.Fatalf("summary %s = %+v, want %d order(s) of 3000 EUR", st, got, want)
		}
	}
	if status, _, _ := n.do("GET", "/api/v1/rooms/shop/orders/summary", viewer, "", nil); status != http.StatusForbidden {
		t.Fatalf("summary as a viewer: got %d, want 403", status)
	}
}

func TestRoomCheckoutURL(t *testing.T) {
	n := newTestNode(t)
	n.createRoom("shop", false)
	for _, tc := range []struct {
		url    string
		status int
	}{
		{`"https://pay.example/o/{order_id}"`, http.StatusOK},
		{`"https://pay.example/no-id"`, http.StatusBadRequest},
		{`"ftp://pay.example/{order_id}"`, http.StatusBadRequest},
		{`""`, http.StatusOK},
	} {
		status, _, body := n.do("PATCH", "/api/v1/rooms/shop", testAdminKey, "application/json", []byte(`{"checkout_url":`+tc.url+`}`))
		if status != tc.status {
			t.Fatalf("checkout_url %s: got %d %s, want %d", tc.url, status, body, tc.status)
		}
	}
	host := n.token("h", room.RoleHost, "shop")
	if status, _, _ := n.do("PATCH", "/api/v1/rooms/shop", host, "application/json", []byte(`{"checkout_url":"https://x.example/{order_id}"}`)); status != http.StatusForbidden {
		t.Fatalf("a host setting checkout_url: got %d, want 403", status)
	}
}
