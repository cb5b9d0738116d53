package cart

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

func TestStoreConformance(t *testing.T) {
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			runStoreConformance(t, func(t *testing.T) Store { return st.open(t, testConfig()) })
		})
	}
}

// fixture is a store with one room, a product "tee" (10 in stock, 2500 USD
// cents) and helpers that fail the test on unexpected errors.
type fixture struct {
	t    *testing.T
	s    Store
	ctx  context.Context
	room string
	n    int
}

func newFixture(t *testing.T, s Store) *fixture {
	f := &fixture{t: t, s: s, ctx: context.Background(), room: "r1"}
	f.put(Product{SKU: "tee", Title: "T-shirt", PriceCents: 2500, Currency: "USD", Stock: 10})
	return f
}

func (f *fixture) put(p Product) Product {
	f.t.Helper()
	got, err := f.s.PutProduct(f.ctx, f.room, p)
	if err != nil {
		f.t.Fatalf("PutProduct(%s): %v", p.SKU, err)
	}
	return got
}

func (f *fixture) product(sku string) Product {
	f.t.Helper()
	p, err := f.s.Product(f.ctx, f.room, sku)
	if err != nil {
		f.t.Fatalf("Product(%s): %v", sku, err)
	}
	return p
}

func (f *fixture) sale(p SaleParams, now time.Time) Sale {
	f.t.Helper()
	s, err := f.s.StartSale(f.ctx, f.room, p, now)
	if err != nil {
		f.t.Fatalf("StartSale: %v", err)
	}
	return s
}

func (f *fixture) getSale(id string, now time.Time) Sale {
	f.t.Helper()
	s, err := f.s.Sale(f.ctx, f.room, id, now)
	if err != nil {
		f.t.Fatalf("Sale(%s): %v", id, err)
	}
	if s.Sold+s.Held+s.Remaining != s.Quantity || s.Sold < 0 || s.Held < 0 || s.Remaining < 0 {
		f.t.Fatalf("sale %s breaks the invariant: sold %d + held %d + remaining %d != quantity %d", id, s.Sold, s.Held, s.Remaining, s.Quantity)
	}
	return s
}

func (f *fixture) key() string { f.n++; return fmt.Sprintf("k%d", f.n) }

func (f *fixture) reserve(user, saleID, sku string, qty int, now time.Time) ReserveResult {
	f.t.Helper()
	r, err := f.s.Reserve(f.ctx, f.room, ReserveParams{User: user, SaleID: saleID, SKU: sku, Qty: qty, Key: f.key()}, now)
	if err != nil {
		f.t.Fatalf("Reserve(%s, sale %q, sku %q, %d): %v", user, saleID, sku, qty, err)
	}
	f.sameCart("Reserve", user, now, r.Cart)
	if !slices.ContainsFunc(r.Cart, func(c Reservation) bool { return c.ID == r.Reservation.ID }) {
		f.t.Fatalf("Reserve answered cart %s without the new reservation %s", cartString(r.Cart), r.Reservation.ID)
	}
	return r
}

func (f *fixture) checkout(user string, now time.Time) Order {
	f.t.Helper()
	r, err := f.s.Checkout(f.ctx, f.room, user, f.key(), now)
	if err != nil {
		f.t.Fatalf("Checkout(%s): %v", user, err)
	}
	f.sameCart("Checkout", user, now, r.Cart)
	return r.Order
}

// sameCart checks that the cart an answer carries is the one Cart reads.
func (f *fixture) sameCart(what, user string, now time.Time, got []Reservation) {
	f.t.Helper()
	want, err := f.s.Cart(f.ctx, f.room, user, now)
	if err != nil {
		f.t.Fatal(err)
	}
	if cartString(got) != cartString(want) {
		f.t.Fatalf("%s answered cart %s; Cart reads %s", what, cartString(got), cartString(want))
	}
}

func cartString(list []Reservation) string {
	var b strings.Builder
	for _, r := range list {
		fmt.Fprintf(&b, "[%s %s %s/%s x%d %d%s exp %d %s %s]", r.ID, r.User, r.SaleID, r.SKU, r.Qty, r.PriceCents, r.Currency,
			r.ExpiresAt.UnixMilli(), r.Status, r.Key)
	}
	if b.Len() == 0 {
		return "[]"
	}
	return b.String()
}

func wantCode(t *testing.T, what string, err error, code Code) {
	t.Helper()
	if got := ErrorCode(err); got != code {
		t.Fatalf("%s: got error %v (code %q), want code %q", what, err, got, code)
	}
}

