package room

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime/debug"
	"unicode/utf8"
)

// Request is one client frame on its way to a handler.
type Request struct {
	// Room is the data scope of the connection's room (Scope): handlers key
	// everything they store or publish by it, so that a room deleted and
	// created again starts empty. RoomID is the room's id as clients see it.
	Room   string
	RoomID string
	From   Identity // who sent it
	Type   string
	Ref    string

	body []byte // the whole frame; valid only during the handler
	c    *conn
	hub  *Hub
}

// Decode unmarshals the frame's fields into v (a struct with json tags).
// Unknown fields are ignored; a field of the wrong type is a bad_request.
func (r *Request) Decode(v any) error {
	if err := json.Unmarshal(r.body, v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return Errorf(CodeBadRequest, "field %s: want %s", te.Field, te.Type)
		}
		return Errorf(CodeBadRequest, "malformed fields")
	}
	return nil
}

// Hub is the hub serving the request, for handlers that publish.
func (r *Request) Hub() *Hub { return r.hub }

// Reply sends a private event to the connection that sent the frame,
// echoing its ref.
func (r *Request) Reply(ev Event) {
	ev.Seq, ev.TS, ev.Ref = 0, 0, r.Ref
	r.c.pushPrivate(ev)
}

// dispatch runs one frame through the handler table. Whatever the frame
// holds, the outcome is the handler's effect or one `error` to the sender.
func (h *Hub) dispatch(ctx context.Context, c *conn, data []byte) {
	head, perr := parseFrame(data)
	if perr != nil {
		h.m.framesIn.WithLabelValues("invalid").Inc()
		c.sendError(head.Ref, perr)
		return
	}
	h.mu.RLock()
	e, ok := h.handlers[head.Type]
	h.mu.RUnlock()
	if !ok {
		h.m.framesIn.WithLabelValues("invalid").Inc()
		c.sendError(head.Ref, Errorf(CodeBadRequest, "unknown type %q", clip(head.Type, 64)))
		return
	}
	h.m.framesIn.WithLabelValues(head.Type).Inc()
	if !c.id.Role.AtLeast(e.min) {
		if c.id.Guest() {
			c.sendError(head.Ref, Errorf(CodeUnauthorized, "sign in to use %s", head.Type))
		} else {
			c.sendError(head.Ref, Errorf(CodeForbidden, "%s needs the %s role", head.Type, e.min))
		}
		return
	}
	req := &Request{Room: c.lr.id, RoomID: ScopeRoom(c.lr.id), From: c.id, Type: head.Type, Ref: head.Ref, body: data, c: c, hub: h}
	if err := h.call(ctx, e.h, req); err != nil {
		if pe := AsError(err); pe != nil {
			c.sendError(head.Ref, pe)
			return
		}
		h.log.Warn("handler failed", "type", head.Type, "room", req.Room, "err", err)
		c.sendError(head.Ref, Errorf(CodeUnavailable, "could not do %s; retry", head.Type))
	}
}

// call runs a handler, turning a panic into an error: a handler bug must
// not take the node down for everyone.
func (h *Hub) call(ctx context.Context, fn HandlerFunc, req *Request) (err error) {
	defer func() {
		if p := recover(); p != nil {
			h.log.Error("handler panic", "type", req.Type, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			err = fmt.Errorf("handler panic: %v", p)
		}
	}()
	return fn(ctx, req)
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
