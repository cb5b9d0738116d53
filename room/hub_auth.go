package room

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/gorilla/websocket"
)

// How a WebSocket client proves who it is. The room's access policy
// (Access, ActJoin) decides; the hub only collects the credential:
//
//   - /ws/{room}?auth=frame: the first frame after the upgrade must be
//     {"type":"auth","token":"…","guest":"…"} (both optional: neither makes
//     a guest), within hub.auth_timeout. The credential never appears in a
//     URL, so never in a proxy's or balancer's access log. The pages use it.
//   - otherwise (older clients): ?token= or an Authorization bearer, read
//     before the upgrade; no token makes a guest with a fresh id, welcomed
//     at once. ?token= still works but is discouraged: URLs are logged.

// frameAuth reports whether the client announced an auth frame.
func frameAuth(r *http.Request) bool { return r.URL.Query().Get("auth") == "frame" }

// requestCredential is the credential of a client without an auth frame.
func requestCredential(r *http.Request) string {
	if t := r.URL.Query().Get("token"); t != "" {
		return t
	}
	return BearerToken(r.Header.Get("Authorization"))
}

// authFrame reads the client's auth frame and admits it.
func (h *Hub) authFrame(ctx context.Context, ws *websocket.Conn, roomID string) (Identity, string, *Error) {
	ws.SetReadLimit(int64(h.cfg.MaxFrame))
	_ = ws.SetReadDeadline(time.Now().Add(h.cfg.AuthTimeout))
	mt, r, err := ws.NextReader()
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return Identity{}, "", Errorf(CodeUnauthorized, "no auth frame within %s", h.cfg.AuthTimeout)
		}
		return Identity{}, "", Errorf(CodeUnauthorized, "the connection ended before its auth frame")
	}
	data, err := io.ReadAll(io.LimitReader(r, int64(h.cfg.ReadLimit)+1))
	_ = ws.SetReadDeadline(time.Time{})
	var f struct {
		Type  string `json:"type"`
		Token string `json:"token"`
		Guest string `json:"guest"`
	}
	if err != nil || mt != websocket.TextMessage || len(data) > h.cfg.ReadLimit ||
		json.Unmarshal(data, &f) != nil || f.Type != "auth" {
		return Identity{}, "", Errorf(CodeUnauthorized, `the first frame must be {"type":"auth","token":"…"}`)
	}
	return h.admit(ctx, roomID, f.Token, f.Guest)
}

// admit asks the access policy whether the credential (or the guest token)
// may join the room, then the join checks (bans). It answers the room's
// data scope as of now: the connection belongs to that incarnation.
func (h *Hub) admit(ctx context.Context, roomID, credential, guest string) (Identity, string, *Error) {
	rm, err := h.rooms.Get(ctx, roomID)
	if errors.Is(err, ErrNotFound) {
		return Identity{}, "", Errorf(CodeRoomClosed, "no such room")
	}
	if err != nil {
		h.log.Warn("ws room lookup", "room", roomID, "err", err)
		return Identity{}, "", Errorf(CodeUnavailable, "the room is unavailable; retry")
	}
	id, err := NewAccess(h.auth, nil).Check(AccessRequest{Action: ActJoin, Room: &rm, Credential: credential, Guest: guest})
	if err != nil {
		return Identity{}, "", Refusal(err)
	}
	scope := rm.Scope()
	h.mu.RLock()
	joins := h.joins
	h.mu.RUnlock()
	for _, f := range joins {
		if err := f(ctx, scope, id); err != nil {
			if e := AsError(err); e != nil {
				return Identity{}, "", e
			}
			h.log.Warn("ws join check", "room", roomID, "err", err)
			return Identity{}, "", Errorf(CodeUnavailable, "the room is unavailable; retry")
		}
	}
	return id, scope, nil
}

// welcomeAuth is what the welcome adds for who: a guest gets its signed
// guest token, to send back in its next auth frame and keep its id.
func (h *Hub) welcomeAuth(who Identity) map[string]any {
	if who.Kind != KindGuest {
		return nil
	}
	return map[string]any{"guest_token": h.auth.GuestToken(who.ID)}
}
