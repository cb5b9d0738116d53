package cart

import (
	"errors"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"gopkg.in/yaml.v3"
)

func TestProductValidate(t *testing.T) {
	ok := Product{SKU: "tee-1", Title: "T-shirt", PriceCents: 2500, Currency: "USD", ImageURL: "https://cdn.test/t.png", Stock: 3}
	for _, tc := range []struct {
		name  string
		edit  func(*Product)
		field string
	}{
		{"valid", func(*Product) {}, ""},
		{"no image", func(p *Product) { p.ImageURL = "" }, ""},
		{"free", func(p *Product) { p.PriceCents = 0 }, ""},
		{"empty sku", func(p *Product) { p.SKU = "" }, "sku"},
		{"sku with space", func(p *Product) { p.SKU = "a b" }, "sku"},
		{"sku too long", func(p *Product) { p.SKU = strings.Repeat("a", 65) }, "sku"},
		{"empty title", func(p *Product) { p.Title = "" }, "title"},
		{"blank title", func(p *Product) { p.Title = "   " }, "title"},
		{"long title", func(p *Product) { p.Title = strings.Repeat("é", 201) }, "title"},
		{"200-rune title", func(p *Product) { p.Title = strings.Repeat("é", 200) }, ""},
		{"control in title", func(p *Product) { p.Title = "a\x00b" }, "title"},
		{"bad utf-8 title", func(p *Product) { p.Title = "a\xffb" }, "title"},
		{"negative price", func(p *Product) { p.PriceCents = -1 }, "price_cents"},
		{"huge price", func(p *Product) { p.PriceCents = MaxPriceCents + 1 }, "price_cents"},
		{"lower-case currency", func(p *Product) { p.Currency = "usd" }, "currency"},
		{"no currency", func(p *Product) { p.Currency = "" }, "currency"},
		{"javascript image", func(p *Product) { p.ImageURL = "javascript:alert(1)" }, "image_url"},
		{"same-origin path image", func(p *Product) { p.ImageURL = "/static/t.png" }, ""},
		{"relative image", func(p *Product) { p.ImageURL = "t.png" }, "image_url"},
		{"protocol-relative image", func(p *Product) { p.ImageURL = "//evil.example/t.png" }, "image_url"},
		{"negative stock", func(p *Product) { p.Stock = -1 }, "stock"},
	} {
		p := ok
		tc.edit(&p)
		err := p.Validate()
		var e *Error
		switch {
		case tc.field == "" && err != nil:
			t.Errorf("%s: got %v, want valid", tc.name, err)
		case tc.field != "" && (!errors.As(err, &e) || e.Field != tc.field || e.Code != CodeBadRequest):
			t.Errorf("%s: got %v, want bad_request naming %s", tc.name, err, tc.field)
		}
	}
}

func TestSaleParamsValidate(t *testing.T) {
	ok := SaleParams{SKU: "tee", PriceCents: 999, Quantity: 100, PerUserLimit: 2, StartsInS: 10, DurationS: 300}
	for _, tc := range []struct {
		name  string
		edit  func(*SaleParams)
		field string
	}{
		{"valid", func(*SaleParams) {}, ""},
		{"no limit", func(p *SaleParams) { p.PerUserLimit = 0 }, ""},
		{"bad sku", func(p *SaleParams) { p.SKU = "" }, "sku"},
		{"negative price", func(p *SaleParams) { p.PriceCents = -5 }, "price_cents"},
		{"zero quantity", func(p *SaleParams) { p.Quantity = 0 }, "quantity"},
		{"negative limit", func(p *SaleParams) { p.PerUserLimit = -1 }, "per_user_limit"},
		{"limit over quantity", func(p *SaleParams) { p.PerUserLimit = 101 }, "per_user_limit"},
		{"negative countdown", func(p *SaleParams) { p.StartsInS = -1 }, "starts_in_s"},
		{"countdown over a day", func(p *SaleParams) { p.StartsInS = MaxStartsIn + 1 }, "starts_in_s"},
		{"zero duration", func(p *SaleParams) { p.DurationS = 0 }, "duration_s"},
	} {
		p := ok
		tc.edit(&p)
		err := p.Validate()
		var e *Error
		switch {
		case tc.field == "" && err != nil:
			t.Errorf("%s: got %v, want valid", tc.name, err)
		case tc.field != "" && (!errors.As(err, &e) || e.Field != tc.field):
			t.Errorf("%s: got %v, want an error naming %s", tc.name, err, tc.field)
		}
	}
}

