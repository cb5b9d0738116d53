package web

import (
	"context"

	"liveroom/cart"
	"liveroom/room"
)

// roomPublisher is the hub's Publish (room.Hub), when the server has one.
type roomPublisher interface {
	Publish(ctx context.Context, scope string, ev room.Event) (room.Event, error)
}

// productUpdated tells the room that a catalog product changed (price,
// stock, title): product.updated {product}. A recorded show keeps it in its
// product script, so a replay knows the price after an edit, not only the
// price at pin time. Best effort: the edit is saved either way.
func (s *Server) productUpdated(ctx context.Context, scope string, p cart.Product) {
	pub, ok := s.deps.Hub.(roomPublisher)
	if !ok {
		return
	}
	ev, err := room.NewEvent("product.updated", map[string]any{"product": p})
	if err == nil {
		_, err = pub.Publish(ctx, scope, ev)
	}
	if err != nil {
		s.log.Warn("product.updated not published", "room", scope, "sku", p.SKU, "err", err)
	}
}
