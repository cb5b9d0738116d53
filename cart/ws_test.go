package cart

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"liveroom/room"
	"liveroom/room/roomtest"
)

// wsEnv is a hub on a loopback server with the cart attached and its
// Service running.
type wsEnv struct {
	*roomtest.Server
	svc   *Service
	store Store
	clock atomic.Int64 // unix ms; the Service's clock
}

func newWSEnv(t *testing.T, store Store, cfg Config) *wsEnv {
	t.Helper()
	e := &wsEnv{store: store}
	e.clock.Store(time.Now().UnixMilli())
	hc := room.DefaultHubConfig()
	hc.MaxConnsPerIP = 0
	hc.FrameBurst = 1000
	e.Server = roomtest.New(t, roomtest.Options{Hub: &hc, Setup: func(h *room.Hub, s *roomtest.Server) error {
		m, err := NewMetrics(s.Registry)
		if err != nil {
			return err
		}
		svc, err := NewService(store, cfg, ServiceOptions{Metrics: m, Log: quietLog, Now: func() time.Time { return time.UnixMilli(e.clock.Load()).UTC() }})
		if err != nil {
			return err
		}
		e.svc = svc
		AttachWS(h, svc, quietLog)
		return nil
	}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = e.svc.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	if _, err := store.PutProduct(context.Background(), "demo", Product{SKU: "tee", Title: "Tee", PriceCents: 2500, Currency: "USD", Stock: 50}); err != nil {
		t.Fatal(err)
	}
	return e
}

func fastConfig() Config {
	c := testConfig()
	c.SweepInterval = 20 * time.Millisecond
	c.StockInterval = 20 * time.Millisecond
	return c
}

func (e *wsEnv) join(t *testing.T, user string, role room.Role) *roomtest.Client {
	t.Helper()
	tok := ""
	if role != room.RoleGuest {
		tok = e.Token(t, user, role, "demo")
	}
	c := e.Dial(t, "demo", tok)
	t.Cleanup(c.Close)
	return c
}

func byRef(ref string) func(room.Event) bool {
	return func(e room.Event) bool { return e.Ref == ref }
}

func ofType(kind string) func(room.Event) bool {
	return func(e room.Event) bool { return e.Type == kind }
}

func wantErr(t *testing.T, ev room.Event, code string) {
	t.Helper()
	if ev.Type != "error" || roomtest.Field[string](t, ev, "code") != code {
		t.Fatalf("got %s, want error %s", ev.AppendJSON(nil), code)
	}
}

func TestWSFlow(t *testing.T) {
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			e := newWSEnv(t, st.open(t, fastConfig()), fastConfig())
			host := e.join(t, "host", room.RoleHost)
			tab1 := e.join(t, "ann", room.RoleViewer)
			tab2 := e.join(t, "ann", room.RoleViewer) // ann's phone
			bob := e.join(t, "bob", room.RoleViewer)
			guest := e.join(t, "", room.RoleGuest)

			// Pin: everyone gets the card at once; a late joiner in its welcome.
			host.Send(t, map[string]any{"type": "product.pin", "sku": "tee", "ref": "p1"})
			for _, c := range []*roomtest.Client{host, tab1, bob, guest} {
				p := roomtest.Field[Product](t, c.Expect(t, "product.pinned"), "product")
				if p.SKU != "tee" || p.Title != "Tee" || p.PriceCents != 2500 || p.Stock != 50 {
					t.Fatalf("pinned card = %+v", p)
				}
			}
			bob.Send(t, map[string]any{"type": "product.pin", "sku": "tee", "ref": "p2"})
			wantErr(t, bob.Next(t, byRef("p2")), room.CodeForbidden)
			host.Send(t, map[string]any{"type": "product.pin", "sku": "nope", "ref": "p3"})
			wantErr(t, host.Next(t, byRef("p3")), room.CodeNotFound)

			// Sale: sale.started with server times; welcome carries it.
			host.Send(t, map[string]any{"type": "sale.start", "sku": "tee", "price_cents": 1000, "quantity": 5, "per_user_limit": 2, "starts_in_s": 0, "duration_s": 600, "ref": "s1"})
			sale := roomtest.Field[Sale](t, bob.Expect(t, "sale.started"), "sale")
			if sale.Quantity != 5 || sale.Remaining != 5 || sale.PerUserLimit != 2 || sale.PriceCents != 1000 || sale.EndsAt.Sub(sale.StartsAt) != 10*time.Minute {
				t.Fatalf("sale.started = %+v", sale)
			}
			host.Send(t, map[string]any{"type": "sale.start", "sku": "tee", "price_cents": 1, "quantity": 0, "duration_s": 60, "ref": "s2"})
			wantErr(t, host.Next(t, byRef("s2")), room.CodeBadRequest)
			late := e.join(t, "cy", room.RoleViewer)
			var w struct {
				Room struct {
					Pinned *Product `json:"pinned"`
					Sale   *Sale    `json:"sale"`
				} `json:"room"`
				Cart []cartItem `json:"cart"`
			}
			if err := json.Unmarshal(late.Welcome.Body, &w); err != nil || w.Room.Pinned == nil || w.Room.Pinned.SKU != "tee" || w.Room.Sale == nil || w.Room.Sale.ID != sale.ID || w.Cart == nil {
				t.Fatalf("late welcome = %s (%v)", late.Welcome.Body, err)
			}

			// cart.add: guests may not; ann's tabs both get the cart, the
			// requesting one with its ref; stock goes out throttled.
			guest.Send(t, map[string]any{"type": "cart.add", "sale_id": sale.ID, "qty": 1, "key": "g", "ref": "g1"})
			wantErr(t, guest.Next(t, byRef("g1")), room.CodeUnauthorized)
			tab1.Send(t, map[string]any{"type": "cart.add", "sale_id": sale.ID, "qty": 2, "key": "add-1", "ref": "a1"})
			ev := tab1.Next(t, byRef("a1"))
			items := roomtest.Field[[]cartItem](t, ev, "items")
			if ev.Type != "cart" || len(items) != 1 || items[0].Qty != 2 || items[0].SaleID != sale.ID || items[0].Key != "add-1" || items[0].PriceCents != 1000 {
				t.Fatalf("cart reply = %s", ev.AppendJSON(nil))
			}
			if items2 := roomtest.Field[[]cartItem](t, tab2.Expect(t, "cart"), "items"); len(items2) != 1 || items2[0].ReservationID != items[0].ReservationID {
				t.Fatalf("ann's phone cart = %+v", items2)
			}
			stock := bob.Next(t, ofType("sale.stock"))
			if roomtest.Field[int](t, stock, "remaining") != 3 || roomtest.Field[string](t, stock, "sale_id") != sale.ID || stock.Seq == 0 {
				t.Fatalf("sale.stock = %s", stock.AppendJSON(nil))
			}
			// A retry answers the same cart; over the limit is limit_reached.
			tab2.Send(t, map[string]any{"type": "cart.add", "sale_id": sale.ID, "qty": 2, "key": "add-1", "ref": "a2"})
			if again := roomtest.Field[[]cartItem](t, tab2.Next(t, byRef("a2")), "items"); len(again) != 1 || again[0].ReservationID != items[0].ReservationID {
				t.Fatalf("retry cart = %+v", again)
			}
			tab1.Send(t, map[string]any{"type": "cart.add", "sale_id": sale.ID, "key": "add-2", "ref": "a3"})
			wantErr(t, tab1.Next(t, byRef("a3")), room.CodeLimitReached)
			tab1.Send(t, map[string]any{"type": "cart.add", "sale_id": sale.ID, "qty": "two", "key": "add-3", "ref": "a4"})
			wantErr(t, tab1.Next(t, byRef("a4")), room.CodeBadRequest)
			tab1.Send(t, map[string]any{"type": "cart.add", "sale_id": sale.ID, "qty": 1, "ref": "a5"})
			wantErr(t, tab1.Next(t, byRef("a5")), room.CodeBadRequest)
			bob.Send(t, map[string]any{"type": "cart.remove", "reservation_id": items[0].ReservationID, "ref": "r1"})
			wantErr(t, bob.Next(t, byRef("r1")), room.CodeNotFound)

			// Bob takes the rest and the sold-out 0 goes out.
			bob.Send(t, map[string]any{"type": "cart.add", "sale_id": sale.ID, "qty": 2, "key": "b1", "ref": "b1"})
			bob.Next(t, byRef("b1"))
			late.Send(t, map[string]any{"type": "cart.add", "sale_id": sale.ID, "qty": 1, "key": "c1", "ref": "c1"})
			late.Next(t, byRef("c1"))
			if n := roomtest.Field[int](t, host.Next(t, func(e room.Event) bool {
				var n int
				ok, _ := e.Field("remaining", &n)
				return e.Type == "sale.stock" && ok && n == 0
			}), "remaining"); n != 0 {
				t.Fatal(n)
			}
			late.Send(t, map[string]any{"type": "cart.add", "sale_id": sale.ID, "qty": 1, "key": "c2", "ref": "c2"})
			wantErr(t, late.Next(t, byRef("c2")), room.CodeSoldOut)

			// Checkout: order.confirmed to both tabs, then the empty cart.
			tab2.Send(t, map[string]any{"type": "cart.checkout", "key": "pay-1", "ref": "k1"})
			conf := tab2.Next(t, byRef("k1"))
			o := roomtest.Field[orderView](t, conf, "order")
			if conf.Type != "order.confirmed" || o.TotalCents != 2000 || o.Key != "pay-1" || len(o.Items) != 1 || conf.Seq != 0 {
				t.Fatalf("order.confirmed = %s", conf.AppendJSON(nil))
			}
			if o1 := roomtest.Field[orderView](t, tab1.Expect(t, "order.confirmed"), "order"); o1.ID != o.ID {
				t.Fatalf("ann's other tab got order %s, want %s", o1.ID, o.ID)
			}
			if left := roomtest.Field[[]cartItem](t, tab1.Expect(t, "cart"), "items"); len(left) != 0 {
				t.Fatalf("cart after checkout = %+v", left)
			}
			tab1.Send(t, map[string]any{"type": "cart.checkout", "key": "pay-1", "ref": "k2"})
			if again := roomtest.Field[orderView](t, tab1.Next(t, byRef("k2")), "order"); again.ID != o.ID {
				t.Fatalf("checkout retry answered order %s, want %s", again.ID, o.ID)
			}
			tab1.Send(t, map[string]any{"type": "cart.checkout", "key": "pay-2", "ref": "k3"})
			wantErr(t, tab1.Next(t, byRef("k3")), room.CodeBadRequest)
			page, _ := e.store.Orders(context.Background(), "demo", "", 10)
			if len(page.Orders) != 1 || page.Orders[0].ID != o.ID {
				t.Fatalf("stored orders = %+v", page.Orders)
			}

			// Stop: sale.ended with the count sold; stopping again is refused.
			host.Send(t, map[string]any{"type": "sale.stop", "sale_id": sale.ID, "ref": "x1"})
			ended := bob.Expect(t, "sale.ended")
			if roomtest.Field[string](t, ended, "sale_id") != sale.ID || roomtest.Field[int](t, ended, "sold") != 2 {
				t.Fatalf("sale.ended = %s", ended.AppendJSON(nil))
			}
			host.Send(t, map[string]any{"type": "sale.stop", "sale_id": sale.ID, "ref": "x2"})
			wantErr(t, host.Next(t, byRef("x2")), room.CodeSaleNotActive)
			host.Send(t, map[string]any{"type": "product.unpin", "sku": "tee", "ref": "u1"})
			if p := roomtest.Field[Product](t, guest.Expect(t, "product.unpinned"), "product"); p.SKU != "tee" {
				t.Fatalf("unpinned %+v", p)
			}
		})
	}
}

