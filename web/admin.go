package web

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"liveroom/chat"
	"liveroom/room"
)

const maxAdminBody = 64 << 10

// ModerationLog reads a room's audit log of moderator actions, newest last.
type ModerationLog interface {
	ModerationLog(ctx context.Context, roomID string, limit int) ([]chat.AuditEntry, error)
}

// ask puts the caller's Authorization bearer to the access policy
// (room.Access): every route decides who may do what through it.
func (s *Server) ask(r *http.Request, act room.Action, rm *room.Room, min room.Role) (room.Identity, error) {
	return s.access.Check(room.AccessRequest{
		Action: act, Room: rm, MinRole: min,
		Credential: room.BearerToken(r.Header.Get("Authorization")),
	})
}

// allow asks the policy and answers a refusal itself: 401 for a missing,
// bad or misplaced credential (the stream key outside ingest), 403 for a
// good one without the rights.
func (s *Server) allow(w http.ResponseWriter, r *http.Request, act room.Action, rm *room.Room, min room.Role) (room.Identity, bool) {
	id, err := s.ask(r, act, rm, min)
	if err != nil {
		e := room.Refusal(err)
		status := http.StatusUnauthorized
		if e.Code == room.CodeForbidden {
			status = http.StatusForbidden
		}
		writeError(w, status, e.Code, e.Message)
		return room.Identity{}, false
	}
	return id, true
}

// roomRole lets through callers with at least min in the room: a token for
// it (or "*"), or the admin key; never the stream key.
func (s *Server) roomRole(w http.ResponseWriter, r *http.Request, rm room.Room, min room.Role) (room.Identity, bool) {
	return s.allow(w, r, room.ActRoom, &rm, min)
}

func (s *Server) isAdmin(r *http.Request) bool {
	_, err := s.ask(r, room.ActAdmin, nil, room.RoleAdmin)
	return err == nil
}

// admin guards the admin API: the admin key or an admin token for room *.
func (s *Server) admin(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if _, ok := s.allow(w, r, room.ActAdmin, nil, room.RoleAdmin); ok {
			h(w, r)
		}
	}
}

// storeError maps room store errors to HTTP.
func (s *Server) storeError(w http.ResponseWriter, err error) {
	var ve *room.ValidationError
	switch {
	case errors.Is(err, room.ErrNotFound):
		writeError(w, http.StatusNotFound, "not_found", "no such room")
	case errors.Is(err, room.ErrExists):
		writeError(w, http.StatusConflict, "conflict", err.Error())
	case errors.As(err, &ve):
		writeError(w, http.StatusBadRequest, "bad_request", ve.Error())
	default:
		s.log.Error("room store", "err", err)
		writeError(w, http.StatusServiceUnavailable, "unavailable", "room store unavailable")
	}
}

type roomRequest struct {
	ID          string     `json:"id"`
	Title       string     `json:"title"`
	Private     bool       `json:"private"`
	GuestChat   bool       `json:"guest_chat"`
	Source      string     `json:"source"`
	ScheduledAt *time.Time `json:"scheduled_at"`
	Record      *bool      `json:"record"`
	CheckoutURL string     `json:"checkout_url"` // admin_orders.go
}

func (s *Server) createRoom(w http.ResponseWriter, r *http.Request) {
	var req roomRequest
	if status, err := decodeJSON(w, r, maxAdminBody, &req); err != nil {
		writeDecodeError(w, status, err)
		return
	}
	if req.ID == "" {
		req.ID = "r" + room.RandomID(5)
	}
	rm, err := room.NewRoom(room.Room{
		ID: req.ID, Title: req.Title, Private: req.Private, GuestChat: req.GuestChat,
		Source: req.Source, ScheduledAt: req.ScheduledAt, Record: req.Record,
		CheckoutURL: req.CheckoutURL,
	}, time.Now())
	if err == nil {
		err = validCheckoutURL(req.CheckoutURL)
	}
	if err != nil {
		s.storeError(w, err)
		return
	}
	if rm, err = s.deps.Rooms.Create(r.Context(), rm); err != nil {
		s.storeError(w, err)
		return
	}
	s.followSource(rm.ID)
	s.log.Info("room created", "room", rm.ID)
	w.Header().Set("Location", "/api/v1/rooms/"+rm.ID)
	writeJSON(w, http.StatusCreated, rm)
}

