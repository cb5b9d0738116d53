package cart

import (
	"bytes"
	"encoding/json"
	"strconv"
	"time"

	"liveroom/room"
)

// cartEvent is the `cart` event for items, built by hand: it is the answer
// to every cart.add and cart.remove, and through reflection (a map around
// a slice of structs, time.Time's own encoder) it was most of the JSON work
// of a reservation. The bytes are exactly encoding/json's for
// {"items": cartItems(items)} without HTML escaping (see ws_reply_test.go).
func cartEvent(items []Reservation) room.Event {
	n := 12
	for i := range items {
		n += 160 + len(items[i].ID) + len(items[i].SaleID) + len(items[i].SKU) + len(items[i].Key)
	}
	b := make([]byte, 0, n)
	b = append(b, `{"items":[`...)
	for i, r := range items {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"reservation_id":`...)
		b = appendJSONStr(b, r.ID)
		if r.SaleID != "" {
			b = append(b, `,"sale_id":`...)
			b = appendJSONStr(b, r.SaleID)
		}
		b = append(b, `,"sku":`...)
		b = appendJSONStr(b, r.SKU)
		b = append(b, `,"qty":`...)
		b = strconv.AppendInt(b, int64(r.Qty), 10)
		b = append(b, `,"price_cents":`...)
		b = strconv.AppendInt(b, r.PriceCents, 10)
		b = append(b, `,"currency":`...)
		b = appendJSONStr(b, r.Currency)
		b = append(b, `,"expires_at":`...)
		b = appendJSONTime(b, r.ExpiresAt)
		b = append(b, `,"key":`...)
		b = appendJSONStr(b, r.Key)
		b = append(b, '}')
	}
	b = append(b, "]}"...)
	return room.Event{Type: "cart", Body: b}
}

// appendJSONStr appends s as a JSON string: printable ASCII as is, anything
// else through encoding/json (without HTML escaping, like room events).
func appendJSONStr(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			var buf bytes.Buffer
			enc := json.NewEncoder(&buf)
			enc.SetEscapeHTML(false)
			_ = enc.Encode(s) // a string always encodes
			return append(b, bytes.TrimRight(buf.Bytes(), "\n")...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// appendJSONTime appends t as time.Time's MarshalJSON does (RFC 3339 with
// nanoseconds); the store's times are always within its years.
func appendJSONTime(b []byte, t time.Time) []byte {
	if y := t.Year(); y < 0 || y > 9999 {
		j, _ := json.Marshal(t)
		return append(b, j...)
	}
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}
