package cart

import (
	"context"
	"errors"
	"testing"
	"time"
)

// An order's total is bounded well below 2^53 cents: a checkout past the
// bound is refused with a clear error and changes nothing; one at the bound
// goes through.
func TestOrderTotalBound(t *testing.T) {
	if MaxOrderTotalCents*900 > 1<<53 {
		t.Fatalf("MaxOrderTotalCents %d is not well below 2^53", int64(MaxOrderTotalCents))
	}
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			ctx := context.Background()
			cfg := testConfig()
			cfg.MaxHeldUnits, cfg.ListPriceLimit = 100*MaxQtyPerAdd, 100*MaxQtyPerAdd
			s := st.open(t, cfg)
			now := time.Now()
			// Two adds of 1000 units at 5e9 cents reach exactly the bound; a
			// third unit passes it.
			if _, err := s.PutProduct(ctx, "r1", Product{SKU: "gold", Title: "Gold bar", PriceCents: 5_000_000_000, Currency: "USD", Stock: 3000}); err != nil {
				t.Fatal(err)
			}
			for _, k := range []string{"a", "b"} {
				if _, err := s.Reserve(ctx, "r1", ReserveParams{User: "ann", SKU: "gold", Qty: MaxQtyPerAdd, Key: k}, now); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := s.Reserve(ctx, "r1", ReserveParams{User: "ann", SKU: "gold", Qty: 1, Key: "c"}, now); err != nil {
				t.Fatal(err)
			}
			_, err := s.Checkout(ctx, "r1", "ann", "pay", now)
			var ce *Error
			if !errors.As(err, &ce) || ce.Code != CodeBadRequest || ce.Field != "total_cents" {
				t.Fatalf("checkout past the bound = %v, want bad_request on total_cents", err)
			}
			// Nothing changed: the cart is held, the stock is where it was, no
			// order and no delivery.
			cart, err := s.Cart(ctx, "r1", "ann", now)
			if err != nil || len(cart) != 3 {
				t.Fatalf("cart after refusal = %d items, %v", len(cart), err)
			}
			if p, _ := s.Product(ctx, "r1", "gold"); p.Stock != 3000-2*MaxQtyPerAdd-1 {
				t.Errorf("stock = %d after a refused checkout", p.Stock)
			}
			if page, _ := s.Orders(ctx, "r1", "", 10); len(page.Orders) != 0 {
				t.Errorf("orders after refusal: %+v", page.Orders)
			}
			if ds, _ := s.ClaimDeliveries(ctx, now.Add(time.Hour), time.Minute, 10); len(ds) != 0 {
				t.Errorf("deliveries after refusal: %d", len(ds))
			}
			// Dropping the extra unit brings it to exactly the bound.
			for _, r := range cart {
				if r.Qty == 1 {
					if _, err := s.Release(ctx, "r1", "ann", r.ID, now); err != nil {
						t.Fatal(err)
					}
				}
			}
			res, err := s.Checkout(ctx, "r1", "ann", "pay", now)
			if err != nil || res.Order.TotalCents != MaxOrderTotalCents {
				t.Fatalf("checkout at the bound = %+v, %v", res.Order.TotalCents, err)
			}
		})
	}
}
