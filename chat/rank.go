package chat

import (
	"context"

	"liveroom/room"
)

// Rank: a moderator action against someone of equal or higher role is
// refused when it is issued, as far as the cluster knows that role, and a
// sanction is ignored when it is enforced (at join, at send) for anyone
// whose current role is at least its actor's (Actor.Binds), which covers
// targets whose role nobody knew.

// seeRank remembers the role of who if it may moderate: only those roles
// can protect their holder from an action.
func (s *Service) seeRank(ctx context.Context, roomID string, who room.Identity) error {
	if !who.Role.AtLeast(room.RoleModerator) {
		return nil
	}
	return s.ranks.SeeRank(ctx, roomID, who.ID, who.Role, s.now(),
		RankKeep{Max: s.cfg.KnownRolesMax, TTL: s.cfg.KnownRolesTTL})
}

// reservedRole is the role of the identities no token can claim: the
// admin key's and a room's stream-key host, known even if never seen.
func reservedRole(roomID, userID string) (room.Role, bool) {
	switch userID {
	case "admin":
		return room.RoleAdmin, true
	case "host:" + room.ScopeRoom(roomID): // roomID is a data scope
		return room.RoleHost, true
	}
	return room.RoleGuest, false
}

// knownRole is the highest role userID is known to have in the room: by
// its form, from this node's connections, or as seen anywhere in the
// cluster.
func (s *Service) knownRole(ctx context.Context, roomID, userID string) (room.Role, bool, error) {
	best, found := reservedRole(roomID, userID)
	if r, ok := s.hub.RoleOf(roomID, userID); ok && (!found || r > best) {
		best, found = r, true
	}
	r, ok, err := s.ranks.Rank(ctx, roomID, userID, s.now())
	if err != nil {
		return best, found, err
	}
	if ok && (!found || r > best) {
		best, found = r, true
	}
	return best, found, nil
}

// protect refuses actions against oneself or against someone of equal or
// higher known role.
func (s *Service) protect(ctx context.Context, req *room.Request, userID string) error {
	if userID == req.From.ID {
		return room.Errorf(room.CodeForbidden, "you cannot moderate yourself")
	}
	role, ok, err := s.knownRole(ctx, req.Room, userID)
	if err != nil {
		return err
	}
	return outranks(req.From.Role, role, ok)
}

// protectAuthor refuses deleting a message whose author's stored role (or
// reserved identity) is at least the actor's.
func protectAuthor(req *room.Request, m Message) error {
	role, ok := roleNamed(m.User.Role)
	if r, reserved := reservedRole(req.Room, m.User.ID); reserved && (!ok || r > role) {
		role, ok = r, true
	}
	return outranks(req.From.Role, role, ok)
}

func outranks(actor, target room.Role, known bool) error {
	if known && target >= actor {
		return room.Errorf(room.CodeForbidden, "a %s cannot act on a %s", actor, target)
	}
	return nil
}