// A hold that expires by itself reaches every tab of its buyer as a fresh
// cart, and its units go back to the sale.
func TestWSExpiry(t *testing.T) {
	e := newWSEnv(t, newTestLocalStore(t, fastConfig()), fastConfig())
	sale, err := e.svc.StartSale(context.Background(), "demo", SaleParams{SKU: "tee", PriceCents: 1, Quantity: 3, DurationS: 3600})
	if err != nil {
		t.Fatal(err)
	}
	tab1 := e.join(t, "ann", room.RoleViewer)
	tab2 := e.join(t, "ann", room.RoleViewer)
	tab1.Send(t, map[string]any{"type": "cart.add", "sale_id": sale.ID, "qty": 3, "key": "k", "ref": "a"})
	tab1.Next(t, byRef("a"))
	tab2.Next(t, ofType("cart"))
	e.clock.Add(DefaultHold.Milliseconds())
	for _, c := range []*roomtest.Client{tab1, tab2} {
		ev := c.Next(t, func(e room.Event) bool { return e.Type == "cart" && e.Ref == "" })
		if items := roomtest.Field[[]cartItem](t, ev, "items"); len(items) != 0 {
			t.Fatalf("cart after expiry = %+v", items)
		}
	}
	tab1.Next(t, func(e room.Event) bool {
		var n int
		ok, _ := e.Field("remaining", &n)
		return e.Type == "sale.stock" && ok && n == 3
	})
	// The expired hold is forgotten with its key: a reconnecting tab
	// re-sending its add holds the units afresh (at most once: the key
	// names the new hold now).
	for range 2 {
		tab2.Send(t, map[string]any{"type": "cart.add", "sale_id": sale.ID, "qty": 3, "key": "k", "ref": "again"})
		ev := tab2.Next(t, byRef("again"))
		if items := roomtest.Field[[]cartItem](t, ev, "items"); ev.Type != "cart" || len(items) != 1 || items[0].Key != "k" {
			t.Fatalf("re-sent add after expiry = %s, want a cart holding k", ev.AppendJSON(nil))
		}
	}
}

