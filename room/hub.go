package room

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"
)

// Hub serves the rooms' WebSockets on this node: it admits connections,
// dispatches client frames to registered handlers and fans room events out
// from the bus to the local connections.
//
// Other packages plug in through Handle (message kinds), OnJoin (admission
// checks) and AddSnapshot (fields of the welcome), and talk to clients
// through Publish, SendUser, SendRole and Kick. Register everything before
// serving.
type Hub struct {
	cfg   HubConfig
	auth  *Auth
	rooms Store
	bus   Bus
	log   *slog.Logger
	m     *hubMetrics

	upgrader websocket.Upgrader
	readBufs sync.Pool
	ips      ipLimiter
	shards   []*shard

	mu        sync.RWMutex
	handlers  map[string]handlerEntry
	joins     []JoinFunc
	snapshots []SnapshotFunc
	stopped   bool

	wg      sync.WaitGroup // connection pumps and refusals
	conns   atomic.Int64   // WebSocket connections served now
	writers writers        // shared write goroutines (conn_writer.go)

	slowConsumerMsg wsFrame

	observers atomic.Pointer[[]PublishObserver] // hub_observe.go
}

// HubDeps are the values a hub is built from.
type HubDeps struct {
	Auth    *Auth
	Rooms   Store
	Bus     Bus
	Log     *slog.Logger          // nil: discard
	Metrics prometheus.Registerer // nil: not exported
}

