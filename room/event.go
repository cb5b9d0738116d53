package room

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
)

// Event is one server-to-client message. A room event (Seq > 0) is seen by
// everyone in the room in seq order; a private event (Seq 0) goes to one
// connection, one user's connections or the moderators.
//
// On the wire an event is one flat JSON object: the envelope fields (type,
// seq, ts, ref) followed by the kind's own fields taken from Body.
type Event struct {
	Type string
	Seq  uint64 // set by the bus for room events
	TS   int64  // server time, unix ms; set by the bus for room events
	Ref  string // echoes a request's ref on replies and errors
	// Body holds the kind's own fields as one JSON object, e.g.
	// {"message":{…}}; nil means none. It must not repeat the envelope keys.
	Body json.RawMessage
	// Transient events (viewers, likes) are superseded by the next one of
	// their type: they get a seq and are delivered live, but history keeps
	// none of them, so a resume does not replay stale counts.
	Transient bool
}

// NewEvent builds an event of the given kind whose fields are body's
// (a struct or map that encodes as a JSON object, or nil).
func NewEvent(kind string, body any) (Event, error) {
	if !validKind(kind) {
		return Event{}, fmt.Errorf("event: bad kind %q", kind)
	}
	ev := Event{Type: kind}
	if body == nil {
		return ev, nil
	}
	b, err := marshalNoHTML(body)
	if err != nil {
		return Event{}, fmt.Errorf("event %s: %w", kind, err)
	}
	if len(b) < 2 || b[0] != '{' {
		return Event{}, fmt.Errorf("event %s: body must encode as a JSON object", kind)
	}
	ev.Body = b
	return ev, nil
}

// MustEvent is NewEvent for bodies that cannot fail to encode (maps of
// plain values, structs of them); it panics otherwise, so use it only with
// bodies built by code, never from input.
func MustEvent(kind string, body any) Event {
	ev, err := NewEvent(kind, body)
	if err != nil {
		panic(err)
	}
	return ev
}

