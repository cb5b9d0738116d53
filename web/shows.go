package web

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"liveroom/record"
	"liveroom/room"
)

// Recorded shows: the API (list, get with the product script, delete) and
// the HLS VOD of each show under /replay/{room}/{show}/. Public rooms'
// shows are public; a private room's playlist and segments need a signed
// URL (native HLS players cannot send headers), handed out by the API to
// whoever may watch the room.

// ShowLibrary is the recorded shows (record.Library).
type ShowLibrary interface {
	List(roomID string) ([]record.Show, error)
	Get(roomID, showID string) (record.Show, error)
	Script(roomID, showID string) ([]record.Entry, error)
	Chat(roomID, showID string) ([]record.Entry, error)
	Delete(roomID, showID string) error
	Playlist(roomID, showID string, sign func(string) string) (string, error)
	File(roomID, showID, name string) (*os.File, error)
}

// replayURLTTL is how long a signed replay URL lasts: long enough to watch
// a show; the page asks the API again after that.
const replayURLTTL = 6 * time.Hour

func (s *Server) showRoutes(m *http.ServeMux) {
	if s.deps.Shows == nil {
		return
	}
	m.HandleFunc("GET /api/v1/rooms/{room}/shows", s.listShows)
	m.HandleFunc("GET /api/v1/rooms/{room}/shows/{show}", s.getShow)
	m.HandleFunc("DELETE /api/v1/rooms/{room}/shows/{show}", s.deleteShow)
	m.HandleFunc("GET /replay/{room}/{show}/{file}", s.replayFile)
	m.HandleFunc("GET /internal/v1/replay/{room}/{show}/{file}", s.internalReplay)
	assets, _ := fs.Sub(static, "static")
	m.HandleFunc("GET /replay/{room}/{show}", s.page(assets, "replay.html", true))
}

type showView struct {
	record.Show
	Playlist string         `json:"playlist"`
	Script   []record.Entry `json:"script,omitempty"`
	Chat     []record.Entry `json:"chat,omitempty"`
}

// showRoom finds the room and checks the caller may watch it.
func (s *Server) showRoom(w http.ResponseWriter, r *http.Request) (room.Room, bool) {
	rm, ok := s.lookupRoom(w, r)
	if !ok {
		return rm, false
	}
	if rm.Private && room.BearerToken(r.Header.Get("Authorization")) == "" {
		writeError(w, http.StatusNotFound, "not_found", "no such room")
		return rm, false
	}
	return rm, s.mayWatch(w, r, rm)
}

func (s *Server) showView(rm room.Room, sh record.Show) showView {
	u := "/replay/" + rm.ID + "/" + sh.ID + "/index.m3u8"
	if rm.Private {
		u = s.signReplay(rm.ID, sh.ID, "index.m3u8", time.Now().Add(replayURLTTL))
	}
	return showView{Show: sh, Playlist: u}
}

func (s *Server) listShows(w http.ResponseWriter, r *http.Request) {
	rm, ok := s.showRoom(w, r)
	if !ok {
		return
	}
	shows, err := s.deps.Shows.List(rm.ID)
	if err != nil {
		s.showError(w, err)
		return
	}
	out := make([]showView, 0, len(shows))
	for _, sh := range shows {
		if sh.Scope == rm.Scope() { // an earlier room of the same id keeps its shows to itself
			out = append(out, s.showView(rm, sh))
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"shows": out})
}

