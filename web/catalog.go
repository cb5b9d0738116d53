package web

import (
	"context"
	"errors"
	"net/http"
	"strconv"

	"liveroom/cart"
	"liveroom/room"
)

// Catalog is what the products and orders routes need from commerce.
type Catalog interface {
	PutProduct(ctx context.Context, room string, p cart.Product) (cart.Product, error)
	Product(ctx context.Context, room, sku string) (cart.Product, error)
	Products(ctx context.Context, room string) ([]cart.Product, error)
	DeleteProduct(ctx context.Context, room, sku string) error
	Orders(ctx context.Context, room, cursor string, limit int) (cart.OrderPage, error)
}

func (s *Server) catalogRoutes(m *http.ServeMux) {
	m.HandleFunc("GET /api/v1/rooms/{room}/products", s.withCatalog(s.listProducts))
	m.HandleFunc("GET /api/v1/rooms/{room}/products/{sku}", s.withCatalog(s.getProduct))
	m.HandleFunc("PUT /api/v1/rooms/{room}/products/{sku}", s.admin(s.withCatalog(s.putProduct)))
	m.HandleFunc("DELETE /api/v1/rooms/{room}/products/{sku}", s.admin(s.withCatalog(s.deleteProduct)))
	m.HandleFunc("GET /api/v1/rooms/{room}/orders", s.withCatalog(s.listOrders))
}

func (s *Server) withCatalog(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.deps.Catalog == nil {
			writeError(w, http.StatusServiceUnavailable, "unavailable", "commerce is not available on this node")
			return
		}
		h(w, r)
	}
}

// cartError maps commerce errors to HTTP statuses; codes pass through.
func (s *Server) cartError(w http.ResponseWriter, err error) {
	var ce *cart.Error
	if !errors.As(err, &ce) {
		s.log.Error("catalog", "err", err)
		writeError(w, http.StatusServiceUnavailable, "unavailable", "commerce store unavailable")
		return
	}
	status := http.StatusConflict // sold_out, limit_reached, sale_not_active, expired
	switch ce.Code {
	case "bad_request":
		status = http.StatusBadRequest
	case "not_found":
		status = http.StatusNotFound
	case "unavailable":
		status = http.StatusServiceUnavailable
	}
	writeError(w, status, string(ce.Code), ce.Error())
}

// mayReadRoom: a public room's catalog is public (it is on screen anyway);
// a private room's needs a token for that room or admin credentials.
func (s *Server) mayReadRoom(w http.ResponseWriter, r *http.Request) (room.Room, bool) {
	rm, ok := s.lookupRoom(w, r)
	if !ok {
		return rm, false
	}
	_, ok = s.roomRole(w, r, rm, room.RoleGuest)
	return rm, ok
}

func (s *Server) listProducts(w http.ResponseWriter, r *http.Request) {
	rm, ok := s.mayReadRoom(w, r)
	if !ok {
		return
	}
	ps, err := s.deps.Catalog.Products(r.Context(), rm.Scope())
	if err != nil {
		s.cartError(w, err)
		return
	}
	if ps == nil {
		ps = []cart.Product{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"products": ps})
}

func (s *Server) getProduct(w http.ResponseWriter, r *http.Request) {
	rm, ok := s.mayReadRoom(w, r)
	if !ok {
		return
	}
	p, err := s.deps.Catalog.Product(r.Context(), rm.Scope(), r.PathValue("sku"))
	if err != nil {
		s.cartError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, p)
}

type productRequest struct {
	Title      string `json:"title"`
	PriceCents int64  `json:"price_cents"`
	Currency   string `json:"currency"`
	ImageURL   string `json:"image_url"`
	Stock      int    `json:"stock"`
}

func (s *Server) putProduct(w http.ResponseWriter, r *http.Request) {
	rm, ok := s.lookupRoom(w, r)
	if !ok {
		return
	}
	var req productRequest
	if status, err := decodeJSON(w, r, maxAdminBody, &req); err != nil {
		writeDecodeError(w, status, err)
		return
	}
	p := cart.Product{SKU: r.PathValue("sku"), Title: req.Title, PriceCents: req.PriceCents,
		Currency: req.Currency, ImageURL: req.ImageURL, Stock: req.Stock}
	if err := p.Validate(); err != nil {
		s.cartError(w, err)
		return
	}
	p, err := s.deps.Catalog.PutProduct(r.Context(), rm.Scope(), p)
	if err != nil {
		s.cartError(w, err)
		return
	}
	s.productUpdated(r.Context(), rm.Scope(), p) // web/shows_product.go
	writeJSON(w, http.StatusOK, p)
}

func (s *Server) deleteProduct(w http.ResponseWriter, r *http.Request) {
	rm, ok := s.lookupRoom(w, r)
	if !ok {
		return
	}
	if err := s.deps.Catalog.DeleteProduct(r.Context(), rm.Scope(), r.PathValue("sku")); err != nil {
		s.cartError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// listOrders: admin credentials, or a host token (the studio shows sales);
// not the stream key, which only publishes. With ?incarnation=, an admin
// lists the orders of an earlier incarnation of the room (deleted, maybe
// created again since: GET /api/v1/retired_rooms names them); its orders
// are still owed until rooms.retired_retention has passed.
func (s *Server) listOrders(w http.ResponseWriter, r *http.Request) {
	var scope string
	if inc := r.URL.Query().Get("incarnation"); inc != "" {
		if _, ok := s.allow(w, r, room.ActAdmin, nil, room.RoleAdmin); !ok {
			return
		}
		id := r.PathValue("room")
		if !room.ValidID(id) || !room.ValidIncarnation(inc) {
			writeError(w, http.StatusBadRequest, "bad_request", "incarnation: must be 1-32 letters or digits of a valid room")
			return
		}
		scope = room.Scope(id, inc)
	} else {
		rm, ok := s.lookupRoom(w, r)
		if !ok {
			return
		}
		if _, ok := s.roomRole(w, r, rm, room.RoleHost); !ok {
			return
		}
		scope = rm.Scope()
	}
	limit := 50
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 500 {
			writeError(w, http.StatusBadRequest, "bad_request", "limit: must be 1-500")
			return
		}
		limit = n
	}
	if st := r.URL.Query().Get("state"); st != "" {
		s.listOrdersIn(w, r, scope, st, limit) // admin_orders.go
		return
	}
	page, err := s.deps.Catalog.Orders(r.Context(), scope, r.URL.Query().Get("cursor"), limit)
	if err != nil {
		s.cartError(w, err)
		return
	}
	if page.Orders == nil {
		page.Orders = []cart.Order{}
	}
	writeJSON(w, http.StatusOK, page)
}
