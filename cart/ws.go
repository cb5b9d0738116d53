package cart

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"liveroom/room"
)

// WS is the cart on the room WebSocket: the message kinds of API.md
// (product.pin/unpin and sale.start/stop for hosts; cart.add, cart.remove
// and cart.checkout for signed-in viewers), the welcome's `pinned`, `sale`
// and `cart` fields, and the Service's notifications turned into events.
//
// Room events (product.pinned, sale.started, sale.stock, sale.ended) go
// through the hub's bus, so every node's viewers see them in seq order. A
// buyer's `cart` and `order.confirmed` go to all of that buyer's
// connections, carrying the ref of the request that caused them (none when
// a hold expires by itself), so each request gets exactly one answer with
// its ref and the buyer's other tabs stay in step.
type WS struct {
	svc *Service
	hub *room.Hub
	log *slog.Logger

	checkoutURL func(ctx context.Context, roomID string) string // order_ws.go
}

// publishTimeout bounds the bus calls made from notifications, which have
// no request context.
const publishTimeout = 5 * time.Second

// AttachWS registers the cart on hub; call it before the hub serves, and
// run svc.Run so that expiries and throttled stock updates go out.
func AttachWS(hub *room.Hub, svc *Service, log *slog.Logger) *WS {
	if log == nil {
		log = svc.log
	}
	w := &WS{svc: svc, hub: hub, log: log}
	hub.Handle("product.pin", room.RoleHost, w.pin)
	hub.Handle("product.unpin", room.RoleHost, w.unpin)
	hub.Handle("sale.start", room.RoleHost, w.saleStart)
	hub.Handle("sale.stop", room.RoleHost, w.saleStop)
	hub.Handle("cart.add", room.RoleViewer, w.add)
	hub.Handle("cart.remove", room.RoleViewer, w.remove)
	hub.Handle("cart.checkout", room.RoleViewer, w.checkout)
	hub.Handle("giveaway.start", room.RoleHost, w.giveawayStart) // giveaway_ws.go
	hub.Handle("giveaway.enter", room.RoleViewer, w.giveawayEnter)
	w.attachAuctions() // auction_ws.go
	hub.AddSnapshot(w.snapshot)
	hub.AddSnapshot(w.giveawaySnapshot)
	svc.OnGiveawayEnd(w.onGiveawayEnd)
	svc.OnGiveawayCount(w.onGiveawayCount)
	svc.OnSale(w.onSale)
	svc.OnStock(w.onStock)
	svc.OnCart(w.onCart)
	w.attachOrders() // order_ws.go
	return w
}

// protoErr maps a cart error to the hub's `error` event; storage failures
// pass through (the hub logs them and answers unavailable).
func protoErr(err error) error {
	var e *Error
	if !errors.As(err, &e) {
		return err
	}
	msg := e.Message
	if e.Field != "" {
		msg = e.Field + ": " + msg
	}
	return room.Errorf(string(e.Code), "%s", msg)
}

// ---- wire shapes ----

type cartItem struct {
	ReservationID string    `json:"reservation_id"`
	SaleID        string    `json:"sale_id,omitempty"`
	SKU           string    `json:"sku"`
	Qty           int       `json:"qty"`
	PriceCents    int64     `json:"price_cents"`
	Currency      string    `json:"currency"`
	ExpiresAt     time.Time `json:"expires_at"`
	Key           string    `json:"key"` // the cart.add key, so a client can match its request
}

func cartItems(rs []Reservation) []cartItem {
	items := make([]cartItem, len(rs))
	for i, r := range rs {
		items[i] = cartItem{ReservationID: r.ID, SaleID: r.SaleID, SKU: r.SKU, Qty: r.Qty,
			PriceCents: r.PriceCents, Currency: r.Currency, ExpiresAt: r.ExpiresAt, Key: r.Key}
	}
	return items
}

// ---- host handlers ----

type skuBody struct {
	SKU string `json:"sku"`
}

func (w *WS) pin(ctx context.Context, req *room.Request) error {
	var b skuBody
	if err := req.Decode(&b); err != nil {
		return err
	}
	if b.SKU == "" {
		return room.Errorf(room.CodeBadRequest, "sku is required")
	}
	p, err := w.svc.Pin(ctx, req.Room, b.SKU)
	if err != nil {
		return protoErr(err)
	}
	_, err = w.hub.Publish(ctx, req.Room, room.MustEvent("product.pinned", map[string]any{"product": p}))
	return err
}

func (w *WS) unpin(ctx context.Context, req *room.Request) error {
	var b skuBody
	if err := req.Decode(&b); err != nil {
		return err
	}
	p, ok, err := w.svc.Unpin(ctx, req.Room)
	if err != nil {
		return protoErr(err)
	}
	if !ok {
		return room.Errorf(room.CodeBadRequest, "nothing is pinned")
	}
	_, err = w.hub.Publish(ctx, req.Room, room.MustEvent("product.unpinned", map[string]any{"product": p}))
	return err
}

// saleStart answers with the sale.started room event (from onSale).
func (w *WS) saleStart(ctx context.Context, req *room.Request) error {
	var p SaleParams
	if err := req.Decode(&p); err != nil {
		return err
	}
	_, err := w.svc.StartSale(ctx, req.Room, p)
	return protoErr(err)
}

