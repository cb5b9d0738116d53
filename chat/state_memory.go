package chat

import (
	"context"
	"slices"
	"sync"
	"time"

	"liveroom/room"
)

// MemoryState keeps History, Held, Sanctions, Rules and Ranks in memory: the
// one-node implementation (state is lost on restart, like a live show's
// chat). Redis replaces it in a cluster.
type MemoryState struct {
	historySize int
	heldMax     int

	mu    sync.Mutex
	rooms map[string]*memRoom
}

var (
	_ History   = (*MemoryState)(nil)
	_ Held      = (*MemoryState)(nil)
	_ Sanctions = (*MemoryState)(nil)
	_ Rules     = (*MemoryState)(nil)
	_ Ranks     = (*MemoryState)(nil)
)

type memRoom struct {
	history   []Message
	held      []Message
	banned    map[string]Actor
	muted     map[string]mute
	ranks     map[string]rankEntry
	lastPost  map[string]time.Time
	slow      int
	terms     []string
	termsVer  uint64
	lastSweep time.Time
}

// NewMemoryState keeps historySize messages and up to heldMax held ones per room.
type mute struct {
	until time.Time
	by    Actor
}

// rankEntry is a user's highest role seen, kept until a time.
type rankEntry struct {
	role  room.Role
	until time.Time
}

func NewMemoryState(historySize, heldMax int) *MemoryState {
	return &MemoryState{historySize: max(historySize, 1), heldMax: max(heldMax, 1), rooms: map[string]*memRoom{}}
}

// room returns the room's state; the caller holds s.mu.
func (s *MemoryState) room(id string) *memRoom {
	r := s.rooms[id]
	if r == nil {
		r = &memRoom{banned: map[string]Actor{}, muted: map[string]mute{}, ranks: map[string]rankEntry{}, lastPost: map[string]time.Time{}}
		s.rooms[id] = r
	}
	return r
}

func (s *MemoryState) Add(_ context.Context, roomID string, m Message) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.room(roomID)
	if len(r.history) >= s.historySize {
		n := len(r.history) - s.historySize + 1
		clear(r.history[:n])
		r.history = append(r.history[:0], r.history[n:]...)
	}
	r.history = append(r.history, m)
	return nil
}

func (s *MemoryState) Published(_ context.Context, roomID, id string, seq uint64, ts int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.room(roomID)
	for i := len(r.history) - 1; i >= 0; i-- { // it is nearly always the last one
		if r.history[i].ID == id {
			r.history[i].Seq, r.history[i].TS = seq, ts
			return nil
		}
	}
	return nil
}

func (s *MemoryState) Remove(_ context.Context, roomID, id string) (Message, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.room(roomID)
	for i, m := range r.history {
		if m.ID == id {
			r.history = slices.Delete(r.history, i, i+1)
			return m, true, nil
		}
	}
	return Message{}, false, nil
}

func (s *MemoryState) Recent(_ context.Context, roomID string) ([]Message, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.room(roomID).history), nil
}

func (s *MemoryState) Hold(_ context.Context, roomID string, m Message) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.room(roomID)
	if len(r.held) >= s.heldMax {
		r.held = slices.Delete(r.held, 0, 1)
	}
	r.held = append(r.held, m)
	return nil
}

func (s *MemoryState) Take(_ context.Context, roomID, id string) (Message, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.room(roomID)
	for i, m := range r.held {
		if m.ID == id {
			r.held = slices.Delete(r.held, i, i+1)
			return m, true, nil
		}
	}
	return Message{}, false, nil
}

func (s *MemoryState) List(_ context.Context, roomID string) ([]Message, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.room(roomID).held), nil
}

func (s *MemoryState) Ban(_ context.Context, roomID, userID string, by Actor) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.room(roomID).banned[userID] = by
	return nil
}

