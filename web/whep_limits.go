package web

import (
	"errors"
	"math"
	"net/http"
	"strconv"

	"liveroom/media"
	"liveroom/room"
)

// admitter is what the WHIP/WHEP session caps need from the media server
// (media.SFU implements it). A WHIP or WHEP backend without it is not capped.
type admitter interface {
	AdmitViewer(roomID, clientKey string) (*media.Admission, error)
	AdmitPublisher(roomID, clientKey string) (*media.Admission, error)
}

// admitWHEP takes a place for a viewer session of the request's client
// address before the offer is read; it answers 429 or 503 with Retry-After
// when a cap is reached. The returned request carries the admission to
// Subscribe; if no session claims it, release frees it (the handler defers
// it: freed before the answer reaches the client, so a client that sends
// its next offer at once is not refused for a place it no longer holds).
func (s *Server) admitWHEP(w http.ResponseWriter, r *http.Request, rm room.Room) (_ *http.Request, release func(), ok bool) {
	a, ok := s.deps.WHEP.(admitter)
	if !ok {
		return r, func() {}, true
	}
	return admit(w, r, func(key string) (*media.Admission, error) { return a.AdmitViewer(rm.ID, key) })
}

// admitWHIP is admitWHEP for a host's WHIP session.
func (s *Server) admitWHIP(w http.ResponseWriter, r *http.Request, rm room.Room) (_ *http.Request, release func(), ok bool) {
	a, ok := s.deps.WHIP.(admitter)
	if !ok {
		return r, func() {}, true
	}
	return admit(w, r, func(key string) (*media.Admission, error) { return a.AdmitPublisher(rm.ID, key) })
}

func admit(w http.ResponseWriter, r *http.Request, take func(key string) (*media.Admission, error)) (*http.Request, func(), bool) {
	adm, err := take(room.ClientKey(r))
	if err != nil {
		writeLimitError(w, err)
		return r, func() {}, false
	}
	return r.WithContext(media.WithAdmission(r.Context(), adm)), adm.Release, true
}

// writeLimitError answers a refused admission: 429 when the client's own
// address holds too much, 503 when the room or node is full; both with
// Retry-After.
func writeLimitError(w http.ResponseWriter, err error) {
	var le *media.LimitError
	if !errors.As(err, &le) {
		writeError(w, http.StatusServiceUnavailable, "unavailable", "media is not available on this node")
		return
	}
	w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(le.RetryAfter.Seconds()))))
	if le.PerClient {
		writeError(w, http.StatusTooManyRequests, "rate_limited", "too many media sessions from this address ("+le.Reason+"); retry later")
		return
	}
	writeError(w, http.StatusServiceUnavailable, "unavailable", "this node is at capacity ("+le.Reason+"); retry later")
}