// listRooms is the lobby's source too: without admin credentials it lists
// public rooms without secrets.
func (s *Server) listRooms(w http.ResponseWriter, r *http.Request) {
	rooms, err := s.deps.Rooms.List(r.Context())
	if err != nil {
		s.storeError(w, err)
		return
	}
	admin := s.isAdmin(r)
	out := make([]roomView, 0, len(rooms))
	for _, rm := range rooms {
		if !admin {
			if rm.Private {
				continue
			}
			rm = rm.Public()
		}
		out = append(out, s.view(rm))
	}
	writeJSON(w, http.StatusOK, map[string]any{"rooms": out})
}

// roomView adds live figures to a stored room.
type roomView struct {
	room.Room
	Viewers int         `json:"viewers"`
	Ingest  *ingestURLs `json:"ingest,omitempty"`
}

func (s *Server) view(rm room.Room) roomView {
	v := roomView{Room: rm}
	if s.deps.WHEP != nil {
		v.Viewers = s.deps.WHEP.Viewers(rm.ID)
	}
	return v
}

// getRoom: public rooms for everyone without secrets; the room's host (or
// an admin) also gets the stream key and where to send the stream. Only a
// global admin sees the RTSP source with its credentials. The stream key
// is refused: it only publishes.
func (s *Server) getRoom(w http.ResponseWriter, r *http.Request) {
	rm, ok := s.lookupRoom(w, r)
	if !ok {
		return
	}
	if rm.Private && room.BearerToken(r.Header.Get("Authorization")) == "" {
		writeError(w, http.StatusNotFound, "not_found", "no such room")
		return
	}
	id, ok := s.roomRole(w, r, rm, room.RoleGuest)
	if !ok {
		return
	}
	v := s.viewFor(id, rm)
	if id.Role.AtLeast(room.RoleHost) {
		v.Ingest = s.ingest(r, rm.ID, rm.StreamKey)
	}
	writeJSON(w, http.StatusOK, v)
}

// viewFor shows rm to who: everything to a global admin; the stream key and
// the source without its credentials to the room's host; the public room
// to everyone else.
func (s *Server) viewFor(who room.Identity, rm room.Room) roomView {
	switch {
	case room.GlobalAdmin(who):
	case who.Role.AtLeast(room.RoleHost):
		rm.Source = room.RedactURL(rm.Source)
	default:
		rm = rm.Public()
	}
	return s.view(rm)
}

// ingestURLs tell a host where to publish.
type ingestURLs struct {
	WHIP string `json:"whip"`
	RTSP string `json:"rtsp,omitempty"`
	// RTMP is the OBS "Custom" server; the stream key goes in its key field.
	RTMP string `json:"rtmp,omitempty"`
	// SRT is the whole caller-mode URL, stream key included.
	SRT string `json:"srt,omitempty"`
}

func (s *Server) ingest(r *http.Request, roomID, key string) *ingestURLs {
	scheme := "http"
	if r.TLS != nil || s.addrs.forwardedHTTPS(r) {
		scheme = "https"
	}
	base := scheme + "://" + r.Host
	if s.cfg.PublicURL != "" {
		base = strings.TrimRight(s.cfg.PublicURL, "/")
	}
	in := &ingestURLs{WHIP: base + "/whip/" + roomID}
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	if s.deps.RTSPPort != 0 {
		in.RTSP = "rtsp://" + net.JoinHostPort(host, strconv.Itoa(s.deps.RTSPPort)) + "/" + roomID
	}
	in.RTMP = s.rtmpURL(host)
	in.SRT = s.srtURL(host, roomID, key)
	return in
}

