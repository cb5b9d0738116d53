package web

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"liveroom/media"
	"liveroom/room"
)

// HLSOutput is what the /hls routes need from the media server: one room's
// LL-HLS files (media.HLS).
type HLSOutput interface {
	Serve(w http.ResponseWriter, r *http.Request, roomID, file string)
}

// hlsTokenTTL is how long a signed HLS URL lets a native player (which
// cannot send an Authorization header) start and keep watching a private
// room. A page whose player fails after it asks for a new URL.
const hlsTokenTTL = 15 * time.Minute

// hlsTokenParam carries the signed token in HLS URLs; the muxer copies the
// query onto every URL its playlists list, so parts and segments carry it.
const hlsTokenParam = "hls_token"

// hlsRoutes registers the LL-HLS output and the route that signs its URL.
func (s *Server) hlsRoutes(m *http.ServeMux) {
	m.HandleFunc("GET /hls/{room}/{file}", s.cors(s.hlsGet))
	m.HandleFunc("GET /api/v1/rooms/{room}/hls", s.cors(s.hlsURL))
}

// hlsGet serves a playlist, init file, segment or part of a live room.
// Access is WHEP's (public rooms open, private rooms a token for the room)
// with one more way to present it: a signed hls_token in the query.
func (s *Server) hlsGet(w http.ResponseWriter, r *http.Request) {
	rm, ok := s.lookupRoom(w, r)
	if !ok {
		return
	}
	if tok := r.URL.Query().Get(hlsTokenParam); tok != "" {
		if !s.hlsTokenOK(tok, rm) {
			writeError(w, http.StatusUnauthorized, room.CodeUnauthorized, "the HLS link expired or is not for this room: reload the page")
			return
		}
	} else if !s.mayWatch(w, r, rm) {
		return
	}
	if s.deps.HLS == nil {
		writeError(w, http.StatusServiceUnavailable, "unavailable", "HLS is not available on this node")
		return
	}
	if rm.Status != room.StatusLive {
		w.Header().Set("Retry-After", "5")
		writeError(w, http.StatusServiceUnavailable, "stream_unavailable", "the room is not live")
		return
	}
	file := r.PathValue("file")
	if file == "index.m3u8" && s.deps.OnWatch != nil {
		// On an edge node, the reader HLS opens makes the edge reconciler
		// pull the room from its origin, as a WHEP viewer does.
		s.deps.OnWatch(rm.ID)
	}
	s.deps.HLS.Serve(w, r, rm.ID, file)
}

// hlsURL answers the room's HLS playlist URL for whoever may watch it; for a
// private room the URL carries a signed token valid for hlsTokenTTL.
func (s *Server) hlsURL(w http.ResponseWriter, r *http.Request) {
	rm, ok := s.lookupRoom(w, r)
	if !ok {
		return
	}
	if !s.mayWatch(w, r, rm) {
		return
	}
	u := "/hls/" + rm.ID + "/index.m3u8"
	body := map[string]string{"url": u}
	if rm.Private {
		exp := time.Now().Add(hlsTokenTTL)
		u += "?" + hlsTokenParam + "=" + url.QueryEscape(s.hlsToken(rm, exp))
		body["url"] = u
		body["expires_at"] = exp.UTC().Format(time.RFC3339)
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, body)
}

// An HLS token is a guest token (room.Auth's HMAC, no new secret) for the
// id "guest-hls.<room>.<incarnation>.<unix expiry>": it proves the server
// signed that room and expiry, and used anywhere else it is only a guest,
// which a private room refuses.
const hlsTokenID = room.GuestIDPrefix + "hls."

func (s *Server) hlsToken(rm room.Room, exp time.Time) string {
	return s.deps.Auth.GuestToken(hlsTokenID + rm.ID + "." + rm.Incarnation + "." + strconv.FormatInt(exp.Unix(), 10))
}

func (s *Server) hlsTokenOK(tok string, rm room.Room) bool {
	if s.deps.Auth == nil || len(tok) > 512 {
		return false
	}
	id, err := s.deps.Auth.VerifyGuest(tok)
	if err != nil {
		return false
	}
	rest, ok := strings.CutPrefix(id.ID, hlsTokenID)
	if !ok {
		return false
	}
	parts := strings.Split(rest, ".")
	if len(parts) != 3 || parts[0] != rm.ID || parts[1] != rm.Incarnation {
		return false
	}
	exp, err := strconv.ParseInt(parts[2], 10, 64)
	return err == nil && time.Now().Unix() < exp
}

// writeCodecError answers a WHEP offer that cannot decode what the room
// sends: 422 codec_unsupported with the room's codecs and its HLS URL, so
// that the page falls back to HLS at once.
func writeCodecError(w http.ResponseWriter, err error) {
	var body struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
		RoomCodecs []string `json:"room_codecs,omitempty"`
	}
	body.Error.Code, body.Error.Message = "codec_unsupported", err.Error()
	var ce *media.CodecError
	if errors.As(err, &ce) {
		body.RoomCodecs = ce.RoomSends
	}
	writeJSON(w, http.StatusUnprocessableEntity, body)
}
