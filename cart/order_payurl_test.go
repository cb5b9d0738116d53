package cart

import (
	"net/url"
	"testing"
	"time"
)

func TestPayURL(t *testing.T) {
	by := t0.Add(5 * time.Minute)
	awaiting := Order{ID: "o_0123456789ab", Room: "shop", TotalCents: 4900, Currency: "EUR", State: OrderAwaitingPayment, PayBy: &by}
	paid := awaiting
	paid.State = OrderPaid
	const secret = "pay-secret-0123456789"
	for _, tc := range []struct {
		name, template string
		o              Order
		want           bool
	}{
		{"awaiting", "https://pay.example/p/{order_id}?shop=1", awaiting, true},
		{"paid: nothing to pay", "https://pay.example/p/{order_id}", paid, false},
		{"no template", "", awaiting, false},
	} {
		got := PayURL(tc.template, secret, tc.o)
		if (got != "") != tc.want {
			t.Fatalf("%s: PayURL = %q, want a URL %v", tc.name, got, tc.want)
		}
		if got == "" {
			continue
		}
		u, err := url.Parse(got)
		q := u.Query()
		if err != nil || u.Path != "/p/"+tc.o.ID || q.Get("shop") != "1" || q.Get("lr_exp") != "1893553745" ||
			q.Get("lr_sig") != PaySignature(secret, "shop", tc.o.ID, 4900, "EUR", by.Unix()) {
			t.Fatalf("%s: PayURL = %q", tc.name, got)
		}
		// Any signed field changed: the signature no longer matches.
		if PaySignature(secret, "shop", tc.o.ID, 4901, "EUR", by.Unix()) == q.Get("lr_sig") ||
			PaySignature(secret, "shop", tc.o.ID, 4900, "EUR", by.Unix()+1) == q.Get("lr_sig") {
			t.Fatal("the signature does not cover the total and the expiry")
		}
	}
	cfg := testConfig() // no checkout_url, so no pay_secret either
	svc, err := NewService(newTestLocalStore(t, testConfig()), cfg, ServiceOptions{Log: quietLog})
	if err != nil {
		t.Fatal(err)
	}
	if got := svc.PayURL(awaiting, "https://room.example/{order_id}"); got != "" {
		t.Fatalf("without cart.pay_secret: pay_url %q, want none", got)
	}
	for _, bad := range []string{"https://pay.example/", "ftp://x/{order_id}", "/relative/{order_id}"} {
		if ValidCheckoutURL(bad) == nil {
			t.Fatalf("ValidCheckoutURL(%q) = nil, want an error", bad)
		}
	}
	cfg.CheckoutURL, cfg.PaySecret = "https://pay.example/{order_id}", "short"
	if cfg.Validate() == nil {
		t.Fatal("a checkout_url with a short pay_secret validated")
	}
}