func (s *MemoryState) Unban(_ context.Context, roomID, userID string) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.room(roomID)
	_, was := r.banned[userID]
	delete(r.banned, userID)
	return was, nil
}

func (s *MemoryState) Mute(_ context.Context, roomID, userID string, until time.Time, by Actor) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.room(roomID)
	if until.IsZero() {
		delete(r.muted, userID)
	} else {
		r.muted[userID] = mute{until: until, by: by}
	}
	return nil
}

func (s *MemoryState) Standing(_ context.Context, roomID, userID string) (Standing, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.room(roomID)
	by, banned := r.banned[userID]
	m := r.muted[userID]
	return Standing{Banned: banned, BannedBy: by, MutedUntil: m.until, MutedBy: m.by}, nil
}

func (s *MemoryState) SetSlow(_ context.Context, roomID string, seconds int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.room(roomID).slow = seconds
	return nil
}

func (s *MemoryState) Slow(_ context.Context, roomID string) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.room(roomID).slow, nil
}

func (s *MemoryState) Post(_ context.Context, roomID, userID string, now time.Time, gap time.Duration) (bool, time.Time, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.room(roomID)
	if now.Sub(r.lastSweep) > time.Minute { // forget posts older than any slow mode
		for u, t := range r.lastPost {
			if now.Sub(t) > time.Hour {
				delete(r.lastPost, u)
			}
		}
		r.lastSweep = now
	}
	if last, ok := r.lastPost[userID]; ok && now.Sub(last) < gap {
		return false, last.Add(gap), nil
	}
	r.lastPost[userID] = now
	return true, time.Time{}, nil
}

func (s *MemoryState) UpdateTerms(_ context.Context, roomID string, add, remove []string, maxTerms int) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.room(roomID)
	next := mergeTerms(r.terms, add, remove)
	if len(next) > maxTerms {
		return nil, tooManyTerms(maxTerms)
	}
	r.terms = next
	r.termsVer++
	return slices.Clone(next), nil
}

func (s *MemoryState) Terms(_ context.Context, roomID string) ([]string, uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.room(roomID)
	return slices.Clone(r.terms), r.termsVer, nil
}

func (s *MemoryState) SeeRank(_ context.Context, roomID, userID string, role room.Role, now time.Time, keep RankKeep) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.room(roomID).seeRank(userID, role, now, keep)
	return nil
}

// seeRank is SeeRank; it reports whether userID's entry is new or its role
// rose. The caller holds s.mu.
func (r *memRoom) seeRank(userID string, role room.Role, now time.Time, keep RankKeep) bool {
	old, had := r.ranks[userID]
	if had && old.until.After(now) && old.role >= role {
		role = old.role
	}
	r.ranks[userID] = rankEntry{role: role, until: now.Add(keep.TTL)}
	if len(r.ranks) > keep.Max {
		for u, e := range r.ranks {
			if !e.until.After(now) {
				delete(r.ranks, u)
			}
		}
	}
	for len(r.ranks) > max(keep.Max, 0) {
		var low string
		var lowE rankEntry
		first := true
		for u, e := range r.ranks {
			if first || e.role < lowE.role || e.role == lowE.role && e.until.Before(lowE.until) {
				low, lowE, first = u, e, false
			}
		}
		delete(r.ranks, low)
	}
	return !had || old.role != r.ranks[userID].role
}

func (s *MemoryState) Rank(_ context.Context, roomID, userID string, now time.Time) (room.Role, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.room(roomID).ranks[userID]
	if !ok || !e.until.After(now) {
		return room.RoleGuest, false, nil
	}
	return e.role, true, nil
}

// loadRanks restores ranks read from a file (FileState).
func (s *MemoryState) loadRanks(roomID string, ranks map[string]fileRank) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.room(roomID)
	for u, e := range ranks {
		if role, ok := roleNamed(e.Role); ok {
			r.ranks[u] = rankEntry{role: role, until: e.Until}
		}
	}
}