// validKind accepts the ASCII names the protocol uses (chat.send,
// product.pin, …), so the type never needs JSON escaping.
func validKind(k string) bool {
	if k == "" || len(k) > 64 {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// AppendJSON appends the wire form of e to dst.
func (e Event) AppendJSON(dst []byte) []byte {
	dst = append(dst, `{"type":"`...)
	dst = append(dst, e.Type...)
	dst = append(dst, '"')
	if e.Seq > 0 {
		dst = append(dst, `,"seq":`...)
		dst = strconv.AppendUint(dst, e.Seq, 10)
	}
	if e.TS > 0 {
		dst = append(dst, `,"ts":`...)
		dst = strconv.AppendInt(dst, e.TS, 10)
	}
	if e.Ref != "" {
		dst = append(dst, `,"ref":`...)
		dst = appendJSONString(dst, e.Ref)
	}
	if inner := bytes.TrimSpace(e.Body); len(inner) > 2 {
		inner = bytes.TrimSpace(inner[1 : len(inner)-1])
		if len(inner) > 0 {
			dst = append(dst, ',')
			dst = append(dst, inner...)
		}
	}
	return append(dst, '}')
}

// MarshalJSON returns the wire form.
func (e Event) MarshalJSON() ([]byte, error) { return e.AppendJSON(nil), nil }

// UnmarshalJSON parses the wire form (used by clients, tests and the bus
// implementations that carry events as bytes).
func (e *Event) UnmarshalJSON(b []byte) error {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	var ev Event
	if err := json.Unmarshal(m["type"], &ev.Type); err != nil {
		return fmt.Errorf("event: type: %w", err)
	}
	if raw, ok := m["seq"]; ok {
		if err := json.Unmarshal(raw, &ev.Seq); err != nil {
			return fmt.Errorf("event: seq: %w", err)
		}
	}
	if raw, ok := m["ts"]; ok {
		if err := json.Unmarshal(raw, &ev.TS); err != nil {
			return fmt.Errorf("event: ts: %w", err)
		}
	}
	if raw, ok := m["ref"]; ok {
		if err := json.Unmarshal(raw, &ev.Ref); err != nil {
			return fmt.Errorf("event: ref: %w", err)
		}
	}
	delete(m, "type")
	delete(m, "seq")
	delete(m, "ts")
	delete(m, "ref")
	if len(m) > 0 {
		body, err := json.Marshal(m)
		if err != nil {
			return err
		}
		ev.Body = body
	}
	*e = ev
	return nil
}

// Field decodes one body field into v; it reports false if the field is absent.
func (e Event) Field(name string, v any) (bool, error) {
	if len(e.Body) == 0 {
		return false, nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(e.Body, &m); err != nil {
		return false, err
	}
	raw, ok := m[name]
	if !ok {
		return false, nil
	}
	return true, json.Unmarshal(raw, v)
}

func appendJSONString(dst []byte, s string) []byte {
	b, _ := marshalNoHTML(s) // a string always encodes
	return append(dst, b...)
}

// marshalNoHTML encodes like json.Marshal but leaves <, > and & alone:
// chat text is stored raw and escaped by renderers, not by the transport.
func marshalNoHTML(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}

// Error is a protocol error: it reaches the client as an `error` event with
// its code and message (and the request's ref).
type Error struct {
	Code    string
	Message string
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Errorf builds a protocol error with a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// AsError returns err as a protocol error, or nil if it is not one.
func AsError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return nil
}

// Error codes sent in `error` events (see docs/protocol.md).
const (
	CodeUnauthorized  = "unauthorized"
	CodeForbidden     = "forbidden"
	CodeRateLimited   = "rate_limited"
	CodeSlowMode      = "slow_mode"
	CodeMuted         = "muted"
	CodeBanned        = "banned"
	CodeTooLong       = "too_long"
	CodeBadRequest    = "bad_request"
	CodeNotFound      = "not_found"
	CodeExpired       = "expired"
	CodeUnavailable   = "unavailable"
	CodeSlowConsumer  = "slow_consumer"
	CodeRoomClosed    = "room_closed"
	CodeGoingAway     = "going_away"
	CodeTooManyConns  = "too_many_connections"
	CodeSoldOut       = "sold_out"
	CodeLimitReached  = "limit_reached"
	CodeSaleNotActive = "sale_not_active"
)

// WebSocket close codes the hub uses (4000–4999 are for applications).
// Browsers cannot read the HTTP status of a failed upgrade, so refusals
// happen after the upgrade: an `error` event, then a close with one of these.
const (
	CloseUnauthorized = 4001 // token rejected (forged, expired, alg, other room), or a private room without one
	CloseBanned       = 4003 // banned from the room
	CloseRoomClosed   = 4004 // the room was deleted or closed
	CloseSlowConsumer = 4008 // the send queue overflowed: the client did not read fast enough
	CloseFlood        = 4009 // far more frames than the rate limit allows
	CloseTooManyConns = 4029 // per-address connection limit reached
	CloseGoingAway    = 1001 // the server is shutting down
	CloseTooBig       = 1009 // a frame above the hard size limit
	CloseInternal     = 1011 // unexpected server error
)

// closeCodeFor maps an error code to the close code a kick uses.
func closeCodeFor(code string) int {
	switch code {
	case CodeUnauthorized:
		return CloseUnauthorized
	case CodeBanned, CodeForbidden:
		return CloseBanned
	case CodeRoomClosed:
		return CloseRoomClosed
	case CodeSlowConsumer:
		return CloseSlowConsumer
	case CodeRateLimited:
		return CloseFlood
	case CodeTooManyConns:
		return CloseTooManyConns
	case CodeGoingAway:
		return CloseGoingAway
	default:
		return CloseInternal
	}
}

// errorEvent builds the `error` event for a request.
func errorEvent(ref, code, message string) Event {
	return MustEvent("error", struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	}{code, message}).withRef(ref)
}

func (e Event) withRef(ref string) Event { e.Ref = ref; return e }

// frameHead is what the hub reads of every client frame before dispatch.
type frameHead struct {
	Type string
	Ref  string
}

// parseFrame reads the envelope of a client frame: a JSON object with a
// string `type` and an optional string `ref`. Errors are protocol errors; the
// returned head carries whatever ref could be read, so the error can echo it.
func parseFrame(data []byte) (frameHead, *Error) {
	var raw struct {
		Type json.RawMessage `json:"type"`
		Ref  json.RawMessage `json:"ref"`
	}
	var h frameHead
	if err := json.Unmarshal(data, &raw); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field == "" {
			return h, Errorf(CodeBadRequest, "a frame must be a JSON object")
		}
		return h, Errorf(CodeBadRequest, "malformed JSON")
	}
	if len(raw.Ref) > 0 && string(raw.Ref) != "null" {
		if err := json.Unmarshal(raw.Ref, &h.Ref); err != nil {
			return h, Errorf(CodeBadRequest, "ref must be a string")
		}
	}
	if len(raw.Type) == 0 || string(raw.Type) == "null" {
		return h, Errorf(CodeBadRequest, "type is required")
	}
	if err := json.Unmarshal(raw.Type, &h.Type); err != nil {
		return h, Errorf(CodeBadRequest, "type must be a string")
	}
	if h.Type == "" {
		return h, Errorf(CodeBadRequest, "type is required")
	}
	return h, nil
}