// TestWSStorm: 2,000 buyers on their own WebSockets hit a 100-unit sale at
// once. Exactly 100 units are reserved, everyone else is told sold_out, no
// request fails otherwise, and every buyer sees the sale sell out.
func TestWSStorm(t *testing.T) {
	if testing.Short() {
		t.Skip("2,000 connections")
	}
	const buyers, units = 2000, 100
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			store := st.open(t, fastConfig())
			e := newWSEnv(t, store, fastConfig())
			ctx := context.Background()
			store.PutProduct(ctx, "demo", Product{SKU: "tee", Title: "Tee", PriceCents: 2500, Currency: "USD", Stock: 2 * units})
			sale, err := e.svc.StartSale(ctx, "demo", SaleParams{SKU: "tee", PriceCents: 100, Quantity: units, PerUserLimit: 1, DurationS: 600})
			if err != nil {
				t.Fatal(err)
			}
			conns := make([]*websocket.Conn, buyers)
			var wg sync.WaitGroup
			sem := make(chan struct{}, 64)
			for i := range conns {
				tok := e.Token(t, fmt.Sprintf("buyer-%d", i), room.RoleViewer, "demo")
				sem <- struct{}{}
				wg.Go(func() {
					defer func() { <-sem }()
					ws, _, err := websocket.DefaultDialer.Dial(e.URL("demo", tok), nil)
					if err != nil {
						t.Errorf("dial %d: %v", i, err)
						return
					}
					conns[i] = ws
				})
			}
			wg.Wait()
			if t.Failed() {
				return
			}
			defer func() {
				for _, ws := range conns {
					ws.Close()
				}
			}()

			var reserved, soldOut atomic.Int64
			var sawZero atomic.Int64
			start := make(chan struct{})
			for i, ws := range conns {
				wg.Go(func() {
					<-start
					ref := fmt.Sprintf("add-%d", i)
					frame, _ := json.Marshal(map[string]any{"type": "cart.add", "sale_id": sale.ID, "qty": 1, "key": "k", "ref": ref})
					if err := ws.WriteMessage(websocket.TextMessage, frame); err != nil {
						t.Errorf("buyer %d: send: %v", i, err)
						return
					}
					ws.SetReadDeadline(time.Now().Add(30 * time.Second))
					answered, zero := false, false
					for !answered || !zero {
						_, data, err := ws.ReadMessage()
						if err != nil {
							t.Errorf("buyer %d: read (answered %v, saw 0 %v): %v", i, answered, zero, err)
							return
						}
						var ev room.Event
						if err := json.Unmarshal(data, &ev); err != nil {
							t.Errorf("buyer %d: %v", i, err)
							return
						}
						switch {
						case ev.Ref == ref && ev.Type == "cart":
							answered = true
							reserved.Add(1)
						case ev.Ref == ref && ev.Type == "error":
							answered = true
							var code string
							ev.Field("code", &code)
							if code != room.CodeSoldOut {
								t.Errorf("buyer %d: %s", i, data)
							}
							soldOut.Add(1)
						case ev.Type == "sale.stock":
							var n int
							ev.Field("remaining", &n)
							zero = zero || n == 0
						}
					}
					sawZero.Add(1)
				})
			}
			began := time.Now()
			close(start)
			wg.Wait()
			t.Logf("%d buyers answered in %s", buyers, time.Since(began))
			got, err := store.Sale(ctx, "demo", sale.ID, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			if reserved.Load() != units || soldOut.Load() != buyers-units || got.Held != units || got.Remaining != 0 || sawZero.Load() != buyers {
				t.Fatalf("reserved %d, sold_out %d, sale %+v, %d saw 0; want %d reserved, %d sold_out, all saw 0",
					reserved.Load(), soldOut.Load(), got, sawZero.Load(), units, buyers-units)
			}
		})
	}
}
