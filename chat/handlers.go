package chat

import (
	"context"
	"math"
	"time"
	"unicode/utf8"

	"liveroom/room"
)

// send handles chat.send {text}. The checks run cheapest first; the
// moderators' exemptions (slow mode, terms, links, review) are deliberate:
// they run the room.
func (s *Service) send(ctx context.Context, req *room.Request) error {
	err := s.trySend(ctx, req)
	if e := room.AsError(err); e != nil {
		s.m.messages.WithLabelValues(e.Code).Inc()
	}
	return err
}

func (s *Service) trySend(ctx context.Context, req *room.Request) error {
	from := req.From
	if from.Guest() {
		rm, err := s.rooms.Get(ctx, req.RoomID)
		if err != nil {
			return err
		}
		if !rm.GuestChat {
			return room.Errorf(room.CodeUnauthorized, "sign in to chat")
		}
	}
	var b struct {
		Text *string `json:"text"`
	}
	if err := req.Decode(&b); err != nil {
		return err
	}
	if b.Text == nil {
		return room.Errorf(room.CodeBadRequest, "text is required")
	}
	text := cleanText(*b.Text)
	if text == "" {
		return room.Errorf(room.CodeBadRequest, "text is empty")
	}
	if n := utf8.RuneCountInString(text); n > s.cfg.MaxLength {
		return room.Errorf(room.CodeTooLong, "a message has at most %d characters, this one has %d", s.cfg.MaxLength, n)
	}
	now := s.now()
	if err := s.seeRank(ctx, req.Room, from); err != nil {
		return err
	}
	st, err := s.sanctions.Standing(ctx, req.Room, from.ID)
	if err != nil {
		return err
	}
	// A sanction binds only those below its actor's rank now.
	if st.Banned && st.BannedBy.Binds(from.Role) {
		return room.Errorf(room.CodeBanned, "you are banned from this room")
	}
	if st.MutedUntil.After(now) && st.MutedBy.Binds(from.Role) {
		return room.Errorf(room.CodeMuted, "you are timed out for %d more seconds", secondsUntil(now, st.MutedUntil))
	}
	if ok, wait := s.chatLimit.allow(req.Room+"\x00"+from.ID, now); !ok {
		return room.Errorf(room.CodeRateLimited, "too many messages; wait %.1f s", wait.Seconds())
	}
	mod := from.Role.AtLeast(room.RoleModerator)
	folded, ws := fold(text), words(text)
	var reason string
	if !mod {
		slow, err := s.rules.Slow(ctx, req.Room)
		if err != nil {
			return err
		}
		if slow > 0 {
			ok, next, err := s.rules.Post(ctx, req.Room, from.ID, now, time.Duration(slow)*time.Second)
			if err != nil {
				return err
			}
			if !ok {
				return room.Errorf(room.CodeSlowMode, "slow mode: you can post again in %d s", secondsUntil(now, next))
			}
		}
		terms, err := s.blockedTerms(ctx, req.Room)
		if err != nil {
			return err
		}
		if terms.match(ws) != "" {
			return room.Errorf(room.CodeForbidden, "your message contains a blocked term")
		}
		if hasLink(folded) {
			return room.Errorf(room.CodeForbidden, "only moderators and hosts may post links")
		}
		if s.cfg.HoldSelling {
			reason = sellingReason(folded, ws)
		}
	}
	m := Message{ID: newMessageID(now), User: userOf(from), Text: text, TS: now.UnixMilli()}
	if reason != "" {
		return s.hold(ctx, req, m, reason)
	}
	if err := s.post(ctx, req.Room, m); err != nil {
		return err
	}
	s.m.messages.WithLabelValues("posted").Inc()
	if s.onPost != nil {
		s.onPost(ctx, req.Room, req.From.ID)
	}
	return nil
}

// post stores m in the history, then publishes it: a welcome built in
// between lists it (and may also see it live: clients dedupe by id), but
// can never miss it.
func (s *Service) post(ctx context.Context, roomID string, m Message) error {
	m.Reason = ""
	if err := s.history.Add(ctx, roomID, m); err != nil {
		return err
	}
	ev, err := s.hub.Publish(ctx, roomID, m.event())
	if err != nil {
		_, _, _ = s.history.Remove(ctx, roomID, m.ID)
		return err
	}
	return s.history.Published(ctx, roomID, m.ID, ev.Seq, ev.TS)
}

// hold puts m in the review queue: moderators see it as chat.held, and so
// does its author (on the connection that sent it), nobody else.
func (s *Service) hold(ctx context.Context, req *room.Request, m Message, reason string) error {
	m.Reason = reason
	if err := s.held.Hold(ctx, req.Room, m); err != nil {
		return err
	}
	ev := room.MustEvent("chat.held", map[string]any{"message": m})
	if err := s.hub.SendRole(ctx, req.Room, room.RoleModerator, ev); err != nil {
		return err
	}
	req.Reply(ev)
	s.m.messages.WithLabelValues("held").Inc()
	return nil
}

// like handles like {count}: anyone may like; the hub aggregates the total.
func (s *Service) like(ctx context.Context, req *room.Request) error {
	var b struct {
		Count *int `json:"count"`
	}
	if err := req.Decode(&b); err != nil {
		return err
	}
	n := 1
	if b.Count != nil {
		n = *b.Count
	}
	if n < 1 || n > 50 {
		return room.Errorf(room.CodeBadRequest, "count must be 1-50")
	}
	if ok, _ := s.likeLimit.allow(req.Room+"\x00"+req.From.ID, s.now()); !ok {
		return room.Errorf(room.CodeRateLimited, "too many likes; batch them with count")
	}
	s.m.likes.Add(float64(n))
	return s.hub.AddLikes(ctx, req.Room, n)
}

func secondsUntil(now, t time.Time) int {
	return int(math.Ceil(t.Sub(now).Seconds()))
}
