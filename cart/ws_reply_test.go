package cart

import (
	"bytes"
	"testing"
	"time"

	"liveroom/room"
)

// The hand-built `cart` event is byte for byte what encoding/json makes of
// the wire shape, for plain and awkward strings, empty and several items.
func TestCartEventMatchesEncodingJSON(t *testing.T) {
	exp := time.Date(2026, 12, 3, 6, 50, 1, 123456789, time.UTC)
	cases := map[string][]Reservation{
		"empty": nil,
		"one sale item": {{ID: "r_1", SaleID: "s_9", SKU: "tee", Qty: 1, PriceCents: 990, Currency: "USD",
			ExpiresAt: exp, Key: "k-1"}},
		"list price, whole second, other zone": {{ID: "r_2", SKU: "mug", Qty: 3, PriceCents: 0, Currency: "EUR",
			ExpiresAt: time.Date(2027, 1, 1, 0, 0, 0, 0, time.FixedZone("x", 5*3600+1800)), Key: "k"}},
		"awkward strings": {
			{ID: "r_3", SKU: `a"b\c`, Qty: 2, PriceCents: 1, Currency: "USD", ExpiresAt: exp, Key: "<&>é\u2028\x01\t"},
			{ID: "r_4", SaleID: "s", SKU: "ü", Qty: 1, PriceCents: -5, Currency: "", ExpiresAt: exp, Key: ""},
		},
	}
	for name, items := range cases {
		want := room.MustEvent("cart", map[string]any{"items": cartItems(items)})
		got := cartEvent(items)
		if got.Type != want.Type || !bytes.Equal(got.Body, want.Body) {
			t.Errorf("%s:\ngot  %s %s\nwant %s %s", name, got.Type, got.Body, want.Type, want.Body)
		}
	}
}
