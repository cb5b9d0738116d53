package cart

import (
	"context"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"liveroom/room"
	"liveroom/room/roomtest"
)

// TestWSOrderLife: order.confirmed carries the state and a signed pay_url;
// the buyer cancels with order.cancel; a lapse and a payment reach every
// tab of the buyer as order.updated; units back on a running sale move
// sale.stock up.
func TestWSOrderLife(t *testing.T) {
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			cfg := fastConfig()
			cfg.PayWithin = time.Hour
			cfg.CheckoutURL = "https://pay.example/checkout/{order_id}?shop=7"
			cfg.PaySecret = "pay-secret-0123456789"
			e := newWSEnv(t, st.open(t, cfg), cfg)
			host := e.join(t, "host", room.RoleHost)
			tab1 := e.join(t, "ann", room.RoleViewer)
			tab2 := e.join(t, "ann", room.RoleViewer)
			bob := e.join(t, "bob", room.RoleViewer)

			host.Send(t, map[string]any{"type": "sale.start", "sku": "tee", "price_cents": 1000, "quantity": 3, "duration_s": 3600, "pay_within_s": 60})
			sale := roomtest.Field[Sale](t, bob.Expect(t, "sale.started"), "sale")
			if sale.PayWithinS == nil || *sale.PayWithinS != 60 {
				t.Fatalf("sale.started = %+v; want pay_within_s 60", sale)
			}

			tab1.Send(t, map[string]any{"type": "cart.add", "sale_id": sale.ID, "qty": 2, "key": "a1", "ref": "add"})
			tab1.Expect(t, "cart")
			tab1.Send(t, map[string]any{"type": "cart.checkout", "key": "c1", "ref": "co"})
			o := roomtest.Field[orderView](t, tab1.Next(t, byRef("co")), "order")
			if o.State != OrderAwaitingPayment || o.PayBy == nil || o.PayBy.Sub(o.CreatedAt) != time.Minute {
				t.Fatalf("order.confirmed = %+v; want awaiting payment for the sale's minute", o)
			}
			u, err := url.Parse(o.PayURL)
			if err != nil || u.Host != "pay.example" || u.Path != "/checkout/"+o.ID || u.Query().Get("shop") != "7" {
				t.Fatalf("pay_url = %q", o.PayURL)
			}
			q := u.Query()
			exp, _ := strconv.ParseInt(q.Get("lr_exp"), 10, 64)
			want := PaySignature(cfg.PaySecret, q.Get("lr_room"), o.ID, o.TotalCents, q.Get("lr_currency"), exp)
			if q.Get("lr_sig") != want || q.Get("lr_room") != "demo" || q.Get("lr_total") != "2000" || exp != o.PayBy.Unix() {
				t.Fatalf("pay_url %q does not verify (want lr_sig %s)", o.PayURL, want)
			}
			if roomtest.Field[orderView](t, tab2.Expect(t, "order.confirmed"), "order").ID != o.ID {
				t.Fatal("the other tab did not get order.confirmed")
			}

			// Someone else's order is not found; the buyer's own cancels.
			bob.Send(t, map[string]any{"type": "order.cancel", "order_id": o.ID, "ref": "x"})
			wantErr(t, bob.Next(t, byRef("x")), string(CodeNotFound))
			tab1.Send(t, map[string]any{"type": "order.cancel", "order_id": o.ID, "ref": "cancel"})
			got := roomtest.Field[orderView](t, tab1.Next(t, byRef("cancel")), "order")
			if got.State != OrderCancelled || got.CancelReason != CancelByBuyer || got.PayURL != "" {
				t.Fatalf("order.updated = %+v; want cancelled by the buyer", got)
			}
			if got := roomtest.Field[orderView](t, tab2.Expect(t, "order.updated"), "order"); got.State != OrderCancelled {
				t.Fatalf("other tab: order.updated = %+v", got)
			}
			e.clock.Add(1000) // sale.stock is throttled on the Service's clock
			bob.Next(t, func(ev room.Event) bool {
				return ev.Type == "sale.stock" && roomtest.Field[int](t, ev, "remaining") == 3
			})

			// Bob buys and never pays: past the window the order lapses.
			bob.Send(t, map[string]any{"type": "cart.add", "sale_id": sale.ID, "qty": 1, "key": "b1", "ref": "badd"})
			bob.Next(t, byRef("badd"))
			bob.Send(t, map[string]any{"type": "cart.checkout", "key": "b2", "ref": "bco"})
			bo := roomtest.Field[orderView](t, bob.Next(t, byRef("bco")), "order")
			// A page loaded now gets the awaiting order in its welcome.
			bob2 := e.join(t, "bob", room.RoleViewer)
			if w := roomtest.Field[[]orderView](t, bob2.Welcome, "orders"); len(w) != 1 || w[0].ID != bo.ID || w[0].PayURL == "" {
				t.Fatalf("welcome orders = %+v; want bob's awaiting order with its pay_url", w)
			}
			e.clock.Add(int64(61 * time.Second / time.Millisecond))
			lapsed := roomtest.Field[orderView](t, bob.Expect(t, "order.updated"), "order")
			if lapsed.ID != bo.ID || lapsed.State != OrderCancelled || lapsed.CancelReason != CancelByLapse {
				t.Fatalf("order.updated = %+v; want bob's order lapsed", lapsed)
			}
			_, err = e.svc.TransitionOrder(context.Background(), "demo", bo.ID, Transition{Action: ActPay})
			wantCode(t, "pay after lapse", err, CodeOrderCancelled)
			if got := testutil.ToFloat64(e.svc.m.transitions.WithLabelValues("cancelled", "lapse")); got != 1 {
				t.Fatalf("liveroom_cart_order_transitions_total{cancelled,lapse} = %v, want 1", got)
			}

			// A payment reported by the merchant reaches the buyer.
			tab1.Send(t, map[string]any{"type": "cart.add", "sale_id": sale.ID, "qty": 1, "key": "a2", "ref": "add2"})
			tab1.Next(t, byRef("add2"))
			tab1.Send(t, map[string]any{"type": "cart.checkout", "key": "c2", "ref": "co2"})
			o2 := roomtest.Field[orderView](t, tab1.Next(t, byRef("co2")), "order")
			if _, err := e.svc.TransitionOrder(context.Background(), "demo", o2.ID, Transition{Action: ActPay}); err != nil {
				t.Fatal(err)
			}
			paid := roomtest.Field[orderView](t, tab2.Next(t, func(ev room.Event) bool {
				return ev.Type == "order.updated" && roomtest.Field[orderView](t, ev, "order").ID == o2.ID
			}), "order")
			if paid.State != OrderPaid || paid.PayURL != "" {
				t.Fatalf("order.updated = %+v; want paid", paid)
			}
		})
	}
}
