package web

import (
	"context"
	"net/http"

	"liveroom/cart"
	"liveroom/room"
)

// OrderLife moves orders through their states (the cart Service).
type OrderLife interface {
	TransitionOrder(ctx context.Context, room, id string, t cart.Transition) (cart.OrderChange, error)
}

// ordersIn lists orders by state (the cart store).
type ordersIn interface {
	OrdersIn(ctx context.Context, room string, state cart.OrderState, cursor string, limit int) (cart.OrderPage, error)
}

// orderRoutes: the merchant's backend (admin key, or the room's host token,
// e.g. from the studio) reports payment, fulfilment and cancellations; each
// answers the order with its state. docs/orders.md.
func (s *Server) orderRoutes(m *http.ServeMux) {
	m.HandleFunc("POST /api/v1/rooms/{room}/orders/{id}/paid", s.moveOrder(cart.Transition{Action: cart.ActPay}))
	m.HandleFunc("POST /api/v1/rooms/{room}/orders/{id}/fulfilled", s.moveOrder(cart.Transition{Action: cart.ActFulfill}))
	m.HandleFunc("POST /api/v1/rooms/{room}/orders/{id}/cancel", s.moveOrder(cart.Transition{Action: cart.ActCancel, By: cart.CancelByMerchant}))
	m.HandleFunc("GET /api/v1/rooms/{room}/orders/summary", s.withCatalog(s.ordersSummary))
}

func (s *Server) moveOrder(t cart.Transition) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		rm, ok := s.lookupRoom(w, r)
		if !ok {
			return
		}
		if _, ok := s.roomRole(w, r, rm, room.RoleHost); !ok {
			return
		}
		if s.deps.Orders == nil {
			writeError(w, http.StatusServiceUnavailable, "unavailable", "commerce is not available on this node")
			return
		}
		c, err := s.deps.Orders.TransitionOrder(r.Context(), rm.Scope(), r.PathValue("id"), t)
		if err != nil {
			s.cartError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, c.Order)
	}
}

// stateSummary is one state's figures: orders and their totals by currency.
type stateSummary struct {
	Count      int              `json:"count"`
	TotalCents map[string]int64 `json:"total_cents"`
}

// maxSummaryPages bounds the orders a summary reads (500 a page).
const maxSummaryPages = 200

// ordersSummary counts the room's orders and adds up their totals by state
// (the studio's figures): host or admin.
func (s *Server) ordersSummary(w http.ResponseWriter, r *http.Request) {
	rm, ok := s.lookupRoom(w, r)
	if !ok {
		return
	}
	if _, ok := s.roomRole(w, r, rm, room.RoleHost); !ok {
		return
	}
	lister, ok := s.deps.Catalog.(ordersIn)
	if !ok {
		writeError(w, http.StatusServiceUnavailable, "unavailable", "order states are not available on this node")
		return
	}
	out := map[cart.OrderState]*stateSummary{}
	for _, st := range []cart.OrderState{cart.OrderAwaitingPayment, cart.OrderPaid, cart.OrderFulfilled, cart.OrderCancelled} {
		out[st] = &stateSummary{TotalCents: map[string]int64{}}
	}
	cursor, complete := "", false
	for range maxSummaryPages {
		page, err := lister.OrdersIn(r.Context(), rm.Scope(), "", cursor, 500)
		if err != nil {
			s.cartError(w, err)
			return
		}
		for _, o := range page.Orders {
			if sum := out[o.State]; sum != nil {
				sum.Count++
				sum.TotalCents[o.Currency] += o.TotalCents
			}
		}
		if cursor = page.Next; cursor == "" {
			complete = true
			break
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"states": out, "complete": complete})
}

// listOrdersIn is GET …/orders?state=: the room's orders in one state.
func (s *Server) listOrdersIn(w http.ResponseWriter, r *http.Request, scope, state string, limit int) {
	if !cart.ValidOrderState(state) {
		writeError(w, http.StatusBadRequest, "bad_request", "state: must be awaiting_payment, paid, fulfilled or cancelled")
		return
	}
	lister, ok := s.deps.Catalog.(ordersIn)
	if !ok {
		writeError(w, http.StatusServiceUnavailable, "unavailable", "order states are not available on this node")
		return
	}
	page, err := lister.OrdersIn(r.Context(), scope, cart.OrderState(state), r.URL.Query().Get("cursor"), limit)
	if err != nil {
		s.cartError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, page)
}

// validCheckoutURL checks a room's checkout_url ("" = the node's).
func validCheckoutURL(t string) error {
	if t == "" {
		return nil
	}
	if err := cart.ValidCheckoutURL(t); err != nil {
		return &room.ValidationError{Field: "checkout_url", Message: err.Error()}
	}
	return nil
}
