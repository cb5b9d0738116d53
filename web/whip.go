package web

import (
	"context"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"strings"

	"liveroom/media"
	"liveroom/room"
)

// Sessions is what the WHIP and WHEP session routes need from the media
// server: trickle ICE and ICE restarts (PATCH), DELETE, and the ICE
// servers an answer names.
type Sessions interface {
	Patch(ctx context.Context, roomID, sessionID, sdpFrag string) (string, error)
	Close(roomID, sessionID string) error
	IsPublisher(roomID, sessionID string) (bool, error)
	ICEServers() []media.ICEServer
}

// Ingest is what WHIP needs: a host's session that publishes the room.
type Ingest interface {
	Sessions
	Publish(ctx context.Context, roomID, hostID, offerSDP string) (media.Session, error)
}

// Playback is what WHEP and the room views need: viewer sessions and how
// many watch a room here.
type Playback interface {
	Sessions
	Subscribe(ctx context.Context, roomID, offerSDP string) (media.Session, error)
	Viewers(roomID string) int
}

// whipPost is WHIP ingest (RFC 9725): the host's offer in, the answer out.
func (s *Server) whipPost(w http.ResponseWriter, r *http.Request) {
	rm, ok := s.lookupRoom(w, r)
	if !ok {
		return
	}
	id, ok := s.requireHost(w, r, rm)
	if !ok {
		return
	}
	var release func()
	if r, release, ok = s.admitWHIP(w, r, rm); !ok {
		return
	}
	defer release()
	offer, ok := s.readOffer(w, r, s.deps.WHIP != nil)
	if !ok {
		return
	}
	sess, err := s.deps.WHIP.Publish(r.Context(), rm.ID, id.ID, offer)
	if err != nil {
		s.mediaError(w, err)
		return
	}
	s.log.Info("whip publish", "room", rm.ID, "host", id.ID, "session", sess.ID)
	s.writeAnswer(w, "/whip/"+rm.ID+"/"+sess.ID, sess, s.deps.WHIP.ICEServers())
}

// whepPost is WHEP egress: a viewer's offer in, the answer out. It works
// before the host is live; media starts when the host goes live.
func (s *Server) whepPost(w http.ResponseWriter, r *http.Request) {
	rm, ok := s.lookupRoom(w, r)
	if !ok {
		return
	}
	if !s.mayWatch(w, r, rm) {
		return
	}
	var release func()
	if r, release, ok = s.admitWHEP(w, r, rm); !ok {
		return
	}
	defer release()
	offer, ok := s.readOffer(w, r, s.deps.WHEP != nil)
	if !ok {
		return
	}
	sess, err := s.deps.WHEP.Subscribe(r.Context(), rm.ID, offer)
	if err != nil {
		s.mediaError(w, err)
		return
	}
	s.writeAnswer(w, "/whep/"+rm.ID+"/"+sess.ID, sess, s.deps.WHEP.ICEServers())
	if s.deps.OnWatch != nil {
		s.deps.OnWatch(rm.ID)
	}
}

func (s *Server) whipPatch(w http.ResponseWriter, r *http.Request) {
	rm, ok := s.lookupRoom(w, r)
	if !ok {
		return
	}
	if _, ok := s.requireHost(w, r, rm); !ok {
		return
	}
	s.patch(w, r, rm, true)
}

func (s *Server) whepPatch(w http.ResponseWriter, r *http.Request) {
	rm, ok := s.lookupRoom(w, r)
	if !ok {
		return
	}
	s.patch(w, r, rm, false)
}

// sessionKind answers 404 unless the session in the path is a publisher
// (WHIP routes) or a viewer (WHEP routes): knowing the host's session id must
// not let anyone end or restart it through the unauthenticated WHEP routes.
func (s *Server) sessionKind(w http.ResponseWriter, r *http.Request, rm room.Room, publisher bool) (Sessions, bool) {
	sessions := s.sessions(publisher)
	if sessions == nil {
		writeError(w, http.StatusServiceUnavailable, "unavailable", "media is not available on this node")
		return nil, false
	}
	pub, err := sessions.IsPublisher(rm.ID, r.PathValue("session"))
	if err == nil && pub != publisher {
		kind := "WHEP"
		if publisher {
			kind = "WHIP"
		}
		err = fmt.Errorf("%w: %q is not a %s session", media.ErrSessionNotFound, r.PathValue("session"), kind)
	}
	if err != nil {
		s.mediaError(w, err)
		return nil, false
	}
	return sessions, true
}

// sessions are the WHIP (publisher) or WHEP session routes' media.
func (s *Server) sessions(publisher bool) Sessions {
	if publisher && s.deps.WHIP != nil {
		return s.deps.WHIP
	}
	if !publisher && s.deps.WHEP != nil {
		return s.deps.WHEP
	}
	return nil
}

func (s *Server) whipDelete(w http.ResponseWriter, r *http.Request) {
	rm, ok := s.lookupRoom(w, r)
	if !ok {
		return
	}
	if _, ok := s.requireHost(w, r, rm); !ok {
		return
	}
	if sessions, ok := s.sessionKind(w, r, rm, true); ok {
		s.closeSession(w, r, rm, sessions)
	}
}

