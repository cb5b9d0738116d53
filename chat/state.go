package chat

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"liveroom/room"
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

// Sanctions are bans and timeouts, per room and user, each kept with who
// imposed it and with which role.
type Sanctions interface {
	Ban(ctx context.Context, roomID, userID string, by Actor) error
	// Unban lifts a ban; it reports whether there was one.
	Unban(ctx context.Context, roomID, userID string) (bool, error)
	// Mute silences the user until the given time (zero lifts it).
	Mute(ctx context.Context, roomID, userID string, until time.Time, by Actor) error
	Standing(ctx context.Context, roomID, userID string) (Standing, error)
}

// Standing is a user's sanctions in a room.
type Standing struct {
	Banned     bool
	BannedBy   Actor
	MutedUntil time.Time
	MutedBy    Actor
}

// Actor is who imposed a sanction and the role they acted with.
type Actor struct {
	ID   string
	Role room.Role
}

func actorOf(id room.Identity) Actor { return Actor{ID: id.ID, Role: id.Role} }

// roleNamed parses a stored role name, "guest" included.
func roleNamed(s string) (room.Role, bool) {
	if s == room.RoleGuest.String() {
		return room.RoleGuest, true
	}
	r, err := room.ParseRole(s)
	return r, err == nil
}

// Binds reports whether a sanction a imposed applies to someone whose
// current role is role: only to those below a's rank, so that a host whose
// role was unknown when a moderator banned them still gets in. A sanction
// kept without a role (from before roles were stored) counts as a
// moderator's, the least rank that may impose one.
func (a Actor) Binds(role room.Role) bool {
	return role < max(a.Role, room.RoleModerator)
}

// Ranks remember, per room and cluster-wide, the highest role each user has
// been seen with (chat records it at join and at send), so that an action
// against someone offline or on another node can be refused when issued.
// Chat records only roles that may moderate: anyone who moderates may act
// on viewers and guests, so a flood of guest ids adds nothing.
type Ranks interface {
	// SeeRank records userID with role at now; the kept role only rises.
	// An entry lasts keep.TTL after its last sighting; beyond keep.Max
	// users in a room, expired entries go first, then the lowest role
	// seen longest ago.
	SeeRank(ctx context.Context, roomID, userID string, role room.Role, now time.Time, keep RankKeep) error
	// Rank returns the highest role userID was seen with, if still kept.
	Rank(ctx context.Context, roomID, userID string, now time.Time) (room.Role, bool, error)
}

// RankKeep bounds Ranks: users kept per room, and for how long unseen.
type RankKeep struct {
	Max int
	TTL time.Duration
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