// rtmpURL is the OBS "Custom" server on host; "" when RTMP is off.
func (s *Server) rtmpURL(host string) string {
	if s.deps.RTMPPort == 0 {
		return ""
	}
	return "rtmp://" + net.JoinHostPort(host, strconv.Itoa(s.deps.RTMPPort)) + "/live"
}

// srtURL is where an SRT caller publishes to the room with its stream key;
// "" when SRT is off.
func (s *Server) srtURL(host, roomID, key string) string {
	if s.deps.SRTPort == 0 {
		return ""
	}
	return "srt://" + net.JoinHostPort(host, strconv.Itoa(s.deps.SRTPort)) + "?streamid=publish:" + roomID + ":" + key
}

type roomPatch struct {
	Title           *string      `json:"title"`
	Status          *room.Status `json:"status"`
	Private         *bool        `json:"private"`
	GuestChat       *bool        `json:"guest_chat"`
	Source          *string      `json:"source"`
	ScheduledAt     *time.Time   `json:"scheduled_at"`
	RotateStreamKey bool         `json:"rotate_stream_key"`
	Record          *bool        `json:"record"`
	CheckoutURL     *string      `json:"checkout_url"`
}

// patchRoom: admins change anything; the room's host may change the title
// and end the show (status), from the studio.
func (s *Server) patchRoom(w http.ResponseWriter, r *http.Request) {
	cur, ok := s.lookupRoom(w, r)
	if !ok {
		return
	}
	who, ok := s.roomRole(w, r, cur, room.RoleHost)
	if !ok {
		return
	}
	var p roomPatch
	if status, err := decodeJSON(w, r, maxAdminBody, &p); err != nil {
		writeDecodeError(w, status, err)
		return
	}
	if !room.GlobalAdmin(who) && (p.Private != nil || p.GuestChat != nil || p.Source != nil || p.ScheduledAt != nil || p.RotateStreamKey || p.CheckoutURL != nil) {
		writeError(w, http.StatusForbidden, "forbidden", "a host may change title, status and record; the rest needs admin credentials")
		return
	}
	if p.CheckoutURL != nil {
		if err := validCheckoutURL(*p.CheckoutURL); err != nil {
			s.storeError(w, err)
			return
		}
	}
	if p.Status != nil {
		if err := room.RequestStatus(*p.Status); err != nil {
			s.storeError(w, err)
			return
		}
	}
	rm, err := s.deps.Rooms.Update(r.Context(), r.PathValue("room"), func(rm *room.Room) error {
		if p.Title != nil {
			rm.Title = *p.Title
		}
		if p.Status != nil {
			rm.Status = *p.Status
		}
		if p.Private != nil {
			rm.Private = *p.Private
		}
		if p.GuestChat != nil {
			rm.GuestChat = *p.GuestChat
		}
		if p.Source != nil {
			rm.Source = *p.Source
		}
		if p.ScheduledAt != nil {
			rm.ScheduledAt = p.ScheduledAt
		}
		if p.Record != nil {
			rm.Record = p.Record
		}
		if p.RotateStreamKey {
			rm.StreamKey = "sk_" + room.RandomID(16)
		}
		if p.CheckoutURL != nil {
			rm.CheckoutURL = *p.CheckoutURL
		}
		return nil
	})
	if err != nil {
		s.storeError(w, err)
		return
	}
	if p.Source != nil {
		s.followSource(rm.ID)
	}
	writeJSON(w, http.StatusOK, s.viewFor(who, rm))
}

// followSource tells the source reconciler that a room's source or
// existence changed (it decides which node pulls the source).
func (s *Server) followSource(roomID string) {
	if s.deps.OnSource != nil {
		s.deps.OnSource(roomID)
	}
}

