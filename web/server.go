// Package web is the HTTP face of liveroom: routing, the admin API, the
// WHIP/WHEP endpoints, the node-to-node edge route and its client, and the
// embedded pages. It holds no business logic: it checks who is asking (for
// RTSP too, RTSPAuth) and hands the request to room, media, chat or cart.
package web

import (
	"context"
	"log/slog"
	"net/http"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"liveroom/room"
)

// Deps are the components the HTTP layer routes to. Optional ones may be nil:
// their routes then answer 503 unavailable.
type Deps struct {
	Auth  *room.Auth
	Rooms room.Store
	// WHIP, WHEP and Edge are the media server as each route sees it.
	WHIP   Ingest
	WHEP   Playback
	HLS    HLSOutput // LL-HLS for viewers without WebRTC (hls.go); nil = 503
	Edge   EdgeOrigin
	Hub    WebSockets
	ModLog ModerationLog
	// Catalog serves products and orders (the cart store).
	Catalog Catalog
	// Webhooks lists and retries parked order webhooks (the cart outbox).
	Webhooks FailedWebhooks
	// Giveaways serves the public record of giveaways (admin_giveaways.go).
	Giveaways Giveaways
	// Orders moves orders through their states (the cart service).
	Orders OrderLife
	// RTSPPort, when not 0, is advertised to hosts as the RTSP ingest port.
	RTSPPort int
	// RTMPPort, when not 0, is advertised to hosts as the RTMP ingest port
	// (server rtmp://HOST:PORT/live, the stream key as the key).
	RTMPPort int
	// SRTPort, when not 0, is advertised to hosts as the SRT (UDP) ingest
	// port (srt://HOST:PORT?streamid=publish:{room}:{key}).
	SRTPort int
	// Gatherer serves /metrics; Ready reports whether this node can take
	// traffic (e.g. Redis reachable); nil = always ready.
	Gatherer prometheus.Gatherer
	Ready    func(ctx context.Context) error
	// ReadyDetail, if set, adds to a ready node's /readyz answer (in a
	// cluster, whether Redis persists what the docs promise).
	ReadyDetail func(ctx context.Context) map[string]string
	Logger      *slog.Logger
	// ClusterSecret, in cluster mode, authenticates other nodes pulling a
	// room's media from this one (POST /internal/v1/edge/{room}).
	ClusterSecret []byte
	// OnWatch, if set, is told about every new WHEP session (after the
	// answer is sent): the edge reconciler pulls the room from its origin
	// if that is another node (media.Edges.Watch).
	OnWatch func(roomID string)
	// OnSource, if set, is told that a room's RTSP source was set, changed
	// or removed, or the room deleted: the one reconciler of sources
	// (room.Lifecycle.SourceChanged) starts, moves or stops the pull and
	// closes a deleted room's media.
	OnSource func(roomID string)
	// Shows, if set, serves recorded shows (web/shows.go); ReplaySecret
	// signs private rooms' replay URLs.
	Shows        ShowLibrary
	ReplaySecret []byte
}

// WebSockets serves a room's WebSocket once the room is known to exist.
type WebSockets interface {
	ServeWS(w http.ResponseWriter, r *http.Request, roomID string)
	// CloseRoom disconnects everyone from a deleted room's incarnation
	// (scope is room.Room.Scope).
	CloseRoom(ctx context.Context, scope string) error
}

// Server routes HTTP requests. Build it with New; it is an http.Handler.
type Server struct {
	cfg    Config
	deps   Deps
	log    *slog.Logger
	mux    *http.ServeMux
	addrs  *ClientAddrs
	access *room.Access // who may do what: every route asks it
}

// New builds the router. cfg must have been validated.
func New(cfg Config, deps Deps) *Server {
	s := &Server{cfg: cfg, deps: deps, log: deps.Logger, mux: http.NewServeMux(), addrs: cfg.ClientAddrs(),
		access: room.NewAccess(deps.Auth, deps.ClusterSecret)}
	if s.log == nil {
		s.log = slog.Default()
	}
	s.routes()
	return s
}

