package chat

import (
	"strconv"
	"strings"
	"time"
	"unicode"

	"liveroom/room"
)

// Message is one chat message. Text is stored as the user wrote it (minus
// control characters); renderers escape it, the server never does.
type Message struct {
	ID     string `json:"id"`
	User   User   `json:"user"`
	Text   string `json:"text"`
	Reason string `json:"reason,omitempty"` // why it is held for review

	Seq uint64 `json:"-"` // the seq of its chat.message event; 0 until published
	TS  int64  `json:"-"` // unix ms: the event's ts, or when it was accepted
}

// User is who wrote a message, as shown to others.
type User struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	Role string `json:"role"`
}

func userOf(id room.Identity) User {
	return User{ID: id.ID, Name: id.Name, Role: id.Role.String()}
}

// newMessageID returns a unique id that sorts roughly by time.
func newMessageID(now time.Time) string {
	return "m" + strconv.FormatInt(now.UnixMilli(), 36) + room.RandomID(5)
}

// cleanText strips what must never reach other users' screens: control
// characters (tabs and newlines become spaces) and the invisible
// formatting characters used to spoof text direction. Zero-width joiners
// stay: emoji sequences need them.
func cleanText(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		switch {
		case r == '\t' || r == '\n' || r == '\r':
			b.WriteByte(' ')
		case unicode.IsControl(r):
		case r == 0x200B || r == 0x200E || r == 0x200F || r == 0x061C || r == 0xFEFF:
		case r >= 0x202A && r <= 0x202E, r >= 0x2066 && r <= 0x2069:
		case r == unicode.ReplacementChar:
		default:
			b.WriteRune(r)
		}
	}
	return strings.TrimSpace(b.String())
}

// event renders m as the chat.message room event (with its seq and ts once
// published), the form used live and in the welcome's history.
func (m Message) event() room.Event {
	ev := room.MustEvent("chat.message", map[string]any{"message": m})
	ev.Seq, ev.TS = m.Seq, m.TS
	return ev
}
