package web

import (
	"net/http"

	"liveroom/room"
)

// listRetiredRooms: GET /api/v1/retired_rooms (admin). The incarnations of
// deleted rooms whose data is still kept (rooms.retired_retention): an
// admin lists an incarnation's orders with
// GET /api/v1/rooms/{id}/orders?incarnation=<incarnation>.
func (s *Server) listRetiredRooms(w http.ResponseWriter, r *http.Request) {
	rs, ok := s.deps.Rooms.(room.RetiredStore)
	if !ok {
		writeError(w, http.StatusServiceUnavailable, "unavailable", "this room store keeps no retired rooms")
		return
	}
	list, err := rs.Retired(r.Context())
	if err != nil {
		s.log.Error("retired rooms", "err", err)
		writeError(w, http.StatusServiceUnavailable, "unavailable", "room store unavailable")
		return
	}
	if list == nil {
		list = []room.Retired{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"rooms": list})
}