func (s *Server) routes() {
	m := s.mux
	m.HandleFunc("GET /healthz", s.healthz)
	m.HandleFunc("GET /readyz", s.readyz)
	if s.deps.Gatherer != nil {
		m.Handle("GET /metrics", promhttp.HandlerFor(s.deps.Gatherer, promhttp.HandlerOpts{}))
	}

	m.HandleFunc("POST /api/v1/rooms", s.admin(s.createRoom))
	m.HandleFunc("GET /api/v1/rooms", s.listRooms)
	m.HandleFunc("GET /api/v1/rooms/{room}", s.getRoom)
	m.HandleFunc("PATCH /api/v1/rooms/{room}", s.patchRoom)
	m.HandleFunc("DELETE /api/v1/rooms/{room}", s.admin(s.deleteRoom))
	m.HandleFunc("GET /api/v1/rooms/{room}/moderation/log", s.moderationLog)
	m.HandleFunc("GET /api/v1/retired_rooms", s.admin(s.listRetiredRooms)) // admin_retired.go
	m.HandleFunc("POST /api/v1/tokens", s.admin(s.mintToken))
	s.catalogRoutes(m)
	s.giveawayRoutes(m)
	s.webhookRoutes(m)
	s.orderRoutes(m) // admin_orders.go

	m.HandleFunc("POST /whip/{room}", s.cors(s.whipPost))
	m.HandleFunc("PATCH /whip/{room}/{session}", s.cors(s.whipPatch))
	m.HandleFunc("DELETE /whip/{room}/{session}", s.cors(s.whipDelete))
	m.HandleFunc("POST /whep/{room}", s.cors(s.whepPost))
	m.HandleFunc("PATCH /whep/{room}/{session}", s.cors(s.whepPatch))
	m.HandleFunc("DELETE /whep/{room}/{session}", s.cors(s.whepDelete))
	m.HandleFunc("GET /whep/{room}/{session}/layer", s.cors(s.whepLayer))  // whep_layer.go
	m.HandleFunc("POST /whep/{room}/{session}/layer", s.cors(s.whepLayer)) // whep_layer.go
	m.HandleFunc("GET /whip/{room}/{session}/layers", s.cors(s.whipLayers))
	m.HandleFunc("POST /internal/v1/edge/{room}", s.edgePost)
	m.HandleFunc("OPTIONS /whip/", s.cors(s.preflight))
	m.HandleFunc("OPTIONS /whep/", s.cors(s.preflight))

	m.HandleFunc("GET /ws/{room}", s.websocket)
	s.hlsRoutes(m) // hls.go

	s.pageRoutes(m)
	s.showRoutes(m) // shows.go
	m.HandleFunc("/", s.notFound)
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	r = s.addrs.annotate(r)                       // clientaddr.go
	r = withBodyDeadline(w, r, s.cfg.BodyTimeout) // bodydeadline.go
	s.mux.ServeHTTP(w, r)
}

func (s *Server) notFound(w http.ResponseWriter, r *http.Request) {
	writeError(w, http.StatusNotFound, "not_found", "no route for "+r.Method+" "+r.URL.Path)
}

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if s.deps.Ready != nil {
		if err := s.deps.Ready(r.Context()); err != nil {
			writeError(w, http.StatusServiceUnavailable, "unavailable", err.Error())
			return
		}
	}
	body := map[string]string{}
	if s.deps.ReadyDetail != nil {
		body = s.deps.ReadyDetail(r.Context())
	}
	body["status"] = "ready"
	writeJSON(w, http.StatusOK, body)
}

// lookupRoom answers 404 for a room that does not exist.
func (s *Server) lookupRoom(w http.ResponseWriter, r *http.Request) (room.Room, bool) {
	id := r.PathValue("room")
	if !room.ValidID(id) {
		writeError(w, http.StatusNotFound, "not_found", "no such room")
		return room.Room{}, false
	}
	rm, err := s.deps.Rooms.Get(r.Context(), id)
	if err != nil {
		s.storeError(w, err)
		return room.Room{}, false
	}
	return rm, true
}

func (s *Server) websocket(w http.ResponseWriter, r *http.Request) {
	rm, ok := s.lookupRoom(w, r)
	if !ok {
		return
	}
	if s.deps.Hub == nil {
		writeError(w, http.StatusServiceUnavailable, "unavailable", "room chat is not available on this node")
		return
	}
	s.deps.Hub.ServeWS(w, r, rm.ID)
}

// originAllowed applies http.allowed_origins: same origin always, listed
// origins, or any with "*".
func (s *Server) originAllowed(r *http.Request) (string, bool) {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return "", false
	}
	if strings.EqualFold(strings.TrimPrefix(strings.TrimPrefix(origin, "https://"), "http://"), r.Host) {
		return origin, true
	}
	for _, o := range s.cfg.AllowedOrigins {
		if o == "*" || strings.EqualFold(o, origin) {
			return origin, true
		}
	}
	return "", false
}

// cors lets allowed cross-origin pages use WHIP/WHEP (a shop embedding the
// player on its own site). Non-browser clients send no Origin and pass.
func (s *Server) cors(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if origin, ok := s.originAllowed(r); ok {
			hd := w.Header()
			hd.Set("Access-Control-Allow-Origin", origin)
			hd.Set("Vary", "Origin")
			hd.Set("Access-Control-Allow-Methods", "GET, POST, PATCH, DELETE, OPTIONS")
			hd.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, If-Match")
			hd.Set("Access-Control-Expose-Headers", "Location, ETag, Link, Accept-Patch, X-Liveroom-Node")
		}
		h(w, r)
	}
}

func (s *Server) preflight(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Accept-Post", "application/sdp")
	w.WriteHeader(http.StatusNoContent)
}
