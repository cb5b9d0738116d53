package cart

import (
	"testing"
	"time"
)

// An auction's winner owes the amount like a buyer at checkout: with a
// payment window the order awaits payment, and a lapse returns the unit to
// the product's stock (sold + held + remaining stays true); a payment
// before the window wins over the lapse.
func TestAuctionOrderLife(t *testing.T) {
	cfg := testConfig()
	cfg.PayWithin = 10 * time.Minute
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			s := st.open(t, cfg)
			win := func(f *aucFixture, user string) Order {
				t.Helper()
				a := f.start(AuctionParams{StartCents: 1000, DurationS: 1})
				f.bid(a.ID, user, 1000, false)
				time.Sleep(time.Until(a.EndsAt))
				c := f.closeWhenDue(a.ID)
				if !c.Closed || c.Order == nil {
					t.Fatalf("close: %+v", c)
				}
				return *c.Order
			}

			f := newAucFixture(t, s, 3)
			o := win(f, "ann")
			if o.State != OrderAwaitingPayment || o.PayBy == nil {
				t.Fatalf("winner's order = %+v; want awaiting_payment with pay_by", o)
			}
			if got := f.stock(); got != 2 {
				t.Fatalf("stock after the win: got %d, want 2", got)
			}
			lapse := func(at time.Time) LapseResult {
				t.Helper()
				r, err := s.Lapse(f.ctx, at, 100)
				if err != nil {
					t.Fatal(err)
				}
				return r
			}
			if r := lapse(time.Now()); len(r.Lapsed) != 0 {
				t.Fatalf("lapsed before the window ended: %+v", r)
			}
			r := lapse(o.PayBy.Add(time.Second))
			if len(r.Lapsed) != 1 || r.Lapsed[0].Order.ID != o.ID || r.Lapsed[0].Order.State != OrderCancelled {
				t.Fatalf("lapse after the window: %+v; want %s cancelled", r, o.ID)
			}
			if got := f.stock(); got != 3 {
				t.Fatalf("stock after the lapse: got %d, want 3 (the unit came back)", got)
			}
			if r := lapse(o.PayBy.Add(time.Minute)); len(r.Lapsed) != 0 {
				t.Fatalf("second lapse: %+v; want nothing", r)
			}

			// Paid in time: the lapse finds nothing.
			o2 := win(f, "bob")
			ch, err := s.TransitionOrder(f.ctx, f.room, o2.ID, Transition{Action: ActPay}, time.Now())
			if err != nil || !ch.Changed || ch.Order.State != OrderPaid {
				t.Fatalf("pay: %v %+v", err, ch)
			}
			if r := lapse(o2.PayBy.Add(time.Second)); len(r.Lapsed) != 0 {
				t.Fatalf("lapse of a paid order: %+v", r)
			}
			if got := f.stock(); got != 2 {
				t.Fatalf("stock after a paid win: got %d, want 2", got)
			}
		})
	}
}