func runStoreConformance(t *testing.T, newStore func(t *testing.T) Store) {
	saleP := SaleParams{SKU: "tee", PriceCents: 1000, Quantity: 5, PerUserLimit: 2, DurationS: 600}

	t.Run("catalog", func(t *testing.T) {
		f := newFixture(t, newStore(t))
		f.put(Product{SKU: "cap", Title: "Cap", PriceCents: 900, Currency: "EUR", ImageURL: "https://x.test/cap.png", Stock: 3})
		list, err := f.s.Products(f.ctx, f.room)
		if err != nil || len(list) != 2 || list[0].SKU != "cap" || list[1].SKU != "tee" || list[0].ImageURL != "https://x.test/cap.png" {
			t.Fatalf("Products = %+v, %v; want cap, tee", list, err)
		}
		f.put(Product{SKU: "cap", Title: "Blue cap", PriceCents: 950, Currency: "EUR", Stock: 7})
		if p := f.product("cap"); p.Title != "Blue cap" || p.Stock != 7 || p.PriceCents != 950 {
			t.Fatalf("after upsert got %+v", p)
		}
		if err := f.s.DeleteProduct(f.ctx, f.room, "cap"); err != nil {
			t.Fatal(err)
		}
		_, err = f.s.Product(f.ctx, f.room, "cap")
		wantCode(t, "Product after delete", err, CodeNotFound)
		wantCode(t, "DeleteProduct twice", f.s.DeleteProduct(f.ctx, f.room, "cap"), CodeNotFound)
		if list, _ := f.s.Products(f.ctx, "other"); len(list) != 0 {
			t.Fatalf("another room lists %v", list)
		}
		_, err = f.s.PutProduct(f.ctx, f.room, Product{SKU: "bad sku", Title: "x", Currency: "USD"})
		var e *Error
		if !errors.As(err, &e) || e.Field != "sku" || e.Code != CodeBadRequest {
			t.Fatalf("bad sku: got %v, want bad_request naming sku", err)
		}
	})

	t.Run("pin", func(t *testing.T) {
		f := newFixture(t, newStore(t))
		if _, ok, err := f.s.Pinned(f.ctx, f.room); ok || err != nil {
			t.Fatalf("Pinned on a fresh room = %v, %v", ok, err)
		}
		_, err := f.s.Pin(f.ctx, f.room, "nope")
		wantCode(t, "Pin unknown", err, CodeNotFound)
		if p, err := f.s.Pin(f.ctx, f.room, "tee"); err != nil || p.SKU != "tee" || p.Stock != 10 {
			t.Fatalf("Pin = %+v, %v", p, err)
		}
		if p, ok, _ := f.s.Pinned(f.ctx, f.room); !ok || p.Title != "T-shirt" {
			t.Fatalf("Pinned = %+v, %v", p, ok)
		}
		if p, ok, err := f.s.Unpin(f.ctx, f.room); !ok || err != nil || p.SKU != "tee" {
			t.Fatalf("Unpin = %+v, %v, %v", p, ok, err)
		}
		if _, ok, _ := f.s.Unpin(f.ctx, f.room); ok {
			t.Fatal("second Unpin reported a product")
		}
		f.s.Pin(f.ctx, f.room, "tee")
		if err := f.s.DeleteProduct(f.ctx, f.room, "tee"); err != nil {
			t.Fatal(err)
		}
		if _, ok, _ := f.s.Pinned(f.ctx, f.room); ok {
			t.Fatal("a deleted product stays pinned")
		}
	})

	t.Run("start sale", func(t *testing.T) {
		f := newFixture(t, newStore(t))
		for _, tc := range []struct {
			name  string
			p     SaleParams
			code  Code
			field string
		}{
			{"unknown product", SaleParams{SKU: "nope", Quantity: 1, DurationS: 60}, CodeNotFound, "sku"},
			{"more than stock", SaleParams{SKU: "tee", Quantity: 11, DurationS: 60}, CodeBadRequest, "quantity"},
			{"no duration", SaleParams{SKU: "tee", Quantity: 1}, CodeBadRequest, "duration_s"},
			{"limit over quantity", SaleParams{SKU: "tee", Quantity: 1, PerUserLimit: 2, DurationS: 60}, CodeBadRequest, "per_user_limit"},
		} {
			_, err := f.s.StartSale(f.ctx, f.room, tc.p, t0)
			var e *Error
			if !errors.As(err, &e) || e.Code != tc.code || e.Field != tc.field {
				t.Errorf("%s: got %v, want %s naming %s", tc.name, err, tc.code, tc.field)
			}
		}
		p := saleP
		p.StartsInS = 30
		s := f.sale(p, t0)
		if s.State != SaleScheduled || !s.StartsAt.Equal(t0.Add(30*time.Second)) || !s.EndsAt.Equal(t0.Add(630*time.Second)) || s.Currency != "USD" || s.Remaining != 5 {
			t.Fatalf("StartSale = %+v", s)
		}
		if got := f.product("tee").Stock; got != 5 {
			t.Fatalf("product stock after a 5-unit sale = %d, want 5", got)
		}
		_, err := f.s.StartSale(f.ctx, f.room, SaleParams{SKU: "tee", Quantity: 1, DurationS: 60}, t0)
		wantCode(t, "second sale while scheduled", err, CodeBadRequest)
		_, err = f.s.Reserve(f.ctx, f.room, ReserveParams{User: "u1", SaleID: s.ID, Qty: 1, Key: "a"}, t0)
		wantCode(t, "reserve before it opens", err, CodeSaleNotActive)
		if got := f.getSale(s.ID, t0.Add(31*time.Second)); got.State != SaleOpen {
			t.Fatalf("state at open = %s", got.State)
		}
		_, err = f.s.Reserve(f.ctx, f.room, ReserveParams{User: "u1", SaleID: s.ID, Qty: 1, Key: "b"}, t0.Add(630*time.Second))
		wantCode(t, "reserve at its end", err, CodeSaleNotActive)
		_, err = f.s.Reserve(f.ctx, f.room, ReserveParams{User: "u1", SaleID: "s_00", Qty: 1, Key: "c"}, t0)
		wantCode(t, "reserve unknown sale", err, CodeNotFound)
		list, err := f.s.Sales(f.ctx, f.room, t0)
		if err != nil || len(list) != 1 || list[0].ID != s.ID {
			t.Fatalf("Sales = %+v, %v", list, err)
		}
	})

	t.Run("reserve sale", func(t *testing.T) {
		f := newFixture(t, newStore(t))
		s := f.sale(saleP, t0)
		r := f.reserve("u1", s.ID, "", 2, t0)
		res := r.Reservation
		if res.Status != StatusHeld || res.SKU != "tee" || res.PriceCents != 1000 || res.Currency != "USD" || res.Qty != 2 ||
			!res.ExpiresAt.Equal(t0.Add(2*time.Minute)) || r.Remaining != 3 || r.Replayed || res.User != "u1" {
			t.Fatalf("Reserve = %+v", r)
		}
		_, err := f.s.Reserve(f.ctx, f.room, ReserveParams{User: "u1", SaleID: s.ID, Qty: 1, Key: "more"}, t0)
		wantCode(t, "over the per-user limit", err, CodeLimitReached)
		f.reserve("u2", s.ID, "", 2, t0)
		_, err = f.s.Reserve(f.ctx, f.room, ReserveParams{User: "u3", SaleID: s.ID, Qty: 2, Key: "x"}, t0)
		wantCode(t, "more than remaining", err, CodeSoldOut)
		last := f.reserve("u3", s.ID, "", 1, t0)
		if last.Remaining != 0 || !last.SoldOut {
			t.Fatalf("last unit: %+v, want remaining 0 and SoldOut", last)
		}
		_, err = f.s.Reserve(f.ctx, f.room, ReserveParams{User: "u4", SaleID: s.ID, Qty: 1, Key: "y"}, t0)
		wantCode(t, "sold out", err, CodeSoldOut)
		if got := f.getSale(s.ID, t0); got.Held != 5 || got.Remaining != 0 {
			t.Fatalf("sale = %+v", got)
		}
		// Released units can be taken again, but SoldOut is reported once.
		if _, err := f.s.Release(f.ctx, f.room, "u3", last.Reservation.ID, t0); err != nil {
			t.Fatal(err)
		}
		if again := f.reserve("u4", s.ID, "", 1, t0); again.SoldOut {
			t.Fatal("SoldOut reported a second time")
		}
	})

	t.Run("idempotency", func(t *testing.T) {
		f := newFixture(t, newStore(t))
		s := f.sale(saleP, t0)
		p := ReserveParams{User: "u1", SaleID: s.ID, Qty: 1, Key: "add-1"}
		first, err := f.s.Reserve(f.ctx, f.room, p, t0)
		if err != nil {
			t.Fatal(err)
		}
		for i := range 3 {
			again, err := f.s.Reserve(f.ctx, f.room, p, t0.Add(time.Duration(i)*time.Second))
			if err != nil || !again.Replayed || again.Reservation.ID != first.Reservation.ID || again.Reservation.Status != StatusHeld {
				t.Fatalf("retry %d = %+v, %v; want the same held reservation", i, again, err)
			}
			f.sameCart("replayed Reserve", "u1", t0.Add(time.Duration(i)*time.Second), again.Cart)
		}
		if got := f.getSale(s.ID, t0); got.Held != 1 {
			t.Fatalf("held after retries = %d, want 1", got.Held)
		}
		other := p
		other.Qty = 2
		_, err = f.s.Reserve(f.ctx, f.room, other, t0)
		var e *Error
		if !errors.As(err, &e) || e.Code != CodeBadRequest || e.Field != "key" {
			t.Fatalf("same key, other qty: got %v, want bad_request naming key", err)
		}
		// The key is the buyer's: another buyer may use the same string.
		if r, err := f.s.Reserve(f.ctx, f.room, ReserveParams{User: "u2", SaleID: s.ID, Qty: 1, Key: "add-1"}, t0); err != nil || r.Replayed {
			t.Fatalf("another buyer's key: %+v, %v", r, err)
		}
		// A released reservation is forgotten with its key: the key
		// reserves afresh.
		if _, err := f.s.Release(f.ctx, f.room, "u1", first.Reservation.ID, t0); err != nil {
			t.Fatal(err)
		}
		again, err := f.s.Reserve(f.ctx, f.room, p, t0)
		if err != nil || again.Replayed || again.Reservation.ID == first.Reservation.ID || again.Reservation.Status != StatusHeld {
			t.Fatalf("retry after release = %+v, %v; want a new hold", again, err)
		}
		if _, err := f.s.Release(f.ctx, f.room, "u1", again.Reservation.ID, t0); err != nil {
			t.Fatal(err)
		}
		// After checkout it answers the checked-out one.
		p2 := ReserveParams{User: "u1", SaleID: s.ID, Qty: 1, Key: "add-2"}
		r2, _ := f.s.Reserve(f.ctx, f.room, p2, t0)
		o := f.checkout("u1", t0)
		again, err = f.s.Reserve(f.ctx, f.room, p2, t0)
		if err != nil || again.Reservation.ID != r2.Reservation.ID || again.Reservation.Status != StatusCheckedOut || again.Reservation.OrderID != o.ID {
			t.Fatalf("retry after checkout = %+v, %v", again, err)
		}
		// Checkout keys: same key, same order, however often.
		f.reserve("u2", s.ID, "", 1, t0)
		c1, err := f.s.Checkout(f.ctx, f.room, "u2", "pay-1", t0)
		if err != nil || c1.Replayed {
			t.Fatal(c1, err)
		}
		later := f.reserve("u2", "", "tee", 1, t0.Add(time.Hour))
		for range 3 {
			c2, err := f.s.Checkout(f.ctx, f.room, "u2", "pay-1", t0.Add(time.Hour))
			if err != nil || !c2.Replayed || c2.Order.ID != c1.Order.ID || c2.Order.TotalCents != c1.Order.TotalCents {
				t.Fatalf("checkout retry = %+v, %v; want order %s", c2, err, c1.Order.ID)
			}
			f.sameCart("replayed Checkout", "u2", t0.Add(time.Hour), c2.Cart)
			if len(c2.Cart) != 1 || c2.Cart[0].ID != later.Reservation.ID {
				t.Fatalf("replayed Checkout answered cart %s, want only %s", cartString(c2.Cart), later.Reservation.ID)
			}
		}
	})

	// Every change answers with the buyer's cart as Cart reads it, so the
	// WebSocket reply needs no second read; a hold past its expiry is not
	// in it even before the sweeper has run.
	t.Run("answers carry the cart", func(t *testing.T) {
		f := newFixture(t, newStore(t))
		hold := testConfig().Hold
		old := f.reserve("u1", "", "tee", 1, t0)
		f.reserve("u2", "", "tee", 1, t0) // another buyer's: never listed
		fresh := f.reserve("u1", "", "tee", 2, t0.Add(hold+time.Second))
		if len(fresh.Cart) != 1 || fresh.Cart[0].ID != fresh.Reservation.ID {
			t.Fatalf("cart after the old hold lapsed: %s, want only %s (not %s)", cartString(fresh.Cart), fresh.Reservation.ID, old.Reservation.ID)
		}
		if fresh.Cart[0].Qty != 2 || fresh.Cart[0].PriceCents != 2500 || fresh.Cart[0].Currency != "USD" || fresh.Cart[0].User != "u1" {
			t.Fatalf("cart item = %+v", fresh.Cart[0])
		}
		o := f.checkout("u1", t0.Add(hold+2*time.Second))
		if len(o.Items) != 1 {
			t.Fatalf("order items = %+v", o.Items)
		}
	})

	t.Run("reserve product", func(t *testing.T) {
		f := newFixture(t, newStore(t))
		r := f.reserve("u1", "", "tee", 4, t0)
		if r.Remaining != 6 || r.Reservation.PriceCents != 2500 || r.Reservation.SaleID != "" || r.Reservation.SKU != "tee" {
			t.Fatalf("Reserve = %+v", r)
		}
		if got := f.product("tee").Stock; got != 6 {
			t.Fatalf("stock = %d, want 6", got)
		}
		_, err := f.s.Reserve(f.ctx, f.room, ReserveParams{User: "u2", SKU: "tee", Qty: 7, Key: "x"}, t0)
		wantCode(t, "more than stock", err, CodeSoldOut)
		_, err = f.s.Reserve(f.ctx, f.room, ReserveParams{User: "u2", SKU: "nope", Qty: 1, Key: "y"}, t0)
		wantCode(t, "unknown product", err, CodeNotFound)
		wantCode(t, "delete with holds", f.s.DeleteProduct(f.ctx, f.room, "tee"), CodeBadRequest)
		// An admin upsert sets what is reservable now; held units come back on top.
		f.put(Product{SKU: "tee", Title: "T-shirt", PriceCents: 2500, Currency: "USD", Stock: 1})
		f.s.Release(f.ctx, f.room, "u1", r.Reservation.ID, t0)
		if got := f.product("tee").Stock; got != 5 {
			t.Fatalf("stock after upsert 1 and releasing 4 = %d, want 5", got)
		}
		f.reserve("u1", "", "tee", 2, t0)
		o := f.checkout("u1", t0)
		if o.TotalCents != 5000 || len(o.Items) != 1 || o.Items[0].SKU != "tee" {
			t.Fatalf("order = %+v", o)
		}
		if got := f.product("tee").Stock; got != 3 {
			t.Fatalf("stock after buying 2 = %d, want 3", got)
		}
	})

	t.Run("release", func(t *testing.T) {
		f := newFixture(t, newStore(t))
		s := f.sale(saleP, t0)
		r := f.reserve("u1", s.ID, "", 2, t0)
		_, err := f.s.Release(f.ctx, f.room, "u2", r.Reservation.ID, t0)
		wantCode(t, "another buyer's reservation", err, CodeNotFound)
		_, err = f.s.Release(f.ctx, f.room, "u1", "r_00", t0)
		wantCode(t, "unknown reservation", err, CodeNotFound)
		other := f.reserve("u1", "", "tee", 1, t0)
		rel, err := f.s.Release(f.ctx, f.room, "u1", r.Reservation.ID, t0)
		if err != nil || !rel.Released || rel.Remaining != 5 || rel.Reservation.Status != StatusReleased {
			t.Fatalf("Release = %+v, %v", rel, err)
		}
		f.sameCart("Release", "u1", t0, rel.Cart)
		if len(rel.Cart) != 1 || rel.Cart[0].ID != other.Reservation.ID {
			t.Fatalf("Release answered cart %s, want only %s", cartString(rel.Cart), other.Reservation.ID)
		}
		// Released is forgotten: a second release finds nothing.
		_, err = f.s.Release(f.ctx, f.room, "u1", r.Reservation.ID, t0)
		wantCode(t, "second Release", err, CodeNotFound)
		if _, err := f.s.Release(f.ctx, f.room, "u1", other.Reservation.ID, t0); err != nil {
			t.Fatal(err)
		}
		if got := f.getSale(s.ID, t0); got.Remaining != 5 || got.Held != 0 {
			t.Fatalf("sale = %+v", got)
		}
		// The per-user limit counts holds: released units free it again.
		f.reserve("u1", s.ID, "", 2, t0)
		r3 := f.reserve("u2", s.ID, "", 1, t0)
		f.checkout("u2", t0)
		_, err = f.s.Release(f.ctx, f.room, "u2", r3.Reservation.ID, t0)
		wantCode(t, "release after checkout", err, CodeBadRequest)
		if c, _ := f.s.Cart(f.ctx, f.room, "u1", t0); len(c) != 1 || c[0].Qty != 2 {
			t.Fatalf("cart = %+v", c)
		}
	})

	t.Run("expiry", func(t *testing.T) {
		f := newFixture(t, newStore(t))
		s := f.sale(saleP, t0)
		r := f.reserve("u1", s.ID, "", 2, t0)
		f.reserve("u2", s.ID, "", 1, t0.Add(time.Minute))
		res, err := f.s.Sweep(f.ctx, t0.Add(2*time.Minute-time.Millisecond))
		if err != nil || len(res.Expired) != 0 {
			t.Fatalf("early Sweep = %+v, %v", res, err)
		}
		if c, _ := f.s.Cart(f.ctx, f.room, "u1", t0.Add(2*time.Minute)); len(c) != 0 {
			t.Fatalf("a hold at its expiry is still in the cart: %+v", c)
		}
		res, err = f.s.Sweep(f.ctx, t0.Add(2*time.Minute))
		if err != nil || len(res.Expired) != 1 || res.Expired[0].Reservation.ID != r.Reservation.ID || res.Expired[0].Remaining != 4 ||
			res.Expired[0].Room != f.room || res.Expired[0].Reservation.User != "u1" {
			t.Fatalf("Sweep = %+v, %v", res, err)
		}
		if res, _ := f.s.Sweep(f.ctx, t0.Add(2*time.Minute)); len(res.Expired) != 0 {
			t.Fatalf("second Sweep expired again: %+v", res)
		}
		if got := f.getSale(s.ID, t0.Add(2*time.Minute)); got.Remaining != 4 || got.Held != 1 {
			t.Fatalf("sale = %+v", got)
		}
		_, err = f.s.Checkout(f.ctx, f.room, "u1", "pay", t0.Add(2*time.Minute))
		wantCode(t, "checkout after expiry", err, CodeExpired)
		// An expired hold is forgotten with its key: release finds
		// nothing, the key reserves afresh.
		_, err = f.s.Release(f.ctx, f.room, "u1", r.Reservation.ID, t0.Add(3*time.Minute))
		wantCode(t, "Release after expiry", err, CodeNotFound)
		again, err := f.s.Reserve(f.ctx, f.room, ReserveParams{User: "u1", SaleID: s.ID, Qty: 2, Key: r.Reservation.Key}, t0.Add(3*time.Minute))
		if err != nil || again.Replayed || again.Reservation.ID == r.Reservation.ID || again.Reservation.Status != StatusHeld {
			t.Fatalf("retry after expiry = %+v, %v; want a new hold", again, err)
		}
		if _, err := f.s.Release(f.ctx, f.room, "u1", again.Reservation.ID, t0.Add(3*time.Minute)); err != nil {
			t.Fatal(err)
		}
		// Much later, an empty cart is just empty.
		_, err = f.s.Checkout(f.ctx, f.room, "u1", "pay2", t0.Add(time.Hour))
		wantCode(t, "checkout of an empty cart", err, CodeBadRequest)
		// An unexpired-but-due hold is not bought.
		f.reserve("u3", s.ID, "", 1, t0.Add(5*time.Minute))
		_, err = f.s.Checkout(f.ctx, f.room, "u3", "pay", t0.Add(7*time.Minute))
		wantCode(t, "checkout at expiry, before the sweep", err, CodeExpired)
	})

	t.Run("checkout", func(t *testing.T) {
		f := newFixture(t, newStore(t))
		f.put(Product{SKU: "cap", Title: "Cap", PriceCents: 900, Currency: "USD", Stock: 3})
		f.put(Product{SKU: "mug", Title: "Mug", PriceCents: 700, Currency: "EUR", Stock: 3})
		s := f.sale(saleP, t0)
		a := f.reserve("u1", s.ID, "", 2, t0)
		b := f.reserve("u1", "", "cap", 2, t0)
		cart, err := f.s.Cart(f.ctx, f.room, "u1", t0)
		if err != nil || len(cart) != 2 {
			t.Fatalf("Cart = %+v, %v", cart, err)
		}
		o := f.checkout("u1", t0.Add(time.Second))
		if o.TotalCents != 2*1000+2*900 || o.Currency != "USD" || len(o.Items) != 2 || o.User != "u1" || o.Room != f.room || !o.CreatedAt.Equal(t0.Add(time.Second)) {
			t.Fatalf("order = %+v", o)
		}
		ids := map[string]bool{o.Items[0].ReservationID: true, o.Items[1].ReservationID: true}
		if !ids[a.Reservation.ID] || !ids[b.Reservation.ID] {
			t.Fatalf("order items %+v miss a reservation", o.Items)
		}
		if got := f.getSale(s.ID, t0); got.Sold != 2 || got.Held != 0 || got.Remaining != 3 {
			t.Fatalf("sale after checkout = %+v", got)
		}
		if c, _ := f.s.Cart(f.ctx, f.room, "u1", t0); len(c) != 0 {
			t.Fatalf("cart after checkout = %+v", c)
		}
		// The per-user limit counts what was bought.
		_, err = f.s.Reserve(f.ctx, f.room, ReserveParams{User: "u1", SaleID: s.ID, Qty: 1, Key: "more"}, t0)
		wantCode(t, "limit after buying", err, CodeLimitReached)
		// A bought hold does not expire.
		if res, _ := f.s.Sweep(f.ctx, t0.Add(time.Hour)); len(res.Expired) != 0 {
			t.Fatalf("Sweep expired bought holds: %+v", res.Expired)
		}
		_, err = f.s.Checkout(f.ctx, f.room, "u9", "pay", t0)
		wantCode(t, "empty cart", err, CodeBadRequest)
		f.reserve("u2", "", "cap", 1, t0.Add(10*time.Minute))
		f.reserve("u2", "", "mug", 1, t0.Add(10*time.Minute))
		_, err = f.s.Checkout(f.ctx, f.room, "u2", "pay", t0.Add(10*time.Minute))
		wantCode(t, "mixed currencies", err, CodeBadRequest)
		got, err := f.s.Order(f.ctx, f.room, o.ID)
		if err != nil || got.ID != o.ID || got.TotalCents != o.TotalCents {
			t.Fatalf("Order = %+v, %v", got, err)
		}
		_, err = f.s.Order(f.ctx, f.room, "o_00")
		wantCode(t, "unknown order", err, CodeNotFound)
	})

	t.Run("sale end and settle", func(t *testing.T) {
		f := newFixture(t, newStore(t))
		s := f.sale(saleP, t0) // 5 of 10, open for 10 minutes
		f.reserve("u1", s.ID, "", 2, t0)
		late := f.reserve("u2", s.ID, "", 1, t0.Add(9*time.Minute))
		f.checkout("u1", t0.Add(time.Minute))
		end := t0.Add(10 * time.Minute)
		res, err := f.s.Sweep(f.ctx, end)
		if err != nil || len(res.Ended) != 1 || res.Ended[0].Sale.ID != s.ID || res.Ended[0].Sale.Sold != 2 || len(res.Settled) != 0 {
			t.Fatalf("Sweep at the end = %+v, %v; want ended, not settled (1 held)", res, err)
		}
		if res, _ := f.s.Sweep(f.ctx, end); len(res.Ended) != 0 {
			t.Fatalf("ended reported twice: %+v", res)
		}
		if got := f.product("tee").Stock; got != 5 {
			t.Fatalf("stock before settling = %d, want 5", got)
		}
		// A hold taken while open may still be bought after the end.
		f.reserve("u2", "", "tee", 1, end)
		if _, err := f.s.Release(f.ctx, f.room, "u2", late.Reservation.ID, end); err != nil {
			t.Fatal(err)
		}
		res, err = f.s.Sweep(f.ctx, end.Add(time.Second))
		if err != nil || len(res.Settled) != 1 || res.Settled[0].Sale.Remaining != 3 || !res.Settled[0].Sale.Settled || res.Settled[0].Room != f.room {
			t.Fatalf("Sweep after the last hold = %+v, %v; want settled with 3 remaining", res, err)
		}
		if got := f.product("tee").Stock; got != 5-1+3 {
			t.Fatalf("stock after settling = %d, want 7", got)
		}
		if res, _ := f.s.Sweep(f.ctx, end.Add(time.Hour)); len(res.Settled) != 0 {
			t.Fatalf("settled twice: %+v", res)
		}
		got := f.getSale(s.ID, end.Add(time.Hour))
		if got.State != SaleEnded || !got.Settled || got.Sold != 2 {
			t.Fatalf("sale = %+v", got)
		}
		// A new sale of the product may start now; Unsettled lists only it.
		next := f.sale(SaleParams{SKU: "tee", PriceCents: 1, Quantity: 7, DurationS: 60}, end.Add(time.Hour))
		open, err := f.s.Unsettled(f.ctx, f.room, end.Add(time.Hour))
		if err != nil || len(open) != 1 || open[0].ID != next.ID || open[0].State != SaleOpen {
			t.Fatalf("Unsettled = %+v, %v; want only %s, open", open, err, next.ID)
		}
		if all, _ := f.s.Sales(f.ctx, f.room, end.Add(time.Hour)); len(all) != 2 {
			t.Fatalf("Sales = %d, want both", len(all))
		}
	})

	t.Run("stop sale", func(t *testing.T) {
		f := newFixture(t, newStore(t))
		s := f.sale(saleP, t0)
		r := f.reserve("u1", s.ID, "", 1, t0)
		stopped, ended, err := f.s.StopSale(f.ctx, f.room, s.ID, t0.Add(time.Minute))
		if err != nil || !ended || stopped.State != SaleEnded || !stopped.EndsAt.Equal(t0.Add(time.Minute)) {
			t.Fatalf("StopSale = %+v, %v, %v", stopped, ended, err)
		}
		if _, ended, _ := f.s.StopSale(f.ctx, f.room, s.ID, t0.Add(time.Minute)); ended {
			t.Fatal("second StopSale ended it again")
		}
		_, _, err = f.s.StopSale(f.ctx, f.room, "s_00", t0)
		wantCode(t, "stop unknown", err, CodeNotFound)
		_, err = f.s.Reserve(f.ctx, f.room, ReserveParams{User: "u2", SaleID: s.ID, Qty: 1, Key: "x"}, t0.Add(time.Minute))
		wantCode(t, "reserve after stop", err, CodeSaleNotActive)
		wantCode(t, "delete while not settled", f.s.DeleteProduct(f.ctx, f.room, "tee"), CodeBadRequest)
		res, _ := f.s.Sweep(f.ctx, t0.Add(time.Minute))
		if len(res.Ended) != 0 {
			t.Fatalf("a stopped sale is reported ended again by the sweep: %+v", res.Ended)
		}
		f.s.Release(f.ctx, f.room, "u1", r.Reservation.ID, t0.Add(time.Minute))
		if res, _ := f.s.Sweep(f.ctx, t0.Add(time.Minute)); len(res.Settled) != 1 {
			t.Fatalf("not settled after the last hold: %+v", res)
		}
		if got := f.product("tee").Stock; got != 10 {
			t.Fatalf("stock after a stopped sale = %d, want 10", got)
		}
		// A scheduled sale can be stopped before it opens.
		p := saleP
		p.StartsInS = 60
		s2 := f.sale(p, t0.Add(2*time.Minute))
		stopped, ended, err = f.s.StopSale(f.ctx, f.room, s2.ID, t0.Add(2*time.Minute))
		if err != nil || !ended || stopped.StartsAt.After(stopped.EndsAt) {
			t.Fatalf("stop scheduled = %+v, %v, %v", stopped, ended, err)
		}
		if err := f.s.DeleteProduct(f.ctx, f.room, "tee"); err == nil {
			t.Fatal("deleted a product whose stopped sale is not settled yet")
		}
		f.s.Sweep(f.ctx, t0.Add(2*time.Minute))
		if err := f.s.DeleteProduct(f.ctx, f.room, "tee"); err != nil {
			t.Fatalf("delete after settle: %v", err)
		}
	})

	t.Run("orders paging", func(t *testing.T) {
		f := newFixture(t, newStore(t))
		page, err := f.s.Orders(f.ctx, f.room, "", 10)
		if err != nil || len(page.Orders) != 0 || page.Next != "" {
			t.Fatalf("no orders: %+v, %v", page, err)
		}
		var want []string
		for i := range 5 {
			at := t0.Add(time.Duration(i) * time.Second)
			f.reserve("u1", "", "tee", 1, at)
			want = append([]string{f.checkout("u1", at).ID}, want...) // newest first
		}
		var got []string
		cursor := ""
		for pages := 0; ; pages++ {
			page, err := f.s.Orders(f.ctx, f.room, cursor, 2)
			if err != nil || pages > 5 {
				t.Fatalf("Orders: %v (pages %d)", err, pages)
			}
			for _, o := range page.Orders {
				got = append(got, o.ID)
			}
			if page.Next == "" {
				break
			}
			cursor = page.Next
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("paged orders = %v, want %v", got, want)
		}
	})

	t.Run("outbox", func(t *testing.T) {
		f := newFixture(t, newStore(t))
		f.reserve("u1", "", "tee", 1, t0)
		o := f.checkout("u1", t0)
		ds, err := f.s.ClaimDeliveries(f.ctx, t0, time.Minute, 10)
		if err != nil || len(ds) != 1 || ds[0].OrderID != o.ID || ds[0].Room != f.room || ds[0].Attempt != 1 {
			t.Fatalf("Claim = %+v, %v", ds, err)
		}
		var body Order
		if err := json.Unmarshal(ds[0].Order, &body); err != nil || body.ID != o.ID || body.Key != o.Key {
			t.Fatalf("delivery body = %s (%v)", ds[0].Order, err)
		}
		if ds, _ := f.s.ClaimDeliveries(f.ctx, t0.Add(59*time.Second), time.Minute, 10); len(ds) != 0 {
			t.Fatalf("claimed again inside the lease: %+v", ds)
		}
		ds, _ = f.s.ClaimDeliveries(f.ctx, t0.Add(time.Minute), time.Minute, 10)
		if len(ds) != 1 || ds[0].Attempt != 2 {
			t.Fatalf("after the lease: %+v, want attempt 2", ds)
		}
		if err := f.s.RetryDelivery(f.ctx, ds[0], t0.Add(5*time.Minute)); err != nil {
			t.Fatal(err)
		}
		if ds, _ := f.s.ClaimDeliveries(f.ctx, t0.Add(4*time.Minute), time.Minute, 10); len(ds) != 0 {
			t.Fatalf("claimed before its retry time: %+v", ds)
		}
		ds, _ = f.s.ClaimDeliveries(f.ctx, t0.Add(5*time.Minute), time.Minute, 10)
		if len(ds) != 1 || ds[0].Attempt != 3 {
			t.Fatalf("at retry time: %+v", ds)
		}
		if err := f.s.CompleteDelivery(f.ctx, ds[0]); err != nil {
			t.Fatal(err)
		}
		// A retry recorded after completion does not bring it back.
		f.s.RetryDelivery(f.ctx, ds[0], t0)
		if ds, _ := f.s.ClaimDeliveries(f.ctx, t0.Add(time.Hour), time.Minute, 10); len(ds) != 0 {
			t.Fatalf("completed delivery claimed again: %+v", ds)
		}
	})

	t.Run("release races expiry", func(t *testing.T) {
		for i := range 20 {
			f := newFixture(t, newStore(t))
			s := f.sale(saleP, t0)
			r := f.reserve("u1", s.ID, "", 2, t0)
			at := t0.Add(2 * time.Minute)
			done := make(chan ReleaseResult)
			go func() {
				rel, _ := f.s.Release(f.ctx, f.room, "u1", r.Reservation.ID, at)
				done <- rel
			}()
			sw, err := f.s.Sweep(f.ctx, at)
			rel := <-done
			if err != nil {
				t.Fatal(err)
			}
			if n := len(sw.Expired); (n == 1) == rel.Released {
				t.Fatalf("round %d: expired %d and released %v; want exactly one of them", i, n, rel.Released)
			}
			if got := f.getSale(s.ID, at); got.Remaining != 5 {
				t.Fatalf("round %d: remaining = %d, want 5", i, got.Remaining)
			}
		}
	})
}

