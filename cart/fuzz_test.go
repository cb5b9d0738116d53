package cart

import (
	"encoding/json"
	"errors"
	"testing"
)

// The fuzz targets feed request bodies as a client would send them. Valid
// input must satisfy every bound and survive a JSON round trip; invalid
// input must be a bad_request naming one of the request's fields.

func checkValidation(t *testing.T, err error, fields ...string) {
	t.Helper()
	if err == nil {
		return
	}
	var e *Error
	if !errors.As(err, &e) || e.Code != CodeBadRequest {
		t.Fatalf("validation error %v is not a bad_request", err)
	}
	for _, f := range fields {
		if e.Field == f {
			return
		}
	}
	t.Fatalf("validation error %v names %q, not one of %v", err, e.Field, fields)
}

func FuzzProductValidate(f *testing.F) {
	f.Add([]byte(`{"sku":"tee","title":"T","price_cents":1,"currency":"USD","image_url":"","stock":1}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		var p Product
		if json.Unmarshal(body, &p) != nil {
			return
		}
		err := p.Validate()
		checkValidation(t, err, "sku", "title", "price_cents", "currency", "image_url", "stock")
		if err != nil {
			return
		}
		if p.PriceCents < 0 || p.PriceCents > MaxPriceCents || p.Stock < 0 || p.Stock > MaxStock || len(p.SKU) > 64 || p.Title == "" {
			t.Fatalf("valid product out of bounds: %+v", p)
		}
		b, _ := json.Marshal(p)
		var back Product
		if err := json.Unmarshal(b, &back); err != nil || back != p || back.Validate() != nil {
			t.Fatalf("round trip: %+v -> %s -> %+v (%v)", p, b, back, err)
		}
	})
}

func FuzzSaleParams(f *testing.F) {
	f.Add([]byte(`{"sku":"tee","price_cents":100,"quantity":10,"per_user_limit":1,"starts_in_s":5,"duration_s":60}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		var p SaleParams
		if json.Unmarshal(body, &p) != nil {
			return
		}
		err := p.Validate()
		checkValidation(t, err, "sku", "price_cents", "quantity", "per_user_limit", "starts_in_s", "duration_s")
		if err != nil {
			return
		}
		if p.Quantity < 1 || p.PerUserLimit < 0 || p.PerUserLimit > p.Quantity || p.DurationS < 1 || p.StartsInS < 0 ||
			int64(p.Quantity)*p.PriceCents > int64(MaxSaleQuantity)*MaxPriceCents {
			t.Fatalf("valid sale out of bounds: %+v", p)
		}
	})
}

func FuzzReserveParams(f *testing.F) {
	f.Add([]byte(`{"sale_id":"s_00ff","qty":1,"key":"k"}`), "u1")
	f.Fuzz(func(t *testing.T, body []byte, user string) {
		var p ReserveParams
		if json.Unmarshal(body, &p) != nil {
			return
		}
		p.User = user
		err := p.Validate()
		checkValidation(t, err, "user", "sale_id", "sku", "qty", "key")
		if err != nil {
			return
		}
		if (p.SaleID == "") == (p.SKU == "") || p.Qty < 1 || p.Qty > MaxQtyPerAdd || p.Key == "" || len(p.Key) > maxKey {
			t.Fatalf("valid reservation request out of bounds: %+v", p)
		}
	})
}
