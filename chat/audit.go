package chat

import (
	"context"
	"time"
)

// AuditLog records every moderator action. MemoryAudit (tests, or no data
// dir), FileAudit (one node) and RedisAudit (a cluster) implement it and
// pass the conformance suite in chattest.
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