// whepDelete needs no token: the session id in the Location is unguessable
// and is the capability to end that one session.
func (s *Server) whepDelete(w http.ResponseWriter, r *http.Request) {
	rm, ok := s.lookupRoom(w, r)
	if !ok {
		return
	}
	if sessions, ok := s.sessionKind(w, r, rm, false); ok {
		s.closeSession(w, r, rm, sessions)
	}
}

func (s *Server) closeSession(w http.ResponseWriter, r *http.Request, rm room.Room, sessions Sessions) {
	if err := sessions.Close(rm.ID, r.PathValue("session")); err != nil {
		s.mediaError(w, err)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// patch handles trickle ICE and ICE restarts (RFC 9725 section 4.3).
func (s *Server) patch(w http.ResponseWriter, r *http.Request, rm room.Room, publisher bool) {
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/trickle-ice-sdpfrag" {
		writeError(w, http.StatusUnsupportedMediaType, "bad_request", "Content-Type must be application/trickle-ice-sdpfrag")
		return
	}
	sessions, ok := s.sessionKind(w, r, rm, publisher)
	if !ok {
		return
	}
	body, err := readBody(w, r, s.cfg.MaxSDPBytes)
	if err != nil {
		s.bodyError(w, err)
		return
	}
	frag, err := sessions.Patch(r.Context(), rm.ID, r.PathValue("session"), string(body))
	if err != nil {
		s.mediaError(w, err)
		return
	}
	if frag == "" {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	w.Header().Set("Content-Type", "application/trickle-ice-sdpfrag")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte(frag))
}

// requireHost lets through who may publish the room (the access policy's
// ActPublish, as for every ingest): the room's stream key, or a host (or
// admin) token for the room, or the admin key.
func (s *Server) requireHost(w http.ResponseWriter, r *http.Request, rm room.Room) (room.Identity, bool) {
	return s.allow(w, r, room.ActPublish, &rm, room.RoleHost)
}

// mayWatch: public rooms are open to everyone; a private room needs a token
// for that room (any role). A bad token, or the stream key, is refused even
// on a public room, so a client learns its credentials are wrong.
func (s *Server) mayWatch(w http.ResponseWriter, r *http.Request, rm room.Room) bool {
	_, ok := s.allow(w, r, room.ActWatch, &rm, room.RoleGuest)
	return ok
}

// readOffer reads an SDP offer for a route whose media is available here.
func (s *Server) readOffer(w http.ResponseWriter, r *http.Request, available bool) (string, bool) {
	if !available {
		writeError(w, http.StatusServiceUnavailable, "unavailable", "media is not available on this node")
		return "", false
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/sdp" {
		writeError(w, http.StatusUnsupportedMediaType, "bad_request", "Content-Type must be application/sdp")
		return "", false
	}
	body, err := readBody(w, r, s.cfg.MaxSDPBytes)
	if err != nil {
		s.bodyError(w, err)
		return "", false
	}
	if len(strings.TrimSpace(string(body))) == 0 {
		writeError(w, http.StatusBadRequest, "bad_request", "empty SDP offer")
		return "", false
	}
	return string(body), true
}

func (s *Server) bodyError(w http.ResponseWriter, err error) {
	if errors.Is(err, errBodyTooLarge) {
		writeError(w, http.StatusRequestEntityTooLarge, "too_large", err.Error())
		return
	}
	writeError(w, http.StatusBadRequest, "bad_request", "could not read the request body")
}

func (s *Server) writeAnswer(w http.ResponseWriter, location string, sess media.Session, ice []media.ICEServer) {
	h := w.Header()
	h.Set("Location", location)
	h.Set("Content-Type", "application/sdp")
	h.Set("Accept-Patch", "application/trickle-ice-sdpfrag")
	if sess.ETag != "" {
		h.Set("ETag", `"`+sess.ETag+`"`)
	}
	for _, srv := range ice {
		for _, u := range srv.URLs {
			link := fmt.Sprintf("<%s>; rel=\"ice-server\"", u)
			if srv.Username != "" {
				link += fmt.Sprintf("; username=%q; credential=%q; credential-type=\"password\"", srv.Username, srv.Credential)
			}
			h.Add("Link", link)
		}
	}
	w.WriteHeader(http.StatusCreated)
	_, _ = w.Write([]byte(sess.AnswerSDP))
}

// mediaError maps the SFU's errors to statuses.
func (s *Server) mediaError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, media.ErrBadOffer):
		writeError(w, http.StatusBadRequest, "bad_request", err.Error())
	case errors.Is(err, media.ErrCodecUnsupported):
		writeCodecError(w, err) // hls.go
	case errors.Is(err, media.ErrNoCodec):
		writeError(w, http.StatusBadRequest, "bad_request", err.Error())
	case errors.Is(err, media.ErrNotOrigin):
		writeError(w, http.StatusConflict, "not_origin", err.Error())
	case errors.Is(err, media.ErrPublisherConflict):
		writeError(w, http.StatusConflict, "conflict", err.Error())
	case errors.Is(err, media.ErrSessionNotFound):
		writeError(w, http.StatusNotFound, "not_found", err.Error())
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		writeError(w, http.StatusServiceUnavailable, "unavailable", "timed out setting up the connection")
	default:
		s.log.Error("media", "err", err)
		writeError(w, http.StatusInternalServerError, "internal", "media setup failed")
	}
}
