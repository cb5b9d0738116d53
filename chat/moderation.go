package chat

import (
	"context"
	"errors"
	"time"
	"unicode/utf8"

	"liveroom/room"
)

// Moderator actions (moderator and up; the hub checks the role). Each one
// takes effect, lands in the audit log (with its actor's id and role), then
// tells the room: whoever sees the event can already read the entry. Those
// aimed at a user are checked against the target's rank (rank.go).

type target struct {
	UserID    string `json:"user_id"`
	MessageID string `json:"message_id"`
	Seconds   *int   `json:"seconds"`
}

// seconds reads the required seconds field, 0..max; zero says what 0 does.
func (t target) seconds(max time.Duration, zero string) (int, error) {
	if t.Seconds == nil {
		return 0, room.Errorf(room.CodeBadRequest, "seconds is required (0 %s)", zero)
	}
	// Compared in seconds: a huge value must not overflow into a small duration.
	if secs := *t.Seconds; secs >= 0 && secs <= int(max/time.Second) {
		return secs, nil
	}
	return 0, room.Errorf(room.CodeBadRequest, "seconds must be 0-%d", int(max.Seconds()))
}

func decodeTarget(req *room.Request, needUser, needMessage bool) (target, error) {
	var t target
	if err := req.Decode(&t); err != nil {
		return t, err
	}
	if needUser && t.UserID == "" {
		return t, room.Errorf(room.CodeBadRequest, "user_id is required")
	}
	if needMessage && t.MessageID == "" {
		return t, room.Errorf(room.CodeBadRequest, "message_id is required")
	}
	return t, nil
}

// record appends to the audit log. The action already happened; a failed
// write is logged with the whole entry rather than undoing it.
func (s *Service) record(ctx context.Context, req *room.Request, e AuditEntry) {
	e.Room, e.At, e.Actor = req.Room, s.now().UTC(), userOf(req.From)
	s.m.moderation.WithLabelValues(e.Action).Inc()
	if _, err := s.audit.Append(ctx, e); err != nil {
		s.log.Error("audit log append failed", "err", err, "room", e.Room, "action", e.Action,
			"actor", e.Actor.ID, "user", e.UserID, "message", e.MessageID)
	}
	s.log.Info("moderation", "room", e.Room, "action", e.Action, "actor", e.Actor.ID, "user", e.UserID, "message", e.MessageID)
}

func (s *Service) modDelete(ctx context.Context, req *room.Request) error {
	t, err := decodeTarget(req, false, true)
	if err != nil {
		return err
	}
	// Checked before removing: a refused delete leaves the history as it was.
	recent, err := s.history.Recent(ctx, req.Room)
	if err != nil {
		return err
	}
	for _, m := range recent {
		if m.ID == t.MessageID {
			if err := protectAuthor(req, m); err != nil {
				return err
			}
		}
	}
	m, found, err := s.history.Remove(ctx, req.Room, t.MessageID)
	if err != nil {
		return err
	}
	if !found { // maybe it is waiting for review
		if hm, ok, err := s.held.Take(ctx, req.Room, t.MessageID); err == nil && ok {
			return s.rejectHeld(ctx, req, hm)
		}
	}
	s.record(ctx, req, AuditEntry{Action: "delete", MessageID: t.MessageID, UserID: m.User.ID, Text: m.Text})
	// Published even when the message has left the history: clients may
	// still show it.
	_, err = s.hub.Publish(ctx, req.Room, room.MustEvent("chat.deleted", map[string]any{"message_id": t.MessageID}))
	return err
}

func (s *Service) modTimeout(ctx context.Context, req *room.Request) error {
	t, err := decodeTarget(req, true, false)
	if err != nil {
		return err
	}
	secs, err := t.seconds(s.cfg.MaxTimeout, "lifts a timeout")
	if err != nil {
		return err
	}
	if err := s.protect(ctx, req, t.UserID); err != nil {
		return err
	}
	if err := s.keepSanction(ctx, req, t.UserID, false); err != nil {
		return err
	}
	var until time.Time
	var untilMS int64
	if secs > 0 {
		until = s.now().Add(time.Duration(secs) * time.Second)
		untilMS = until.UnixMilli()
	}
	if err := s.sanctions.Mute(ctx, req.Room, t.UserID, until, actorOf(req.From)); err != nil {
		return err
	}
	s.record(ctx, req, AuditEntry{Action: "timeout", UserID: t.UserID, Seconds: &secs})
	_, err = s.hub.Publish(ctx, req.Room, room.MustEvent("user.timeout",
		map[string]any{"user_id": t.UserID, "until": untilMS, "seconds": secs}))
	return err
}

func (s *Service) modBan(ctx context.Context, req *room.Request) error {
	t, err := decodeTarget(req, true, false)
	if err != nil {
		return err
	}
	if err := s.protect(ctx, req, t.UserID); err != nil {
		return err
	}
	if err := s.keepSanction(ctx, req, t.UserID, true); err != nil {
		return err
	}
	if err := s.sanctions.Ban(ctx, req.Room, t.UserID, actorOf(req.From)); err != nil {
		return err
	}
	s.record(ctx, req, AuditEntry{Action: "ban", UserID: t.UserID})
	if _, err := s.hub.Publish(ctx, req.Room, room.MustEvent("user.banned",
		map[string]any{"user_id": t.UserID, "until": nil})); err != nil {
		return err
	}
	return s.hub.Kick(ctx, req.Room, t.UserID, room.CodeBanned, "you are banned from this room")
}

