package chat

import (
	"context"
	"time"
)

// The room state chat keeps sits behind these small interfaces: the memory
// implementation serves one node; the cluster issue adds Redis ones that
// slot in through Deps without touching the handlers.

// History keeps each room's most recent messages (for the welcome and to
// find a message a moderator deletes).
type History interface {
	// Add appends m; the oldest message beyond the configured size goes.
	Add(ctx context.Context, roomID string, m Message) error
	// Published records the seq and ts m's chat.message event got.
	Published(ctx context.Context, roomID, id string, seq uint64, ts int64) error
	Remove(ctx context.Context, roomID, id string) (Message, bool, error)
	// Recent returns the kept messages, oldest first.
	Recent(ctx context.Context, roomID string) ([]Message, error)
}

// Held is the review queue: messages that looked like off-platform selling
// wait here for a moderator.
type Held interface {
	// Hold queues m; a full queue drops its oldest message.
	Hold(ctx context.Context, roomID string, m Message) error
	// Take removes and returns the held message id.
	Take(ctx context.Context, roomID, id string) (Message, bool, error)
	List(ctx context.Context, roomID string) ([]Message, error)
}

// Sanctions are bans and timeouts, per room and user.
type Sanctions interface {
	Ban(ctx context.Context, roomID, userID string) error
	// Unban lifts a ban; it reports whether there was one.
	Unban(ctx context.Context, roomID, userID string) (bool, error)
	// Mute silences the user until the given time (zero lifts it).
	Mute(ctx context.Context, roomID, userID string, until time.Time) error
	Standing(ctx context.Context, roomID, userID string) (Standing, error)
}

// Standing is a user's sanctions in a room.
type Standing struct {
	Banned     bool
	MutedUntil time.Time
}

// Rules are a room's chat settings: slow mode and blocked terms.
type Rules interface {
	SetSlow(ctx context.Context, roomID string, seconds int) error
	Slow(ctx context.Context, roomID string) (int, error)
	// Post records a post by userID at now unless their previous one was
	// less than gap ago; then it reports false and when they may post.
	Post(ctx context.Context, roomID, userID string, now time.Time, gap time.Duration) (bool, time.Time, error)
	// UpdateTerms adds and removes blocked terms (compared by folded form)
	// and returns the new list; more than max terms is an error.
	UpdateTerms(ctx context.Context, roomID string, add, remove []string, max int) ([]string, error)
	// Terms returns the list and a version that changes with it.
	Terms(ctx context.Context, roomID string) ([]string, uint64, error)
}

// AuditLog records every moderator action.
type AuditLog interface {
	// Append stores e, giving it the room's next id.
	Append(ctx context.Context, e AuditEntry) (AuditEntry, error)
	// Recent returns the room's last limit entries, oldest first.
	Recent(ctx context.Context, roomID string, limit int) ([]AuditEntry, error)
}

// AuditEntry is one moderator action: who did what to whom, when.
type AuditEntry struct {
	ID        uint64    `json:"id"`
	Room      string    `json:"room"`
	At        time.Time `json:"at"`
	Actor     User      `json:"actor"`
	Action    string    `json:"action"` // delete, timeout, ban, unban, slow, terms, approve, reject
	UserID    string    `json:"user_id,omitempty"`
	MessageID string    `json:"message_id,omitempty"`
	Seconds   *int      `json:"seconds,omitempty"`
	Text      string    `json:"text,omitempty"` // the message acted on
	Added     []string  `json:"added,omitempty"`
	Removed   []string  `json:"removed,omitempty"`
}
