package cart

import (
	"context"

	"liveroom/room"
)

// The order life on the room WebSocket: the buyer's `order.cancel
// {order_id}` (before paying), and `order.updated {order}` to every tab of
// the buyer whenever one of their orders moves (paid, fulfilled,
// cancelled by them, the merchant or lapse). docs/protocol.md.

func (w *WS) attachOrders() {
	w.hub.Handle("order.cancel", room.RoleViewer, w.orderCancel)
	w.svc.OnOrderChange(w.onOrderChange)
}

// SetCheckoutURLs gives the WebSocket a room's own checkout URL template
// ("" = cart.checkout_url), read when an order is confirmed.
func (w *WS) SetCheckoutURLs(fn func(ctx context.Context, roomID string) string) { w.checkoutURL = fn }

func (w *WS) payURL(ctx context.Context, roomID string, o Order) string {
	if o.stateOf() != OrderAwaitingPayment {
		return ""
	}
	var t string
	if w.checkoutURL != nil {
		t = w.checkoutURL(ctx, roomID)
	}
	return w.svc.PayURL(o, t)
}

// orderCancel answers order.updated (with the request's ref) to all of the
// buyer's tabs; cancelling again answers the cancelled order.
func (w *WS) orderCancel(ctx context.Context, req *room.Request) error {
	var b struct {
		OrderID string `json:"order_id"`
	}
	if err := req.Decode(&b); err != nil {
		return err
	}
	if b.OrderID == "" {
		return room.Errorf(room.CodeBadRequest, "order_id is required")
	}
	c, err := w.svc.TransitionOrder(ctx, req.Room, b.OrderID, Transition{Action: ActCancel, By: CancelByBuyer, User: req.From.ID})
	if err != nil {
		return protoErr(err)
	}
	// onOrderChange skips the buyer's own cancel: this answer carries the ref.
	return w.sendOrder(ctx, req.Room, c.Order, req.Ref)
}

func (w *WS) sendOrder(ctx context.Context, scope string, o Order, ref string) error {
	ev := room.MustEvent("order.updated", map[string]any{"order": viewOrder(o, w.payURL(ctx, o.Room, o))})
	ev.Ref = ref
	return w.hub.SendUser(ctx, scope, o.User, ev)
}

func (w *WS) onOrderChange(scope string, c OrderChange) {
	if c.Order.CancelReason == CancelByBuyer && c.Order.State == OrderCancelled {
		return // the buyer's own cancel: orderCancel answers it with its ref
	}
	ctx, cancel := context.WithTimeout(context.Background(), publishTimeout)
	defer cancel()
	if err := w.sendOrder(ctx, scope, c.Order, ""); err != nil {
		w.log.Warn("cart: sending order update failed", "room", scope, "order", c.Order.ID, "err", err)
	}
}

// snapshotOrders adds the buyer's orders awaiting payment to their welcome
// (`orders`, only when there are some), so that a reloaded page shows
// "pay now" again.
func (w *WS) snapshotOrders(ctx context.Context, s *room.Snapshot) error {
	list, err := w.svc.store.AwaitingOrders(ctx, s.Room, s.You.ID)
	if err != nil || len(list) == 0 {
		return err
	}
	views := make([]orderView, len(list))
	for i, o := range list {
		views[i] = viewOrder(o, w.payURL(ctx, o.Room, o))
	}
	s.Set("orders", views)
	return nil
}