func TestReserveParamsValidate(t *testing.T) {
	ok := ReserveParams{User: "u1", SaleID: "s_0123abcd", Qty: 1, Key: "k-1"}
	for _, tc := range []struct {
		name  string
		edit  func(*ReserveParams)
		field string
	}{
		{"valid sale", func(*ReserveParams) {}, ""},
		{"valid sku", func(p *ReserveParams) { p.SaleID, p.SKU = "", "tee" }, ""},
		{"guest", func(p *ReserveParams) { p.User = "" }, "user"},
		{"neither", func(p *ReserveParams) { p.SaleID = "" }, "sale_id"},
		{"both", func(p *ReserveParams) { p.SKU = "tee" }, "sku"},
		{"bad sale id", func(p *ReserveParams) { p.SaleID = "{room:x}" }, "sale_id"},
		{"zero qty", func(p *ReserveParams) { p.Qty = 0 }, "qty"},
		{"huge qty", func(p *ReserveParams) { p.Qty = MaxQtyPerAdd + 1 }, "qty"},
		{"no key", func(p *ReserveParams) { p.Key = "" }, "key"},
		{"long key", func(p *ReserveParams) { p.Key = strings.Repeat("k", 129) }, "key"},
		{"control in key", func(p *ReserveParams) { p.Key = "a\nb" }, "key"},
	} {
		p := ok
		tc.edit(&p)
		err := p.Validate()
		var e *Error
		switch {
		case tc.field == "" && err != nil:
			t.Errorf("%s: got %v, want valid", tc.name, err)
		case tc.field != "" && (!errors.As(err, &e) || e.Field != tc.field):
			t.Errorf("%s: got %v, want an error naming %s", tc.name, err, tc.field)
		}
	}
}

func TestErrorIs(t *testing.T) {
	err := error(&Error{Code: CodeSoldOut, Message: "only 2 left"})
	if !errors.Is(err, ErrSoldOut) || errors.Is(err, ErrExpired) || ErrorCode(err) != CodeSoldOut || ErrorCode(errors.New("x")) != "" {
		t.Fatalf("errors.Is / ErrorCode do not match codes: %v", err)
	}
	if got := (&Error{Code: CodeBadRequest, Field: "qty", Message: "must be 1..1000"}).Error(); got != "bad_request: qty: must be 1..1000" {
		t.Fatalf("Error() = %q", got)
	}
}

func TestConfig(t *testing.T) {
	var c Config
	c.SetDefaults()
	if err := c.Validate(); err != nil || c.Hold != DefaultHold {
		t.Fatalf("defaults: %+v, %v", c, err)
	}
	var w WebhookConfig
	w.SetDefaults()
	if err := w.Validate(); err != nil {
		t.Fatalf("webhook defaults: %v", err)
	}
	for _, tc := range []struct {
		yaml string
		key  string // "" = valid
	}{
		{"cart: {hold: 30s}", ""},
		{"cart: {hold: 0.5s}", "cart.hold"},
		{"cart: {hold: 2m, key_retention: 1m}", "cart.key_retention"},
		{"cart: {sweep_interval: 1ms}", "cart.sweep_interval"},
		{"cart: {stock_interval: 1h}", "cart.stock_interval"},
		{"webhooks: {orders_url: 'https://shop.test/hook', secret: 'sixteen-chars-ok'}", ""},
		{"webhooks: {orders_url: 'ftp://shop.test/hook', secret: 'sixteen-chars-ok'}", "webhooks.orders_url"},
		{"webhooks: {orders_url: 'https://shop.test/hook', secret: short}", "webhooks.secret"},
		{"webhooks: {timeout: 10m}", "webhooks.timeout"},
		{"webhooks: {retry_min: 1s, retry_max: 500ms}", "webhooks.retry_max"},
		{"webhooks: {concurrency: 1000}", "webhooks.concurrency"},
	} {
		var doc struct {
			Cart     Config        `yaml:"cart"`
			Webhooks WebhookConfig `yaml:"webhooks"`
		}
		dec := yaml.NewDecoder(strings.NewReader(tc.yaml))
		dec.KnownFields(true)
		if err := dec.Decode(&doc); err != nil {
			t.Fatalf("%s: %v", tc.yaml, err)
		}
		doc.Cart.SetDefaults()
		doc.Webhooks.SetDefaults()
		err := doc.Cart.Validate()
		if err == nil {
			err = doc.Webhooks.Validate()
		}
		switch {
		case tc.key == "" && err != nil:
			t.Errorf("%s: %v", tc.yaml, err)
		case tc.key != "" && (err == nil || !strings.HasPrefix(err.Error(), tc.key+":")):
			t.Errorf("%s: got %v, want an error naming %s", tc.yaml, err, tc.key)
		}
		if err != nil && strings.Contains(err.Error(), "sixteen") {
			t.Errorf("the secret leaks into %v", err)
		}
	}
	var doc struct {
		Cart Config `yaml:"cart"`
	}
	dec := yaml.NewDecoder(strings.NewReader("cart: {hold_time: 2m}"))
	dec.KnownFields(true)
	if err := dec.Decode(&doc); err == nil || !strings.Contains(err.Error(), "hold_time") {
		t.Fatalf("unknown key: %v", err)
	}
}

func TestMetricsRegisterOnce(t *testing.T) {
	reg := prometheus.NewRegistry()
	if _, err := NewMetrics(reg); err != nil {
		t.Fatal(err)
	}
	if _, err := NewMetrics(reg); err == nil {
		t.Fatal("registering twice on one registry succeeded")
	}
	var m *Metrics // nil records nothing and does not panic
	m.reserved("ok")
	m.delivered()
}
