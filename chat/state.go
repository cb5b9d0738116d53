package chat

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// The room state chat keeps sits behind these small interfaces, passed in
// through Deps: MemoryState (tests, or no data dir), FileState (one node:
// moderation survives a restart) and RedisState (a cluster). Every one of
// them passes the conformance suite in chattest.

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
	// UpdateTerms adds and removes blocked terms (compared by folded form,
	// as mergeTerms does) and returns the new list; more than max terms is
	// an error wrapping ErrTooManyTerms, and changes nothing.
	UpdateTerms(ctx context.Context, roomID string, add, remove []string, max int) ([]string, error)
	// Terms returns the list and a version that changes with it.
	Terms(ctx context.Context, roomID string) ([]string, uint64, error)
}

// ErrTooManyTerms is wrapped by the error of an UpdateTerms that would
// pass the room's maximum.
var ErrTooManyTerms = errors.New("too many blocked terms")

func tooManyTerms(max int) error { return fmt.Errorf("%w: at most %d", ErrTooManyTerms, max) }

// mergeTerms is the rule of Rules.UpdateTerms for every implementation:
// removals, then additions, comparing folded forms; a term keeps the
// spelling it was first added with.
func mergeTerms(cur, add, remove []string) []string {
	key := func(t string) string { return strings.Join(words(t), " ") }
	drop := map[string]bool{}
	for _, t := range remove {
		drop[key(t)] = true
	}
	var next []string
	seen := map[string]bool{}
	for _, t := range cur {
		if k := key(t); !drop[k] && !seen[k] {
			seen[k] = true
			next = append(next, t)
		}
	}
	for _, t := range add {
		if k := key(t); k != "" && !seen[k] {
			seen[k] = true
			next = append(next, strings.TrimSpace(t))
		}
	}
	return next
}
