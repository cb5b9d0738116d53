package cart

import (
	"slices"
	"testing"
	"time"
)

// TestOrderConformance holds both stores to the same order life: states,
// idempotent transitions, lapse, units going back and one webhook delivery
// per transition.
func TestOrderConformance(t *testing.T) {
	cfg := testConfig()
	cfg.PayWithin = 10 * time.Minute
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			runOrderConformance(t, func(t *testing.T, cfg Config) Store { return st.open(t, cfg) }, cfg)
		})
	}
}

func (f *fixture) move(id string, tr Transition, now time.Time) OrderChange {
	f.t.Helper()
	c, err := f.s.TransitionOrder(f.ctx, f.room, id, tr, now)
	if err != nil {
		f.t.Fatalf("TransitionOrder(%s, %+v): %v", id, tr, err)
	}
	return c
}

var (
	pay      = Transition{Action: ActPay}
	fulfill  = Transition{Action: ActFulfill}
	merchant = Transition{Action: ActCancel, By: CancelByMerchant}
)

func runOrderConformance(t *testing.T, open func(t *testing.T, cfg Config) Store, cfg Config) {
	saleP := SaleParams{SKU: "tee", PriceCents: 1000, Quantity: 5, DurationS: 3600}

	t.Run("paid at once without a window", func(t *testing.T) {
		c := cfg
		c.PayWithin = 0
		f := newFixture(t, open(t, c))
		f.reserve("u1", "", "tee", 1, t0)
		o := f.checkout("u1", t0)
		if o.State != OrderPaid || o.PaidAt == nil || !o.PaidAt.Equal(t0) || o.PayBy != nil {
			t.Fatalf("order = %+v; want paid at %v with no pay_by", o, t0)
		}
		if ch := f.move(o.ID, pay, t0); ch.Changed || ch.Order.State != OrderPaid {
			t.Fatalf("paying a paid order = %+v; want it unchanged", ch)
		}
	})

	t.Run("paid then fulfilled, each once", func(t *testing.T) {
		f := newFixture(t, open(t, cfg))
		f.reserve("u1", "", "tee", 2, t0)
		o := f.checkout("u1", t0)
		if o.State != OrderAwaitingPayment || o.PayBy == nil || !o.PayBy.Equal(t0.Add(cfg.PayWithin)) {
			t.Fatalf("order = %+v; want awaiting_payment until %v", o, t0.Add(cfg.PayWithin))
		}
		if got, err := f.s.AwaitingOrders(f.ctx, f.room, "u1"); err != nil || len(got) != 1 || got[0].ID != o.ID {
			t.Fatalf("AwaitingOrders(u1) = %+v, %v; want %s", got, err, o.ID)
		}
		if got, _ := f.s.AwaitingOrders(f.ctx, f.room, "u2"); len(got) != 0 {
			t.Fatalf("AwaitingOrders(u2) = %+v; want none", got)
		}
		_, err := f.s.TransitionOrder(f.ctx, f.room, o.ID, fulfill, t0)
		wantCode(t, "fulfil before paid", err, CodeOrderNotPaid)
		at := t0.Add(time.Minute)
		if ch := f.move(o.ID, pay, at); !ch.Changed || ch.Order.State != OrderPaid || !ch.Order.PaidAt.Equal(at) {
			t.Fatalf("pay = %+v; want paid at %v", ch, at)
		}
		if ch := f.move(o.ID, pay, at.Add(time.Second)); ch.Changed || !ch.Order.PaidAt.Equal(at) {
			t.Fatalf("pay twice = %+v; want the first payment, unchanged", ch)
		}
		if got, _ := f.s.AwaitingOrders(f.ctx, f.room, "u1"); len(got) != 0 {
			t.Fatalf("AwaitingOrders after payment = %+v; want none", got)
		}
		if ch := f.move(o.ID, fulfill, at); !ch.Changed || ch.Order.State != OrderFulfilled {
			t.Fatalf("fulfil = %+v", ch)
		}
		_, err = f.s.TransitionOrder(f.ctx, f.room, o.ID, merchant, at)
		wantCode(t, "cancel a fulfilled order", err, CodeOrderFulfilled)
		if got, _ := f.s.Order(f.ctx, f.room, o.ID); got.State != OrderFulfilled {
			t.Fatalf("stored order state %q, want fulfilled", got.State)
		}
		if got := f.product("tee").Stock; got != 8 {
			t.Fatalf("stock = %d, want 8 (2 sold)", got)
		}
		// One delivery per event, each with its own id.
		ds, err := f.s.ClaimDeliveries(f.ctx, at.Add(time.Hour), time.Minute, 100)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, d := range ds {
			ids = append(ids, d.OrderID)
			if oid, _ := splitDelivery(d.OrderID); oid != o.ID || len(d.Order) == 0 {
				t.Fatalf("delivery %s carries %q", d.OrderID, d.Order)
			}
		}
		slices.Sort(ids)
		want := []string{o.ID, o.ID + ".fulfilled", o.ID + ".paid"}
		if !slices.Equal(ids, want) {
			t.Fatalf("deliveries = %v, want %v", ids, want)
		}
	})

	t.Run("lapse returns units to the running sale, once", func(t *testing.T) {
		f := newFixture(t, open(t, cfg))
		s := f.sale(saleP, t0)
		f.reserve("u1", s.ID, "", 2, t0)
		o := f.checkout("u1", t0)
		if got := f.getSale(s.ID, t0); got.Sold != 2 || got.Remaining != 3 {
			t.Fatalf("sale = %+v; want 2 sold (awaiting), 3 remaining", got)
		}
		if res, err := f.s.Lapse(f.ctx, t0.Add(cfg.PayWithin-time.Millisecond), 100); err != nil || len(res.Lapsed) != 0 {
			t.Fatalf("Lapse before the window ends = %+v, %v; want nothing", res, err)
		}
		due := t0.Add(cfg.PayWithin)
		res, err := f.s.Lapse(f.ctx, due, 100)
		if err != nil || len(res.Lapsed) != 1 {
			t.Fatalf("Lapse = %+v, %v; want one order", res, err)
		}
		c := res.Lapsed[0]
		if c.Order.State != OrderCancelled || c.Order.CancelReason != CancelByLapse || len(c.Returned) != 1 ||
			!c.Returned[0].ToSale || c.Returned[0].Remaining != 5 || c.Returned[0].Qty != 2 {
			t.Fatalf("lapsed = %+v; want cancelled by lapse, 2 back to the sale (5 remaining)", c)
		}
		if got := f.getSale(s.ID, due); got.Sold != 0 || got.Remaining != 5 {
			t.Fatalf("sale after lapse = %+v; want 0 sold, 5 remaining", got)
		}
		if res, _ := f.s.Lapse(f.ctx, due.Add(time.Hour), 100); len(res.Lapsed) != 0 {
			t.Fatalf("second Lapse = %+v; want nothing", res)
		}
		if got, _ := f.s.AwaitingOrders(f.ctx, f.room, "u1"); len(got) != 0 {
			t.Fatalf("AwaitingOrders after lapse = %+v; want none", got)
		}
		_, err = f.s.TransitionOrder(f.ctx, f.room, o.ID, pay, due)
		wantCode(t, "pay after lapse", err, CodeOrderCancelled)
		// The units sell again, up to the quantity.
		f.reserve("u2", s.ID, "", 5, due)
		f.checkout("u2", due)
		if got := f.getSale(s.ID, due); got.Sold != 5 || got.Remaining != 0 {
			t.Fatalf("sale = %+v; want 5 sold", got)
		}
	})

	t.Run("payment before the lapse wins", func(t *testing.T) {
		f := newFixture(t, open(t, cfg))
		s := f.sale(saleP, t0)
		f.reserve("u1", s.ID, "", 1, t0)
		o := f.checkout("u1", t0)
		f.move(o.ID, pay, t0.Add(cfg.PayWithin-time.Second))
		if res, _ := f.s.Lapse(f.ctx, t0.Add(cfg.PayWithin+time.Hour), 100); len(res.Lapsed) != 0 {
			t.Fatalf("Lapse of a paid order = %+v; want nothing", res)
		}
		if got := f.getSale(s.ID, t0); got.Sold != 1 {
			t.Fatalf("sale = %+v; want 1 sold", got)
		}
	})

	t.Run("buyer cancels before paying", func(t *testing.T) {
		f := newFixture(t, open(t, cfg))
		f.reserve("u1", "", "tee", 3, t0)
		o := f.checkout("u1", t0)
		_, err := f.s.TransitionOrder(f.ctx, f.room, o.ID, Transition{Action: ActCancel, By: CancelByBuyer, User: "u2"}, t0)
		wantCode(t, "another buyer cancels", err, CodeNotFound)
		mine := Transition{Action: ActCancel, By: CancelByBuyer, User: "u1"}
		c := f.move(o.ID, mine, t0)
		if !c.Changed || c.Order.CancelReason != CancelByBuyer || len(c.Returned) != 1 || c.Returned[0].ToSale || c.Returned[0].Remaining != 10 {
			t.Fatalf("cancel = %+v; want 3 units back to the product (10)", c)
		}
		if ch := f.move(o.ID, mine, t0); ch.Changed || ch.Order.State != OrderCancelled {
			t.Fatalf("cancel twice = %+v; want the cancelled order, unchanged", ch)
		}
		if got := f.product("tee").Stock; got != 10 {
			t.Fatalf("stock = %d, want 10", got)
		}
		f.reserve("u1", "", "tee", 1, t0)
		o2 := f.checkout("u1", t0)
		f.move(o2.ID, pay, t0)
		_, err = f.s.TransitionOrder(f.ctx, f.room, o2.ID, mine, t0)
		wantCode(t, "buyer cancels a paid order", err, CodeOrderPaid)
		if c := f.move(o2.ID, merchant, t0); !c.Changed || c.Order.CancelReason != CancelByMerchant {
			t.Fatalf("merchant cancel of a paid order = %+v", c)
		}
		if got := f.product("tee").Stock; got != 10 {
			t.Fatalf("stock = %d, want 10", got)
		}
	})

	t.Run("units of an ended sale go to the product", func(t *testing.T) {
		f := newFixture(t, open(t, cfg))
		p := saleP
		p.DurationS = 60
		s := f.sale(p, t0)
		f.reserve("u1", s.ID, "", 2, t0)
		o := f.checkout("u1", t0)
		end := t0.Add(2 * time.Minute)
		if _, err := f.s.Sweep(f.ctx, end); err != nil { // ends and settles: 3 back to the product
			t.Fatal(err)
		}
		if got := f.product("tee").Stock; got != 8 {
			t.Fatalf("stock after settle = %d, want 8", got)
		}
		c := f.move(o.ID, merchant, end)
		if len(c.Returned) != 1 || c.Returned[0].ToSale {
			t.Fatalf("cancel = %+v; want the units to the product", c)
		}
		if got := f.product("tee").Stock; got != 10 {
			t.Fatalf("stock = %d, want 10", got)
		}
		if got := f.getSale(s.ID, end); got.Sold != 0 {
			t.Fatalf("sale = %+v; want 0 sold", got)
		}
	})

	t.Run("a sale's own window", func(t *testing.T) {
		f := newFixture(t, open(t, cfg))
		zero, minute := 0, 60
		p := saleP
		p.PayWithinS = &zero
		s := f.sale(p, t0)
		if s.PayWithinS == nil || *s.PayWithinS != 0 {
			t.Fatalf("sale = %+v; want pay_within_s 0", s)
		}
		f.reserve("u1", s.ID, "", 1, t0)
		if o := f.checkout("u1", t0); o.State != OrderPaid {
			t.Fatalf("order of a pay_within_s 0 sale = %+v; want paid at once", o)
		}
		f.put(Product{SKU: "cap", Title: "Cap", PriceCents: 900, Currency: "USD", Stock: 5})
		p = SaleParams{SKU: "cap", PriceCents: 500, Quantity: 5, DurationS: 600, PayWithinS: &minute}
		s2 := f.sale(p, t0)
		if got := f.getSale(s2.ID, t0); got.PayWithinS == nil || *got.PayWithinS != 60 {
			t.Fatalf("Sale = %+v; want pay_within_s 60", got)
		}
		f.reserve("u2", s2.ID, "", 1, t0)
		if o := f.checkout("u2", t0); o.State != OrderAwaitingPayment || !o.PayBy.Equal(t0.Add(time.Minute)) {
			t.Fatalf("order = %+v; want awaiting until %v", o, t0.Add(time.Minute))
		}
	})

	t.Run("orders by state", func(t *testing.T) {
		f := newFixture(t, open(t, cfg))
		var ids []string
		for i, u := range []string{"a", "b", "c"} {
			at := t0.Add(time.Duration(i) * time.Second)
			f.reserve(u, "", "tee", 1, at)
			ids = append(ids, f.checkout(u, at).ID)
		}
		f.move(ids[1], pay, t0)
		page, err := f.s.OrdersIn(f.ctx, f.room, OrderAwaitingPayment, "", 1)
		if err != nil || len(page.Orders) != 1 || page.Orders[0].ID != ids[2] || page.Next == "" {
			t.Fatalf("awaiting page 1 = %+v, %v; want %s and more", page, err, ids[2])
		}
		page, err = f.s.OrdersIn(f.ctx, f.room, OrderAwaitingPayment, page.Next, 1)
		if err != nil || len(page.Orders) != 1 || page.Orders[0].ID != ids[0] {
			t.Fatalf("awaiting page 2 = %+v, %v; want %s", page, err, ids[0])
		}
		page, err = f.s.OrdersIn(f.ctx, f.room, OrderPaid, "", 10)
		if err != nil || len(page.Orders) != 1 || page.Orders[0].ID != ids[1] || page.Next != "" {
			t.Fatalf("paid = %+v, %v; want %s only", page, err, ids[1])
		}
	})
}