// NewHub builds a hub; call Run to start its timers.
func NewHub(cfg HubConfig, deps HubDeps) (*Hub, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Auth == nil || deps.Rooms == nil || deps.Bus == nil {
		return nil, errors.New("hub: Auth, Rooms and Bus are required")
	}
	if deps.Log == nil {
		deps.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	m, err := newHubMetrics(deps.Metrics)
	if err != nil {
		return nil, err
	}
	h := &Hub{
		cfg: cfg, auth: deps.Auth, rooms: deps.Rooms, bus: deps.Bus, log: deps.Log, m: m,
		ips:      ipLimiter{max: cfg.MaxConnsPerIP, n: map[string]int{}},
		handlers: map[string]handlerEntry{},
	}
	h.readBufs.New = func() any { b := make([]byte, 0, cfg.ReadLimit+1); return &b }
	h.upgrader = websocket.Upgrader{
		HandshakeTimeout: 10 * time.Second,
		// Small buffers keep idle connections cheap: frames are read into
		// a pooled buffer and events are written from prepared frames.
		ReadBufferSize:  512,
		WriteBufferSize: 512,
		WriteBufferPool: &sync.Pool{},
		CheckOrigin: func(r *http.Request) bool {
			ok := cfg.originAllowed(r.Header.Get("Origin"), r.Host)
			if !ok {
				h.m.rejects.WithLabelValues("origin").Inc()
			}
			return ok
		},
		Error: func(w http.ResponseWriter, r *http.Request, status int, reason error) {
			http.Error(w, http.StatusText(status), status)
		},
	}
	h.shards = make([]*shard, cfg.Shards)
	for i := range h.shards {
		h.shards[i] = &shard{rooms: map[string]*localRoom{}}
	}
	h.slowConsumerMsg = h.prepared(errorEvent("", CodeSlowConsumer, "you are not reading fast enough; reconnect and resume"))
	h.Handle("resume", RoleGuest, h.handleResume)
	return h, nil
}

func (h *Hub) prepared(ev Event) wsFrame {
	f, _ := eventFrame(ev)
	return f
}

// HandlerFunc handles one client frame. A returned *Error reaches the client
// as an `error` event with the frame's ref; any other error is logged and
// reported as `unavailable`. Success needs no reply: the effect (usually a
// room event) is the answer, or the handler calls req.Reply.
type HandlerFunc func(ctx context.Context, req *Request) error

// JoinFunc may refuse a connection before it is served; a returned *Error's
// code picks the close code (e.g. "banned" closes with 4003).
type JoinFunc func(ctx context.Context, roomID string, who Identity) error

// SnapshotFunc adds fields to a welcome (see Snapshot).
type SnapshotFunc func(ctx context.Context, s *Snapshot) error

type handlerEntry struct {
	min Role
	h   HandlerFunc
}

// Handle registers h for frames of type kind from users with at least
// role min (guests are RoleGuest). A later registration replaces an earlier.
func (h *Hub) Handle(kind string, min Role, fn HandlerFunc) {
	if !validKind(kind) {
		panic(fmt.Sprintf("hub: bad message kind %q", kind)) // a programming error, not input
	}
	h.mu.Lock()
	h.handlers[kind] = handlerEntry{min: min, h: fn}
	h.mu.Unlock()
}

// OnJoin adds an admission check run for every new connection.
func (h *Hub) OnJoin(f JoinFunc) {
	h.mu.Lock()
	h.joins = append(h.joins, f)
	h.mu.Unlock()
}

// AddSnapshot adds a welcome contributor, run for every welcome in
// registration order.
func (h *Hub) AddSnapshot(f SnapshotFunc) {
	h.mu.Lock()
	h.snapshots = append(h.snapshots, f)
	h.mu.Unlock()
}

// Publish sends a room event to everyone in the room (on every node),
// through the bus, which stamps seq and ts. It returns the stamped event.
// Here and in SendUser, SendRole, Kick, CloseRoom, AddLikes, Viewers and
// RoleOf, roomID is the room's data scope (Scope, Request.Room): an event
// reaches only the incarnation it was meant for. Callers holding a plain
// room id resolve it with ScopeOf.
func (h *Hub) Publish(ctx context.Context, roomID string, ev Event) (Event, error) {
	ev, err := h.bus.Publish(ctx, roomID, ev)
	if err == nil {
		h.observe(roomID, ev)
	}
	return ev, err
}

// ScopeOf is the data scope of the room's current incarnation.
func (h *Hub) ScopeOf(ctx context.Context, roomID string) (string, error) {
	rm, err := h.rooms.Get(ctx, roomID)
	if err != nil {
		return "", err
	}
	return rm.Scope(), nil
}

// SendUser sends a private event to every connection of userID in the room
// (all of a buyer's tabs, on any node).
func (h *Hub) SendUser(ctx context.Context, roomID, userID string, ev Event) error {
	if userID == "" {
		return errors.New("hub: SendUser needs a user id")
	}
	return h.bus.Send(ctx, roomID, Delivery{Event: ev, UserID: userID})
}

// SendRole sends a private event to every connection in the room whose role
// is at least min (e.g. moderators).
func (h *Hub) SendRole(ctx context.Context, roomID string, min Role, ev Event) error {
	return h.bus.Send(ctx, roomID, Delivery{Event: ev, MinRole: min})
}

// Kick sends userID's connections in the room an `error` with code and
// message, then closes them with the close code for code (banned → 4003).
func (h *Hub) Kick(ctx context.Context, roomID, userID, code, message string) error {
	if userID == "" {
		return errors.New("hub: Kick needs a user id")
	}
	return h.bus.Send(ctx, roomID, Delivery{Event: errorEvent("", code, message), UserID: userID, Close: code})
}

// CloseRoom disconnects everyone in the room (4004), e.g. when it is
// deleted; roomID is the scope of the incarnation that ends.
func (h *Hub) CloseRoom(ctx context.Context, roomID string) error {
	return h.bus.Send(ctx, roomID, Delivery{Event: errorEvent("", CodeRoomClosed, "the room was closed"), Close: CodeRoomClosed})
}

// SetLive records that the room's stream went live or offline: it stores
// the status StreamStatus gives and publishes stream.live or stream.offline.
// roomID is the room's id (not a scope), as media knows it.
func (h *Hub) SetLive(ctx context.Context, roomID string, live bool) error {
	if _, err := storeStreamStatus(ctx, h.rooms, roomID, live, nil); err != nil {
		return err
	}
	return h.AnnounceLive(ctx, roomID, live)
}

// AnnounceLive publishes stream.live or stream.offline in the room's
// current incarnation without touching the stored status (for a caller
// that has stored it already).
func (h *Hub) AnnounceLive(ctx context.Context, roomID string, live bool) error {
	kind := "stream.offline"
	if live {
		kind = "stream.live"
	}
	scope, err := h.ScopeOf(ctx, roomID)
	if errors.Is(err, ErrNotFound) {
		return nil // deleted: its connections are closed already
	}
	if err != nil {
		return err
	}
	_, err = h.bus.Publish(ctx, scope, Event{Type: kind})
	return err
}

// StreamNotice tells a room's hosts something about their stream (a track
// a browser cannot play, a refused stream) as a stream.notice event. It is
// the media server's notice hook and never blocks the media path.
func (h *Hub) StreamNotice(roomID, message string) {
	h.log.Warn("stream notice", "room", roomID, "notice", message)
	ev, err := NewEvent("stream.notice", map[string]string{"message": message})
	if err != nil {
		return
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if scope, err := h.ScopeOf(ctx, roomID); err == nil {
			_ = h.SendRole(ctx, scope, RoleHost, ev)
		}
	}()
}

// AddLikes counts n likes for the room; totals go out as `likes` events at
// most every hub.likes_interval.
func (h *Hub) AddLikes(ctx context.Context, roomID string, n int) error {
	if lr := h.lookup(roomID); lr != nil {
		lr.pendingLikes.Add(int64(n))
		return nil
	}
	total, err := h.bus.Add(ctx, roomID, "likes", int64(n))
	if err != nil {
		return err
	}
	_, err = h.bus.Publish(ctx, roomID, Event{Type: "likes", Body: countBody("total", total), Transient: true})
	return err
}

// Viewers returns the room's current connection count over all nodes.
func (h *Hub) Viewers(ctx context.Context, roomID string) (int, error) {
	local := 0
	if lr := h.lookup(roomID); lr != nil {
		local = lr.count()
	}
	return h.bus.Presence(ctx, roomID, h.cfg.NodeID, local)
}

// Conns is the number of WebSocket connections this node serves: its load,
// as the node registry reports it.
func (h *Hub) Conns() int { return int(h.conns.Load()) }

// RoleOf returns the role of userID if they are connected to the room on
// this node (best effort: moderation uses it to protect higher roles).
func (h *Hub) RoleOf(roomID, userID string) (Role, bool) {
	lr := h.lookup(roomID)
	if lr == nil {
		return RoleGuest, false
	}
	lr.mu.RLock()
	defer lr.mu.RUnlock()
	best, found := RoleGuest, false
	for _, c := range lr.conns {
		if c.id.ID == userID && (!found || c.id.Role > best) {
			best, found = c.id.Role, true
		}
	}
	return best, found
}

func countBody(key string, n int64) []byte {
	return []byte(fmt.Sprintf(`{%q:%d}`, key, n))
}

// Run drives the hub's timers (keepalive pings, viewer counts, like totals)
// until ctx ends, then closes every connection with 1001 and waits for them.
func (h *Hub) Run(ctx context.Context) error {
	ping := time.NewTicker(h.cfg.PingInterval)
	viewers := time.NewTicker(h.cfg.ViewersInterval)
	likes := time.NewTicker(h.cfg.LikesInterval)
	defer ping.Stop()
	defer viewers.Stop()
	defer likes.Stop()
	for {
		select {
		case <-ctx.Done():
			h.shutdown()
			return nil
		case <-ping.C:
			h.pingAll()
		case <-viewers.C:
			h.tickViewers(ctx)
		case <-likes.C:
			h.flushLikes(ctx)
		}
	}
}

func (h *Hub) pingAll() {
	for _, lr := range h.localRooms() {
		lr.mu.RLock()
		for _, c := range lr.conns {
			c.ping.Store(true)
			c.wakeUp()
		}
		lr.mu.RUnlock()
	}
}

// tickViewers reports this node's counts and publishes `viewers` where the
// room total changed; it also retires rooms left empty.
func (h *Hub) tickViewers(ctx context.Context) {
	idleSince := time.Now().Add(-pumpLinger).UnixNano()
	for _, lr := range h.localRooms() {
		lr.retirePumps(idleSince)
		n := lr.count()
		if n == 0 {
			lr.mu.Lock()
			lr.idle++
			lr.mu.Unlock()
		}
		total, err := h.bus.Presence(ctx, lr.id, h.cfg.NodeID, n)
		if err != nil {
			h.log.Warn("presence", "room", lr.id, "err", err)
			continue
		}
		if n == 0 && h.retire(lr) {
			continue
		}
		if int64(total) != lr.lastViewers.Load() {
			lr.lastViewers.Store(int64(total))
			if _, err := h.bus.Publish(ctx, lr.id, Event{Type: "viewers", Body: countBody("count", int64(total)), Transient: true}); err != nil {
				h.log.Warn("publish viewers", "room", lr.id, "err", err)
			}
		}
	}
}

func (h *Hub) flushLikes(ctx context.Context) {
	for _, lr := range h.localRooms() {
		n := lr.pendingLikes.Swap(0)
		if n == 0 {
			continue
		}
		total, err := h.bus.Add(ctx, lr.id, "likes", n)
		if err != nil {
			lr.pendingLikes.Add(n)
			h.log.Warn("likes", "room", lr.id, "err", err)
			continue
		}
		if _, err := h.bus.Publish(ctx, lr.id, Event{Type: "likes", Body: countBody("total", total), Transient: true}); err != nil {
			h.log.Warn("publish likes", "room", lr.id, "err", err)
		}
	}
}

// shutdown closes every connection with 1001 and waits (bounded) for them.
func (h *Hub) shutdown() {
	h.mu.Lock()
	h.stopped = true
	h.mu.Unlock()
	bye := h.prepared(errorEvent("", CodeGoingAway, "the server is restarting; reconnect and resume"))
	var all []*conn
	for _, lr := range h.localRooms() {
		lr.mu.RLock()
		all = append(all, lr.conns...)
		lr.mu.RUnlock()
	}
	for _, c := range all {
		c.kick(CloseGoingAway, CodeGoingAway, bye)
	}
	done := make(chan struct{})
	go func() { h.wg.Wait(); close(done) }()
	grace := time.NewTimer(5 * time.Second)
	defer grace.Stop()
	select {
	case <-done:
		return
	case <-grace.C:
	}
	// Clients that did not answer the close: cut them off.
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		for _, lr := range h.localRooms() {
			lr.mu.RLock()
			for _, c := range lr.conns {
				c.ws.Close()
			}
			lr.mu.RUnlock()
		}
		select {
		case <-done:
			return
		case <-tick.C:
		}
	}
}

func (h *Hub) isStopped() bool {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.stopped
}
