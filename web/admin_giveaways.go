package web

import (
	"context"
	"net/http"
	"time"

	"liveroom/cart"
)

// Giveaways is what the giveaway route needs from commerce: everything to
// recompute a draw (docs/giveaway-draw.md).
type Giveaways interface {
	Giveaway(ctx context.Context, room, id string) (cart.Giveaway, error)
	GiveawayEntries(ctx context.Context, room, id string) ([]string, error)
}

func (s *Server) giveawayRoutes(m *http.ServeMux) {
	m.HandleFunc("GET /api/v1/rooms/{room}/giveaways/{id}", s.getGiveaway)
}

type giveawayWinner struct {
	Entry string `json:"entry"`
	Name  string `json:"name"`
}

// giveawayDoc is the public record of a giveaway: the seed only once it
// has ended, the entry list only once entry has closed.
type giveawayDoc struct {
	ID           string             `json:"giveaway_id"`
	Prize        cart.Prize         `json:"prize"`
	Rule         cart.GiveawayRule  `json:"rule"`
	Winners      []giveawayWinner   `json:"winners"`
	WinnersMax   int                `json:"winners_max"`
	State        cart.GiveawayState `json:"state"`
	StartedAt    time.Time          `json:"started_at"`
	EndsAt       time.Time          `json:"ends_at"`
	Commitment   string             `json:"commitment"`
	Seed         string             `json:"seed,omitempty"`
	Entrants     int                `json:"entrants"`
	EntrantsHash string             `json:"entrants_hash,omitempty"`
	Entries      []string           `json:"entries"`
	Procedure    string             `json:"procedure"`
}

// getGiveaway follows the catalog's access: public for a public room, a
// token for that room (or admin credentials) for a private one.
func (s *Server) getGiveaway(w http.ResponseWriter, r *http.Request) {
	if s.deps.Giveaways == nil {
		writeError(w, http.StatusServiceUnavailable, "unavailable", "giveaways are not available on this node")
		return
	}
	rm, ok := s.mayReadRoom(w, r)
	if !ok {
		return
	}
	id := r.PathValue("id")
	g, err := s.deps.Giveaways.Giveaway(r.Context(), rm.Scope(), id)
	if err != nil {
		s.cartError(w, err)
		return
	}
	entries, err := s.deps.Giveaways.GiveawayEntries(r.Context(), rm.Scope(), id)
	if err != nil {
		s.cartError(w, err)
		return
	}
	doc := giveawayDoc{ID: g.ID, Prize: g.Prize, Rule: g.Rule, WinnersMax: g.Winners, State: g.State, StartedAt: g.StartedAt,
		EndsAt: g.EndsAt, Commitment: g.Commitment, Seed: g.Seed, Entrants: g.Entrants, EntrantsHash: g.EntrantsHash,
		Entries: entries, Winners: []giveawayWinner{}, Procedure: cart.DrawProcedure}
	if doc.Entries == nil {
		doc.Entries = []string{}
	}
	for _, x := range g.Result {
		doc.Winners = append(doc.Winners, giveawayWinner{Entry: x.Entry, Name: x.Name})
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, doc)
}