// TestStoreConformanceCaps holds both stores to the same per-buyer caps:
// holds, units held, units of one product at list price, and the
// idempotency keys a buyer keeps.
func TestStoreConformanceCaps(t *testing.T) {
	cfg := testConfig()
	cfg.MaxHolds, cfg.MaxHeldUnits, cfg.ListPriceLimit = 3, 5, 2
	cfg.MaxKeys, cfg.KeyRetention = 4, time.Hour
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			t.Run("holds", func(t *testing.T) {
				f := newFixture(t, st.open(t, cfg))
				f.put(Product{SKU: "tee", Title: "T-shirt", PriceCents: 2500, Currency: "USD", Stock: 20})
				f.put(Product{SKU: "cap", Title: "Cap", PriceCents: 900, Currency: "USD", Stock: 10})
				s := f.sale(SaleParams{SKU: "tee", PriceCents: 1000, Quantity: 5, DurationS: 600}, t0)
				refused := func(what string, p ReserveParams, at time.Time) {
					t.Helper()
					p.Key = f.key()
					var before Product
					if p.SKU != "" {
						before = f.product(p.SKU)
					}
					saleBefore := f.getSale(s.ID, at)
					_, err := f.s.Reserve(f.ctx, f.room, p, at)
					wantCode(t, what, err, CodeLimitReached)
					if e := (*Error)(nil); !errors.As(err, &e) || e.Message == "" {
						t.Fatalf("%s: error %v has no message", what, err)
					}
					if p.SKU != "" && f.product(p.SKU).Stock != before.Stock {
						t.Fatalf("%s: a refused hold moved the stock", what)
					}
					if got := f.getSale(s.ID, at); got.Remaining != saleBefore.Remaining {
						t.Fatalf("%s: a refused hold moved the sale", what)
					}
				}
				a := f.reserve("u1", "", "tee", 2, t0)
				refused("list price over list_price_limit", ReserveParams{User: "u1", SKU: "tee", Qty: 1}, t0)
				f.reserve("u1", "", "cap", 1, t0) // another product has its own
				refused("units over max_held_units", ReserveParams{User: "u1", SaleID: s.ID, Qty: 3}, t0)
				f.reserve("u1", s.ID, "", 2, t0) // 3 holds, 5 units
				refused("holds over max_holds", ReserveParams{User: "u1", SKU: "cap", Qty: 1}, t0)
				f.reserve("u2", "", "tee", 2, t0) // another buyer is not affected
				// Releasing one frees its place.
				if _, err := f.s.Release(f.ctx, f.room, "u1", a.Reservation.ID, t0); err != nil {
					t.Fatal(err)
				}
				f.reserve("u1", "", "tee", 1, t0)
				refused("holds over max_holds again", ReserveParams{User: "u1", SKU: "tee", Qty: 1}, t0)
				// A hold past its expiry does not count, swept or not.
				later := t0.Add(cfg.Hold + time.Second)
				f.reserve("u1", "", "tee", 2, later)
				// Checked out is not held.
				f.checkout("u1", later)
				f.reserve("u1", "", "tee", 2, later)
			})
			t.Run("keys", func(t *testing.T) {
				f := newFixture(t, st.open(t, cfg))
				// Six checkouts of one item each: two keys apiece (the
				// checkout's and the cart.add's); max_keys 4 keeps the last two.
				var adds []ReserveParams
				var orders []Order
				for i := range 6 {
					at := t0.Add(time.Duration(i) * time.Second)
					p := ReserveParams{User: "u1", SKU: "tee", Qty: 1, Key: fmt.Sprintf("add-%d", i)}
					if _, err := f.s.Reserve(f.ctx, f.room, p, at); err != nil {
						t.Fatal(err)
					}
					c, err := f.s.Checkout(f.ctx, f.room, "u1", fmt.Sprintf("pay-%d", i), at)
					if err != nil {
						t.Fatal(err)
					}
					adds, orders = append(adds, p), append(orders, c.Order)
				}
				at := t0.Add(10 * time.Second)
				for i := range 6 {
					c, err := f.s.Checkout(f.ctx, f.room, "u1", fmt.Sprintf("pay-%d", i), at)
					if kept := i >= 4; kept {
						if err != nil || !c.Replayed || c.Order.ID != orders[i].ID {
							t.Fatalf("checkout key %d (kept) = %+v, %v; want order %s replayed", i, c, err, orders[i].ID)
						}
					} else {
						wantCode(t, fmt.Sprintf("checkout key %d (evicted), empty cart", i), err, CodeBadRequest)
					}
				}
				r, err := f.s.Reserve(f.ctx, f.room, adds[5], at)
				if err != nil || !r.Replayed || r.Reservation.Status != StatusCheckedOut || r.Reservation.OrderID != orders[5].ID {
					t.Fatalf("cart.add key 5 (kept) = %+v, %v; want the checked-out reservation", r, err)
				}
				r, err = f.s.Reserve(f.ctx, f.room, adds[0], at)
				if err != nil || r.Replayed || r.Reservation.Status != StatusHeld {
					t.Fatalf("cart.add key 0 (evicted) = %+v, %v; want a new hold", r, err)
				}
				if _, err := f.s.Release(f.ctx, f.room, "u1", r.Reservation.ID, at); err != nil {
					t.Fatal(err)
				}
				// Past key_retention nothing is answered from the keys.
				late := t0.Add(cfg.KeyRetention + time.Minute)
				if _, err := f.s.Checkout(f.ctx, f.room, "u1", "pay-5", late); ErrorCode(err) != CodeBadRequest {
					t.Fatalf("checkout key 5 past key_retention: %v, want bad_request (empty cart, not a replay)", err)
				}
				r, err = f.s.Reserve(f.ctx, f.room, adds[5], late)
				if err != nil || r.Replayed || r.Reservation.Status != StatusHeld {
					t.Fatalf("cart.add key 5 past key_retention = %+v, %v; want a new hold", r, err)
				}
				// The stock still adds up: 6 sold, 1 held.
				if got := f.product("tee").Stock; got != 10-6-1 {
					t.Fatalf("stock = %d, want 3", got)
				}
			})
		})
	}
}