func (w *WS) saleStop(ctx context.Context, req *room.Request) error {
	var b struct {
		SaleID string `json:"sale_id"`
	}
	if err := req.Decode(&b); err != nil {
		return err
	}
	if b.SaleID == "" {
		return room.Errorf(room.CodeBadRequest, "sale_id is required")
	}
	_, ended, err := w.svc.StopSale(ctx, req.Room, b.SaleID)
	if err != nil {
		return protoErr(err)
	}
	if !ended {
		return room.Errorf(room.CodeSaleNotActive, "sale %s has already ended", b.SaleID)
	}
	return nil
}

// ---- buyer handlers ----

func (w *WS) add(ctx context.Context, req *room.Request) error {
	var b struct {
		ReserveParams
		Qty *int `json:"qty"`
	}
	if err := req.Decode(&b); err != nil {
		return err
	}
	p := b.ReserveParams
	p.User, p.Qty = req.From.ID, 1
	if b.Qty != nil {
		p.Qty = *b.Qty
	}
	res, err := w.svc.Add(ctx, req.Room, p)
	if err != nil {
		return protoErr(err)
	}
	return w.sendItems(ctx, req.Room, req.From.ID, req.Ref, res.Cart)
}

func (w *WS) remove(ctx context.Context, req *room.Request) error {
	var b struct {
		ReservationID string `json:"reservation_id"`
	}
	if err := req.Decode(&b); err != nil {
		return err
	}
	if b.ReservationID == "" {
		return room.Errorf(room.CodeBadRequest, "reservation_id is required")
	}
	res, err := w.svc.Remove(ctx, req.Room, req.From.ID, b.ReservationID)
	if err != nil {
		return protoErr(err)
	}
	return w.sendItems(ctx, req.Room, req.From.ID, req.Ref, res.Cart)
}

// checkout answers order.confirmed only after the order is stored durably
// (Service.Checkout returns then), to every tab of the buyer.
func (w *WS) checkout(ctx context.Context, req *room.Request) error {
	var b struct {
		Key string `json:"key"`
	}
	if err := req.Decode(&b); err != nil {
		return err
	}
	res, err := w.svc.Checkout(ctx, req.Room, req.From.ID, b.Key)
	if err != nil {
		return protoErr(err)
	}
	o := res.Order
	ev := room.MustEvent("order.confirmed", map[string]any{"order": viewOrder(o, w.payURL(ctx, req.RoomID, o))})
	ev.Ref = req.Ref
	if err := w.hub.SendUser(ctx, req.Room, req.From.ID, ev); err != nil {
		return err
	}
	return w.sendItems(ctx, req.Room, req.From.ID, "", res.Cart)
}

// sendCart reads the buyer's cart and sends it to all of their connections.
func (w *WS) sendCart(ctx context.Context, roomID, user, ref string) error {
	items, err := w.svc.Cart(ctx, roomID, user)
	if err != nil {
		return err
	}
	return w.sendItems(ctx, roomID, user, ref, items)
}

// sendItems sends a cart the store answered with (a change returns the
// cart after it, so the answer costs no second read).
func (w *WS) sendItems(ctx context.Context, roomID, user, ref string, items []Reservation) error {
	ev := cartEvent(items) // ws_reply.go
	ev.Ref = ref
	return w.hub.SendUser(ctx, roomID, user, ev)
}

// ---- welcome ----

func (w *WS) snapshot(ctx context.Context, s *room.Snapshot) error {
	pinned, sale, err := w.svc.Snapshot(ctx, s.Room)
	if err != nil {
		return err
	}
	if pinned != nil {
		s.SetRoom("pinned", pinned)
	}
	if sale != nil {
		s.SetRoom("sale", sale)
	}
	if s.You.Guest() {
		return nil
	}
	items, err := w.svc.Cart(ctx, s.Room, s.You.ID)
	if err != nil {
		return err
	}
	s.Set("cart", cartItems(items))
	return w.snapshotOrders(ctx, s) // order_ws.go
}

// ---- notifications ----

func (w *WS) publish(roomID string, ev room.Event) {
	ctx, cancel := context.WithTimeout(context.Background(), publishTimeout)
	defer cancel()
	if _, err := w.hub.Publish(ctx, roomID, ev); err != nil {
		w.log.Warn("cart: publish failed", "room", roomID, "type", ev.Type, "err", err)
	}
}

func (w *WS) onSale(e SaleEvent) {
	switch e.Kind {
	case EventSaleStarted:
		w.publish(e.Room, room.MustEvent("sale.started", map[string]any{"sale": e.Sale}))
	case EventSaleEnded:
		w.publish(e.Room, room.MustEvent("sale.ended", map[string]any{"sale_id": e.Sale.ID, "sold": e.Sale.Sold}))
	}
}

func (w *WS) onStock(roomID, saleID string, remaining int) {
	ev := room.MustEvent("sale.stock", map[string]any{"sale_id": saleID, "remaining": remaining})
	ev.Transient = true // superseded by the next one; a resume gets the count in its welcome
	w.publish(roomID, ev)
}

func (w *WS) onCart(roomID, user string) {
	ctx, cancel := context.WithTimeout(context.Background(), publishTimeout)
	defer cancel()
	if err := w.sendCart(ctx, roomID, user, ""); err != nil {
		w.log.Warn("cart: sending cart failed", "room", roomID, "user", user, "err", err)
	}
}
