package web

import (
	"encoding/json"
	"errors"
	"net/http"

	"liveroom/media"
)

// Simulcast routes (docs/protocol.md, "Video layers"):
//
//	GET  /whep/{room}/{session}/layer  the viewer's layer state
//	POST /whep/{room}/{session}/layer  {"quality": "auto"|"high"|"low"|<rid>}
//	GET  /whip/{room}/{session}/layers the host's layers and viewers on each
//
// Like the WHEP session's PATCH and DELETE, the viewer routes need no
// token: the session id is the capability. The WHIP route needs the host's.

// LayerControl is what the layer routes need from the media server; the
// WHEP and WHIP media values implement it when they adapt per viewer.
type LayerControl interface {
	ViewerQuality(roomID, sessionID string) (media.ViewerLayer, error)
	SetViewerQuality(roomID, sessionID, quality string) (media.ViewerLayer, error)
	Layers(roomID string) (media.RoomLayers, error)
}

// maxQualityBody bounds the preference body.
const maxQualityBody = 1 << 10

func (s *Server) layerControl(w http.ResponseWriter, sessions Sessions) (LayerControl, bool) {
	lc, ok := sessions.(LayerControl)
	if !ok {
		writeError(w, http.StatusNotImplemented, "unavailable", "this node does not adapt video layers")
	}
	return lc, ok
}

func (s *Server) whepLayer(w http.ResponseWriter, r *http.Request) {
	rm, ok := s.lookupRoom(w, r)
	if !ok {
		return
	}
	sessions, ok := s.sessionKind(w, r, rm, false)
	if !ok {
		return
	}
	lc, ok := s.layerControl(w, sessions)
	if !ok {
		return
	}
	quality := ""
	if r.Method == http.MethodPost {
		var body struct {
			Quality string `json:"quality"`
		}
		raw, err := readBody(w, r, maxQualityBody)
		if err != nil {
			s.bodyError(w, err)
			return
		}
		if err := json.Unmarshal(raw, &body); err != nil || body.Quality == "" {
			writeError(w, http.StatusBadRequest, "bad_request", `body must be {"quality": "auto" | "high" | "low" | a layer rid}`)
			return
		}
		quality = body.Quality
	}
	st, err := lc.SetViewerQuality(rm.ID, r.PathValue("session"), quality)
	if errors.Is(err, media.ErrBadQuality) {
		writeError(w, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	if err != nil {
		s.mediaError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

func (s *Server) whipLayers(w http.ResponseWriter, r *http.Request) {
	rm, ok := s.lookupRoom(w, r)
	if !ok {
		return
	}
	if _, ok := s.requireHost(w, r, rm); !ok {
		return
	}
	sessions, ok := s.sessionKind(w, r, rm, true)
	if !ok {
		return
	}
	lc, ok := s.layerControl(w, sessions)
	if !ok {
		return
	}
	st, err := lc.Layers(rm.ID)
	if err != nil {
		s.mediaError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}