func (s *Service) modUnban(ctx context.Context, req *room.Request) error {
	t, err := decodeTarget(req, true, false)
	if err != nil {
		return err
	}
	if err := s.keepSanction(ctx, req, t.UserID, true); err != nil {
		return err
	}
	if _, err := s.sanctions.Unban(ctx, req.Room, t.UserID); err != nil {
		return err
	}
	s.record(ctx, req, AuditEntry{Action: "unban", UserID: t.UserID})
	_, err = s.hub.Publish(ctx, req.Room, room.MustEvent("user.unbanned",
		map[string]any{"user_id": t.UserID, "until": nil}))
	return err
}

func (s *Service) modSlow(ctx context.Context, req *room.Request) error {
	t, err := decodeTarget(req, false, false)
	if err != nil {
		return err
	}
	secs, err := t.seconds(s.cfg.MaxSlow, "turns slow mode off")
	if err != nil {
		return err
	}
	if err := s.rules.SetSlow(ctx, req.Room, secs); err != nil {
		return err
	}
	s.record(ctx, req, AuditEntry{Action: "slow", Seconds: &secs})
	_, err = s.hub.Publish(ctx, req.Room, room.MustEvent("room.slow", map[string]any{"seconds": secs}))
	return err
}

const maxTermLength = 64

func (s *Service) modTerms(ctx context.Context, req *room.Request) error {
	var b struct {
		Add    []string `json:"add"`
		Remove []string `json:"remove"`
	}
	if err := req.Decode(&b); err != nil {
		return err
	}
	if len(b.Add) == 0 && len(b.Remove) == 0 {
		return room.Errorf(room.CodeBadRequest, "add or remove is required")
	}
	for _, t := range b.Add {
		if utf8.RuneCountInString(t) > maxTermLength || len(words(t)) == 0 {
			return room.Errorf(room.CodeBadRequest, "a term must have 1-%d characters with a letter or digit", maxTermLength)
		}
	}
	terms, err := s.rules.UpdateTerms(ctx, req.Room, b.Add, b.Remove, s.cfg.MaxTerms)
	if errors.Is(err, ErrTooManyTerms) {
		return room.Errorf(room.CodeBadRequest, "a room has at most %d blocked terms", s.cfg.MaxTerms)
	}
	if err != nil {
		return err
	}
	if terms == nil {
		terms = []string{}
	}
	s.record(ctx, req, AuditEntry{Action: "terms", Added: b.Add, Removed: b.Remove})
	// Terms are for moderators' eyes only: no room event.
	return s.hub.SendRole(ctx, req.Room, room.RoleModerator, room.MustEvent("room.terms", map[string]any{"terms": terms}))
}

func (s *Service) modApprove(ctx context.Context, req *room.Request) error {
	t, err := decodeTarget(req, false, true)
	if err != nil {
		return err
	}
	m, ok, err := s.held.Take(ctx, req.Room, t.MessageID)
	if err != nil {
		return err
	}
	if !ok {
		return room.Errorf(room.CodeNotFound, "no held message %q (already reviewed?)", t.MessageID)
	}
	m.TS = s.now().UnixMilli()
	s.record(ctx, req, AuditEntry{Action: "approve", MessageID: m.ID, UserID: m.User.ID, Text: m.Text})
	if err := s.post(ctx, req.Room, m); err != nil {
		return err
	}
	s.m.messages.WithLabelValues("approved").Inc()
	return nil
}

func (s *Service) modReject(ctx context.Context, req *room.Request) error {
	t, err := decodeTarget(req, false, true)
	if err != nil {
		return err
	}
	m, ok, err := s.held.Take(ctx, req.Room, t.MessageID)
	if err != nil {
		return err
	}
	if !ok {
		return room.Errorf(room.CodeNotFound, "no held message %q (already reviewed?)", t.MessageID)
	}
	return s.rejectHeld(ctx, req, m)
}

// rejectHeld drops a held message; the moderators' queues learn it through a
// moderators-only chat.deleted.
func (s *Service) rejectHeld(ctx context.Context, req *room.Request, m Message) error {
	s.record(ctx, req, AuditEntry{Action: "reject", MessageID: m.ID, UserID: m.User.ID, Text: m.Text})
	return s.hub.SendRole(ctx, req.Room, room.RoleModerator,
		room.MustEvent("chat.deleted", map[string]any{"message_id": m.ID, "held": true}))
}

// keepSanction refuses lifting or replacing a ban (ban) or a running
// timeout imposed by someone of higher role than the one acting: a
// moderator cannot undo a host's ban, nor shorten or re-issue it under
// their own lower rank. Equals may undo each other's.
func (s *Service) keepSanction(ctx context.Context, req *room.Request, userID string, ban bool) error {
	st, err := s.sanctions.Standing(ctx, req.Room, userID)
	if err != nil {
		return err
	}
	by, what := st.MutedBy, "timeout"
	if ban {
		by, what = st.BannedBy, "ban"
	}
	if ban && !st.Banned || !ban && !st.MutedUntil.After(s.now()) {
		return nil
	}
	// A sanction stored without a role counts as a moderator's (Actor.Binds).
	if r := max(by.Role, room.RoleModerator); r > req.From.Role {
		return room.Errorf(room.CodeForbidden, "a %s cannot change a %s's %s", req.From.Role, r, what)
	}
	return nil
}
