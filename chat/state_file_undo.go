package chat

import (
	"maps"
	"slices"
)

// A moderation change applies to memory, then rewrites the file. When the
// write fails (a full or read-only disk), the change is put back in both,
// so the caller's error means nothing changed: a ban that was answered
// with an error is not enforced until a restart silently forgets it.

// fileUndo is what one room's persistent moderation was before a change.
type fileUndo struct {
	roomID   string
	file     *roomModeration // nil: the file had no entry for the room
	banned   map[string]Actor
	muted    map[string]mute
	ranks    map[string]rankEntry
	slow     int
	terms    []string
	hadTerms bool
}

// before records roomID's state; the caller holds s.mu.
func (s *FileState) before(roomID string) fileUndo {
	u := fileUndo{roomID: roomID}
	if rm := s.data.Rooms[roomID]; rm != nil {
		c := *rm
		c.Bans, c.BannedBy, c.Mutes, c.MutedBy = maps.Clone(rm.Bans), maps.Clone(rm.BannedBy), maps.Clone(rm.Mutes), maps.Clone(rm.MutedBy)
		c.Terms, c.Ranks = slices.Clone(rm.Terms), maps.Clone(rm.Ranks)
		u.file = &c
	}
	m := s.MemoryState
	m.mu.Lock()
	r := m.room(roomID)
	u.banned, u.muted, u.ranks = maps.Clone(r.banned), maps.Clone(r.muted), maps.Clone(r.ranks)
	u.slow, u.terms, u.hadTerms = r.slow, slices.Clone(r.terms), r.terms != nil
	m.mu.Unlock()
	return u
}

// saveOrUndo writes the file; if that fails it restores u and returns the
// write's error. The caller holds s.mu.
func (s *FileState) saveOrUndo(u fileUndo) error {
	err := s.save()
	if err == nil {
		return nil
	}
	if u.file == nil {
		delete(s.data.Rooms, u.roomID)
	} else {
		s.data.Rooms[u.roomID] = u.file
	}
	m := s.MemoryState
	m.mu.Lock()
	r := m.room(u.roomID)
	r.banned, r.muted, r.ranks, r.slow = u.banned, u.muted, u.ranks, u.slow
	if !slices.Equal(r.terms, u.terms) {
		r.terms = u.terms
		if !u.hadTerms {
			r.terms = nil
		}
		r.termsVer++ // a new version: matchers built from the undone list are stale
	}
	m.mu.Unlock()
	return err
}