func (s *Server) getShow(w http.ResponseWriter, r *http.Request) {
	rm, ok := s.showRoom(w, r)
	if !ok {
		return
	}
	sh, err := s.deps.Shows.Get(rm.ID, r.PathValue("show"))
	if err == nil && sh.Scope != rm.Scope() {
		err = record.ErrNoShow
	}
	if err != nil {
		s.showError(w, err)
		return
	}
	v := s.showView(rm, sh)
	if v.Script, err = s.deps.Shows.Script(rm.ID, sh.ID); err == nil {
		v.Chat, err = s.deps.Shows.Chat(rm.ID, sh.ID)
	}
	if err != nil {
		s.showError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

// deleteShow: the room's host or an admin.
func (s *Server) deleteShow(w http.ResponseWriter, r *http.Request) {
	rm, ok := s.lookupRoom(w, r)
	if !ok {
		return
	}
	if _, ok := s.roomRole(w, r, rm, room.RoleHost); !ok {
		return
	}
	sh, err := s.deps.Shows.Get(rm.ID, r.PathValue("show"))
	if err == nil && sh.Scope != rm.Scope() {
		err = record.ErrNoShow
	}
	if err == nil && !sh.Ended {
		writeError(w, http.StatusConflict, "conflict", "the show is still being recorded")
		return
	}
	if err == nil {
		err = s.deps.Shows.Delete(rm.ID, sh.ID)
	}
	if err != nil {
		s.showError(w, err)
		return
	}
	s.log.Info("show deleted", "room", rm.ID, "show", sh.ID)
	w.WriteHeader(http.StatusNoContent)
}

// replayFile serves a show's playlist, init and media segments (with range
// requests, through http.ServeContent).
func (s *Server) replayFile(w http.ResponseWriter, r *http.Request) {
	roomID, showID, name := r.PathValue("room"), r.PathValue("show"), r.PathValue("file")
	if !room.ValidID(roomID) || !record.ValidShowID(showID) {
		s.showError(w, record.ErrNoShow)
		return
	}
	rm, err := s.deps.Rooms.Get(r.Context(), roomID)
	if err != nil {
		s.showError(w, record.ErrNoShow)
		return
	}
	if rm.Private && !s.replaySigned(r, roomID, showID, name) {
		writeError(w, http.StatusForbidden, "forbidden", "this replay needs a signed URL (GET /api/v1/rooms/{room}/shows with a token)")
		return
	}
	w.Header().Set("Access-Control-Allow-Origin", "*")
	if name == "index.m3u8" {
		var sign func(string) string
		if rm.Private {
			exp := time.Now().Add(replayURLTTL)
			sign = func(f string) string { return s.signReplay(roomID, showID, f, exp) }
		}
		text, err := s.deps.Shows.Playlist(roomID, showID, sign)
		if err != nil {
			s.showError(w, err)
			return
		}
		w.Header().Set("Content-Type", "application/vnd.apple.mpegurl")
		w.Header().Set("Cache-Control", "no-cache")
		_, _ = w.Write([]byte(text))
		return
	}
	s.serveLocalFile(w, r, roomID, showID, name)
}

// serveLocalFile serves a show file from this node's disk, or (cluster)
// from the node holding it.
func (s *Server) serveLocalFile(w http.ResponseWriter, r *http.Request, roomID, showID, name string) {
	f, err := s.deps.Shows.File(roomID, showID, name)
	if errors.Is(err, record.ErrNoShow) && !strings.HasPrefix(r.URL.Path, "/internal/") && s.proxyReplay(w, r, roomID, showID, name) {
		return
	}
	if err != nil {
		s.showError(w, err)
		return
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		s.showError(w, err)
		return
	}
	ct := "video/iso.segment"
	if strings.HasSuffix(name, ".mp4") {
		ct = "video/mp4"
	}
	w.Header().Set("Content-Type", ct)
	w.Header().Set("Cache-Control", "max-age=3600")
	http.ServeContent(w, r, "", fi.ModTime(), f)
}

func (s *Server) showError(w http.ResponseWriter, err error) {
	if errors.Is(err, record.ErrNoShow) || errors.Is(err, fs.ErrNotExist) {
		writeError(w, http.StatusNotFound, "not_found", "no such show")
		return
	}
	s.log.Error("shows", "err", err)
	writeError(w, http.StatusInternalServerError, "internal", "recordings unavailable")
}

// signReplay is a replay file's URL signed until exp: HMAC over room, show,
// file and expiry.
func (s *Server) signReplay(roomID, showID, name string, exp time.Time) string {
	e := strconv.FormatInt(exp.Unix(), 10)
	q := url.Values{"exp": {e}, "sig": {s.replayMAC(roomID, showID, name, e)}}
	if name == "index.m3u8" {
		return "/replay/" + roomID + "/" + showID + "/" + name + "?" + q.Encode()
	}
	return name + "?" + q.Encode() // relative to the playlist
}

func (s *Server) replayMAC(roomID, showID, name, exp string) string {
	m := hmac.New(sha256.New, s.deps.ReplaySecret)
	m.Write([]byte("replay\x00" + roomID + "\x00" + showID + "\x00" + name + "\x00" + exp))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func (s *Server) replaySigned(r *http.Request, roomID, showID, name string) bool {
	if len(s.deps.ReplaySecret) == 0 {
		return false
	}
	q := r.URL.Query()
	exp, err := strconv.ParseInt(q.Get("exp"), 10, 64)
	if err != nil || time.Now().Unix() > exp {
		return false
	}
	want := s.replayMAC(roomID, showID, name, q.Get("exp"))
	return hmac.Equal([]byte(want), []byte(q.Get("sig")))
}
