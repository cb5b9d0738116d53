package room

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/gorilla/websocket"
)

// ServeWS serves GET /ws/{room}. The web layer calls it after checking that
// the room exists. The credential comes from the auth frame (?auth=frame),
// else from ?token= or an Authorization bearer (hub_auth.go); none makes a
// guest. A refused client is still upgraded, then gets an `error` event and
// a 4xxx close, because browsers cannot read the status of a failed upgrade.
func (h *Hub) ServeWS(w http.ResponseWriter, r *http.Request, roomID string) {
	h.mu.RLock()
	if h.stopped {
		h.mu.RUnlock()
		h.m.rejects.WithLabelValues("shutdown").Inc()
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
		return
	}
	h.wg.Add(1)
	h.mu.RUnlock()
	defer h.wg.Done()

	ctx := r.Context()
	ip := ClientKey(r) // the resolved client address, IPv6 by /64
	ipOK := h.ips.acquire(ip)
	var id Identity
	var scope string // the room's incarnation this connection joins (Scope)
	var refuse *Error
	byFrame := frameAuth(r)
	switch {
	case !ipOK:
		refuse = Errorf(CodeTooManyConns, "too many connections from your address")
	case !byFrame:
		id, scope, refuse = h.admit(ctx, roomID, requestCredential(r), "")
	}
	rec := &hijackRecorder{ResponseWriter: w}
	ws, err := h.upgrader.Upgrade(rec, r, nil)
	if err != nil {
		if ipOK {
			h.ips.release(ip)
		}
		return // gorilla has answered with an HTTP error
	}
	if refuse == nil && byFrame {
		id, scope, refuse = h.authFrame(ctx, ws, roomID)
	}
	if refuse != nil {
		if ipOK {
			h.ips.release(ip)
		}
		h.m.rejects.WithLabelValues(refuse.Code).Inc()
		h.log.Debug("ws refused", "room", roomID, "code", refuse.Code, "addr", ip)
		h.refuse(ws, refuse)
		return
	}

	c := newConn(h, nil, id, ip)
	c.ws, c.cork = ws, rec.conn
	if _, err := h.join(ctx, scope, c); err != nil {
		h.ips.release(ip)
		h.log.Warn("ws join", "room", roomID, "err", err)
		h.refuse(ws, Errorf(CodeUnavailable, "the room is unavailable; retry"))
		return
	}
	// The connection's own lifetime: it ends with the connection or with
	// the hub (Run's shutdown kicks every connection).
	cctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	h.wg.Add(1) // the read pump; write pumps come and go with the queue

	pos, err := h.bus.Position(ctx, scope)
	var welcome Event
	if err == nil {
		welcome, err = h.buildWelcome(ctx, c, pos, h.welcomeAuth(id))
	}
	if err != nil {
		h.log.Warn("ws welcome", "room", roomID, "err", err)
		c.kick(CloseInternal, CodeUnavailable, h.prepared(errorEvent("", CodeUnavailable, "the room is unavailable; retry")))
		c.release(qitem{}, 0)
	} else {
		// Written here, while the join holds events back and no write pump
		// can start: a quiet room's new connection never needs a pump.
		_ = ws.SetWriteDeadline(time.Now().Add(h.cfg.WriteTimeout))
		if err := ws.WriteMessage(websocket.TextMessage, welcome.AppendJSON(nil)); err != nil {
			ws.Close() // the read pump sees it and tears down
		}
		h.m.framesOut.Inc()
		c.release(qitem{}, pos.Seq)
	}
	go c.readPump(cctx) // after the welcome: a resume must come after it
	if h.isStopped() {
		c.kick(CloseGoingAway, CodeGoingAway, nil)
	}
	h.log.Debug("ws connect", "room", roomID, "user", id.ID, "role", id.Role.String())
}

// refuse tells a freshly upgraded client why it cannot stay, then closes.
func (h *Hub) refuse(ws *websocket.Conn, e *Error) {
	deadline := time.Now().Add(time.Second)
	_ = ws.SetWriteDeadline(deadline)
	_ = ws.WriteMessage(websocket.TextMessage, errorEvent("", e.Code, e.Message).AppendJSON(nil))
	_ = ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(closeCodeFor(e.Code), e.Code), deadline)
	// Wait briefly for the client's close so our close is not lost to a reset.
	_ = ws.SetReadDeadline(deadline)
	for {
		if _, _, err := ws.NextReader(); err != nil {
			break
		}
	}
	ws.Close()
}

// Snapshot is the welcome being built for one connection. Contributors add
// fields to the welcome's `room` object (SetRoom: pinned, sale, slow_s) or
// top level (Set: history, held). Seq is the welcome's seq: a contributor's
// state must cover every event up to it; later events reach the client live.
type Snapshot struct {
	Room string // the room's data scope (Scope): key its state by it
	You  Identity
	Seq  uint64

	room map[string]any
	top  map[string]any
}

// SetRoom sets a field of the welcome's room object.
func (s *Snapshot) SetRoom(key string, v any) { s.room[key] = v }

// Set sets a top-level welcome field; the envelope fields (you, room, seq,
// epoch, server_time, resumed, missed) are the hub's and cannot be set.
func (s *Snapshot) Set(key string, v any) {
	switch key {
	case "type", "ts", "ref", "you", "room", "seq", "epoch", "server_time", "resumed", "missed":
		return
	}
	s.top[key] = v
}

// buildWelcome composes the welcome at pos. extra holds the hub's own
// resume fields.
func (h *Hub) buildWelcome(ctx context.Context, c *conn, pos Position, extra map[string]any) (Event, error) {
	roomID := c.lr.id // the data scope
	rm, err := h.rooms.Get(ctx, ScopeRoom(roomID))
	if err != nil {
		return Event{}, err
	}
	if rm.Scope() != roomID {
		// Deleted and created again since the connection was admitted:
		// it belongs to the old incarnation, which CloseRoom is closing.
		return Event{}, fmt.Errorf("room %q was recreated", rm.ID)
	}
	viewers, err := h.bus.Presence(ctx, roomID, h.cfg.NodeID, c.lr.count())
	if err != nil {
		return Event{}, err
	}
	likes, err := h.bus.Add(ctx, roomID, "likes", 0)
	if err != nil {
		return Event{}, err
	}
	s := &Snapshot{Room: roomID, You: c.id, Seq: pos.Seq,
		room: map[string]any{
			"id": rm.ID, "title": rm.Title, "live": rm.Status == StatusLive, "status": rm.Status,
			"viewers": viewers, "likes": likes, "pinned": nil, "sale": nil, "slow_s": 0,
			"guest_chat": rm.GuestChat,
		},
		top: map[string]any{"history": []any{}},
	}
	h.mu.RLock()
	contributors := h.snapshots
	h.mu.RUnlock()
	for _, f := range contributors {
		if err := f(ctx, s); err != nil {
			// A partial welcome beats no connection; the field keeps its default.
			h.log.Warn("welcome contributor", "room", roomID, "err", err)
		}
	}
	body := s.top
	body["you"] = map[string]any{"id": c.id.ID, "name": c.id.Name, "role": c.id.Role.String()}
	body["room"] = s.room
	body["seq"] = pos.Seq
	body["epoch"] = pos.Epoch
	body["server_time"] = time.Now().UnixMilli()
	// Pages compare it with the node holding their video (X-Liveroom-Node)
	// to tell whether a closed socket means their video's node went away.
	body["node"] = h.cfg.NodeID
	for k, v := range extra {
		body[k] = v
	}
	return NewEvent("welcome", body)
}