func (s *Server) deleteRoom(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("room")
	rm, err := s.deps.Rooms.Get(r.Context(), id)
	if err != nil {
		s.storeError(w, err)
		return
	}
	if err := s.deps.Rooms.Delete(r.Context(), id); err != nil {
		s.storeError(w, err)
		return
	}
	s.followSource(id) // this node's media of the room closes
	if s.deps.Hub != nil {
		// The incarnation ends: its connections close, and a room created
		// with the same id starts a new, empty scope (room.Scope).
		if err := s.deps.Hub.CloseRoom(r.Context(), rm.Scope()); err != nil {
			s.log.Warn("close room websockets", "room", id, "err", err)
		}
	}
	s.log.Info("room deleted", "room", id, "incarnation", rm.Incarnation)
	w.WriteHeader(http.StatusNoContent)
}

// moderationLog is readable by the room's moderators and hosts and by admins.
func (s *Server) moderationLog(w http.ResponseWriter, r *http.Request) {
	rm, ok := s.lookupRoom(w, r)
	if !ok {
		return
	}
	if _, ok := s.roomRole(w, r, rm, room.RoleModerator); !ok {
		return
	}
	if s.deps.ModLog == nil {
		writeError(w, http.StatusServiceUnavailable, "unavailable", "moderation log not available")
		return
	}
	limit := 200
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			writeError(w, http.StatusBadRequest, "bad_request", "limit: must be 1-1000")
			return
		}
		limit = n
	}
	entries, err := s.deps.ModLog.ModerationLog(r.Context(), rm.Scope(), limit)
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, "unavailable", err.Error())
		return
	}
	for i := range entries {
		entries[i].Room = rm.ID // stored under the data scope; clients know the id
	}
	writeJSON(w, http.StatusOK, map[string]any{"entries": entries})
}

type tokenRequest struct {
	Sub  string `json:"sub"`
	Name string `json:"name"`
	Role string `json:"role"`
	Room string `json:"room"`
	TTL  string `json:"ttl"` // Go duration, default 24h
}

func (s *Server) mintToken(w http.ResponseWriter, r *http.Request) {
	var req tokenRequest
	if status, err := decodeJSON(w, r, maxAdminBody, &req); err != nil {
		writeDecodeError(w, status, err)
		return
	}
	role, err := room.ParseRole(req.Role)
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", "role: "+err.Error())
		return
	}
	ttl := 24 * time.Hour
	if req.TTL != "" {
		if ttl, err = time.ParseDuration(req.TTL); err != nil || ttl <= 0 || ttl > 366*24*time.Hour {
			writeError(w, http.StatusBadRequest, "bad_request", "ttl: must be a duration like 1h or 720h, at most a year")
			return
		}
	}
	if req.Room != "*" && !room.ValidID(req.Room) {
		writeError(w, http.StatusBadRequest, "bad_request", "room: must be a room id or *")
		return
	}
	if role == room.RoleAdmin && req.Room != "*" {
		writeError(w, http.StatusBadRequest, "bad_request", "room: an admin token must be for room *")
		return
	}
	if req.Sub == "" || len(req.Sub) > 128 {
		writeError(w, http.StatusBadRequest, "bad_request", "sub: must be 1-128 characters")
		return
	}
	if room.ReservedSubject(req.Sub) {
		writeError(w, http.StatusBadRequest, "bad_request", "sub: reserved for the server's own identities (admin, host:…, edge:…, guest-…, rtsp-pull)")
		return
	}
	if len(req.Name) > 64 {
		writeError(w, http.StatusBadRequest, "bad_request", "name: at most 64 characters")
		return
	}
	who := room.Identity{ID: req.Sub, Name: req.Name, Role: role, Room: req.Room}
	if req.Room != "*" {
		// Bind the token to the room's current incarnation: it stops
		// working if the room is deleted and created again.
		if rm, err := s.deps.Rooms.Get(r.Context(), req.Room); err == nil {
			who.Incarnation = rm.Incarnation
		}
	}
	tok, err := s.deps.Auth.Mint(who, ttl)
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	writeJSON(w, http.StatusCreated, map[string]any{"token": tok, "expires_at": time.Now().Add(ttl).UTC()})
}
