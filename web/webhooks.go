package web

import (
	"context"
	"net/http"
	"strconv"

	"liveroom/cart"
)

// FailedWebhooks is the admin's view of webhook deliveries the outbox gave
// up on (cart.Outbox).
type FailedWebhooks interface {
	Failed(ctx context.Context, cursor string, limit int) (cart.FailedPage, error)
	Retry(ctx context.Context, room, orderID string) error
}

func (s *Server) webhookRoutes(m *http.ServeMux) {
	m.HandleFunc("GET /api/v1/webhooks/failed", s.admin(s.withWebhooks(s.listFailedWebhooks)))
	m.HandleFunc("POST /api/v1/webhooks/failed/{room}/{order}/retry", s.admin(s.withWebhooks(s.retryFailedWebhook)))
}

func (s *Server) withWebhooks(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.deps.Webhooks == nil {
			writeError(w, http.StatusServiceUnavailable, "unavailable", "webhooks are not available on this node")
			return
		}
		h(w, r)
	}
}

// listFailedWebhooks: GET /api/v1/webhooks/failed?limit=&cursor=
func (s *Server) listFailedWebhooks(w http.ResponseWriter, r *http.Request) {
	limit := 100
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 500 {
			writeError(w, http.StatusBadRequest, "bad_request", "limit: must be 1-500")
			return
		}
		limit = n
	}
	page, err := s.deps.Webhooks.Failed(r.Context(), r.URL.Query().Get("cursor"), limit)
	if err != nil {
		s.cartError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, page)
}

// retryFailedWebhook: POST /api/v1/webhooks/failed/{room}/{order}/retry.
// The room may have been deleted since: its orders are still owed.
func (s *Server) retryFailedWebhook(w http.ResponseWriter, r *http.Request) {
	if err := s.deps.Webhooks.Retry(r.Context(), r.PathValue("room"), r.PathValue("order")); err != nil {
		s.cartError(w, err)
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]string{"status": "queued"})
}
