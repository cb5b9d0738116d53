package e2e

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"liveroom/cart"
	"liveroom/media/mediatest"
)

// TestBrowserPaysBesideTheLive (docs/orders.md): with a payment step, the
// viewer page shows "Pay now" and the time left for the order it checked
// out; the button opens the signed pay_url in a new tab and the live keeps
// playing in the viewer's; the merchant's POST …/paid reaches the page and
// the studio counts the paid order and its revenue.
func TestBrowserPaysBesideTheLive(t *testing.T) {
	chromium, node := browserTools(t)
	artifacts := artifactsDir(t)
	shop := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, "<!doctype html><title>Shop</title><p>Shop payment page</p>")
	}))
	defer shop.Close()
	const paySecret = "e2e-pay-secret-0123456789"
	cfg := filepath.Join(t.TempDir(), "orders.yaml")
	yaml := fmt.Sprintf("cart:\n  pay_within: 2m\n  checkout_url: %q\n  pay_secret: %s\n", shop.URL+"/pay/{order_id}", paySecret)
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	s := startNode(t, artifacts, nodeOptions{name: "orders-pay", jwtSecret: randomString(t), adminKey: randomString(t), args: []string{"--config", cfg}})
	var created struct {
		StreamKey string `json:"stream_key"`
	}
	s.admin(t, "/api/v1/rooms", map[string]any{"id": room, "title": "Pay"}, http.StatusCreated, &created)
	s.do(t, http.MethodPut, "/api/v1/rooms/"+room+"/products/bag", map[string]any{"title": "Bag", "price_cents": 4900, "currency": "EUR", "stock": 5}, http.StatusOK, nil)
	var tok struct {
		Token string `json:"token"`
	}
	s.admin(t, "/api/v1/tokens", map[string]any{"sub": "ann", "name": "Ann", "role": "viewer", "room": room}, http.StatusCreated, &tok)
	var host struct {
		Token string `json:"token"`
	}
	s.admin(t, "/api/v1/tokens", map[string]any{"sub": "hana", "name": "Hana", "role": "host", "room": room}, http.StatusCreated, &host)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	clip, err := mediatest.LoadClip("")
	if err != nil {
		t.Fatal(err)
	}
	pub, err := mediatest.NewPublisher(ctx, mediatest.WHIP(s.base+"/whip/"+room, created.StreamKey).Signal, mediatest.PublisherOptions{Clip: clip})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	if err := pub.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}

	var res struct {
		OK             bool     `json:"ok"`
		Step           string   `json:"step"`
		Error          string   `json:"error"`
		Logs           []string `json:"logs"`
		OrderID        string   `json:"orderId"`
		OrderState     string   `json:"orderState"`
		PayURL         string   `json:"payURL"`
		DrawerPayURL   string   `json:"drawerPayURL"`
		BarText        string   `json:"barText"`
		BarAfterReload string   `json:"barAfterReload"`
		TabURL         string   `json:"tabURL"`
		TabText        string   `json:"tabText"`
		ViewerURLAfter string   `json:"viewerURLAfter"`
		FramesBefore   int      `json:"framesBefore"`
		FramesAfter    int      `json:"framesAfter"`
		PaidStatus     int      `json:"paidStatus"`
		PaidText       string   `json:"paidText"`
		StudioPaid     string   `json:"studioPaid"`
		StudioRevenue  string   `json:"studioPaidRevenue"`
		StudioAwaiting string   `json:"studioAwaiting"`
	}
	runScript(t, node, chromium, &res, "orders_pay.mjs", "--base", s.base, "--room", room, "--token", tok.Token, "--admin-key", s.adminKey, "--host-token", host.Token)
	for _, l := range res.Logs {
		t.Log("browser: " + l)
	}
	if !res.OK {
		t.Fatalf("browser run failed in step %q: %s", res.Step, res.Error)
	}
	if res.OrderState != "awaiting_payment" {
		t.Fatalf("order.confirmed state %q, want awaiting_payment", res.OrderState)
	}
	if !strings.Contains(res.BarText, "Pay now") || !regexp.MustCompile(`(2:00|1:[0-5]\d) left to pay`).MatchString(res.BarText) {
		t.Fatalf("pay bar shows %q; want Pay now with the time left (under 2:00)", res.BarText)
	}
	u, err := url.Parse(res.PayURL)
	if err != nil || !strings.HasPrefix(res.PayURL, shop.URL+"/pay/"+res.OrderID+"?") {
		t.Fatalf("pay_url %q, want the shop's page for %s", res.PayURL, res.OrderID)
	}
	q := u.Query()
	exp, _ := strconv.ParseInt(q.Get("lr_exp"), 10, 64)
	if q.Get("lr_sig") != cart.PaySignature(paySecret, room, res.OrderID, 4900, "EUR", exp) || q.Get("lr_total") != "4900" {
		t.Fatalf("pay_url %q does not carry a valid signature", res.PayURL)
	}
	if res.DrawerPayURL != res.PayURL {
		t.Fatalf("the confirmation's Pay now links %q, want the pay_url", res.DrawerPayURL)
	}
	if res.TabURL != res.PayURL || !strings.Contains(res.TabText, "Shop payment page") {
		t.Fatalf("new tab at %q showing %q; want the pay_url", res.TabURL, res.TabText)
	}
	if res.ViewerURLAfter != "unchanged" || res.FramesAfter <= res.FramesBefore {
		t.Fatalf("viewer tab: url %s, frames %d -> %d; want the live still playing", res.ViewerURLAfter, res.FramesBefore, res.FramesAfter)
	}
	if !strings.Contains(res.BarAfterReload, "left to pay") {
		t.Fatalf("after a reload the bar shows %q; want the order still to pay", res.BarAfterReload)
	}
	if res.PaidStatus != http.StatusOK || !strings.Contains(res.PaidText, "Paid") {
		t.Fatalf("after POST …/paid (%d) the bar shows %q; want Paid", res.PaidStatus, res.PaidText)
	}
	if res.StudioPaid != "1" || !strings.Contains(res.StudioRevenue, "49") || res.StudioAwaiting != "0" {
		t.Fatalf("studio shows paid %q (%q), awaiting %q; want 1 paid order of 49 EUR, none awaiting", res.StudioPaid, res.StudioRevenue, res.StudioAwaiting)
	}
}
